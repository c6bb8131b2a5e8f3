"""Softmax followed by cross-entropy, fused.

For logits ``z (N, K)`` and integer labels ``y (N,)``::

    log p[n, k] = z[n, k] - logsumexp(z[n])         (log-sum-exp: no overflow, no log(0))
    loss        = -mean_n log p[n, y[n]]
    dL/dz       = (softmax(z) - onehot(y)) / N

With ``label_smoothing = e`` (Szegedy et al. 2016; PyTorch's definition) the
target is ``q = (1 - e) onehot(y) + e / K`` instead of ``onehot(y)``::

    loss  = -mean_n sum_k q[n, k] log p[n, k]         dL/dz = (softmax(z) - q) / N
"""
from ..backend import device_of, get_array_module
from .base import check_float


class SoftmaxCrossEntropy:
    """``SoftmaxCrossEntropy(label_smoothing=0.0, check=True)``, as
    ``torch.nn.CrossEntropyLoss``: ``L = loss.forward(logits, labels)``, ``dz = loss.backward()``.

    Shapes: ``logits (N, K)``, ``labels (N,)`` integers in ``[0, K)`` -> ``L``, a scalar.
    Forward: ``L = mean_n (logsumexp(z_n) - sum_k t_nk z_nk)``, ``t`` the (smoothed) one-hot
    targets.
    Backward: ``dz = (softmax(z) - t) / N``.
    Kept for backward: the probabilities and the targets.

    ``check`` (default True): also check the *values* on each call, labels in
    ``[0, K)`` and finite logits. That reads them back to the host, a wait for the
    GPU on every batch; the trainer passes ``check=False`` because it checks the
    labels once per data set and the loss every few steps. Shapes and dtypes are
    always checked (that costs nothing).
    """

    def __init__(self, check=True, label_smoothing=0.0):
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"SoftmaxCrossEntropy label_smoothing must be in [0, 1], "
                             f"got {label_smoothing!r}")
        self.check, self.label_smoothing = check, float(label_smoothing)

    def forward(self, logits, labels):
        xp = get_array_module(logits)
        self._check(logits, labels, xp, values=self.check)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_sum                                   # (N, K)
        self.p = xp.exp(log_p)
        self.labels = labels
        n, k = logits.shape
        nll = -log_p[xp.arange(n), labels].mean()
        if not self.label_smoothing:
            return nll
        e = self.label_smoothing
        return (1 - e) * nll + e * (-log_p.mean(axis=1)).mean()

    def backward(self):
        xp = get_array_module(self.p)
        n = self.p.shape[0]
        e, k = self.label_smoothing, self.p.shape[1]
        grad = self.p - e / k if e else self.p.copy()
        grad[xp.arange(n), self.labels] -= 1 - e
        return grad / n

    __call__ = forward

    @staticmethod
    def _check(logits, labels, xp, values=True):
        if getattr(logits, "ndim", None) != 2:
            raise ValueError(f"SoftmaxCrossEntropy expects logits of shape (N, K), "
                             f"got {getattr(logits, 'shape', type(logits).__name__)}")
        check_float(logits, "SoftmaxCrossEntropy", "logits", "use logits.astype('float32')")
        n, k = logits.shape
        if getattr(labels, "shape", None) != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"SoftmaxCrossEntropy expects integer labels of shape ({n},), got "
                             f"{getattr(labels, 'dtype', type(labels).__name__)} "
                             f"{getattr(labels, 'shape', '')}")
        if device_of(labels) != device_of(logits):
            raise ValueError(f"SoftmaxCrossEntropy got logits on {device_of(logits)!r} but "
                             f"labels on {device_of(labels)!r}: move the labels with "
                             f"minicnn.backend.to_device(y, {device_of(logits)!r})")
        if not values:
            return
        if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(f"SoftmaxCrossEntropy labels must be in [0, {k}), "
                             f"got values from {int(labels.min())} to {int(labels.max())}")
        if not bool(xp.isfinite(logits).all()):
            raise FloatingPointError("SoftmaxCrossEntropy got NaN or infinite logits "
                                     "(the training has diverged: lower the learning rate)")
