"""Global average pooling: one number per channel.

``x (N, C, H, W)`` -> ``out (N, C)``, ``out[n, c] = mean over (h, w) of x[n, c]``
(Lin et al.'s "Network in Network"; PyTorch's ``AdaptiveAvgPool2d(1)`` followed
by ``Flatten``). Backward spreads each gradient evenly back over its plane::

    grad_x[n, c, h, w] = grad_out[n, c] / (H * W)

Forward keeps only the input's shape.
"""
from .base import Layer


class GlobalAvgPool2D(Layer):
    """``GlobalAvgPool2D()``, as ``torch.nn.AdaptiveAvgPool2d(1)`` and ``Flatten()``.

    Shapes: ``x (N, C, H, W)`` -> ``y (N, C)``.
    Forward: ``y[n, c] = mean of x[n, c]``.
    Backward: ``dx[n, c, h, w] = g[n, c] / (H * W)``.
    Kept for backward: ``x``'s shape.
    """

    def forward(self, x):
        self.check_input(x, 4, "(N, C, H, W)")
        self.x_shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, grad_out):
        self.check_grad(grad_out)
        n, c, h, w = self.x_shape
        grad = grad_out / grad_out.dtype.type(h * w)
        return grad[:, :, None, None].repeat(h, axis=2).repeat(w, axis=3)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            self.refuse_shape(input_shape)
        return (input_shape[0],)
