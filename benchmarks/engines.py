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

try:
    import torch
except ImportError:
    torch = None


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
        self.model.backward(self.loss.backward(), input_grad=False)   # as training does
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


def torch_model(model):
    """``torch.nn.Sequential`` with the same layers and weights as a minicnn model."""
    nn, layers = torch.nn, []
    for layer in model.layers:
        kind, cfg = type(layer).__name__, layer.config()
        if kind == "Conv2D":
            layers.append(nn.Conv2d(cfg["in_channels"], cfg["out_channels"],
                                    tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                                    tuple(cfg["padding"]), bias=cfg["bias"]))
        elif kind == "Dense":
            layers.append(nn.Linear(cfg["in_features"], cfg["out_features"], bias=cfg["bias"]))
        elif kind == "MaxPool2D":
            layers.append(nn.MaxPool2d(tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                                       tuple(cfg["padding"])))
        elif kind == "AvgPool2D":
            layers.append(nn.AvgPool2d(tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                                       tuple(cfg["padding"])))
        elif kind == "ReLU":
            layers.append(nn.ReLU())
        elif kind == "Flatten":
            layers.append(nn.Flatten())
        elif kind == "Dropout":
            layers.append(nn.Dropout(cfg["p"]))
        elif kind in ("BatchNorm2D", "BatchNorm1D"):
            norm = nn.BatchNorm2d if kind == "BatchNorm2D" else nn.BatchNorm1d
            layers.append(norm(cfg["num_features"], cfg["eps"], cfg["momentum"],
                               affine=cfg["affine"]))
        else:
            raise ValueError(f"no PyTorch counterpart for {kind}")
    net = nn.Sequential(*layers)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in
                         model.state_dict().items()})
    return net


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
