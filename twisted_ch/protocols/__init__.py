"""Protocols shared by every device transport."""

from twisted_ch.protocols.device import DeviceProtocol, DeviceSink, LinkDown

__all__ = ["DeviceProtocol", "DeviceSink", "LinkDown"]
