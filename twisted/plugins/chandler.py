"""The C{twistd chandler} plugin (the work happens in L{twisted_ch.tap}, imported when used)."""

from twisted.application.service import ServiceMaker

chandler = ServiceMaker(
    "chandler",
    "twisted_ch.tap",
    "Keep AV device links alive (Extron ConnectionHandler on Twisted), with a status page",
    "chandler",
)
