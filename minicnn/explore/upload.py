"""An uploaded file -> an image array ``preprocess.ink`` reads, or one line that says why not.

The page hands over the uploaded file undecoded (``upload_image``), so what can go
wrong with a file a user picked is decided here, before any large work:

- not an image, or a damaged one (a truncated PNG): ``UploadError`` saying so;
- too large: PIL reads an image's size from its header without decoding the
  pixels, so an image of more than ``MAX_PIXELS`` is refused before it is
  decoded (PIL itself refuses images over about 179 megapixels as possible
  decompression bombs: the same message). A 10000x10000 PNG once took 11 s and
  6 GB; it is now refused in milliseconds;
- large: decoded (JPEG at a reduced scale where it can) and shrunk so that its
  longer side is at most ``WORK_SIDE`` pixels: a digit needs no more, and the
  preprocessing then works on a megapixel at most;
- transparency: kept (RGBA), so ``ink`` lays the image on white paper; a black
  digit on a transparent background is a black digit on white;
- 16-bit gray: scaled to [0, 1] (PIL's conversion to 8 bits would clip it white);
- a phone's EXIF rotation: applied, as a photo viewer shows the image.
"""
import base64
import io
import warnings

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 25_000_000     # about a 6000x4000 photo
WORK_SIDE = 1024


class UploadError(ValueError):
    """An upload that cannot be used; ``str(err)`` is one line for the page."""


def read_upload(path):
    """The image file at ``path`` (or a file object) -> uint8 ``(H, W, 4)`` RGBA,
    or float ``(H, W)`` in [0, 1] for 16- and 32-bit gray, with ``max(H, W) <=
    WORK_SIDE``. Raises ``UploadError`` for a file that is not an image, is
    damaged or is too large."""
    try:
        with warnings.catch_warnings():        # over 89 MP PIL warns: refused below anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:
        raise UploadError(f"the image has more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} "
                          f"megapixels; {_limit()}") from None
    except (OSError, SyntaxError, ValueError):        # UnidentifiedImageError is an OSError
        raise UploadError("the upload is not an image this page can read: upload a PNG, JPEG, "
                          "GIF, BMP or WebP picture of a digit") from None
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise UploadError(f"the image is {width}x{height} pixels "
                              f"({width * height / 1e6:.0f} megapixels); {_limit()}")
        try:
            image.draft(None, (WORK_SIDE, WORK_SIDE))   # JPEG: decode at 1/2 .. 1/8 scale
            image = ImageOps.exif_transpose(image)     # decodes the pixels
            image.thumbnail((WORK_SIDE, WORK_SIDE))
            return _array(image)
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise UploadError(f"the image could not be decoded ({_reason(err)}): the file is "
                              f"damaged or cut short; save it again and upload the new file") \
                from None


def _array(image):
    if image.mode.startswith(("I", "F")):              # 16/32-bit gray: PIL's 8 bits would clip
        a = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if image.mode.startswith("I;16") else max(1.0, float(a.max()))
        return np.clip(a / scale, 0.0, 1.0)
    return np.asarray(image.convert("RGBA"))


def _limit():
    return (f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels: shrink it first (a digit needs "
            f"no more than a few hundred pixels a side)")


def _reason(err):
    return (str(err).splitlines() or [""])[0] or type(err).__name__


def upload_image(**options):
    """A ``gr.Image`` whose handler gets the uploaded file undecoded (its path, or a
    file object for an image sent inline as a data URL). Gradio's own decoding
    would convert it to RGB (dropping transparency), decode a huge image whole, and
    answer a file that is not an image with a generic error and a traceback on the
    server; ``read_upload`` does all of that itself. (This one component's
    ``preprocess`` is replaced: a subclass would make Gradio write a ``.pyi`` file
    next to this module.)"""
    import gradio as gr
    image = gr.Image(**options)
    image.preprocess = _undecoded
    return image


def _undecoded(payload):
    if payload is None:
        return None
    if payload.path is None and (payload.url or "").startswith("data:"):
        try:
            return io.BytesIO(base64.b64decode(payload.url.split(",", 1)[1]))
        except (IndexError, ValueError):
            return io.BytesIO(b"")                  # read_upload: "not an image"
    return payload.path


__all__ = ["read_upload", "upload_image", "UploadError", "MAX_PIXELS", "WORK_SIDE"]
