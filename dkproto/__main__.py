"""``python -m dkproto``: the same CLI as the ``dkproto`` console script."""

from dkproto.cli import main

if __name__ == "__main__":
    main()
