"""
A real browser for tests of pages a person looks at: Debian's headless Chromium driven by
selenium through Debian's chromedriver (both installed by ``./dev test`` and ``.ci/run``).

Use the ``browser`` fixture (registered in conftest.py; ``from browser import waitFor``)::

    def test_page(browser, tmp_path):
        browser.get("http://127.0.0.1:8790/")
        ...
        browser.save_screenshot(str(tmp_path / "page.png"))

Pages load from loopback only.  ``waitFor`` polls the page (a bounded wait for the browser,
not a timing assertion).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CHROMIUM = os.environ.get("TWISTED_CH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TWISTED_CH_CHROMEDRIVER", "/usr/bin/chromedriver")


def startBrowser(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium session (selenium WebDriver); the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            raise RuntimeError(
                f"{path} is missing: install Debian's chromium and chromium-driver "
                "(./dev test does it when run as root)"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def waitFor(
    browser: Any, condition: Callable[[Any], T], timeout: float = 20.0, message: str = ""
) -> T:
    """Poll C{condition(browser)} until it is truthy (selenium's WebDriverWait); return it."""
    from selenium.webdriver.support.ui import WebDriverWait

    result: T = WebDriverWait(browser, timeout, poll_frequency=0.05).until(condition, message)
    return result


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium session for one test."""
    driver = startBrowser()
    try:
        yield driver
    finally:
        driver.quit()
