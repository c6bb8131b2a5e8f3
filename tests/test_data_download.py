"""Downloads over real sockets on 127.0.0.1: mirrors that hang or fail are skipped, the
mirror list can be overridden, the cache is one process's at a time, a killed download
leaves nothing behind after the next start.

The servers bind to 127.0.0.1 only and are stopped by the tests; the files are the tiny
fake datasets of data_helpers, with their md5s made the 'published' ones.
"""
import functools
import glob
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from data_helpers import isolated, make_files, md5s  # noqa: F401  (isolated: autouse fixture)

from minicnn.data import DataError, DownloadError, download, load_data, load_dataset
from minicnn.data.datasets import DATASETS, FILES
from minicnn.files.locks import FolderBusy, FolderLock

REAL_URLOPEN = download._urlopen
TIMEOUT = 0.5        # seconds; the real default is download.DOWNLOAD_TIMEOUT_S


@pytest.fixture(autouse=True)
def local_network(monkeypatch):
    """The real URL opener (the isolated fixture disables it), and no proxy for 127.0.0.1."""
    monkeypatch.setattr(download, "_urlopen", REAL_URLOPEN)
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A folder with the four tiny MNIST .gz files, whose md5s are made the published ones."""
    files = make_files(tmp_path / "source")
    monkeypatch.setitem(DATASETS["mnist"], "md5", md5s(files))
    return tmp_path / "source"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


class Stalling(Quiet):
    """Sends the headers and half the file, then never more (until the test ends)."""

    def do_GET(self):
        self.server.requests.append(self.path)
        data = open(os.path.join(self.directory, self.path.lstrip("/")), "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.server.release.wait(30)


@pytest.fixture
def serve():
    """serve(folder, handler=Quiet) -> (base URL, server): an HTTP server on 127.0.0.1."""
    servers = []

    def start(folder, handler=Quiet):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        server.daemon_threads = True
        server.requests, server.release = [], threading.Event()
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/", server
    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def hanging():
    """A mirror that accepts connections and never answers; .connections counts them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:          # the listener was closed: the test is over
                return
    threading.Thread(target=accept, daemon=True).start()

    class Mirror:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        connections = held
    yield Mirror
    listener.close()
    for conn in held:
        conn.close()


def cache(tmp_path):
    return tmp_path / "cache" / "mnist"


def test_a_hanging_and_a_failing_mirror_are_each_tried_once(tmp_path, monkeypatch, capsys,
                                                            tiny_mnist, serve, hanging):
    broken_url, broken = serve(tmp_path / "nothing-here")        # answers 404
    good_url, good = serve(tiny_mnist)
    monkeypatch.setenv("MINICNN_MIRRORS", f"{hanging.url} {broken_url},{good_url}")
    start = time.monotonic()
    (train, test) = load_dataset("mnist", timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    assert train[0].shape == (6, 28, 28) and test[0].shape == (4, 28, 28)
    assert len(hanging.connections) == 1 and len(broken.requests) == 1
    assert sorted(good.requests) == sorted("/" + f for f in FILES.values())
    assert elapsed < 5 * TIMEOUT + 3, elapsed
    assert sorted(os.listdir(cache(tmp_path))) == sorted([*FILES.values(), ".minicnn.lock"])
    err = capsys.readouterr().err
    assert f"MNIST: downloading 4 file(s) into {cache(tmp_path)}" in err
    assert f"from {hanging.url}train-images-idx3-ubyte.gz" in err
    assert f"from {good_url}t10k-labels-idx1-ubyte.gz" in err
    assert "skipping" in err


def test_all_mirrors_failing_names_each_and_says_what_to_do(tmp_path, monkeypatch, serve,
                                                            hanging, tiny_mnist):
    broken_url, _ = serve(tmp_path / "nothing-here")
    with pytest.raises(DownloadError) as info:
        load_dataset("mnist", mirrors=[hanging.url, broken_url], timeout=TIMEOUT)
    message = str(info.value)
    assert hanging.url in message and broken_url in message and "404" in message
    assert "MINICNN_MIRRORS" in message and "--data-dir" in message
    assert not glob.glob(str(cache(tmp_path) / ".tmp-*"))


def test_a_local_folder_or_file_url_can_be_the_mirror(tmp_path, tiny_mnist):
    (test,) = load_dataset("mnist", mirrors=[str(tiny_mnist)], splits=("test",))
    assert test[0].shape == (4, 28, 28)
    assert sorted(os.listdir(cache(tmp_path))) == [".minicnn.lock", "t10k-images-idx3-ubyte.gz",
                                                   "t10k-labels-idx1-ubyte.gz"]
    # {name} stands for the dataset's name: one setting serves both datasets.
    make_files(tmp_path / "proxy" / "mnist")
    (train, _) = load_dataset("mnist", mirrors=[(tmp_path / "proxy").as_uri() + "/{name}"])
    assert train[0].shape == (6, 28, 28)


def test_a_mirror_serves_only_files_with_the_published_md5(tmp_path, monkeypatch, tiny_mnist):
    make_files(tmp_path / "other", marker=9)                     # same names, other bytes
    monkeypatch.setenv("MINICNN_MIRRORS", str(tmp_path / "other"))
    with pytest.raises(DataError, match="md5 mismatch"):
        load_data("mnist")
    assert [f for f in os.listdir(cache(tmp_path)) if not f.startswith(".minicnn")] == []


def test_the_cache_is_one_process_at_a_time(tmp_path, tiny_mnist):
    with FolderLock(cache(tmp_path), "download"):    # as another process's download would
        with pytest.raises(FolderBusy, match=r"cache/mnist is in use by another download"):
            load_dataset("mnist", mirrors=[str(tiny_mnist)])
        with pytest.raises(DataError, match="in use by another download"):
            load_data("mnist")
    load_dataset("mnist", mirrors=[str(tiny_mnist)])


DOWNLOAD = """
import json, sys
from minicnn.data import datasets
datasets.DATASETS["mnist"]["md5"] = json.loads(sys.argv[3])
datasets.load_dataset("mnist", cache_dir=sys.argv[1], mirrors=[sys.argv[2]])
"""


def test_a_download_killed_mid_file_leaves_no_temporary_after_the_next_start(
        tmp_path, tiny_mnist, serve):
    stall_url, stall = serve(tiny_mnist, Stalling)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen(
        [sys.executable, "-c", DOWNLOAD, str(tmp_path / "cache"), stall_url,
         json.dumps(DATASETS["mnist"]["md5"])], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not stall.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stall.requests, "the download never started"
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = glob.glob(str(cache(tmp_path) / ".tmp-*"))
    assert len(left) == 1                      # what kill -9 leaves behind
    load_dataset("mnist", mirrors=[str(tiny_mnist)])
    assert glob.glob(str(cache(tmp_path) / ".tmp-*")) == []
    assert sorted(f for f in os.listdir(cache(tmp_path)) if not f.startswith(".minicnn")) \
        == sorted(FILES.values())


def test_a_full_disk_is_not_blamed_on_the_mirror(tmp_path, monkeypatch, tiny_mnist, capsys):
    def full(path, write):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(download, "atomic_write", full)
    monkeypatch.setenv("MINICNN_MIRRORS", str(tiny_mnist))
    with pytest.raises(DataError) as info:
        load_data("mnist")
    message = str(info.value)
    assert "No space left on device" in message and str(cache(tmp_path)) in message
    assert "MINICNN_CACHE" in message and "skipping" not in capsys.readouterr().err


def test_each_file_has_a_progress_bar_sized_by_the_server(tmp_path, monkeypatch, tiny_mnist,
                                                          serve):
    bars = []

    class Recorder:
        def __init__(self, total=None, desc=None, **options):
            self.total, self.desc, self.done = total, desc, 0
            bars.append(self)

        def update(self, n):
            self.done += n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass
    monkeypatch.setattr(download, "tqdm", Recorder)
    url, _ = serve(tiny_mnist)
    load_dataset("mnist", mirrors=[url], splits=("test",))
    sizes = {f: os.path.getsize(tiny_mnist / f) for f in os.listdir(tiny_mnist)}
    assert [(b.desc, b.total, b.done) for b in bars] == [
        (f, sizes[f], sizes[f]) for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
