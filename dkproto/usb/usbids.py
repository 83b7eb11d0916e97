"""Names from the ``usb.ids`` database: :mod:`dkproto.usbids`, re-exported here where the
descriptor API's users look for it (it sits below ``dkproto.schema`` in the layers)."""

from dkproto.usbids import class_name, product_name, protocol_name, subclass_name, vendor_name, version

__all__ = ["class_name", "product_name", "protocol_name", "subclass_name", "vendor_name", "version"]
