"""Package data: usb.ids, the embedded example capture (see the NOTICE files)."""
