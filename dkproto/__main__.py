"""``python -m dkproto``: the same CLI as the ``dkproto`` console script, with the same exit status."""

import sys

from dkproto.cli import main

if __name__ == "__main__":
    sys.exit(main())
