"""The documentation site in a real browser: headless Chromium driven by Selenium.

The site is built as CI builds it (``mkdocs build --strict``, into a temporary folder),
served on 127.0.0.1 at a free port, and two pages are opened: the home page and a notebook
page (notebook 4, the one with the most figures). On each, every image must have loaded
(``naturalWidth > 0``), and no request may leave the local server: no web fonts (the
theme's ``font: false``), no CDN scripts. Skips, saying why, without the docs extra,
Selenium or Chromium.
"""
import functools
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from browser import chromium, skip_without_chromium

pytest.importorskip("mkdocs", reason='the docs extra is not installed (pip install -e ".[docs]")')
pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

skip_without_chromium()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder: ``mkdocs build --strict``, as CI runs it."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def server(site):
    """``http://127.0.0.1:PORT/``, serving the built site from a thread."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1300, 2000, "--disable-background-networking")
    yield driver
    driver.quit()


def open_page(driver, url):
    """Load ``url`` and wait until it and its images have loaded; ``(images, requests)``:
    each ``<img>``'s src and naturalWidth, and every URL the page requested."""
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get_log("performance")                         # forget the previous page's
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete" and
        d.execute_script("return Array.from(document.images).every(i => i.complete)"))
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.naturalWidth])")
    requested = {json.loads(e["message"])["message"]["params"]["request"]["url"]
                 for e in driver.get_log("performance")
                 if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"}
    return images, requested


@pytest.mark.parametrize("path, least", [("", 1), ("tutorials/4_look_inside/", 5)])
def test_the_page_shows_its_figures_and_fetches_nothing_from_outside(server, browser, path,
                                                                     least):
    images, requested = open_page(browser, server + path)
    assert len(images) >= least, images
    broken = [src for src, width in images if not width]
    assert not broken, f"{path or 'home'}: images that did not load: {broken}"
    outside = [u for u in requested if not u.startswith((server, "data:", "blob:"))]
    assert not outside, f"{path or 'home'} fetched from outside: {outside}"
    assert any(u.startswith(server) for u in requested)
