"""Receptive-field arithmetic: lenet by hand, random stacks against brute force."""
import numpy as np
import pytest

from minicnn import AvgPool2D, Conv2D, MaxPool2D, ReLU, Sequential, models
from minicnn.backend import as_numpy
from minicnn.viz.receptive import Box, field_box, receptive_box, receptive_fields


def test_lenet_by_hand():
    lenet = models.lenet()
    fields = receptive_fields(lenet)
    # conv1 5x5 padded 2; pool 2; conv2 5x5 padded 2 on a grid of jump 2; pool 2.
    expected = {0: (5, 1, -2), 2: (6, 2, -2), 3: (14, 2, -6), 5: (16, 4, -6)}
    for i, (size, jump, start) in expected.items():
        f = fields[i]
        assert (f.size, f.jump, f.start) == ((size, size), (jump, jump), (start, start)), f
    assert fields[1].size == fields[0].size                   # ReLU changes nothing
    assert fields[6].spatial is False and fields[-1].shape == (10,)
    # pool2 unit (0, 0) sees rows -6..9, clipped to 0..9; unit (6, 6) sees 18..33 -> 18..27
    assert receptive_box(lenet, 5, 0, 0) == Box(0, 0, 10, 10)
    assert receptive_box(lenet, 5, 6, 6) == Box(18, 18, 28, 28)
    assert receptive_box(lenet, 5, 6, 6, clip=False) == Box(18, 18, 34, 34)
    assert receptive_box(lenet, -1, 0, 0) == Box(0, 0, 28, 28)


def _random_stack(rng, allow_gaps=False):
    """Conv/pool/ReLU layers with random kernel, stride and padding (positive weights)."""
    layers, channels, hw = [], 1, 23
    for _ in range(rng.integers(2, 5)):
        kind = rng.choice(["conv", "max", "avg"])
        k = int(rng.integers(1, 5))
        s = int(rng.integers(1, k + 2 if allow_gaps else k + 1))
        if kind == "conv":
            p = int(rng.integers(0, k))
            layer = Conv2D(channels, 2, k, stride=s, padding=p, seed=int(rng.integers(1000)))
            # positive weights, no bias, positive input: a big bump at one pixel
            # raises every unit that can see it (and keeps ReLU in its linear part)
            layer.weight.value = rng.uniform(0.5, 1.5, layer.weight.shape)
            layer.bias.value = np.zeros(2)
        else:
            p = int(rng.integers(0, k // 2 + 1))
            layer = (MaxPool2D if kind == "max" else AvgPool2D)(k, stride=s, padding=p)
        channels, out_h, _ = layer.output_shape((channels, hw, hw))
        if out_h < 1:
            break
        hw = out_h
        layers += [layer, ReLU()] if kind == "conv" else [layer]
    return Sequential(layers, input_shape=(1, 23, 23))


def _brute_force_boxes(model, backend, layer):
    """For each unit of ``layer``, the bounding box of input pixels whose bump changes it."""
    h = w = 23
    model.to("cpu" if backend is np else "gpu")
    x = np.random.default_rng(0).uniform(0, 1, (1, 1, h, w))
    base = as_numpy(model[:layer + 1].forward(backend.asarray(x)))[0]
    bumped = np.repeat(x, h * w, axis=0)
    bumped.reshape(h * w, h * w)[np.arange(h * w), np.arange(h * w)] += 1e3
    out = as_numpy(model[:layer + 1].forward(backend.asarray(bumped)))
    # a real change is large (the bump is 1e3); rounding may differ with the batch size
    changed = (np.abs(out - base) > 1e-6).any(axis=1)  # (pixels, Ho, Wo): any channel
    return changed.reshape(h, w, *changed.shape[1:])


def _brute_force_expectations(model, backend):
    """``(layer, y, x, box)`` for every unit of every layer: the brute-force bounding box."""
    for layer in range(len(model)):
        seen = _brute_force_boxes(model, backend, layer)
        for y in range(seen.shape[2]):
            for x in range(seen.shape[3]):
                rows, cols = np.nonzero(seen[:, :, y, x])
                yield layer, y, x, Box(rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)


@pytest.mark.parametrize("seed", range(6))
def test_random_stacks_against_brute_force(backend, seed):
    rng = np.random.default_rng(seed)
    model = _random_stack(rng)
    fields = receptive_fields(model)
    for layer, y, x, expected in _brute_force_expectations(model, backend):
        assert receptive_box(model, layer, y, x) == expected, (model, layer, y, x)
        # the formulas' box, clipped to the image, may only be larger
        outer = field_box(fields[layer], y, x, (23, 23))
        assert outer.top <= expected.top and outer.bottom >= expected.bottom
        assert outer.left <= expected.left and outer.right >= expected.right


def test_fields_with_gaps_contain_every_dependency(backend):
    # stride > kernel skips pixels: the box is a bounding box, never too small
    model = Sequential([Conv2D(1, 1, 2, stride=3), Conv2D(1, 1, 2)], input_shape=(1, 23, 23))
    for conv in model:
        conv.weight.value = np.ones(conv.weight.shape)
    seen = _brute_force_boxes(model, backend, 1)
    rows, cols = np.nonzero(seen[:, :, 2, 3])
    box = receptive_box(model, 1, 2, 3)
    assert box == Box(6, 9, 11, 14)
    assert set(rows) == {6, 7, 9, 10} and set(cols) == {9, 10, 12, 13}   # gaps at 8 and 11


def test_unknown_layer_is_an_error():
    from minicnn.layers import Layer

    class Shrink(Layer):
        def output_shape(self, input_shape):
            return (input_shape[0], input_shape[1] - 1, input_shape[2])

    with pytest.raises(TypeError, match="receptive fields"):
        receptive_fields(Sequential([Shrink()], input_shape=(1, 5, 5)))


def _dilated_stack(rng):
    """Convs with dilation, every padding mode and 'same' padding, and dilated
    ceil-mode max pools; positive weights as in ``_random_stack``."""
    layers, channels, hw = [], 1, 23
    for _ in range(rng.integers(2, 4)):
        if rng.integers(3):
            k, d = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            padding = "same" if rng.integers(2) else int(rng.integers(0, 3))
            mode = str(rng.choice(["zeros", "reflect", "replicate", "circular"]))
            layer = Conv2D(channels, 2, k, padding=padding, dilation=d, padding_mode=mode,
                           bias=False)
            layer.weight.value = rng.uniform(0.5, 1.5, layer.weight.shape)
        else:
            k = int(rng.integers(2, 4))
            layer = MaxPool2D(k, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                              dilation=int(rng.integers(1, 3)), ceil_mode=True)
        channels, out, _ = layer.output_shape((channels, hw, hw))
        if out < 1 or min(getattr(layer, "pads", ((0, 0),))[0]) >= hw:
            break
        layers, hw = layers + [layer], out
    return Sequential(layers or [Conv2D(1, 1, 3, dilation=2)], input_shape=(1, 23, 23))


def test_dilated_stack_grows_its_field_exponentially(backend):
    """3x3 convs with dilation 1, 2, 4: fields of 3, 7, 15 pixels, with no gaps."""
    model = Sequential([Conv2D(1, 1, 3, dilation=d, bias=False) for d in (1, 2, 4)],
                       input_shape=(1, 23, 23))
    for conv in model:
        conv.weight.value = np.ones(conv.weight.shape)
    assert [f.size for f in receptive_fields(model)] == [(3, 3), (7, 7), (15, 15)]
    seen = _brute_force_boxes(model, backend, 2)
    for y, x in [(0, 0), (4, 7), (8, 8)]:
        rows, cols = np.nonzero(seen[:, :, y, x])
        assert receptive_box(model, 2, y, x) == Box(y, x, y + 15, x + 15)
        assert set(rows) == set(range(y, y + 15)) and set(cols) == set(range(x, x + 15))


@pytest.mark.parametrize("seed", range(6))
def test_dilated_and_padded_stacks_against_brute_force(backend, seed):
    model = _dilated_stack(np.random.default_rng(50 + seed))
    for layer, y, x, expected in _brute_force_expectations(model, backend):
        assert receptive_box(model, layer, y, x) == expected, (model, layer, y, x)
