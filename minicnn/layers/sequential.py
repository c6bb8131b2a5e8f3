"""``Sequential``: layers applied one after another, and the model API.

Forward runs the layers in order; backward runs their backward passes in
reverse, each turning ``dL/d(output)`` into ``dL/d(input)``.
"""

from ..backend import as_numpy, device_of, to_device
from .base import Layer, check_distinct_layers


class Sequential(Layer):
    """``Sequential([layer, ...], input_shape=(C, H, W))``, as ``torch.nn.Sequential``.

    Shapes: what the first layer takes -> what the last gives.
    Forward: ``y = layers[-1].forward(... layers[0].forward(x))``.
    Backward: ``dx = layers[0].backward(... layers[-1].backward(g))``.
    Kept for backward: nothing of its own; each layer keeps what it needs.

    Parameters are named by layer index as in ``torch.nn.Sequential``
    (``"0.weight"``, ``"3.bias"``), so state dicts exchange directly.
    ``input_shape`` (per example) is what ``summary()`` starts from.
    """

    def __init__(self, layers, input_shape=None):
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential item {i} is not a Layer: {layer!r}")
        check_distinct_layers(self)
        self.input_shape = None if input_shape is None else tuple(input_shape)

    def forward(self, x):
        """``x (N, *input_shape)`` -> the last layer's output.

        Other image sizes run as far as the layers allow (a convolutional part
        slides over any size); where a layer refuses one, the error starts with
        the shape the model expects, not only the layer's own complaint.
        """
        expected = self.check_batch(x)      # the shape, the dtype and the device
        shape = tuple(x.shape)
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except ValueError as err:
                if expected is None or shape[1:] == self.input_shape:
                    raise
                raise ValueError(f"{self.label()} expects input of shape {expected} (its "
                                 f"input_shape), got {shape}; layer {i}: {err}") from None
        return x

    def backward(self, grad_out, input_grad=True, release=False):
        """Back through every layer, last to first; returns ``dL/dx``.

        ``input_grad=False`` (training: nobody needs the images' gradient) lets a
        first layer that can skip it (``skips_input_grad``, e.g. ``Conv2D``) compute
        only its weight gradients; the result is then ``None``. ``release=True``
        (training's step) drops each layer's cache as soon as its backward is done
        (``Layer.release``): less memory at the step's peak, no second backward."""
        last = self.layers[-1] if self.layers else None
        if getattr(last, "forward_input_shape", None) is not None:
            last.check_grad(grad_out)     # also for a last layer whose backward does not check
        for k, layer in reversed(list(enumerate(self.layers))):
            if k == 0 and not input_grad and getattr(layer, "skips_input_grad", False):
                grad_out = layer.backward(grad_out, input_grad=False)
            else:
                grad_out = layer.backward(grad_out)
            if release:
                layer.release()
        return grad_out

    def check_batch(self, x):
        """``check_input`` with the model's ``input_shape`` (what ``forward`` checks first,
        and the explanation functions before they look up a target); returns it as text
        (or None)."""
        if self.input_shape is None:
            return self.check_input(x)
        expected = "(N, " + ", ".join(map(str, self.input_shape)) + ")"
        hint = ""
        if getattr(x, "ndim", None) == len(self.input_shape):       # (N, H, W) images
            hint = " (add the channel axis: x[:, None], as minicnn.data.prepare_images does)"
        self.check_input(x, len(self.input_shape) + 1, expected + hint)
        return expected

    def children(self):
        return self.layers

    def __getitem__(self, index):
        """``model[i]`` is a layer; ``model[:k]`` a Sequential sharing those layers."""
        if isinstance(index, slice):
            part = Sequential(self.layers[index])
            part.training = self.training
            if index.start in (None, 0):
                part.input_shape = self.input_shape
            return part
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    # -- shapes ------------------------------------------------------------------
    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def macs(self, input_shape):
        total = 0
        for layer in self.layers:
            total += layer.macs(input_shape)
            input_shape = layer.output_shape(input_shape)
        return total

    def summary(self, input_shape=None):
        """A table of each layer's output shape, weights, biases and MACs (printable)."""
        from .summary import summarize
        return summarize(self, input_shape or self.input_shape)

    # -- weights -----------------------------------------------------------------
    def state_dict(self):
        """``{name: NumPy array}``, a copy, in PyTorch's names and layouts: the
        parameters, then the buffers (BatchNorm's running statistics)."""
        state = {name: as_numpy(p.value).copy() for name, p in self.named_parameters()}
        state.update({name: as_numpy(b).copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state):
        """Copy arrays (NumPy, CuPy or CPU torch tensors) into the parameters and buffers.

        Keys and shapes must match exactly; the first mismatch is named. Each
        array goes to the device of the parameter it replaces.
        """
        own = {name: (param.value, param) for name, param in self.named_parameters()}
        own.update({name: (getattr(layer, attr), (layer, attr))
                    for name, layer, attr in self.buffer_slots()})
        arrays = {}
        for name, (current, _) in own.items():    # in layer order: the first mismatch is named
            if name not in state:
                raise KeyError(f"load_state_dict: key {name!r} (shape "
                               f"{tuple(current.shape)}) is missing from the given state")
            arrays[name] = _host_array(state[name])
            if arrays[name].shape != tuple(current.shape):
                raise ValueError(f"load_state_dict: shape mismatch for {name!r}: the state has "
                                 f"{arrays[name].shape}, the model expects {tuple(current.shape)}")
        unexpected = [name for name in state if name not in own]
        if unexpected:
            raise KeyError(f"load_state_dict: unexpected key {unexpected[0]!r}; "
                           f"this model has {list(own)}")
        for name, value in arrays.items():
            current, target = own[name]
            value = to_device(value.astype(current.dtype), device_of(current))
            if isinstance(target, tuple):
                setattr(*target, value)
            else:
                target.value = value
        return self

    def config(self):
        return dict(input_shape=None if self.input_shape is None else list(self.input_shape))

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


def _host_array(value):
    """A NumPy array from NumPy, CuPy or a (CPU) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return as_numpy(value)
