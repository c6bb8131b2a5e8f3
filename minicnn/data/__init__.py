"""The data pipeline: IDX files, MNIST / Fashion-MNIST, mini-batches.

Knows nothing about models or layers: it hands out NumPy (or CuPy) arrays.

- ``read_idx`` / ``write_idx``: the IDX file format MNIST is shipped in.
- ``load_mnist`` / ``load_fashion_mnist`` / ``load_dataset``: find, download and
  check the datasets; ``(x_train, y_train), (x_test, y_test)`` as uint8 images
  ``(N, 28, 28)`` and int64 labels (``splits=("test",)``: the test pair only).
  ``find_dataset`` names the folder they come from; ``load_data`` and
  ``find_data`` are the two with every failure as one ``DataError`` (for the CLI).
- ``BatchIterator``: seeded shuffling, float32 ``(B, 1, 28, 28)`` batches,
  normalisation (``MNIST_MEAN``, ``MNIST_STD``) and optional on-the-fly
  augmentation (``Augment``), on the CPU or the GPU; ``prepare_images`` is
  the same conversion for one slice of a dataset.
"""
from .augment import Augment, rotate_images, shift_images
from .batches import MNIST_MEAN, MNIST_STD, BatchIterator, prepare_images
from .datasets import (ChecksumError, DataError, DatasetError, DownloadError, default_cache_dir,
                       find_data, find_dataset, load_data, load_dataset, load_fashion_mnist,
                       load_mnist)
from .idx import IDXFormatError, read_idx, write_idx

__all__ = ["read_idx", "write_idx", "IDXFormatError", "load_mnist", "load_fashion_mnist",
           "load_dataset", "find_dataset", "load_data", "find_data", "default_cache_dir",
           "DataError", "DatasetError", "ChecksumError", "DownloadError", "BatchIterator", "prepare_images", "Augment", "shift_images",
           "rotate_images", "MNIST_MEAN", "MNIST_STD"]
