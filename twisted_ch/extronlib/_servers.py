"""Placeholder: EthernetServerInterface(Ex) are being written (issue 4)."""

from __future__ import annotations

__all__ = ["EthernetServerInterface", "EthernetServerInterfaceEx"]


class EthernetServerInterface:
    """ControlScript's single-client server interface (not supported by connection handlers)."""


class EthernetServerInterfaceEx:
    """ControlScript's multi-client server interface."""
