"""What goes wrong around the explorer: odd models, run folders, caches, addresses,
and what the terminal says. Each ends in one clear line, or in recovery."""
import json
import os
import socket

import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, models, save_model
from minicnn.explore import views
from minicnn.explore.scan import Scans

pytest.importorskip("gradio", reason="the explore extra (gradio) is not installed")


def classifier(n_classes, input_shape=(1, 28, 28)):
    """A small conv net with ``n_classes`` outputs."""
    c, h, w = input_shape
    return Sequential([Conv2D(c, 2, 5, seed=0), ReLU(), MaxPool2D(4), Flatten(),
                       Dense(2 * ((h - 4) // 4) * ((w - 4) // 4), n_classes, seed=1)],
                      input_shape=input_shape)


def explore(args, capsys):
    """``minicnn explore ARGS``: ``(exit status, stderr lines)``."""
    from minicnn.cli.command import main
    status = main(["explore", *map(str, args), "--no-browser"])
    return status, capsys.readouterr().err.splitlines()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run(tmp_path):
    save_model(models.tiny_cnn(seed=0), tmp_path / "model.npz")
    return tmp_path


# -- the model's classes ----------------------------------------------------------
@pytest.mark.parametrize("n", [4, 10, 12])
def test_labels_come_from_the_model_outputs(n, device):
    model = classifier(n).to(device)
    digits = [str(d) for d in range(10)]
    fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    names, note = views.class_names(model, fashion)
    assert len(names) == n
    assert (names, note) == ((fashion, "") if n == 10 else
                             ([str(k) for k in range(n)],
                              f"the model has {n} outputs but the dataset has 10 class names: "
                              f"its classes are labelled 0 to {n - 1}"))
    assert views.class_names(model)[0] == [str(k) for k in range(n)]
    from minicnn.explore.preprocess import model_input
    maps = views.forward(model, model_input(np.eye(28, dtype=np.uint8) * 255))
    probs = views.probabilities(model, maps, views.class_names(model, digits)[0])
    assert len(probs) == n and abs(sum(probs.values()) - 1) < 1e-5


def test_a_model_of_other_images_is_refused_in_one_line(tmp_path, capsys):
    save_model(classifier(10, (3, 32, 32)), tmp_path / "model.npz")
    status, err = explore([tmp_path], capsys)
    assert status == 1 and err == ["minicnn explore: error: the model takes 3x32x32 images; the "
                                   "explorer shows models of 1x28x28 images (MNIST, Fashion-MNIST)"]
    with pytest.raises(ValueError, match="no input_shape"):
        views.check_model(Sequential([Flatten(), Dense(784, 10)]))


def test_a_model_with_12_classes_is_labelled_0_to_11_with_a_note(capfd):
    from minicnn.cli.common import CLASS_NAMES
    from minicnn.explore import app
    page = app(classifier(12), CLASS_NAMES["mnist"], port=free_port(), block=False,
               progress=False)
    try:
        err = capfd.readouterr().err.splitlines()
    finally:
        page.close()
    assert err == ["minicnn explore: the model has 12 outputs but the dataset has 10 class "
                   "names: its classes are labelled 0 to 11"]
    labels = [b for b in page.blocks.values() if type(b).__name__ == "Label"]
    assert [label.num_top_classes for label in labels] == [12]


# -- the run folder ---------------------------------------------------------------
@pytest.mark.parametrize("content, says", [
    ("[1, 2]", "holds a JSON array, not a run's settings"),
    ('"mnist"', "holds a JSON string, not a run's settings"),
    ("{not json", "cannot be read as a run's settings"),
    ('{"dataset": "cifar10"}', "names the dataset 'cifar10'; the explorer knows mnist and "
                               "fashion-mnist"),
    ('{"dataset": ["mnist"]}', "names the dataset ['mnist']"),
])
def test_a_bad_config_json_is_one_line(run, capsys, content, says):
    (run / "config.json").write_text(content)
    status, err = explore([run], capsys)
    assert status == 1 and len(err) == 1 and says in err[0] and "config.json" in err[0], err


def test_the_model_file_itself_may_be_given(run, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr("minicnn.explore.app", lambda *a, **k: seen.update(k))
    status, _ = explore([run / "model.npz", "--data-dir", run], capsys)
    assert status == 0 and seen["cache_dir"] == os.path.join(str(run), "explore")


def test_a_model_file_that_is_not_one_is_one_line(run, capsys):
    (run / "model.npz").write_bytes(b"not a zip")
    status, err = explore([run], capsys)
    assert status == 1 and len(err) == 1 and "model.npz" in err[0]
    os.remove(run / "model.npz")
    os.mkdir(run / "model.npz")
    status, err = explore([run], capsys)
    assert status == 1 and len(err) == 1 and "no model.npz" in err[0]


def test_gpu_without_one_is_one_line(run, capsys):
    from minicnn.backend import gpu_unavailable_reason
    if gpu_unavailable_reason() is None:
        pytest.skip("a GPU is here: nothing to refuse")
    status, err = explore([run, "--device", "gpu"], capsys)
    assert status == 1 and len(err) == 1 and "device 'gpu' requested but" in err[0]


# -- where the page listens -------------------------------------------------------
def test_a_port_in_use_is_one_line(run, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, err = explore([run, "--port", port], capsys)
    assert status == 1 and err == [f"minicnn explore: error: port {port} on 127.0.0.1 is in use "
                                   f"(another minicnn explore?): stop that program, or pass "
                                   f"another --port"]


@pytest.mark.parametrize("host, says", [
    ("999.1.1.1", "--host '999.1.1.1' is not an address or a known name"),
    ("no-such-host.invalid", "--host 'no-such-host.invalid' is not an address or a known name"),
    ("192.0.2.1", "--host 192.0.2.1 is not an address of this machine"),    # TEST-NET-1
])
def test_an_unusable_host_is_one_line(run, capsys, host, says):
    status, err = explore([run, "--host", host, "--port", free_port()], capsys)
    assert status == 1 and len(err) == 1 and says in err[0], err


def test_a_port_out_of_range_from_python_is_one_line():
    from minicnn.explore import AddressError, check_address
    with pytest.raises(AddressError, match="^--port 99999 is not a port: pass one from 1024"):
        check_address("127.0.0.1", 99999)


def test_the_terminal_gets_the_address_once_and_no_share_hint(capfd):
    from minicnn.explore import app
    port = free_port()
    page = app(models.tiny_cnn(seed=0), port=port, block=False, progress=False)
    try:
        out, err = capfd.readouterr()
    finally:
        page.close()
    assert "share=True" not in out + err and "public link" not in out + err
    assert out.count(f"http://127.0.0.1:{port}") == 1
    assert f"minicnn explore: the page is at http://127.0.0.1:{port}/ (Ctrl-C stops it)" in out
    import minicnn.explore
    assert callable(minicnn.explore.app)     # a second call works (no submodule of that name)


# -- the scan's cache and progress ------------------------------------------------
def small_data(n_train=24, n_test=12):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(n_train, 28, 28)).astype(np.uint8)
    return train, (train[:n_test], rng.integers(0, 10, size=n_test))


def scanned(folder, model=None, **options):
    train, test = small_data()
    scans = Scans(model or models.tiny_cnn(seed=0), train, test, folder, batch_size=8,
                  **options).start()
    scans.thread.join(120)
    assert scans.error is None, scans.error
    return scans


def test_the_progress_counts_images_one_step_at_a_time(tmp_path):
    model = models.tiny_cnn(seed=0)
    train, test = small_data()
    scans = Scans(model, train, test, None, batch_size=8, progress=False)
    steps, step = [], scans._step
    scans._step = lambda what, total: (steps.append((what, total)), step(what, total))
    scans.start().thread.join(120)
    layers = views.spatial_layers(model)
    assert steps == [("test images: which are misclassified", 12)] + [
        (f"top-9 patches, layer {k + 1} of {len(layers)} ({i} {type(model.layers[i]).__name__})",
         24) for k, i in enumerate(layers)]
    assert scans.progress() == (24, 24, "done")


def test_a_corrupt_cache_is_said_and_rebuilt(tmp_path, capsys):
    first = scanned(tmp_path, progress=False)
    files = sorted(f for f in os.listdir(tmp_path) if f.endswith(".npz"))
    (tmp_path / files[0]).write_bytes(b"PK\x03\x04 cut short")         # a broken zip
    np.savez(tmp_path / files[1], channels=np.arange(3))               # another format
    with open(tmp_path / files[2], "r+b") as f:                        # half of it
        f.truncate(os.path.getsize(tmp_path / files[2]) // 2)
    again = scanned(tmp_path, progress=True)
    err = [line for line in capsys.readouterr().err.splitlines() if "unreadable" in line]
    assert len(err) == 3 and all(line.startswith("minicnn explore: the cache file ")
                                 and line.endswith(": scanning again") for line in err), err
    for layer in views.spatial_layers(first.model):
        np.testing.assert_array_equal(again.patches(layer).crops, first.patches(layer).crops)
    assert again.misclassified == first.misclassified
    third = scanned(tmp_path, progress=False)                          # rebuilt: read quietly
    assert third.notes == []


def test_a_cache_folder_that_cannot_be_made_keeps_results_in_memory(tmp_path):
    blocker = tmp_path / "explore"
    blocker.write_text("a file where the cache folder would go")
    scans = scanned(blocker, progress=False)
    assert len(scans.notes) == 1 and "kept in memory" in scans.notes[0]
    assert scans.patches(views.spatial_layers(scans.model)[-1]) is not None


def test_a_second_explorer_reads_the_cache_but_leaves_it_alone(tmp_path):
    from minicnn.files.locks import FolderLock
    with FolderLock(tmp_path, "minicnn explore scan"):       # the first explorer, scanning
        second = scanned(tmp_path, progress=False)
    assert len(second.notes) == 1 and "does not write it" in second.notes[0]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".npz")]
    assert second.misclassified is not None


def test_stale_temporaries_of_an_interrupted_scan_are_removed(tmp_path):
    (tmp_path / ".tmp-k3j4h5g6.npz").write_bytes(b"half a file")      # Ctrl-C mid-write
    (tmp_path / ".tmp-notes.txt").write_text("the user's")            # not ours: kept
    scanned(tmp_path, progress=False)
    assert not (tmp_path / ".tmp-k3j4h5g6.npz").exists()
    assert (tmp_path / ".tmp-notes.txt").exists()


def test_config_json_of_fashion_mnist_gives_its_names(run, capsys, monkeypatch):
    (run / "config.json").write_text(json.dumps({"dataset": "fashion-mnist"}))
    seen = {}
    monkeypatch.setattr("minicnn.explore.app", lambda model, names, *a, **k: seen.update(n=names))
    status, err = explore([run, "--data-dir", run], capsys)
    assert status == 0 and seen["n"][0] == "T-shirt/top"
    assert err[0].startswith("minicnn explore: no fashion-mnist data")


def test_ctrl_c_while_the_scan_runs_stops_in_one_line(run, data_root):
    """The command in a subprocess, interrupted as a terminal's Ctrl-C does."""
    import signal
    import subprocess
    import sys
    import time
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from minicnn.cli.command import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "explore", str(run), "--data-dir",
                             data_root, "--no-browser", "--port", str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "the page is at" in proc.stdout.readline()
        time.sleep(1)                                       # the scan of 60,000 images runs
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert proc.returncode == 0 and last == "minicnn explore: stopped", err[-500:]
    assert "Traceback" not in err and out == ""
    assert not [f for f in os.listdir(run / "explore") if f.startswith(".tmp-")]


def test_stop_ends_the_scan_at_its_next_batch():
    train, test = small_data(n_train=2000)
    scans = Scans(models.tiny_cnn(seed=0), train, test, None, batch_size=8, progress=False)
    scans.start()
    scans.stop()
    scans.thread.join(30)
    assert not scans.thread.is_alive() and scans.error is None
    assert scans.progress()[2] == "stopped"


def test_gradio_image_cache_is_written_atomically_and_once(tmp_path):
    """Gradio rewrote an image already in its cache in place, so a page fetching it could
    read it half written ("Too much data for declared Content-Length", a traceback): the
    explorer's writer leaves a file with the same bytes (the same name) alone."""
    pytest.importorskip("gradio", reason="the explore extra (gradio) is not installed")
    from PIL import Image
    from gradio import processing_utils

    from minicnn.explore.gradio_cache import atomic_image_cache
    atomic_image_cache()
    atomic_image_cache()                                       # once per process
    image = Image.new("L", (8, 8), 200)
    first = processing_utils.save_pil_to_cache(image, str(tmp_path), format="png")
    os.utime(first, ns=(1_000_000_000, 1_000_000_000))         # a mark a rewrite would clear
    again = processing_utils.save_pil_to_cache(image, str(tmp_path), format="png")
    assert again == first and os.stat(again).st_mtime_ns == 1_000_000_000   # not written again
    assert Image.open(first).getpixel((0, 0)) == 200
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]   # no temporary left
