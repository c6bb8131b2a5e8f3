"""The ``Layer`` base class: what every layer has besides forward and backward.

A layer keeps what its backward pass needs (its "cache") on itself, so the
caller only ever writes ``y = layer.forward(x)`` and
``grad_x = layer.backward(grad_y)``. Shapes in docstrings put the batch first.
"""
import numpy as np

from ..backend import check_device, device_of, to_device

LAYER_TYPES = {}  # class name -> class, to rebuild models from saved files (register_layer)


def register_layer(cls):
    """Let ``load_model`` rebuild layers of class ``cls`` by its name; returns ``cls``.

    Call it once per class, ``minicnn.register_layer(MyLayer)``, or put
    ``@minicnn.register_layer`` above the class. The built-in layers are
    registered by ``minicnn.layers``; a plain subclass of ``Layer`` is not
    registered, so a test class or a user's class can never replace a
    built-in layer by having the same name: a name taken by another class is
    a ``ValueError``. Defining the same class again (same module and
    qualified name, as when a notebook cell runs twice) replaces it.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer expects a Layer subclass, got {cls!r}")
    name, old = cls.__name__, LAYER_TYPES.get(cls.__name__)
    if old is not None and old is not cls and _full_name(old) != _full_name(cls):
        raise ValueError(f"register_layer: the layer name {name!r} is already taken by "
                         f"{_full_name(old)}; rename {_full_name(cls)}")
    LAYER_TYPES[name] = cls
    return cls


def _full_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def check_distinct_layers(container):
    """Refuse a layer object that sits in two places of ``container`` (``ValueError``):
    a layer keeps what its backward needs from its own last forward, so a second place
    would overwrite what the first one's backward reads, and its gradients would be wrong."""
    seen = {}
    for name, layer in _named_layers(container):
        if id(layer) in seen:
            kind = type(layer).__name__
            raise ValueError(f"{type(container).__name__}: layer {name} is the {kind} object of "
                             f"layer {seen[id(layer)]} again: a layer keeps what its backward "
                             f"needs from its own last forward, so each place needs its own "
                             f"layer (another {kind}(...)); to share weights, share the "
                             f"Parameter objects")
        seen[id(layer)] = name


def _named_layers(layer, prefix=""):
    """``(index path, layer)`` of every layer below ``layer``: ``"3"``, ``"1.0"``, ..."""
    for i, child in enumerate(layer.children()):
        yield f"{prefix}{i}", child
        yield from _named_layers(child, f"{prefix}{i}.")


class Layer:
    """Base class. Subclasses write ``forward``, ``backward`` and, if they
    have weights, register them as ``Parameter`` attributes in ``param_names``.

    A layer of your own, as the built-in ones are written::

        @minicnn.register_layer          # only if load_model must rebuild it
        class Scale(minicnn.Layer):
            def forward(self, x):
                self.check_input(x)      # float32/float64, a batch: one clear error
                return 2 * x
            def backward(self, grad_out):
                self.check_grad(grad_out)   # forward ran, the output's shape
                return 2 * grad_out
    """

    param_names = ()      # attribute names of the Parameters, in state_dict order
    buffer_names = ()     # arrays saved in state_dict but not trained (BatchNorm's statistics)
    cache_names = ()      # what forward keeps for backward (``release`` drops it)

    def __init__(self):
        self.training = True

    # -- the two methods every layer writes ------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def release(self):
        """Drop what the last forward kept for backward (``cache_names``), here and in
        every sub-layer. A training step calls it right after each layer's backward
        (``Sequential.backward(..., release=True)``), as PyTorch frees its saved tensors:
        the step's peak memory then no longer holds every layer's cache at once. A
        backward after it is refused until the next forward."""
        for layer in self.modules():
            for name in layer.cache_names:
                setattr(layer, name, None)
            layer.forward_input_shape = None

    # -- structure -------------------------------------------------------------
    def children(self):
        """Direct sub-layers (containers override this)."""
        return []

    def modules(self):
        """This layer and every layer inside it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix=""):
        """``(name, Parameter)`` pairs with PyTorch's names (``"weight"``, ``"0.bias"``):
        this layer's, then its children's, named by their index (as ``buffer_slots``)."""
        for name in self.param_names:
            param = getattr(self, name)
            if param is not None:
                yield prefix + name, param
        for i, child in enumerate(self.children()):
            yield from child.named_parameters(f"{prefix}{i}.")

    def parameters(self):
        """Every Parameter once (one shared by two layers too: an optimizer steps it once,
        as ``torch.nn.Module.parameters``); ``named_parameters`` names each place."""
        unique = {id(p): p for _, p in self.named_parameters()}
        return list(unique.values())

    def named_buffers(self, prefix=""):
        """``(name, array)`` pairs of the state that is saved but not trained
        (BatchNorm's running statistics), named like the parameters."""
        for name, layer, attr in self.buffer_slots(prefix):
            yield name, getattr(layer, attr)

    def buffer_slots(self, prefix=""):
        """``(name, layer, attribute)`` of every buffer here and in the sub-layers
        (containers name their children by index, as PyTorch does)."""
        for attr in self.buffer_names:
            yield prefix + attr, self, attr
        for i, child in enumerate(self.children()):
            yield from child.buffer_slots(f"{prefix}{i}.")

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    @property
    def device(self):
        """``"cpu"`` or ``"gpu"``: where the parameters are, read from them each time
        (so moving one layer with ``.to()`` is seen at once); ``None`` for a layer
        without parameters, which runs wherever its input is."""
        where = {}
        for name, p in self.named_parameters():
            where.setdefault(device_of(p.value), name)
        if len(where) > 1:
            raise ValueError(f"{self.label()} has parameters on two devices ("
                             + ", ".join(f"{n!r} on {d!r}" for d, n in sorted(where.items()))
                             + "): move the whole model with .to('cpu') or .to('gpu')")
        return next(iter(where), None)

    def to(self, device):
        """Move every parameter to ``"cpu"`` or ``"gpu"``; returns ``self``."""
        check_device(device)
        for p in self.parameters():
            p.to(device)
        for m in self.modules():
            for name in m.buffer_names:
                setattr(m, name, to_device(getattr(m, name), device))
        return self

    def astype(self, dtype):
        """Cast every parameter (``"float64"`` for gradient checks)."""
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"astype takes float32 or float64, got {np.dtype(dtype)}")
        for p in self.parameters():
            p.astype(np.dtype(dtype))
        for m in self.modules():
            for name in m.buffer_names:
                value = getattr(m, name)
                if value.dtype.kind == "f":        # counters stay integers
                    setattr(m, name, value.astype(np.dtype(dtype)))
        return self

    def freeze(self):
        """Stop training this layer's parameters (transfer learning)."""
        for p in self.parameters():
            p.requires_grad = False
        return self

    def unfreeze(self):
        for p in self.parameters():
            p.requires_grad = True
        return self

    # -- shapes, cost and saving -------------------------------------------------
    def output_shape(self, input_shape):
        """Per-example output shape for a per-example ``input_shape``."""
        return tuple(input_shape)

    def refuse_shape(self, input_shape, what="(C, H, W)"):
        """Raise the ``ValueError`` for a per-example ``input_shape`` this layer cannot
        take (``what`` is the shape it takes): ``output_shape`` checks first, so that a
        summary never shows shapes the layer's forward would refuse."""
        raise ValueError(f"{self!r} takes examples of shape {what}, got {tuple(input_shape)}")

    def macs(self, input_shape):
        """Multiply-accumulates for one example of ``input_shape``."""
        return 0

    def config(self):
        """Constructor arguments, enough to rebuild the layer (JSON-friendly)."""
        return {}

    def label(self):
        """A one-line name for messages: the repr, or the class name for containers."""
        text = repr(self)
        return text if "\n" not in text else type(self).__name__

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # -- checks: one place for what forward and backward accept ---------------------
    def check_input(self, x, ndim=None, expected="(N, ...)"):
        """Raise a one-line ``ValueError`` naming this layer unless ``x`` is a
        float32 or float64 array (``check_float``) with ``ndim`` axes (``None``:
        any number, the batch axis first) and at least one example.

        The array must be on the layer's device (``check_device``).
        Every layer's ``forward`` starts with it. It remembers ``x.shape`` as
        ``forward_input_shape``: that is how ``check_grad`` knows forward ran.
        """
        shape = getattr(x, "shape", None)
        if shape is None or not hasattr(x, "dtype"):
            raise ValueError(f"{self.label()} expects a NumPy or CuPy array of shape {expected}, "
                             f"got {type(x).__name__}")
        wrong_ndim = len(shape) == 0 if ndim is None else len(shape) != ndim
        if wrong_ndim:
            raise ValueError(f"{self.label()} expects input of shape {expected}, "
                             f"got {tuple(shape)}")
        check_float(x, self, "input", CONVERT_IMAGES)
        self.check_device(x)
        if shape[0] == 0:
            raise ValueError(f"{self.label()} got an empty batch {tuple(shape)}: "
                             f"pass at least one example")
        self.forward_input_shape = tuple(shape)

    def check_grad(self, grad_out, expected=None):
        """Raise a one-line ``ValueError`` naming this layer unless forward has run
        and ``grad_out`` is a float array of the output's shape: ``expected``, or
        else ``(N,) + output_shape(...)`` of the input forward was given.

        Every layer's ``backward`` starts with it.
        """
        seen = getattr(self, "forward_input_shape", None)
        if seen is None:
            raise ValueError(f"{self.label()}: backward called before forward, or after "
                             f"release() (backward uses what forward kept: run forward on "
                             f"the batch first)")
        if expected is None:
            expected = (seen[0],) + tuple(self.output_shape(seen[1:]))
        shape = getattr(grad_out, "shape", None)
        if shape is None or tuple(shape) != tuple(expected):
            got = type(grad_out).__name__ if shape is None else tuple(shape)
            raise ValueError(f"{self.label()}: backward expects a gradient of the output's shape "
                             f"{tuple(expected)}, got {got}")
        check_float(grad_out, self, "gradient", "pass it in the output's dtype")
        self.check_device(grad_out, "gradient")

    def check_device(self, x, what="input"):
        """Raise a one-line ``ValueError`` naming this layer and both devices unless the
        array ``x`` is where the parameters are (a layer without parameters runs wherever
        its input is). ``check_input`` and ``check_grad`` call it; so do the explanation
        functions (``minicnn.viz``) for a whole model. Cheap: a type test per parameter."""
        on_cpu = isinstance(x, np.ndarray)
        for name in self.param_names:
            param = getattr(self, name)
            if param is not None and isinstance(param.value, np.ndarray) != on_cpu:
                self._wrong_device(x, what, device_of(param.value))
        if self.children():                   # a container: every parameter inside
            own = self.device
            if own is not None and own != ("cpu" if on_cpu else "gpu"):
                self._wrong_device(x, what, own)

    def _wrong_device(self, x, what, own):
        given = device_of(x)
        kind = "NumPy" if given == "cpu" else "CuPy"
        raise ValueError(f"{self.label()} has its parameters on {own!r} but got a {kind} "
                         f"({given!r}) {what}: move the {what} with "
                         f"minicnn.backend.to_device(x, {own!r}) or the model with "
                         f".to({given!r})")


FLOAT_DTYPES = (np.dtype("float32"), np.dtype("float64"))
CONVERT_IMAGES = ("convert images with minicnn.data.prepare_images (uint8 -> float32 in [0, 1], "
                  "normalized as in training) or use x.astype('float32')")


def check_float(x, who, what, advice):
    """The one dtype rule: layers and the loss take float32 or float64 only.

    Integers and booleans would make integer arithmetic of activations (uint8
    wraps around at 255); float16 has neither the range nor a Numba kernel.
    Nothing is converted silently: the ``ValueError`` names ``who`` (a layer
    or a name) and ``what`` (``"input"``, ``"logits"``) and gives ``advice``.
    """
    if x.dtype not in FLOAT_DTYPES:
        who = who.label() if isinstance(who, Layer) else who
        raise ValueError(f"{who} got {x.dtype} {what}; minicnn computes in float32 or float64: "
                         f"{advice}")
