"""The two engines ``bench.py`` times: one training step of a minicnn model and of
the same network in PyTorch, on the CPU or the GPU, each with its own ``sync``.

One training step = forward + softmax cross-entropy + backward + Adam (lr 1e-3),
on a fixed random float32 batch ``x (B, 1, 28, 28)`` with labels ``y (B,)``.
``sync()`` waits for the device (CuPy / CUDA) and is a no-op on the CPU, so a
timing taken as ``sync(); clock(); steps; sync(); clock()`` is honest on both.

Imported by ``bench.py`` after it has set the thread counts (they are read
when NumPy, Numba and PyTorch load).
"""
import numpy as np

from minicnn import models
from minicnn.backend import synchronize, to_device
from minicnn.layers.loss import SoftmaxCrossEntropy
from minicnn.optim import Adam

from twin import torch, torch_model  # noqa: F401 (torch_epoch.py imports torch_model here)


class MinicnnStep:
    """``step()`` trains ``models.<name>()`` one step on ``device`` ("cpu" or "gpu")."""

    def __init__(self, name, batch, device):
        self.device = device
        self.model = getattr(models, name)().to(device)
        rng = np.random.default_rng(0)
        self.x = to_device(rng.random((batch, 1, 28, 28), dtype=np.float32), device)
        self.y = to_device(rng.integers(0, 10, batch), device)
        self.opt = Adam(self.model.parameters(), lr=1e-3)
        # check=False, as training: the label checks read values back to the host (on the
        # GPU a wait every step) and the trainer does them once per data set
        self.loss = SoftmaxCrossEntropy(check=False)

    def step(self):
        self.opt.zero_grad()
        self.loss.forward(self.model.forward(self.x), self.y)
        self.model.backward(self.loss.backward(), input_grad=False, release=True)  # as training
        self.opt.step()

    def sync(self):
        if self.device == "gpu":
            synchronize()


def torch_unavailable_reason(device):
    """Why PyTorch cannot be compared on ``device``, or ``None``."""
    if torch is None:
        return "PyTorch is not installed"
    if device == "gpu" and not torch.cuda.is_available():
        return (f"this PyTorch ({torch.__version__}, CUDA {torch.version.cuda}) "
                f"sees no CUDA device")
    return None


class TorchStep:
    """The same network, weights and recipe in PyTorch eager, on ``device``."""

    def __init__(self, name, batch, device):
        self.cuda = device == "gpu"
        dev = "cuda" if self.cuda else "cpu"
        self.net = torch_model(getattr(models, name)()).to(dev).train()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.rand((batch, 1, 28, 28), generator=gen).to(dev)
        self.y = torch.randint(0, 10, (batch,), generator=gen).to(dev)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def step(self):
        self.opt.zero_grad()
        self.loss_fn(self.net(self.x), self.y).backward()
        self.opt.step()

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()
