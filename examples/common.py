"""Shared by the example scripts: a trained model and normalized MNIST images.

``trained_model`` loads a checkpoint when given one; otherwise it trains the
model with minicnn's own Trainer once and caches the run under
``~/.cache/minicnn/example-runs`` so the next script reuses it.
"""
import os

from minicnn import load_model
from minicnn.data import BatchIterator, default_cache_dir, load_dataset
from minicnn.train import MODEL, TrainConfig, Trainer


def trained_model(name="lenet", checkpoint=None, data_dir=None, epochs=1, seed=0,
                  dataset="mnist"):
    """An eval-mode CPU model: from ``checkpoint`` (a ``model.npz`` written by
    ``minicnn.save_model`` or a run folder), or trained for ``epochs`` and cached."""
    if checkpoint is not None:
        path = os.path.join(checkpoint, MODEL) if os.path.isdir(checkpoint) else checkpoint
        return load_model(path).eval()
    run_dir = os.path.join(default_cache_dir(), "example-runs",
                           f"{dataset}-{name}-{epochs}ep-seed{seed}")
    if not os.path.exists(os.path.join(run_dir, MODEL)):
        print(f"no checkpoint given: training {name} on {dataset} for {epochs} epoch(s) "
              f"into {run_dir} (cached for later runs)")
        config = TrainConfig(model=name, dataset=dataset, epochs=epochs, seed=seed)
        train, test = load_dataset(dataset, data_dir)
        Trainer(config, train, test, run_dir).fit()
    return load_model(os.path.join(run_dir, MODEL)).eval()


def _normalized(split, n, data_dir, dataset):
    train, test = load_dataset(dataset, data_dir)
    x, y = train if split == "train" else test
    x, y = x[:n], y[:n]
    # The same scaling and normalization as training, in one batch, in order.
    return next(iter(BatchIterator(x, y, batch_size=len(y), shuffle=False)))


def test_images(n=None, data_dir=None, dataset="mnist"):
    """Normalized test images float32 ``(n, 1, 28, 28)`` and labels ``(n,)``."""
    return _normalized("test", n, data_dir, dataset)


def train_images(n=None, data_dir=None, dataset="mnist"):
    """Normalized training images float32 ``(n, 1, 28, 28)`` and labels ``(n,)``."""
    return _normalized("train", n, data_dir, dataset)
