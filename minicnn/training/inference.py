"""Running a trained model over many inputs: eval mode, one batch at a time.

``eval_forward`` is the one loop that every evaluation shares (the test
accuracy during training, the studies' probabilities and code vectors, the
patch-by-patch segmentation): it turns dropout off, moves each batch to the
model's device, runs the forward pass and puts every layer's training flag
back as it was when the loop ends. No backward pass runs, so no gradient is
touched.
"""
import contextlib

from ..backend import to_device


@contextlib.contextmanager
def evaluating(model):
    """``with evaluating(model): ...`` -- eval mode inside, each module's flag restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def chunks(images, batch_size):
    """``images[0:b], images[b:2b], ...``: the batches of an array, the last one shorter."""
    return (images[i:i + batch_size] for i in range(0, len(images), batch_size))


def eval_forward(model, batches, stop=None):
    """Yield the output of ``model`` (of ``model.layers[:stop]`` if ``stop`` is given)
    for each batch of ``batches``, in eval mode.

    A batch is an input array ``x (B, ...)`` (NumPy or on the model's device;
    it is moved there), or a tuple ``(x, y, ...)`` whose other entries ride
    along: then ``(output, y, ...)`` is yielded. Training flags are restored
    when the loop ends or is left early.
    """
    device = getattr(model, "device", None)      # None: no parameters, run where x is
    move = (lambda x: x) if device is None else (lambda x: to_device(x, device))  # noqa: E731
    with evaluating(model):
        run = model if stop is None else model[:stop]
        for batch in batches:
            if isinstance(batch, tuple):
                yield (run.forward(move(batch[0])),) + batch[1:]
            else:
                yield run.forward(move(batch))


__all__ = ["evaluating", "chunks", "eval_forward"]
