"""The explorer in a real browser: headless Chromium driven by Selenium.

The app runs in a subprocess on 127.0.0.1 and a free port; the test draws a
stroke with pointer actions, waits for the prediction and the images, and
checks that the class shown is what ``model.forward`` gives for the 28x28
image the page shows; that every request the page made went to the app
itself (offline: no fonts or scripts from elsewhere); that clicking a
unit of the second conv layer's ReLU shows its receptive field; that the
backward view shows a map and a passing check per layer (and a rule's distance
from the gradient once one is chosen), the conservation plot its maps, and the
report card its table (a real card of 4 images, written before the page
loads, as ``minicnn report-card`` would). It saves a
screenshot (to ``$MINICNN_EXPLORE_SCREENSHOT`` if set, else the test's
temporary folder); ``$MINICNN_EXPLORE_RUN`` names the run whose model it shows
and ``$MINICNN_EXPLORE_TRAIN`` how many training images the top-9 scan takes
(default 100). The upload test sends a transparent PNG, a blank image and a
file that is not an image.
The server also exits by itself if this test process dies.
"""
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from browser import chromium, skip_without_chromium

pytest.importorskip("gradio", reason="the explore extra (gradio) is not installed")
pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

from minicnn import load_model, models, save_model  # noqa: E402
from minicnn.data import prepare_images  # noqa: E402
from minicnn.studies.report_card_run import write_run_card  # noqa: E402

skip_without_chromium()

SERVER = """
import os, sys, threading, time
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
import numpy as np
from minicnn import load_model
from minicnn.explore import app
run, port, parent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def orphan_watch():                 # the test died: stop serving
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=orphan_watch, daemon=True).start()
train = test = None
if os.path.exists(os.path.join(run, "data.npz")):
    with np.load(os.path.join(run, "data.npz")) as f:
        train, test = f["train"], (f["test"], f["labels"])
app(load_model(os.path.join(run, "model.npz")), test_data=test, train_images=train,
    cache_dir=os.path.join(run, "explore"), host="127.0.0.1", port=port, block=True,
    progress=False, run_dir=run)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run_dir(tmp_path):
    """A run folder: ``$MINICNN_EXPLORE_RUN``'s model (for the README's screenshot) or
    tiny_cnn with seed 0; with ``$MINICNN_EXPLORE_TRAIN`` (default 100) MNIST
    training images for the top-9 scan when MINICNN_DATA is set."""
    given = os.environ.get("MINICNN_EXPLORE_RUN")
    model = load_model(os.path.join(given, "model.npz")) if given else models.tiny_cnn(seed=0)
    save_model(model, tmp_path / "model.npz")
    (tmp_path / "config.json").write_text('{"model": "explored", "dataset": "mnist"}')
    root = os.environ.get("MINICNN_DATA")
    if root and os.path.isdir(os.path.join(root, "mnist")):
        from minicnn.data import load_mnist
        (x, _), (xt, yt) = load_mnist(download=False)
        n = int(os.environ.get("MINICNN_EXPLORE_TRAIN", 100))
        np.savez(tmp_path / "data.npz", train=x[:n], test=xt[:100], labels=yt[:100])
    return tmp_path


@pytest.fixture
def server(run_dir):
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", MPLBACKEND="Agg")
    log = open(run_dir / "server.log", "w")      # a file, not a pipe: a full pipe would block it
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(run_dir), str(port),
                             str(os.getpid())], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"the app did not start: see {run_dir / 'server.log'}")
                time.sleep(0.3)
        yield url, run_dir
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        print("the app's output:\n" + (run_dir / "server.log").read_text())  # shown on failure


@pytest.fixture
def browser():
    driver = chromium(1400, 2600)
    yield driver
    driver.quit()


def image_src(driver, elem_id):
    imgs = driver.find_elements("css selector", f"#{elem_id} img")
    return imgs[0].get_attribute("src") if imgs else None


def read_image(url):
    from PIL import Image
    with urllib.request.urlopen(url, timeout=30) as f:
        return np.asarray(Image.open(io.BytesIO(f.read())).convert("L"))


def until(driver, what, condition, timeout=45):
    """Wait for ``condition(driver)``; on a timeout, save a screenshot and say what is missing."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        shot = os.path.join(os.environ.get("PYTEST_TMP", "/tmp"), "explore-timeout.png")
        driver.save_screenshot(shot)
        pytest.fail(f"the page did not show {what} within {timeout} s (screenshot: {shot})")


def test_draw_predict_and_click_a_unit(server, browser):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.interaction import POINTER_MOUSE
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    url, run = server
    d = browser
    rng = np.random.default_rng(0)                    # a card of 4 images: seconds
    test = (rng.integers(0, 256, (4, 28, 28)).astype(np.uint8), rng.integers(0, 10, 4))
    if os.path.exists(os.path.join(run, "data.npz")):     # MNIST's, when the test has them
        with np.load(os.path.join(run, "data.npz")) as f:
            test = f["test"], f["labels"]
    write_run_card(str(run), *test, images=4, sanity_images=2, log=None)
    d.get(url)
    until(d, "the brush", lambda d: d.find_elements("css selector", "#pad button[aria-label='Brush']"))
    d.find_element("css selector", "#pad button[aria-label='Brush']").click()
    canvas = d.find_elements("css selector", "#pad canvas")[-1]
    # a "7": a bar to the right, then down and to the left (offsets from the centre)
    stroke = ActionBuilder(d, mouse=PointerInput(POINTER_MOUSE, "mouse"))
    pointer = stroke.pointer_action
    pointer.move_to(canvas, -60, -90).pointer_down()
    for x, y in [(-20, -90), (20, -90), (60, -90), (40, -40), (20, 10), (0, 60), (-15, 100)]:
        pointer.move_to(canvas, x, y).pause(0.03)
    pointer.pointer_up()
    stroke.perform()

    until(d, "the 28x28 image", lambda d: image_src(d, "seen"))
    until(d, "the prediction", lambda d: d.find_elements("css selector", "#probs h2"))
    until(d, "the feature maps", lambda d: image_src(d, "fmaps"))
    until(d, "8 attribution maps",
          lambda d: len(d.find_elements("css selector", "#attributions img")) >= 8)
    captions = d.find_elements("css selector", "#attributions .caption-label")
    assert len(captions) == 8
    for caption in captions:            # each caption whole: not cut off with an ellipsis
        width, full = (d.execute_script(f"return arguments[0].{k}", caption)
                       for k in ("clientWidth", "scrollWidth"))
        assert full <= width, f"caption {caption.text!r} is cut off ({full} > {width} px)"
    wrap = d.find_element("css selector", "#attributions .grid-wrap")   # all 8 in sight, and
    inner, outer = (d.execute_script(f"return arguments[0].{k}", wrap)  # no empty band below
                    for k in ("scrollHeight", "clientHeight"))
    row = d.find_element("css selector", "#attributions .thumbnail-item").size["height"]
    assert inner <= outer < 1.5 * row, (inner, outer, row)
    shown = d.find_element("css selector", "#probs h2").text.strip()
    digit = read_image(image_src(d, "seen"))
    assert digit.shape == (28, 28) and digit.max() > 0
    model = load_model(os.path.join(run, "model.npz")).eval()
    predicted = int(model.forward(prepare_images(digit[None])).argmax())
    assert shown == str(predicted)
    check_backward_views(d, model)
    until(d, "the report card's table", lambda d: d.find_elements("css selector", "#card table"))
    card = d.find_element("css selector", "#card table").text
    assert all(method in card for method in ("gradient", "LRP epsilon", "DeepLIFT", "random"))
    assert not [b for b in d.find_elements("css selector", "#card_button") if b.is_displayed()]

    # layer 4 (the second conv's ReLU in lenet and tiny_cnn), then a unit in its first
    # channel's map (the centre for lenet's 8x8 grid of maps): it gets a receptive field
    first = image_src(d, "fmaps")
    d.find_element("css selector", "#layer input").click()
    until(d, "layer 4 in the list", lambda d: [o for o in d.find_elements(
        "css selector", "#layer [role=option]") if o.text.startswith("4 ")])[0].click()
    until(d, "layer 4's maps", lambda d: image_src(d, "fmaps") not in (None, first))
    fmaps = d.find_element("css selector", "#fmaps img")
    stroke = ActionBuilder(d, mouse=PointerInput(POINTER_MOUSE, "mouse"))
    w, h = fmaps.size["width"], fmaps.size["height"]
    stroke.pointer_action.move_to(fmaps, -w // 2 + w // 16, -h // 2 + h // 16).click()
    stroke.perform()
    until(d, "the unit's receptive field and projection",
          lambda d: image_src(d, "field") and image_src(d, "projection"))
    assert "channel 0" in d.find_element("css selector", "#unit_text").text
    if os.path.exists(os.path.join(run, "data.npz")):   # the scan of 100 images is quick
        assert "they appear here" in d.find_element("css selector", "#unit_text").text or \
            image_src(d, "top9")                          # ... may be done already
        until(d, "the end of the scan", lambda d: "done" in d.find_element("css selector", "#scan").text,
              timeout=180 + int(os.environ.get("MINICNN_EXPLORE_TRAIN", 100)) // 20)
        until(d, "the top-9 patches (without clicking again)", lambda d: image_src(d, "top9"))

    requested = {json.loads(e["message"])["message"]["params"]["request"]["url"]
                 for e in d.get_log("performance")
                 if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"}
    outside = [u for u in requested if not u.startswith((url, "data:", "blob:"))]
    assert not outside, f"the page fetched from outside: {outside}"
    d.execute_script("window.scrollTo(0, 0)")
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1400, height + 150)          # the whole page in one screenshot
    d.save_screenshot(os.environ.get("MINICNN_EXPLORE_SCREENSHOT") or str(run / "explore.png"))

    if os.path.exists(os.path.join(run, "data.npz")):   # a test image by its index, as stored
        drawn = image_src(d, "seen")
        d.find_element("xpath", "//button[@role='tab'][contains(., 'Test image')]").click()
        box = until(d, "the index box", lambda d: d.find_element("css selector", "#test_index input"))
        box.clear()
        box.send_keys("3\n")
        until(d, "test image 3", lambda d: image_src(d, "seen") not in (None, drawn))
        with np.load(os.path.join(run, "data.npz")) as f:
            np.testing.assert_array_equal(read_image(image_src(d, "seen")), f["test"][3])


def check_backward_views(d, model):
    """A map and a passing check per layer; after choosing "guided", the ReLUs' distance
    from the gradient; the conservation plot and its three maps."""
    layers = len(model.layers)
    until(d, "a backward map per layer",
          lambda d: len(d.find_elements("css selector", "#backward img")) >= layers)
    rows = d.find_elements("css selector", "#backward_checks tbody tr")
    checks = [float(re.search(r"check (\S+)", row.text).group(1)) for row in rows]
    assert len(checks) == layers and max(checks) < 1e-6, checks
    until(d, "the conservation plot", lambda d: image_src(d, "conservation"))
    assert len(d.find_elements("css selector", "#conservation_maps img")) == 3
    d.find_element("css selector", "#rule input").click()
    until(d, "guided in the list", lambda d: [o for o in d.find_elements(
        "css selector", "#rule [role=option]") if o.text == "guided"])[0].click()
    until(d, "guided's distances from the gradient", lambda d: "vs gradient" in d.find_element(
        "css selector", "#backward_checks").text)


def upload(d, url, path):
    """A fresh page, its Upload tab, and ``path`` given to the upload box."""
    d.get(url)
    until(d, "the Upload tab", lambda d: d.find_elements(
        "xpath", "//button[@role='tab'][contains(., 'Upload')]"))[0].click()
    box = until(d, "the upload box",
                lambda d: d.find_elements("css selector", "#upload input[type=file]"))
    box[0].send_keys(str(path))


def test_uploads_give_a_digit_no_digit_or_a_message(server, browser, tmp_path):
    from PIL import Image, ImageDraw
    url, run = server
    d = browser
    ink = Image.new("L", (200, 200), 0)                   # a "7" ...
    ImageDraw.Draw(ink).line([(50, 40), (150, 40), (90, 170)], fill=255, width=14)
    seven = Image.merge("RGBA", [Image.new("L", (200, 200), 0)] * 3 + [ink])   # ... black on clear
    seven.save(tmp_path / "seven.png")
    upload(d, url, tmp_path / "seven.png")
    until(d, "the prediction", lambda d: d.find_elements("css selector", "#probs h2"))
    digit = read_image(image_src(d, "seen"))
    assert digit.sum() > 20 * 255                        # the strokes, not a blank image
    model = load_model(os.path.join(run, "model.npz")).eval()
    predicted = int(model.forward(prepare_images(digit[None])).argmax())
    assert d.find_element("css selector", "#probs h2").text.strip() == str(predicted)

    if os.path.exists(os.path.join(run, "data.npz")):    # no card yet: the button for one
        until(d, "the report card's button", lambda d: [
            b for b in d.find_elements("css selector", "#card_button") if b.is_displayed()])
        assert "no report card" in d.find_element("css selector", "#card_status").text

    Image.new("RGB", (64, 48), (255, 255, 255)).save(tmp_path / "white.png")
    upload(d, url, tmp_path / "white.png")
    until(d, "'no digit found'", lambda d: [h for h in d.find_elements("css selector", "#probs h2")
                                            if h.text.strip() == "no digit found"])
    assert "no digit found" in d.find_element("css selector", "#note").text

    (tmp_path / "notes.png").write_text("not a picture")
    upload(d, url, tmp_path / "notes.png")
    until(d, "the message",
          lambda d: "not an image" in d.find_element("css selector", "#note").text)
    assert not d.find_elements("css selector", "#probs h2")
    log = (run / "server.log").read_text()
    assert "Traceback" not in log and "share=True" not in log, log
