"""The layer registry: explicit, collision-proof, and what load_model needs from it."""
import numpy as np
import pytest

import minicnn
from minicnn import Layer, load_model, register_layer, save_model
from minicnn.layers import LAYER_TYPES


class Scale(Layer):
    """A learner's layer: ``y = factor * x`` (registered by each test that needs it)."""

    def __init__(self, factor=2.0):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x):
        self.check_input(x)
        return x * self.factor

    def backward(self, grad_out):
        self.check_grad(grad_out)
        return grad_out * self.factor

    def config(self):
        return dict(factor=self.factor)


@pytest.fixture
def registry():
    """Leaves LAYER_TYPES as it found it, whatever a test registers."""
    saved = dict(LAYER_TYPES)
    yield LAYER_TYPES
    LAYER_TYPES.clear()
    LAYER_TYPES.update(saved)


def tiny(extra):
    return minicnn.Sequential([minicnn.Flatten(), minicnn.Dense(4, 3, seed=0), extra],
                              input_shape=(1, 2, 2))


def test_register_layer_is_exported_and_a_decorator(registry):
    assert minicnn.register_layer is minicnn.layers.register_layer is register_layer
    assert register_layer(Scale) is Scale
    assert registry["Scale"] is Scale
    assert register_layer(Scale) is Scale          # the same class again: a no-op


def test_built_in_layers_are_registered():
    for name in ["Conv2D", "MaxPool2D", "AvgPool2D", "ReLU", "Softmax", "Dense", "Flatten",
                 "Dropout", "Sequential", "Concat", "Inception"]:
        assert LAYER_TYPES[name] is getattr(minicnn.layers, name)
    assert "_Pool2D" not in LAYER_TYPES


def test_plain_subclasses_are_not_registered(registry):
    class NotRegistered(Layer):
        pass
    assert "NotRegistered" not in registry
    assert "Scale" not in registry


def test_a_registered_user_layer_round_trips(registry, tmp_path, rng):
    register_layer(Scale)
    model = tiny(Scale(3.0))
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert isinstance(loaded[2], Scale) and loaded[2].factor == 3.0
    x = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_a_same_named_class_does_not_replace_a_built_in(registry):
    class Dense(Layer):
        pass
    with pytest.raises(ValueError, match=r"'Dense'.*minicnn\.layers\.dense\.Dense.*"
                                         r"test_registry.*Dense"):
        register_layer(Dense)
    assert registry["Dense"] is minicnn.Dense


def test_two_user_classes_of_one_name_collide(registry):
    register_layer(Scale)

    def make():
        class Scale(Layer):
            pass
        return Scale
    with pytest.raises(ValueError, match="already"):
        register_layer(make())
    assert registry["Scale"] is Scale


def test_rerunning_a_class_definition_replaces_it(registry):
    # a notebook cell run twice defines a new class object with the same
    # module and qualified name: that is the same layer, redefined
    def define():
        class Again(Layer):
            pass
        return Again
    first, second = define(), define()
    register_layer(first)
    assert register_layer(second) is second and registry["Again"] is second


def test_only_layer_classes_can_be_registered(registry):
    with pytest.raises(TypeError, match="Layer subclass"):
        register_layer(Scale(2.0))
    with pytest.raises(TypeError, match="Layer subclass"):
        register_layer(dict)


def test_loading_an_unregistered_type_says_to_register_it(registry, tmp_path):
    register_layer(Scale)
    save_model(tiny(Scale(3.0)), tmp_path / "m.npz")
    del registry["Scale"]
    with pytest.raises(ValueError) as err:
        load_model(tmp_path / "m.npz")
    message = str(err.value)
    assert "'Scale'" in message and "minicnn.register_layer(Scale)" in message
    assert "\n" not in message
