"""What a user may upload or draw into the explorer: files that are not images, damaged
or huge ones, transparency, 16 bits, colour photos, and images with no digit in them."""
import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from minicnn.explore.preprocess import mnist_style
from minicnn.explore.upload import MAX_PIXELS, WORK_SIDE, UploadError, read_upload


def seven(size=280, width=None):
    """A "7" as ink in [0, 1], float ``(size, size)``: 1 = ink, 0 = paper."""
    im = Image.new("L", (size, size), 0)
    s = size / 280
    ImageDraw.Draw(im).line([(80 * s, 60 * s), (200 * s, 60 * s), (120 * s, 230 * s)],
                            fill=255, width=width or max(1, round(16 * s)), joint="curve")
    return np.asarray(im, dtype=np.float64) / 255


def on_paper(ink, paper=255.0, ink_shade=0.0, noise=0.0, seed=0):
    """Gray uint8: ``ink`` (in [0, 1]) in ``ink_shade`` on ``paper``, plus Gaussian noise
    of ``noise`` gray levels."""
    a = paper + ink * (ink_shade - paper)
    a = a + np.random.default_rng(seed).normal(0, noise, a.shape) if noise else a
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def png_file(tmp_path, array, name="x.png", **save):
    path = tmp_path / name
    Image.fromarray(array).save(path, **save)
    return path


def big_png(path, width, height, rows_of_pixels=True):
    """A gray PNG of ``width x height`` written row by row (never the whole image in
    memory); ``rows_of_pixels=False`` writes only the header (a file that claims the size)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                  8, 0, 0, 0, 0)))
        if rows_of_pixels:
            z, row = zlib.compressobj(1), b"\x00" + b"\xff" * width     # white paper
            data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
            f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IEND", b""))
    return path


def close(a, b, tol=8):
    """Two uint8 28x28 digits agree: mean absolute difference under ``tol`` levels, at
    the best of the shifts by up to a pixel (centring rounds to whole pixels)."""
    return min(np.abs(np.roll(a.astype(int), (dy, dx), (0, 1)) - b).mean()
               for dy in (-1, 0, 1) for dx in (-1, 0, 1)) < tol


REFERENCE = mnist_style(on_paper(seven()))


# -- files that are not images ----------------------------------------------------
def test_non_images_and_damaged_images_are_refused_in_one_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    whole = png_file(tmp_path, on_paper(seven()), "whole.png").read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[:len(whole) // 2])
    jpeg = io.BytesIO()
    Image.fromarray(on_paper(seven())).save(jpeg, format="JPEG")
    cut_jpeg = tmp_path / "cut.jpg"
    cut_jpeg.write_bytes(jpeg.getvalue()[:len(jpeg.getvalue()) // 3])
    for path, says in [(text, "not an image"), (empty, "not an image"),
                       (cut, "could not be decoded"), (cut_jpeg, "could not be decoded")]:
        with pytest.raises(UploadError) as caught:
            read_upload(path)
        message = str(caught.value)
        assert says in message and len(message.splitlines()) == 1, message


def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path):
    path = big_png(tmp_path / "huge.png", 10000, 10000)
    start = time.perf_counter()
    with pytest.raises(UploadError, match="10000x10000 pixels .100 megapixels.; the limit is 25"):
        read_upload(path)
    assert time.perf_counter() - start < 0.5           # it was 11 s and 6 GB
    bomb = big_png(tmp_path / "bomb.png", 30000, 30000, rows_of_pixels=False)  # PIL refuses it
    with pytest.raises(UploadError, match="megapixels; the limit is 25"):
        read_upload(bomb)
    assert MAX_PIXELS == 25_000_000


def test_a_large_image_is_shrunk_and_its_digit_found(tmp_path):
    photo = on_paper(seven(2400), paper=235, ink_shade=40)
    path = png_file(tmp_path, np.pad(photo, ((0, 0), (300, 300)), constant_values=235),
                    "large.jpg", quality=90)
    image = read_upload(path)
    assert image.shape == (WORK_SIDE * 2400 // 3000, WORK_SIDE, 4)
    assert close(mnist_style(image), REFERENCE)


# -- what an image holds ----------------------------------------------------------
def test_a_black_digit_on_transparent_paper_is_a_digit_on_white(tmp_path):
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)               # black everywhere ...
    rgba[..., 3] = np.round(255 * seven())                       # ... seen only in the strokes
    for image in (Image.fromarray(rgba),                         # RGBA, gray+alpha, palette
                  Image.fromarray(rgba).convert("LA"),
                  Image.fromarray(rgba).convert("P", palette=Image.Palette.ADAPTIVE)):
        if image.mode == "P":       # a palette image's transparency: one colour, fully clear
            image = Image.fromarray(np.where(seven()[..., None] > 0.5, [0, 0, 0, 255],
                                             [255, 255, 255, 0]).astype(np.uint8)).convert("P")
            image.info["transparency"] = image.getpixel((0, 0))
        path = tmp_path / f"transparent-{image.mode}.png"
        image.save(path)
        digit = mnist_style(read_upload(path))
        assert close(digit, REFERENCE), image.mode


def test_a_16_bit_gray_image_is_scaled_not_clipped(tmp_path):
    gray16 = np.round(65535 * (1 - 0.9 * seven())).astype(np.uint16)   # dark ink, white paper
    path = tmp_path / "deep.png"
    Image.fromarray(gray16).save(path)
    assert Image.open(path).mode.startswith("I")
    assert close(mnist_style(read_upload(path)), REFERENCE)


def test_a_colour_photo_on_noisy_tinted_paper(tmp_path):
    ink = seven()[..., None]
    paper, blue = np.array([240.0, 228, 200]), np.array([30.0, 40, 150])
    photo = paper + ink * (blue - paper) + np.random.default_rng(0).normal(0, 4, (280, 280, 3))
    path = png_file(tmp_path, np.clip(np.round(photo), 0, 255).astype(np.uint8), "photo.jpg")
    digit = mnist_style(read_upload(path))
    rows, cols = np.nonzero(digit)
    assert np.ptp(rows) + 1 == 20                 # the digit, not the noise, fills the 20 px box
    assert close(digit, REFERENCE)


@pytest.mark.parametrize("shade", [0, 128, 255])
def test_a_uniform_image_has_no_digit(shade, tmp_path):
    for image in (np.full((280, 280), shade, np.uint8), np.full((1, 1), shade, np.uint8),
                  np.full((280, 280, 3), shade, np.uint8)):
        assert not mnist_style(image).any()
    path = png_file(tmp_path, np.full((50, 60, 3), shade, np.uint8))
    assert not mnist_style(read_upload(path)).any()


def test_noise_and_specks_are_not_digits():
    blank_photo = on_paper(np.zeros((280, 280)), paper=230, noise=3)
    assert not mnist_style(blank_photo).any()
    speck = np.zeros((280, 280))
    speck[100:110, 150:160] = 1                                   # one brush dot
    assert not mnist_style(on_paper(speck)).any()
    assert not mnist_style(np.full((280, 280, 4), 0, np.uint8)).any()   # all transparent


@pytest.mark.parametrize("contrast", [15, 40, 255])
def test_a_faint_digit_is_still_found(contrast):
    faint = on_paper(seven(), paper=255, ink_shade=255 - contrast)
    assert close(mnist_style(faint), REFERENCE, tol=3)
    light_on_dark = on_paper(seven(), paper=0, ink_shade=contrast)       # MNIST's way round
    assert close(mnist_style(light_on_dark), REFERENCE, tol=3)


def test_a_faint_digit_on_noisy_paper_is_found():
    faint = on_paper(seven(), paper=230, ink_shade=150, noise=3)
    digit = mnist_style(faint)
    rows, _ = np.nonzero(digit)
    assert np.ptp(rows) + 1 == 20 and close(digit, REFERENCE)



def test_a_phone_photo_is_turned_as_its_exif_says(tmp_path):
    turned = Image.fromarray(np.rot90(on_paper(seven())).copy())     # stored a quarter turned
    exif = Image.Exif()
    exif[274] = 6                                  # EXIF orientation 6: view it turned back
    path = tmp_path / "phone.jpg"
    turned.save(path, exif=exif, quality=95)
    assert close(mnist_style(read_upload(path)), REFERENCE)
