"""The lab tier (tests marked ``lab``; run with ``python -m pytest --lab``, see docs/lab.md).

A package so its test modules may share basenames with tests/unit ones (test_iokit_examples.py).
"""
