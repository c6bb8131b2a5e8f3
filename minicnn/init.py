"""Weight initializers. Each returns a float32 NumPy array of the given shape.

``fan_in`` is the number of inputs feeding one output unit
(``C_in * kH * kW`` for a convolution, ``in_features`` for a dense layer).
"""
import numpy as np

INITIALIZERS = ("he", "glorot", "truncated_normal")


def he_normal(shape, fan_in, rng):
    """He et al. 2015: ``N(0, 2 / fan_in)``, keeps ReLU activations' scale."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def glorot_uniform(shape, fan_in, fan_out, rng):
    """Glorot & Bengio 2010: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def truncated_normal(shape, rng, std=0.1):
    """The TensorFlow tutorial's init: ``N(0, std^2)``, values beyond 2 std redrawn."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return (values * std).astype(np.float32)


def initial_weights(scheme, shape, fan_in, fan_out, rng):
    """Weight and bias arrays for ``scheme`` in ``INITIALIZERS``.

    He and Glorot start biases at 0; the tutorial's truncated normal at 0.1
    (a small positive bias keeps ReLUs alive at the start).
    """
    if scheme == "he":
        return he_normal(shape, fan_in, rng), np.zeros(shape[0], np.float32)
    if scheme == "glorot":
        return glorot_uniform(shape, fan_in, fan_out, rng), np.zeros(shape[0], np.float32)
    if scheme == "truncated_normal":
        return truncated_normal(shape, rng), np.full(shape[0], 0.1, np.float32)
    raise ValueError(f"init must be one of {INITIALIZERS}, got {scheme!r}")
