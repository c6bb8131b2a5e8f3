"""The explorer's slow work, done once per run in a background thread and cached.

Two jobs, in this order: which test images the model gets wrong (for the
"misclassified" picker), then ``viz.top_patches`` (k = 9, with deconvnet
projections) of every layer that has positions, over the training images.
Results are written to ``RUN_DIR/explore/`` under a key made of the weights and
the number of images, so a later start finds them and a retrained model does
not reuse stale ones. The thread works on its own copy of the model: layers
keep what their backward pass needs from the last forward pass, and the app's
passes must not be interleaved with the scan's.
"""
import hashlib
import os
import threading

import numpy as np

from .. import viz
from ..backend import as_numpy
from ..data import prepare_images
from ..serialization import architecture, atomic_savez, build
from ..viz.probe import as_model_input
from .views import spatial_layers

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
    ``progress()`` (``(done, total, what)``, in images) may be asked at any time.

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
        self._done, self._what = 0, "waiting"
        n_test = 0 if test_data is None else len(test_data[0])
        n_train = 0 if train_images is None else len(train_images)
        self.total = n_test + n_train * len(self.layers)
        self.thread = threading.Thread(target=self._run, name="minicnn-explore-scan", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def patches(self, layer):
        return self._patches.get(layer)

    def progress(self):
        return self._done, self.total, self._what

    def _path(self, name, n):
        if self.folder is None:
            return None
        return os.path.join(self.folder, f"{name}-{weights_key(self.model, n)}.npz")

    def _run(self):
        from tqdm import tqdm
        try:    # Linux: a thread is a task with its own niceness; strokes go first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        self.bar = tqdm(total=self.total, unit="img", desc="explore: scanning",
                        disable=not self.show_bar, leave=False)
        try:
            if self.folder is not None:
                os.makedirs(self.folder, exist_ok=True)
            if self.test_data is not None:
                self._misclassified()
            for layer in self.layers:
                self._top_patches(layer)
            self._what = "done"
        except Exception as err:        # shown in the app; the app itself keeps working
            self.error, self._what = f"{type(err).__name__}: {err}", "failed"
        finally:
            self.bar.close()

    def _count(self, n):
        self._done += n
        self.bar.update(n)

    def _misclassified(self):
        images, labels = self.test_data
        path = self._path("misclassified", len(images))
        self._what = "test set"
        if path is not None and os.path.exists(path):
            with np.load(path) as f:
                predictions = f["predictions"]
            self._count(len(images))
        else:
            predictions = []
            for start in range(0, len(images), self.batch_size):
                x = as_model_input(self.model, prepare_images(images[start:start + self.batch_size]))
                predictions.append(as_numpy(viz.class_probabilities(self.model, x)).argmax(axis=1))
                self._count(len(x))
            predictions = np.concatenate(predictions)
            if path is not None:
                atomic_savez(path, {"predictions": predictions})
        wrong = np.flatnonzero(predictions != np.asarray(labels))
        self.misclassified = [(int(i), int(labels[i]), int(predictions[i])) for i in wrong]

    def _top_patches(self, layer):
        images = self.train_images
        path = self._path(f"top{TOP_K}-layer{layer}", len(images))
        self._what = f"top-{TOP_K} patches of layer {layer}"
        if path is not None and os.path.exists(path):
            with np.load(path) as f:
                found = viz.TopPatches(layer=layer, name=str(f["name"]),
                                       **{k: f[k] for k in ("channels", "values", "image_index",
                                                            "position", "crops", "projections")})
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
            if path is not None:
                atomic_savez(path, {"name": np.array(found.name), "channels": found.channels,
                                    "values": found.values, "image_index": found.image_index,
                                    "position": found.position, "crops": found.crops,
                                    "projections": found.projections})
        self._patches[layer] = found


__all__ = ["Scans", "weights_key", "TOP_K"]
