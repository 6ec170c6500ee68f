"""
The virtual touch panel: GUI Designer layouts (C{.gdl}) read into a model, and the browser
renderer that shows a program's UIDevices as their layouts draw them (C{/panel/} on the status
port).
"""

from twisted_ch.panel._gdl import (
    Container,
    Control,
    Font,
    FontFace,
    Layout,
    LayoutError,
    State,
    readLayout,
)

__all__ = [
    "Container",
    "Control",
    "Font",
    "FontFace",
    "Layout",
    "LayoutError",
    "State",
    "readLayout",
]
