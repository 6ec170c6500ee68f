"""The install the README gives keeps the twistd plugin and the endpoint parsers discoverable."""

from __future__ import annotations

import subprocess
import sys

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins


def test_the_chandler_plugin_is_discoverable() -> None:
    makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
    assert "chandler" in makers
    assert makers["chandler"].options.__module__ == "twisted_ch.tap"


def test_twistd_lists_chandler() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "twisted", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "chandler" in out
