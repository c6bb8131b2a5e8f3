"""Headless Chromium for the browser tests (the explorer's and the documentation site's):
where it is, and a Selenium driver that logs the page's network requests."""
import shutil

import pytest

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")


def skip_without_chromium():
    """Skip the calling test module, saying why, where there is no headless Chromium."""
    if BROWSER is None or DRIVER is None:
        pytest.skip("no headless Chromium here (apt-get install chromium chromium-driver)",
                    allow_module_level=True)


def chromium(width, height, *extra_arguments):
    """A headless Chromium driver of a ``width`` x ``height`` window; the caller quits it."""
    from selenium import webdriver
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", *extra_arguments):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
