"""Studies: patch segmentation, translation test, pooling invariance, misclassification gallery.

Each test checks a study's logic on small data with a known answer.
"""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, Softmax, models
from minicnn.backend import as_numpy
from minicnn.studies import gallery, invariance, segmentation, translation

# -- pixelwise classification by patches ------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny_cnn", "strided"])
def test_fast_patch_map_equals_patch_by_patch(backend, device, rng, name):
    if name == "tiny_cnn":
        model = models.tiny_cnn(seed=1)          # strides 2 x 2: 16 offsets to interleave
    else:                                        # a strided conv, a 3x2 pool, dropout, softmax
        model = Sequential([Conv2D(1, 3, 3, stride=2, seed=0), ReLU(), MaxPool2D((3, 2)),
                            Flatten(), Dense(3 * 4 * 6, 5, seed=1), ReLU(), Dense(5, 4, seed=2),
                            Softmax()])
    model.astype("float64").to(device)
    canvas = backend.asarray(rng.standard_normal((2, 1, 11, 13)))
    fast = segmentation.patch_outputs(model, canvas, pad_value=-0.5)
    slow = segmentation.patch_outputs(model, canvas, pad_value=-0.5, method="patches")
    assert fast.shape == slow.shape == (2, model.output_shape((1, 28, 28))[0], 11, 13)
    np.testing.assert_allclose(as_numpy(fast), as_numpy(slow), rtol=0, atol=1e-10)


def test_patch_of_a_pixel_is_centred_on_it(rng):
    """A model reading one input pixel (its weight picks patch position (14, 14)) returns
    the canvas itself: the patch of pixel (i, j) is centred on (i, j)."""
    dense = Dense(28 * 28, 1, bias=False)
    dense.weight.value[...] = 0
    dense.weight.value[0, 14 * 28 + 14] = 1
    model = Sequential([Flatten(), dense])
    canvas = rng.standard_normal((1, 1, 5, 6))
    out = segmentation.patch_outputs(model, canvas, method="patches")
    np.testing.assert_array_equal(out[0, 0], canvas[0, 0])
    np.testing.assert_array_equal(segmentation.patch_outputs(model, canvas)[0, 0], canvas[0, 0])


def test_padded_convolutions_are_refused_by_the_exact_fast_path(rng):
    with pytest.raises(ValueError, match="pads its input"):
        segmentation.patch_outputs(models.lenet5(), rng.standard_normal((1, 1, 30, 30)))


def test_class_map_threshold_and_scene():
    probs = np.zeros((1, 3, 1, 3))
    probs[0, :, 0, 0] = [0.9, 0.05, 0.05]
    probs[0, :, 0, 1] = [0.2, 0.5, 0.3]
    probs[0, :, 0, 2] = [0.1, 0.1, 0.8]
    labels, conf = segmentation.class_map(probs, threshold=0.6, probabilities=True)
    assert labels.tolist() == [[[0, -1, 2]]]
    np.testing.assert_allclose(conf, [[[0.9, 0.5, 0.8]]])
    digits = np.full((5, 1, 28, 28), -1.0, np.float32)
    digits[:, 0, 10:18, 12:16] = 2.0
    canvas, truth = segmentation.digit_scene(digits, np.arange(5), (56, 84), count=3, seed=1)
    assert canvas.shape == (1, 1, 56, 84) and canvas.min() == -1.0
    assert (truth >= 0).sum() == 3 * 32 and sorted(set(truth.ravel()) - {-1}).__len__() == 3
    assert segmentation.map_scores(truth, truth) == {"ink": 1.0, "background": 1.0}


# -- translation ---------------------------------------------------------------------------

def test_shift_of_a_zero_padded_image_and_back_is_exact(backend, rng):
    image = np.zeros((2, 1, 28, 28))
    image[:, :, 5:23, 5:23] = rng.standard_normal((2, 1, 18, 18))
    x = backend.asarray(image)
    for dy, dx in [(0, 5), (-5, 0), (3, -4), (-5, 5)]:
        moved = translation.shift_images(x, dy, dx)
        np.testing.assert_array_equal(as_numpy(moved), np.roll(image, (dy, dx), axis=(2, 3)))
        np.testing.assert_array_equal(as_numpy(translation.shift_images(moved, -dy, -dx)), image)
    edge = translation.shift_images(backend.ones((1, 4, 4)), 1, -2, fill=-1.0)
    assert as_numpy(edge)[0].tolist() == [[-1] * 4] + [[1, 1, -1, -1]] * 3


def test_translation_curves_of_a_position_bound_classifier():
    """A 'classifier' that says class 1 exactly when pixel (14, 14) is on: digits with only
    that pixel on are right at shift 0 and wrong at every other shift."""
    def predict(x):
        on = np.asarray(x)[:, 0, 14, 14] > 0
        return np.stack([~on, on], axis=1).astype(float)
    images = np.zeros((3, 1, 28, 28))
    images[:, 0, 14, 14] = 1
    c = translation.translation_curves(predict, images, np.ones(3, int), axis="y",
                                       shifts=(-1, 0, 2), fill=0.0)
    assert c.accuracy.tolist() == [0, 1, 0] and c.p_true.tolist() == [0, 1, 0]
    assert c.p_win.tolist() == [1, 1, 1]
    assert c.winners.tolist() == [[0, 0, 0], [1, 1, 1], [0, 0, 0]]   # (shifts, images)
    table = translation.format_table({"pos": (c, c)})
    assert "| +0 | 100.0 | 100.0 |" in table and "| -1 | 0.0 | 0.0 |" in table


def test_pixel_softmax_learns_a_separable_set(rng):
    images = rng.standard_normal((200, 1, 4, 4)).astype(np.float32)
    labels = (images[:, 0, 0, 0] > 0).astype(int)
    predict = translation.pixel_softmax(images, labels, epochs=20, lr=0.05)
    assert (predict(images).argmax(axis=1) == labels).mean() > 0.95


# -- pooling invariance ----------------------------------------------------------------------

def one_pixel_model():
    conv = Conv2D(1, 1, 1)
    conv.weight.value[...] = 1
    conv.bias.value[...] = 0
    return Sequential([conv, MaxPool2D(2)])


def test_pooling_is_exactly_invariant_to_a_shift_inside_its_window():
    image = np.zeros((1, 1, 6, 6), np.float32)
    image[0, 0, 2, 2] = 1.0                         # top-left of the pool window (2:4, 2:4)
    r = invariance.pooling_invariance(one_pixel_model(), image, shift=(1, 1), fill=0.0)
    assert r.pooled_change == 0 and r.pooled_unchanged == 1
    np.testing.assert_array_equal(r.pooled_before, r.pooled_after)
    assert r.conv_change == pytest.approx(np.sqrt(2)) and r.conv_moved == 0
    assert r.conv_unchanged == pytest.approx(34 / 36)     # the two moved pixels differ
    out = invariance.pooling_invariance(one_pixel_model(), image, shift=(0, 2), fill=0.0)
    assert out.pooled_change == pytest.approx(np.sqrt(2))  # it left the window


# -- misclassification gallery ------------------------------------------------------------

def test_gallery_finds_exactly_the_errors(tmp_path):
    """An identity 'model' predicts the argmax of each 1x10 image; the labels disagree
    at indices 1, 4 and 5 only."""
    dense = Dense(10, 10)
    dense.weight.value[...] = np.eye(10)
    dense.bias.value[...] = 0
    model = Sequential([Flatten(), dense])
    predicted = np.array([3, 7, 7, 0, 9, 9, 2])
    images = np.eye(10, dtype=np.float32)[predicted].reshape(7, 1, 1, 10)
    labels = np.array([3, 1, 7, 0, 4, 4, 2])
    probs = gallery.predict_proba(model, images, batch_size=3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    errors = gallery.misclassified(probs, labels)
    assert errors.indices.tolist() == [1, 4, 5] and errors.count == 3 and errors.total == 7
    assert errors.true.tolist() == [1, 4, 4] and errors.predicted.tolist() == [7, 9, 9]
    assert gallery.confused_pairs(errors) == [((4, 9), 2), ((1, 7), 1)]
    fig = gallery.draw_gallery(images, errors, tmp_path / "g.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["1->7", "4->9", "4->9"] and (tmp_path / "g.png").exists()
