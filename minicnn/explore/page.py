"""The web page: Gradio components wired to ``views`` (the arrays) and ``scan``
(the slow, cached work). Nothing here computes anything about the network.

One lock serializes every use of the model: Gradio runs event handlers in
threads, and a layer keeps what its backward pass needs from its last forward
pass, so two passes must never interleave.

Every input becomes a digit and a note (``None`` and why for an upload that
cannot be used); an all-zero digit (``preprocess`` found no digit) is shown as
"no digit found" instead of a prediction.
"""
import threading

import numpy as np

from .. import viz
from ..viz.probe import layer_name
from . import views
from .gradio_cache import atomic_image_cache
from .preprocess import mnist_style, model_input
from .sections import CSS as SECTIONS_CSS
from .sections import Backward, Conservation, ReportCard
from .upload import UploadError, read_upload, upload_image

NO_DIGIT = "no digit found"
NO_DIGIT_NOTE = (f"**{NO_DIGIT}**: nothing in the image stands out from the paper, or the ink "
                 f"is only a speck (draw or upload a digit)")

# Small images are shown large, without blurring: one value stays one square.
CSS = "#seen img, #field img, #projection img, #top9 img, #top9proj img, #fmaps img, "\
      "#filters img, #attributions img {image-rendering: pixelated;} "\
      "#seen img, #field img, #projection img, #top9 img, #top9proj img "\
      "{width: 100%; height: 100%; object-fit: contain;} "\
      "#attributions .caption-label {white-space: normal; max-width: 95%;} " + SECTIONS_CSS


def build(model, class_names=None, test_data=None, scans=None, title="minicnn explore",
          run_dir=None, card=None):
    """The ``gradio.Blocks`` page for ``model`` (not launched).

    ``class_names``: one name per output of the model (default, or when they do
    not fit the model, the output indices); ``test_data``: ``(images uint8
    (N, 28, 28), labels)`` for the test-image picker, or ``None``; ``scans``: a
    started ``scan.Scans`` (misclassified images, top-9 patches), or ``None``;
    ``run_dir``: the run folder whose ``report-card.md`` is shown, and ``card`` a
    ``card.CardJob`` that computes it on request (or ``None``).
    """
    atomic_image_cache()          # identical images shown again: see gradio_cache.py
    import gradio as gr
    lock = threading.Lock()
    names = views.class_names(model, class_names)[0]
    fmap_layers = [f"{f.name} {f.shape}" for f in viz.receptive_fields(model)]
    spatial = views.spatial_layers(model)
    first_conv = next((i for i in spatial if getattr(model.layers[i], "weight", None)), None)

    def fast(digit, layer):
        """The 28x28 image, probabilities and one layer's maps: on every stroke."""
        if digit is None:
            return None, None, None, None
        if not digit.any():
            return digit, NO_DIGIT, None, None
        with lock:
            maps = views.forward(model, model_input(digit))
        probs = views.probabilities(model, maps, names)
        grid_rgb, grid = views.layer_maps(maps[_index(layer)])
        return digit, probs, grid_rgb, grid

    def slow(digit, target):
        if digit is None or not digit.any():
            return [], []
        with lock:
            maps = views.attribution_maps(model, model_input(digit), _target(target))
        maps = [(image, title) for title, image in maps]       # Gallery: (image, caption)
        return maps, maps

    def last(digit, target, maps):
        if digit is None or not digit.any():
            return []
        with lock:
            title, image = views.occlusion_map(model, model_input(digit), _target(target))
        return maps + [(image, title)]

    def _target(t):
        return None if t in (None, "predicted") else names.index(t)

    def unit(digit, layer, grid, evt: gr.SelectData):
        picked = grid.unit_at(*evt.index) if grid is not None else None
        if digit is None or not digit.any() or picked is None:
            return (gr.skip(),) * 6
        i = _index(layer)
        channel, y, x = picked
        position = (y, x) if i in spatial else None
        with lock:
            field, proj = views.unit_views(model, model_input(digit), digit, i, channel, position)
        where = f"at (y={y}, x={x})" if position else "(a dense unit: no position)"
        text = f"**unit** layer {layer_name(model, i)}, channel {channel} {where}"
        crops, crops_proj, waiting = None, None, None
        found = scans.patches(i) if scans is not None else None
        if found is not None:
            crops, crops_proj = views.top_patch_images(found, channel)
        elif position is not None and scans is None:
            text += " -- top-9 patches: not scanned (no training data)"
        elif position is not None:        # ``status`` shows them when the scan has them
            waiting = (i, channel, text)
            text += " -- top-9 patches: the scan has not reached this layer yet; they appear here"
        return text, field, proj, crops, crops_proj, waiting

    def from_test(index):
        if test_data is None or index is None:
            return gr.skip(), gr.skip()
        index = int(np.clip(index, 0, len(test_data[0]) - 1))
        return np.asarray(test_data[0][index], dtype=np.uint8), ""

    def from_wrong(choice):
        return from_test(int(choice.split(":")[0])) if choice else (gr.skip(), gr.skip())

    def name(k):
        return names[k] if 0 <= k < len(names) else str(k)

    def status(listed, waiting):
        """The scan's progress; the misclassified list once (``listed``: sent already);
        the top-9 patches of a unit clicked before the scan had them (``waiting``)."""
        if scans is None:
            return ("top-9 patches: no training data given", gr.skip(), listed,
                    gr.Timer(active=False)) + (gr.skip(),) * 3 + (None,)
        done, total, what = scans.progress()       # first: "done" means all patches are in
        unit_patches = (gr.skip(),) * 3
        if waiting is not None and scans.patches(waiting[0]) is not None:
            layer_index, channel, text = waiting
            unit_patches = (text, *views.top_patch_images(scans.patches(layer_index), channel))
            waiting = None
        wrong = gr.skip()
        if scans.misclassified is not None and not listed:
            listed = True
            wrong = gr.Dropdown(choices=[f"{i}: {name(l)} seen as {name(p)}"
                                         for i, l, p in scans.misclassified])
        finished = what in ("done", "failed", "stopped")
        text = (f"scan failed: {scans.error}" if scans.error else
                f"scan: <progress value='{done}' max='{max(total, 1)}'></progress> "
                f"{done}/{total} images, {what}")
        return (text, wrong, listed, gr.Timer(active=not finished)) + unit_patches + (waiting,)

    with gr.Blocks(title=title, analytics_enabled=False) as page:
        digit = gr.State(None)
        grid = gr.State(None)
        maps = gr.State([])
        gr.Markdown(f"# {title}\nDraw a digit (pick the brush first), or choose a test image "
                    f"or upload one. Colours: red positive, white zero, blue negative.")
        with gr.Row():
            with gr.Column(scale=2):
                with gr.Tab("Draw"):
                    pad = gr.Sketchpad(elem_id="pad", canvas_size=(280, 280), type="numpy",
                                       brush=gr.Brush(default_size=14, colors=["#000000"],
                                                      color_mode="fixed"),
                                       layers=False, label="draw a digit")
                with gr.Tab("Test image"):
                    index = gr.Number(label="test image index (then Enter)", value=0, precision=0,
                                      elem_id="test_index", interactive=test_data is not None)
                    wrong = gr.Dropdown(label="misclassified test images", choices=[],
                                        elem_id="wrong")
                with gr.Tab("Upload"):
                    upload = upload_image(sources=["upload", "clipboard"],
                                          label="an image of a digit", elem_id="upload")
                note = gr.Markdown("", elem_id="note")
            with gr.Column(scale=1):
                seen = gr.Image(label="what the network sees (28x28)", format="png",
                                elem_id="seen", interactive=False, height=224)
                probs = gr.Label(num_top_classes=len(names), label="class probabilities",
                                 elem_id="probs")
        gr.Markdown("## Feature maps: click a unit")
        layer = gr.Dropdown(choices=fmap_layers, value=fmap_layers[0], label="layer (shape)",
                            elem_id="layer")
        fmaps = gr.Image(label="channels", format="png", elem_id="fmaps", interactive=False)
        unit_text = gr.Markdown("click a unit in the maps above", elem_id="unit_text")
        with gr.Row():
            field = gr.Image(label="its receptive field", format="png", elem_id="field",
                             height=224)
            proj = gr.Image(label="its deconvnet projection", format="png",
                            elem_id="projection", height=224)
            top9 = gr.Image(label="top-9 training patches", format="png", elem_id="top9",
                            height=224)
            top9proj = gr.Image(label="their projections", format="png", elem_id="top9proj",
                                height=224)
        scan_text = gr.HTML("", elem_id="scan")
        gr.Markdown("## Attribution: which pixels matter for the class")
        target = gr.Dropdown(choices=["predicted"] + names, value="predicted",
                             label="explain the class")
        gallery = gr.Gallery(label="every method of minicnn.viz", columns=8, format="png",
                             elem_id="attributions", height=200)     # one row of 8 maps
        gr.Markdown(views.attribution_legend(model), elem_id="legend")
        backward = Backward(model, lock, _target, digit, target)
        conservation = Conservation(model, lock, _target, digit, target)
        if first_conv is not None:
            gr.Markdown(f"## Filters of layer {layer_name(model, first_conv)} (inputs summed)")
            gr.Image(views.filters_image(model, first_conv), format="png", elem_id="filters",
                     show_label=False, interactive=False)
        ReportCard(run_dir, card).wire(page)

        outputs = [seen, probs, fmaps, grid]

        def chain(event):       # the quick views first: docs/how-to/explore.md, "Speed (measured)"
            event = backward.then(event)
            event = event.then(slow, [digit, target], [gallery, maps],
                               trigger_mode="always_last").then(last, [digit, target, maps],
                                                                gallery)
            conservation.then(event)

        def set_digit(source, fn, inputs):
            ev = source(fn, inputs, [digit, note], trigger_mode="always_last") \
                .then(fast, [digit, layer], outputs)
            chain(ev)

        set_digit(pad.change, _drawn, pad)
        set_digit(upload.change, from_upload, upload)
        set_digit(index.submit, from_test, index)
        set_digit(wrong.change, from_wrong, wrong)
        layer.change(fast, [digit, layer], outputs)
        chain(target.change(lambda: None, None, None))
        waiting = gr.State(None)
        fmaps.select(unit, [digit, layer, grid],
                     [unit_text, field, proj, top9, top9proj, waiting])
        timer = gr.Timer(1.0)
        listed = gr.State(False)
        timer.tick(status, [listed, waiting],
                   [scan_text, wrong, listed, timer, unit_text, top9, top9proj, waiting])
    return page


def _with_note(digit):
    return digit, ("" if digit.any() else NO_DIGIT_NOTE)


def _drawn(value):
    """A Sketchpad value -> ``(digit, note)``; ``(None, "")`` for an untouched canvas."""
    if value is None or value.get("composite") is None:
        return None, ""
    return _with_note(mnist_style(value))


def from_upload(file):
    """An uploaded file (a path or a file object, as ``upload_image`` hands it over)
    -> ``(digit, note)``: the MNIST-style digit, or ``None`` and why in one line."""
    if file is None:
        return None, ""
    try:
        return _with_note(mnist_style(read_upload(file)))
    except UploadError as err:
        return None, f"**upload:** {err}"


def _index(layer_choice):
    return int(str(layer_choice).split()[0])


