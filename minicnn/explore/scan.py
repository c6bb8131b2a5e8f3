"""The explorer's slow work, done once per run in a background thread and cached.

Two jobs, in this order: which test images the model gets wrong (for the
"misclassified" picker), then ``viz.top_patches`` (k = 9, with deconvnet
projections) of every layer that has positions, over the training images.
Results are written to ``RUN_DIR/explore/`` under a key made of the weights and
the number of images, so a later start finds them and a retrained model does
not reuse stale ones. The thread works on its own copy of the model: layers
keep what their backward pass needs from the last forward pass, and the app's
passes must not be interleaved with the scan's.

The cache is only a cache: a file that cannot be read (cut short, overwritten,
of another format) is said in one line and scanned again; a folder that cannot
be written is said in one line and the results are kept in memory. While it
runs, the scan holds the folder's lock (``minicnn.files.locks``): a second explorer
on the same run reads the cache but leaves the writing to the first.
"""
import hashlib
import os
import sys
import threading
import zipfile

import numpy as np

from .. import viz
from ..backend import as_numpy
from ..data import prepare_images
from ..files.locks import FolderBusy, FolderLock, remove_stale_temporaries
from ..files.model_files import architecture, atomic_savez, build
from ..viz.probe import as_model_input, layer_name
from .views import spatial_layers

UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)

TOP_K = 9


def weights_key(model, n_images):
    """A short hex digest of the weights and the scanned data set's size."""
    h = hashlib.sha1(str(n_images).encode())
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:12]


def _copy(model):
    """A model with its own layers and the same weights, dtype and device."""
    state = model.state_dict()
    twin = build(architecture(model))
    if state:
        twin.astype(next(iter(state.values())).dtype)
    return twin.load_state_dict(state).to(getattr(model, "device", "cpu"))


class Scans:
    """``Scans(model, train_images, test_data, folder).start()``; then ``misclassified``
    (``None`` until known, then a list of ``(index, label, prediction)``),
    ``patches(layer)`` (a ``viz.TopPatches`` or ``None`` while still scanning) and
    ``progress()`` (``(done, total, what)``: images done of the current step's, and
    the step, e.g. "top-9 patches, layer 2 of 4 (3 Conv2D)"; then "done") may be
    asked at any time; ``notes`` lists what was said about the cache.

    ``train_images`` uint8 ``(N, 28, 28)`` or ``None`` (no top-9 patches);
    ``test_data`` ``(images, labels)`` or ``None``; ``folder`` for the cache files,
    or ``None`` to keep the results in memory only.
    """

    def __init__(self, model, train_images, test_data, folder=None, batch_size=256,
                 progress=True):
        self.model = _copy(model)
        self.train_images, self.test_data = train_images, test_data
        self.folder, self.batch_size, self.show_bar = folder, batch_size, progress
        self.layers = spatial_layers(model) if train_images is not None else []
        self.misclassified = None
        self._patches = {}
        self.error = None
        self.notes = []
        self._done, self._total, self._what = 0, 0, "waiting"
        self._writes = folder is not None
        self._stopping, self.bar = False, None
        self.thread = threading.Thread(target=self._run, name="minicnn-explore-scan", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        """End the scan at its next batch (what is cached stays); its progress bar is
        cleared from the terminal at once."""
        self._stopping = True
        if self.bar is not None:
            self.bar.close()

    def patches(self, layer):
        return self._patches.get(layer)

    def progress(self):
        return self._done, self._total, self._what

    def _path(self, name, n):
        if self.folder is None:
            return None
        return os.path.join(self.folder, f"{name}-{weights_key(self.model, n)}.npz")

    def _run(self):
        from tqdm import tqdm
        lower_priority()
        self.bar = tqdm(total=0, unit="img", desc="explore", disable=not self.show_bar,
                        leave=False)
        lock = self._lock()
        try:
            if self.test_data is not None:
                self._misclassified()
            for k, layer in enumerate(self.layers):
                self._top_patches(layer, f"top-{TOP_K} patches, layer {k + 1} of "
                                         f"{len(self.layers)} ({layer_name(self.model, layer)})")
            self._what = "done"
        except _Stopped:
            self._what = "stopped"
        except Exception as err:        # shown in the app; the app itself keeps working
            self.error, self._what = f"{type(err).__name__}: {err}", "failed"
        finally:
            self.bar.close()
            if lock is not None:
                lock.release()

    def _lock(self):
        """The cache folder's lock, or ``None`` (then this scan writes no cache)."""
        if self.folder is None:
            return None
        try:
            os.makedirs(self.folder, exist_ok=True)
            lock = FolderLock(self.folder, "minicnn explore scan").acquire()
        except FolderBusy as err:
            self._writes = False
            self._note(f"{str(err).split(';')[0]}: this explorer reads the cache but does "
                       f"not write it")
            return None
        except OSError as err:
            self._writes = False
            self._note(f"cannot cache the scan in {self.folder} ({err.strerror or err}): "
                       f"results are kept in memory until the explorer stops")
            return None
        remove_stale_temporaries(self.folder)
        return lock

    def _note(self, text):
        """Say ``text`` (one line) in the terminal and keep it in ``notes``."""
        self.notes.append(text)
        if self.show_bar:
            self.bar.write(f"minicnn explore: {text}", file=sys.stderr)

    def _step(self, what, total):
        self._what, self._done, self._total = what, 0, total
        self.bar.reset(total=total)
        self.bar.set_description(f"explore: {what}")

    def _count(self, n):
        if self._stopping:
            raise _Stopped
        self._done += n
        self.bar.update(n)

    def _cached(self, path, read):
        """``read(npz)`` of the cache file at ``path``, or ``None`` when there is none or
        it cannot be read (said in one line: it is then scanned again)."""
        if path is None or not os.path.exists(path):
            return None
        try:
            with np.load(path) as f:
                return read(f)
        except UNREADABLE as err:
            reason = (str(err).splitlines() or [""])[0] or type(err).__name__
            self._note(f"the cache file {path} is unreadable ({reason}): scanning again")
            return None

    def _save(self, path, arrays):
        if path is None or not self._writes:
            return
        try:
            atomic_savez(path, arrays)
        except OSError as err:
            self._writes = False
            self._note(f"{err}: the scan's results are kept in memory until the explorer stops")

    def _misclassified(self):
        images, labels = self.test_data
        path = self._path("misclassified", len(images))
        self._step("test images: which are misclassified", len(images))

        def read(f):
            p = f["predictions"]
            if p.shape != (len(images),) or p.dtype.kind not in "iu":
                raise ValueError(f"predictions of shape {p.shape}, not ({len(images)},)")
            return p
        predictions = self._cached(path, read)
        if predictions is not None:
            self._count(len(images))
        else:
            predictions = []
            for start in range(0, len(images), self.batch_size):
                x = as_model_input(self.model, prepare_images(images[start:start + self.batch_size]))
                predictions.append(as_numpy(viz.class_probabilities(self.model, x)).argmax(axis=1))
                self._count(len(x))
            predictions = np.concatenate(predictions)
            self._save(path, {"predictions": predictions})
        wrong = np.flatnonzero(predictions != np.asarray(labels))
        self.misclassified = [(int(i), int(labels[i]), int(predictions[i])) for i in wrong]

    def _top_patches(self, layer, what):
        images = self.train_images
        path = self._path(f"top{TOP_K}-layer{layer}", len(images))
        self._step(what, len(images))
        found = self._cached(path, lambda f: _read_patches(f, layer, len(images)))
        if found is not None:
            self._count(len(images))
        else:
            seen = [0]

            def prepare(batch):                 # counts the scan's progress as it goes
                if seen[0] < len(images):
                    step = min(len(batch), len(images) - seen[0])
                    seen[0] += step
                    self._count(step)
                return prepare_images(batch)
            found = viz.top_patches(self.model, layer, images, k=TOP_K, project=True,
                                    prepare=prepare, batch_size=self.batch_size)
            self._save(path, {"name": np.array(found.name), "channels": found.channels,
                              "values": found.values, "image_index": found.image_index,
                              "position": found.position, "crops": found.crops,
                              "projections": found.projections})
        self._patches[layer] = found


def lower_priority():
    """Make the calling thread yield to the page's: on Linux a thread is a task with its
    own niceness, so strokes go first; elsewhere nothing happens."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


class _Stopped(Exception):
    """Raised inside the scan's thread by ``Scans.stop``."""


PATCH_ARRAYS = ("channels", "values", "image_index", "position", "crops", "projections")


def _read_patches(f, layer, n_images):
    """A cached ``viz.TopPatches``; ``ValueError`` when its arrays do not fit together."""
    a = {k: f[k] for k in PATCH_ARRAYS}
    index = a["image_index"]
    if len({len(v) for v in a.values()}) != 1 or a["crops"].shape != a["projections"].shape \
            or (index.size and (index.min() < 0 or index.max() >= n_images)):
        raise ValueError("its arrays do not fit together")
    return viz.TopPatches(layer=layer, name=str(f["name"]), **a)


__all__ = ["Scans", "weights_key", "lower_priority", "TOP_K"]
