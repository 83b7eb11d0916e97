"""Construct schemas for USB descriptors (chapter 9, BOS, hub and class-specific).

Each module registers its layouts with :mod:`dkproto.schema.registry`; the walker in
:mod:`dkproto.usb.walker` asks :func:`dkproto.schema.registry.lookup` for the schema of each
descriptor it frames.
"""
