"""Ready-made networks. Each function returns a fresh, seeded ``Sequential``.

MNIST models take ``(1, 28, 28)`` images and give 10 logits; ``vgg19``,
``alexnet`` and ``googlenet`` take ``(3, 224, 224)`` and give 1000 (they are here
for ``summary()`` and for studies of size and cost).

Every builder takes the same keyword arguments, ``seed=0`` (each layer draws
its own generator from it) and ``init="he"`` (the weight initializer of every
conv and dense layer, one of ``minicnn.init.INITIALIZERS``), so that
``get_model(name, seed=..., init=...)`` works for every name.
"""
import numpy as np

from .layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential
from .layers.norm import BatchNorm1D, BatchNorm2D


class _Seeds:
    """Hands each layer its own generator, all derived from one seed."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self):
        return np.random.default_rng(int(self.rng.integers(2 ** 63)))


def lenet(seed=0, init="he"):
    """TensorFlow's "Deep MNIST for Experts" net (3,274,634 parameters).

    conv 5x5x32 same, ReLU, pool 2 -> conv 5x5x64 same, ReLU, pool 2
    -> dense 1024, ReLU, dropout 0.5 -> dense 10.
    ``init="truncated_normal"`` gives the tutorial's own init (std 0.1, bias 0.1).
    """
    s = _Seeds(seed)
    return Sequential([
        Conv2D(1, 32, 5, padding="same", init=init, seed=s()), ReLU(), MaxPool2D(2),
        Conv2D(32, 64, 5, padding="same", init=init, seed=s()), ReLU(), MaxPool2D(2),
        Flatten(),
        Dense(7 * 7 * 64, 1024, init=init, seed=s()), ReLU(), Dropout(0.5, seed=s()),
        Dense(1024, 10, init=init, seed=s()),
    ], input_shape=(1, 28, 28))


def tiny_cnn(seed=0, init="he"):
    """A 3,146-parameter CNN: valid 5x5 convs, 28 -> 24 -> 12 -> 8 -> 4; dense 16."""
    s = _Seeds(seed)
    return Sequential([
        Conv2D(1, 4, 5, init=init, seed=s()), ReLU(), MaxPool2D(2),
        Conv2D(4, 8, 5, init=init, seed=s()), ReLU(), MaxPool2D(2),
        Flatten(),
        Dense(8 * 4 * 4, 16, init=init, seed=s()), ReLU(),
        Dense(16, 10, init=init, seed=s()),
    ], input_shape=(1, 28, 28))


def keras_cnn(seed=0, init="he"):
    """The Keras MNIST example the seed talk trains to 99.3-99.44%."""
    s = _Seeds(seed)
    return Sequential([
        Conv2D(1, 64, 5, padding="same", init=init, seed=s()), ReLU(),
        Conv2D(64, 64, 5, padding="same", init=init, seed=s()), ReLU(),
        MaxPool2D(2), Dropout(0.25, seed=s()),
        Conv2D(64, 64, 3, padding="same", init=init, seed=s()), ReLU(),
        Conv2D(64, 64, 3, padding="same", init=init, seed=s()), ReLU(),
        MaxPool2D(2), Dropout(0.25, seed=s()),
        Flatten(),
        Dense(7 * 7 * 64, 256, init=init, seed=s()), ReLU(), Dropout(0.5, seed=s()),
        Dense(256, 10, init=init, seed=s()),
    ], input_shape=(1, 28, 28))


def lenet5(seed=0, init="he"):
    """LeCun et al. 1998's layout with ReLU and max pooling: 6@5x5 (padded 2),
    pool, 16@5x5, pool, dense 120, 84, 10."""
    s = _Seeds(seed)
    return Sequential([
        Conv2D(1, 6, 5, padding=2, init=init, seed=s()), ReLU(), MaxPool2D(2),
        Conv2D(6, 16, 5, init=init, seed=s()), ReLU(), MaxPool2D(2),
        Flatten(),
        Dense(16 * 5 * 5, 120, init=init, seed=s()), ReLU(),
        Dense(120, 84, init=init, seed=s()), ReLU(),
        Dense(84, 10, init=init, seed=s()),
    ], input_shape=(1, 28, 28))


def bn_cnn(seed=0, init="he"):
    """A keras_cnn-style net with batch normalization after every conv and the
    hidden dense layer (the convs then need no bias): two blocks of two 3x3
    convs (32, then 64 channels), each block max-pooled, dense 256, 10.
    About 0.87 M parameters and 19.1 M MACs per image (lenet: 3.3 M and 13.9 M)."""
    s = _Seeds(seed)

    def conv_bn(c_in, c_out):
        return [Conv2D(c_in, c_out, 3, padding=1, bias=False, init=init, seed=s()),
                BatchNorm2D(c_out), ReLU()]
    return Sequential(
        conv_bn(1, 32) + conv_bn(32, 32) + [MaxPool2D(2)]
        + conv_bn(32, 64) + conv_bn(64, 64) + [MaxPool2D(2), Flatten(),
           Dense(64 * 7 * 7, 256, bias=False, init=init, seed=s()), BatchNorm1D(256), ReLU(),
           Dropout(0.3, seed=s()), Dense(256, 10, init=init, seed=s())],
        input_shape=(1, 28, 28))


def fast_cnn(seed=0, init="he"):
    """The small net of the fast recipe (``minicnn train --recipe fast``): 5x5 convs
    of 16 and 32 channels, each with batch norm, ReLU and a 2x2 max pool, then one
    dense layer; about 18 k parameters and 1.05 M MACs per image, so one epoch
    takes seconds on a CPU."""
    s = _Seeds(seed)
    return Sequential([
        Conv2D(1, 16, 5, bias=False, init=init, seed=s()), BatchNorm2D(16), ReLU(), MaxPool2D(2),
        Conv2D(16, 32, 5, bias=False, init=init, seed=s()), BatchNorm2D(32), ReLU(),
        MaxPool2D(2), Flatten(), Dense(32 * 4 * 4, 10, init=init, seed=s()),
    ], input_shape=(1, 28, 28))


def mobilenet_mnist(seed=0, init="he"):
    """A small MobileNet-style net (Howard et al. 2017) for MNIST: 8,746 parameters.

    conv 3x3x16 -> three depthwise-separable blocks (a depthwise 3x3 conv, one
    filter per channel: ``groups == in_channels``, then a pointwise 1x1 conv that
    mixes the channels), 28 -> 14 -> 7 -> 7, 16 -> 32 -> 64 -> 64 channels ->
    global average pool -> dense 10. A separable block costs
    ``C (9 + C_out)`` weights instead of a full 3x3 conv's ``9 C C_out``.
    No batch normalization (MobileNet has it after every conv; see ``bn_cnn`` for
    how it goes in), so the convs keep their biases.
    """
    s = _Seeds(seed)

    def separable(c_in, c_out, stride):
        return [Conv2D(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, init=init,
                       seed=s()), ReLU(),
                Conv2D(c_in, c_out, 1, init=init, seed=s()), ReLU()]
    return Sequential([Conv2D(1, 16, 3, padding=1, init=init, seed=s()), ReLU()]
                      + separable(16, 32, 2) + separable(32, 64, 2) + separable(64, 64, 1)
                      + [AvgPool2D(7), Flatten(), Dense(64, 10, init=init, seed=s())],
                      input_shape=(1, 28, 28))


def _classifier_head(in_features, s, init):
    return [Flatten(),
            Dense(in_features, 4096, init=init, seed=s()), ReLU(), Dropout(0.5, seed=s()),
            Dense(4096, 4096, init=init, seed=s()), ReLU(), Dropout(0.5, seed=s()),
            Dense(4096, 1000, init=init, seed=s())]


def vgg19(seed=0, init="he"):
    """VGG-19 (Simonyan & Zisserman 2014): 16 3x3 convs in 5 blocks, 3 dense layers;
    about 143.7 M parameters and 19.6 G MACs on a 224x224x3 image."""
    s = _Seeds(seed)
    layers, channels = [], 3
    for width, repeats in [(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)]:
        for _ in range(repeats):
            layers += [Conv2D(channels, width, 3, padding=1, init=init, seed=s()), ReLU()]
            channels = width
        layers.append(MaxPool2D(2))
    return Sequential(layers + _classifier_head(512 * 7 * 7, s, init), input_shape=(3, 224, 224))


def alexnet(seed=0, init="he"):
    """AlexNet (Krizhevsky et al. 2012) as one tower, without local response
    normalization: 96@11x11/4, 256@5x5, 384, 384, 256 @3x3, three dense layers."""
    s = _Seeds(seed)
    return Sequential([
        Conv2D(3, 96, 11, stride=4, padding=2, init=init, seed=s()), ReLU(),
        MaxPool2D(3, stride=2),
        Conv2D(96, 256, 5, padding=2, init=init, seed=s()), ReLU(), MaxPool2D(3, stride=2),
        Conv2D(256, 384, 3, padding=1, init=init, seed=s()), ReLU(),
        Conv2D(384, 384, 3, padding=1, init=init, seed=s()), ReLU(),
        Conv2D(384, 256, 3, padding=1, init=init, seed=s()), ReLU(), MaxPool2D(3, stride=2),
    ] + _classifier_head(256 * 6 * 6, s, init), input_shape=(3, 224, 224))


MODELS = {"lenet": lenet, "tiny_cnn": tiny_cnn, "keras_cnn": keras_cnn, "lenet5": lenet5,
          "bn_cnn": bn_cnn, "fast_cnn": fast_cnn, "mobilenet_mnist": mobilenet_mnist,
          "vgg19": vgg19, "alexnet": alexnet, "googlenet": lambda **kw: googlenet(**kw)}


def get_model(name, **kwargs):
    """A model by name, e.g. ``get_model("lenet", seed=0)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def inception(in_channels, c1, c3_reduce, c3, c5_reduce, c5, pool_proj, seed=None,
              init="he"):
    """One Inception module: four branches concatenated on channels, output
    ``c1 + c3 + c5 + pool_proj`` channels at the input's size.

    1x1 convs before the 3x3 and 5x5 ("reduce") cut the channels those big
    kernels see: that is where most of GoogLeNet's savings come from.
    """
    from .layers import Inception
    s = _Seeds(seed)

    def conv(c_in, c_out, k):
        return [Conv2D(c_in, c_out, k, padding=k // 2, init=init, seed=s()), ReLU()]
    return Inception([
        Sequential(conv(in_channels, c1, 1)),
        Sequential(conv(in_channels, c3_reduce, 1) + conv(c3_reduce, c3, 3)),
        Sequential(conv(in_channels, c5_reduce, 1) + conv(c5_reduce, c5, 5)),
        Sequential([MaxPool2D(3, stride=1, padding=1)] + conv(in_channels, pool_proj, 1)),
    ])


# (c1, c3_reduce, c3, c5_reduce, c5, pool_proj) of each module, from Szegedy et al.'s Table 1
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(seed=0, init="he"):
    """GoogLeNet (Szegedy et al. 2014) on 224x224x3, 1000 classes, for ``summary()``:
    about 6.8 M parameters and 1.5 G MACs. No auxiliary classifiers and no local
    response normalization; 3x3/2 max pools use padding 1 (224 -> 112 -> 56 -> 28 -> 14 -> 7).
    """
    s = _Seeds(seed)
    layers = [Conv2D(3, 64, 7, stride=2, padding=3, init=init, seed=s()), ReLU(),
              MaxPool2D(3, stride=2, padding=1),
              Conv2D(64, 64, 1, init=init, seed=s()), ReLU(),
              Conv2D(64, 192, 3, padding=1, init=init, seed=s()), ReLU(),
              MaxPool2D(3, stride=2, padding=1)]
    channels = 192
    for name, widths in GOOGLENET_MODULES.items():
        if name in ("4a", "5a"):
            layers.append(MaxPool2D(3, stride=2, padding=1))
        layers.append(inception(channels, *widths, seed=s(), init=init))
        channels = widths[0] + widths[2] + widths[4] + widths[5]
    return Sequential(layers + [AvgPool2D(7), Flatten(), Dropout(0.4, seed=s()),
                                Dense(channels, 1000, init=init, seed=s())],
                      input_shape=(3, 224, 224))
