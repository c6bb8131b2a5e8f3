"""A strict stand-in for CuPy, for the tests (never shipped): the GPU code path on the CPU.

``ndarray`` holds a NumPy array but is not one, and it behaves as CuPy's does where
a GPU program goes wrong on a real device:

- ``numpy.asarray(a)`` raises ``TypeError`` (``__array__``, as CuPy: "Implicit
  conversion to a NumPy array is not allowed"), so ``np.testing.assert_allclose``
  on a device array, or a NumPy function without a CuPy twin, fails as on a GPU;
- a NumPy array (or a list) as an operand of arithmetic or of a ufunc raises
  ``TypeError: Unsupported type <class 'numpy.ndarray'>``;
- ``cupy.NAME`` exists only for names real CuPy has (``ROUTINES``, ``UFUNCS``,
  ``CONSTANTS``); another raises ``AttributeError``; methods likewise (``METHODS``);
- every host round trip (``.get()``, ``asnumpy``, ``float()``/``int()``/``bool()``,
  ``.item()``, ``.tolist()``) and every host-to-device copy (``asarray`` of host
  data, host data assigned into a device array) is counted by its call site
  (``file:line`` of the first frame outside this file, ``minicnn/backend.py`` and
  NumPy): ``COUNTS.host`` and ``COUNTS.to_device``, ``counting()`` resets them.

``__cuda_array_interface__`` shares the memory (``shared_numpy`` is its
consumer: the numba.cuda simulator's kernels run on that view, ``conftest.py``).
``install(patch)`` makes ``minicnn.backend`` (and ``import cupy``) see this module.
"""
import builtins
import collections
import contextlib
import ctypes
import os
import sys
import types
from numbers import Number

import numpy as np

_HERE = os.path.abspath(__file__)
_BACKEND = os.sep + os.path.join("minicnn", "backend.py")
_NUMPY = os.path.dirname(np.__file__)
__version__ = "13.99.0 (tests/fake_cupy.py)"


class _Counts:
    def __init__(self):
        self.host, self.to_device = collections.Counter(), collections.Counter()

    def reset(self):
        self.host.clear()
        self.to_device.clear()


COUNTS = _Counts()
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _site():
    """``path:line`` of the first caller outside this file, backend.py and NumPy."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename in (_HERE, __file__)
                                 or frame.f_code.co_filename.endswith(_BACKEND)
                                 or frame.f_code.co_filename.startswith(_NUMPY)):
        frame = frame.f_back
    if frame is None:
        return "?"
    path = os.path.abspath(frame.f_code.co_filename)
    if path.startswith(_REPOSITORY + os.sep):              # minicnn/..., tests/..., kernels/...
        path = os.path.relpath(path, _REPOSITORY)
    return f"{path}:{frame.f_lineno}"


@contextlib.contextmanager
def counting():
    """``with counting() as counts:`` zeroed ``COUNTS`` for the block."""
    COUNTS.reset()
    yield COUNTS


def _host_trip():
    COUNTS.host[_site()] += 1


def _copy_to_device():
    COUNTS.to_device[_site()] += 1


def _refuse(value):
    raise TypeError(f"Unsupported type {type(value)}")


def _unwrap(value, strict=True):
    """The NumPy array inside a device array; NumPy arrays refused where CuPy refuses them."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        if strict:
            _refuse(value)
        _copy_to_device()
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, strict) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, strict) for k, v in value.items()}
    return value


def _operand(value):
    """A ufunc operand: a device array or a scalar, as CuPy's ufuncs take."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, (Number, np.generic)) and not isinstance(value, np.ndarray):
        return value
    _refuse(value)


def _wrap(value):
    if isinstance(value, np.ndarray):
        return ndarray._of(value)
    if isinstance(value, np.generic):                  # CuPy gives 0-d arrays, not scalars
        return ndarray._of(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


UFUNCS = frozenset("""
abs add subtract multiply divide true_divide floor_divide negative positive power float_power
remainder mod fmod absolute fabs sign exp exp2 expm1 log log2 log10 log1p logaddexp logaddexp2
sqrt square cbrt reciprocal sin cos tan arcsin arccos arctan arctan2 hypot sinh cosh tanh
arcsinh arccosh arctanh deg2rad rad2deg degrees radians maximum minimum fmax fmin floor ceil
trunc rint isnan isinf isfinite signbit copysign nextafter ldexp frexp modf logical_and
logical_or logical_not logical_xor greater greater_equal less less_equal equal not_equal
bitwise_and bitwise_or bitwise_xor invert left_shift right_shift heaviside conjugate conj
matmul gcd lcm spacing
""".split())
ROUTINES = frozenset("""
array asarray asanyarray ascontiguousarray asfortranarray copy empty empty_like zeros
zeros_like ones ones_like full full_like eye identity arange linspace logspace meshgrid diag
diagflat tri tril triu copyto reshape ravel moveaxis rollaxis swapaxes transpose atleast_1d
atleast_2d atleast_3d broadcast_arrays broadcast_to expand_dims squeeze column_stack
concatenate dstack hstack stack vstack require array_split dsplit hsplit split vsplit repeat
tile unique flip fliplr flipud roll rot90 pad clip around round nan_to_num real imag sum prod
mean std var max min amax amin argmax argmin all any cumsum cumprod nansum nanprod nanmean
nanstd nanvar nanmax nanmin nanargmax nanargmin median nanmedian percentile quantile average
ptp count_nonzero histogram bincount digitize diff dot vdot inner outer tensordot einsum kron
trace take take_along_axis put choose where nonzero argwhere flatnonzero compress diagonal
select extract place indices ix_ ravel_multi_index unravel_index searchsorted sort argsort
lexsort partition argpartition isin array_equal allclose isclose result_type can_cast
promote_types dtype finfo iinfo issubdtype shape size ndim isscalar asnumpy
get_array_module fill_diagonal cov corrcoef convolve interp trapz msort
""".split())
CONSTANTS = dict(inf=np.inf, nan=np.nan, pi=np.pi, e=np.e, newaxis=None,
                 **{name: getattr(np, name) for name in """
float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool_ complex64
complex128 intp uintp floating integer number generic signedinteger unsignedinteger inexact
""".split()})
_FROM_HOST = frozenset("array asarray asanyarray ascontiguousarray asfortranarray".split())
METHODS = frozenset("""
all any argmax argmin argsort astype clip copy cumsum cumprod diagonal dot fill flatten max
mean min nonzero prod ravel repeat reshape round sort squeeze std sum swapaxes take trace
transpose var view conj conjugate partition argpartition put choose compress
""".split())


_module = sys.modules[__name__]


class ndarray:
    """A device array: NumPy's data, CuPy's manners (see the module docstring)."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float):
        self._a = np.empty(shape, dtype)

    @classmethod
    def _of(cls, array):
        obj = object.__new__(cls)
        obj._a = array
        return obj

    # -- what CuPy refuses ---------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc.__name__ not in UFUNCS or method not in ("__call__", "reduce", "accumulate",
                                                          "at"):
            return NotImplemented
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(o._a if isinstance(o, ndarray) else _refuse(o)
                                  for o in (out if isinstance(out, tuple) else (out,)))
        args = [_operand(v) for v in inputs] if method == "__call__" else \
            [_operand(inputs[0])] + [_unwrap(v) for v in inputs[1:]]
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        name, where = func.__name__, func.__module__
        if where == "numpy.linalg" and name in LINALG:
            return getattr(linalg, name)(*args, **kwargs)
        if where != "numpy" or name not in ROUTINES or name in _FROM_HOST:
            return NotImplemented           # NumPy then raises "no implementation found"
        return getattr(_module, name)(*args, **kwargs)

    # -- host round trips, counted ---------------------------------------------------
    def get(self, stream=None, order="C", out=None):
        _host_trip()
        return np.array(self._a, order=order)

    def item(self, *index):
        _host_trip()
        return self._a.item(*index)

    def tolist(self):
        _host_trip()
        return self._a.tolist()

    def __float__(self):
        _host_trip()
        return float(self._a)

    def __int__(self):
        _host_trip()
        return int(self._a)

    def __index__(self):
        if self._a.dtype.kind not in "iu":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        _host_trip()
        return int(self._a)

    def __bool__(self):
        _host_trip()
        return bool(self._a)

    def __complex__(self):
        _host_trip()
        return complex(self._a)

    def __format__(self, spec):
        _host_trip()
        return format(self._a if self._a.ndim else self._a[()], spec)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def set(self, host, stream=None):
        _copy_to_device()
        self._a[...] = host

    # -- shape and memory --------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._of(self._a.T))
    real = property(lambda self: ndarray._of(self._a.real))
    imag = property(lambda self: ndarray._of(self._a.imag))
    base = property(lambda self: None if self._a.base is None else ndarray._of(self._a.base))

    @property
    def __cuda_array_interface__(self):
        a = self._a
        return dict(shape=a.shape, typestr=a.dtype.str, version=3,
                    data=(a.__array_interface__["data"][0], False),
                    strides=None if a.flags.c_contiguous else a.strides)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (ndarray._of(np.asarray(self._a[i])) for i in range(len(self._a)))

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index, strict=False)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index, strict=False)] = _unwrap(value, strict=False)

    def __getattr__(self, name):
        if name not in METHODS:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} "
                                 f"(tests/fake_cupy.py lists CuPy's)")
        method = getattr(self._a, name)
        return lambda *args, **kwargs: _wrap(method(*_unwrap(args), **_unwrap(kwargs)))

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    def __reduce__(self):
        return (ndarray._of, (self._a,))

    __hash__ = None


def _unary(ufunc):
    return lambda self: ufunc(self)


def _binary(ufunc, reflected=False, inplace=False):
    def op(self, other):
        if inplace:
            return ufunc(self, other, out=self)
        return ufunc(other, self) if reflected else ufunc(self, other)
    return op


for _name, _ufunc in dict(add=np.add, sub=np.subtract, mul=np.multiply, truediv=np.true_divide,
                          floordiv=np.floor_divide, mod=np.remainder, pow=np.power,
                          matmul=np.matmul, and_=np.bitwise_and, or_=np.bitwise_or,
                          xor=np.bitwise_xor, lshift=np.left_shift,
                          rshift=np.right_shift).items():
    _name = _name.rstrip("_")
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
    setattr(ndarray, f"__r{_name}__", _binary(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(_ufunc, inplace=True))
for _name, _ufunc in dict(lt=np.less, le=np.less_equal, gt=np.greater, ge=np.greater_equal,
                          eq=np.equal, ne=np.not_equal).items():
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
for _name, _ufunc in dict(neg=np.negative, pos=np.positive, abs=np.absolute,
                          invert=np.invert).items():
    setattr(ndarray, f"__{_name}__", _unary(_ufunc))


# -- the module's routines ----------------------------------------------------------------

def _routine(name):
    function = getattr(np, name)

    def routine(*args, **kwargs):
        return _wrap(function(*_unwrap(args), **_unwrap(kwargs)))
    routine.__name__ = name
    return routine


def _from_host(name):
    function = getattr(np, name)

    def convert(a, *args, **kwargs):
        if isinstance(a, ndarray):
            a = a._a
        else:
            _copy_to_device()
        return ndarray._of(function(a, *args, **kwargs))
    convert.__name__ = name
    return convert


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        _host_trip()
        return np.array(a._a, order=order)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if builtins.any(isinstance(a, ndarray) for a in args) else np


def _numpy_only(name):
    return getattr(np, name)


for _name in ROUTINES - {"asnumpy", "get_array_module"}:
    if not hasattr(np, _name):
        continue
    if _name in _FROM_HOST:
        setattr(_module, _name, _from_host(_name))
    elif _name in ("dtype", "finfo", "iinfo", "result_type", "can_cast", "promote_types",
                   "issubdtype", "isscalar"):
        setattr(_module, _name, _numpy_only(_name))
    else:
        setattr(_module, _name, _routine(_name))
for _name in UFUNCS:
    if hasattr(np, _name):
        setattr(_module, _name, _routine(_name))
for _name, _value in CONSTANTS.items():
    setattr(_module, _name, _value)
LINALG = ("norm",)
linalg = types.SimpleNamespace(norm=lambda *args, **kwargs: _wrap(
    np.linalg.norm(*_unwrap(args), **_unwrap(kwargs))))


# -- cupy.random: NumPy's generators, device arrays out --------------------------------------

class RandomState:
    """``cupy.random.RandomState(seed, method)``: NumPy's Philox bits (not cuRAND's)."""

    def __init__(self, seed=None, method=None):
        self.seed(seed)

    def seed(self, seed=None):
        self._rng = np.random.Generator(np.random.Philox(seed))

    def random_sample(self, size=None, dtype=float):
        return ndarray._of(np.asarray(self._rng.random(size, dtype=np.dtype(dtype).type)))

    def standard_normal(self, size=None, dtype=float):
        return ndarray._of(np.asarray(self._rng.standard_normal(size, dtype=np.dtype(dtype).type)))


def _default_rng(seed=None):
    rs = RandomState(seed)
    return types.SimpleNamespace(random=lambda size=None, dtype=np.float64: rs.random_sample(
        size, dtype), standard_normal=rs.standard_normal)


random = types.SimpleNamespace(RandomState=RandomState, default_rng=_default_rng)


# -- cupy.cuda: one device that is always there ------------------------------------------------

class _Device:
    def __init__(self, device=0):
        self.id = device

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *error):
        pass


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


cuda = types.SimpleNamespace(
    Device=_Device,
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1, runtimeGetVersion=lambda: 12040,
        driverGetVersion=lambda: 12040,
        getDeviceProperties=lambda device: {"name": b"fake_cupy (CPU stand-in)",
                                            "major": 9, "minor": 0}),
    curand=types.SimpleNamespace(CURAND_RNG_PSEUDO_PHILOX4_32_10=161),
    is_available=lambda: True)


def shared_numpy(obj):
    """The NumPy view of the memory that ``__cuda_array_interface__`` describes (as
    numba.cuda reads a CuPy array): no copy, writes are seen by the owner."""
    desc = obj.__cuda_array_interface__
    dtype, shape, strides = np.dtype(desc["typestr"]), tuple(desc["shape"]), desc["strides"]
    if strides is None:                                  # C order
        strides, step = [], dtype.itemsize
        for n in reversed(shape):
            strides.insert(0, step)
            step *= n
    if 0 in shape:
        return np.empty(shape, dtype)
    span = builtins.sum((n - 1) * s for n, s in zip(shape, strides)) + dtype.itemsize
    memory = (ctypes.c_char * span).from_address(desc["data"][0])
    return np.ndarray(shape, dtype, buffer=memory, strides=tuple(strides))


def install(monkeypatch):
    """Make ``minicnn.backend`` and ``import cupy`` see this module, until
    ``monkeypatch`` (pytest's, of a test or of the session) undoes it."""
    import minicnn.backend as backend
    monkeypatch.setattr(backend, "_cupy", _module)
    monkeypatch.setattr(backend, "_CUPY_ERROR", None)
    monkeypatch.setitem(sys.modules, "cupy", _module)
