"""Gradio's image cache, written atomically: a workaround that ``page.build`` applies.

Gradio (6.x) saves every image output into its cache folder under a hash of its bytes,
writing the file in place (truncate, then write) even when it is already there. The
page shows the same image again and again (the first layer's filters on every stroke,
a digit uploaded twice), so the browser can be fetching a file while the next event
rewrites it: the server then fails with "Too much data for declared Content-Length"
and prints a traceback in the terminal. Gradio already writes its other cached files
under a temporary name and renames them into place; ``atomic_image_cache`` makes its
image writer do the same, and leaves a file that is already there alone (its name is
the hash of its bytes). It changes nothing else, and runs once per process.
"""
import os
import threading
from pathlib import Path


def atomic_image_cache():
    """Replace ``gradio.processing_utils.save_pil_to_cache`` by an atomic writer."""
    from gradio import processing_utils as gradio_files
    if getattr(gradio_files.save_pil_to_cache, "minicnn_atomic", False):
        return

    def save_pil_to_cache(img, cache_dir, name="image", format="webp"):
        data = gradio_files.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / gradio_files.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        if not path.exists():                  # the same bytes: nothing to write again
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        return str(path)
    save_pil_to_cache.minicnn_atomic = True
    gradio_files.save_pil_to_cache = save_pil_to_cache
