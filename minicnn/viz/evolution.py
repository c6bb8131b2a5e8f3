"""How a layer's features develop during training (Zeiler & Fergus, figure 4).

``FeatureEvolution`` is a training callback: the trainer calls
``callback(epoch, model)`` after each epoch (epochs counted from 1), and at
the chosen epochs it keeps a copy of one conv layer's filters and, if asked,
activation-maximization images of some of its channels. ``figures.plot_evolution``
lines the snapshots up, one row per epoch.
"""
from dataclasses import dataclass, field

import numpy as np

from .maximize import maximize
from .units import conv_filters


@dataclass
class Snapshot:
    """``filters (C_out, C_in, kH, kW)`` at ``epoch``; ``images (n, C, H, W)`` or ``None``."""
    epoch: int
    filters: np.ndarray
    images: np.ndarray = None


@dataclass
class FeatureEvolution:
    """``FeatureEvolution(layer_index, epochs=(1, 2, 5, 10))``, called as ``cb(epoch, model)``.

    ``maximize_channels``: channels of the layer to render by activation
    maximization at each snapshot (``maximize_kwargs`` go to ``maximize``;
    each image costs ``steps`` forward/backward passes of the layer's prefix).
    To show the initial weights, put 0 in ``epochs`` and call ``cb(0, model)``
    before training.
    """
    layer_index: int
    epochs: tuple = (1, 2, 5, 10)
    maximize_channels: tuple = ()
    maximize_kwargs: dict = field(default_factory=dict)
    snapshots: list = field(default_factory=list)

    def __call__(self, epoch, model):
        if epoch not in self.epochs:
            return
        filters = conv_filters(model, self.layer_index)
        images = None
        if self.maximize_channels:
            images = np.stack([maximize(model, c, layer=self.layer_index, **self.maximize_kwargs)
                               .image for c in self.maximize_channels])
        self.snapshots = [s for s in self.snapshots if s.epoch != epoch]
        self.snapshots.append(Snapshot(epoch, filters, images))
        self.snapshots.sort(key=lambda s: s.epoch)
