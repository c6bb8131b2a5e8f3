"""Softmax followed by cross-entropy, fused.

For logits ``z (N, K)`` and integer labels ``y (N,)``::

    log p[n, k] = z[n, k] - logsumexp(z[n])         (log-sum-exp: no overflow, no log(0))
    loss        = -mean_n log p[n, y[n]]
    dL/dz       = (softmax(z) - onehot(y)) / N
"""
from ..backend import get_array_module
from .base import check_float


class SoftmaxCrossEntropy:
    """``loss = SoftmaxCrossEntropy(); L = loss.forward(logits, labels); dz = loss.backward()``."""

    def forward(self, logits, labels):
        xp = get_array_module(logits)
        self._check(logits, labels, xp)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_sum                                   # (N, K)
        self.p = xp.exp(log_p)
        self.labels = labels
        n = logits.shape[0]
        return -log_p[xp.arange(n), labels].mean()

    def backward(self):
        xp = get_array_module(self.p)
        n = self.p.shape[0]
        grad = self.p.copy()
        grad[xp.arange(n), self.labels] -= 1
        return grad / n

    __call__ = forward

    @staticmethod
    def _check(logits, labels, xp):
        if getattr(logits, "ndim", None) != 2:
            raise ValueError(f"SoftmaxCrossEntropy expects logits of shape (N, K), "
                             f"got {getattr(logits, 'shape', type(logits).__name__)}")
        check_float(logits, "SoftmaxCrossEntropy", "logits", "use logits.astype('float32')")
        n, k = logits.shape
        if getattr(labels, "shape", None) != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"SoftmaxCrossEntropy expects integer labels of shape ({n},), got "
                             f"{getattr(labels, 'dtype', type(labels).__name__)} "
                             f"{getattr(labels, 'shape', '')}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(f"SoftmaxCrossEntropy labels must be in [0, {k}), "
                             f"got values from {int(labels.min())} to {int(labels.max())}")
        if not bool(xp.isfinite(logits).all()):
            raise FloatingPointError("SoftmaxCrossEntropy got NaN or infinite logits "
                                     "(the training has diverged: lower the learning rate)")
