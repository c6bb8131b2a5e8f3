"""``minicnn explore``: draw a digit and watch your own network think, in the browser.

    minicnn explore RUN_DIR            # the command line (see minicnn.explore.command)
    minicnn.explore.app(model)         # Python, inline in a Jupyter notebook too

A local web page (Gradio, the optional extra ``pip install -e .[explore]``)
on one trained model: draw, pick a test image or upload one; see the 28x28
image the network sees, its class probabilities, every layer's feature maps,
every attribution method of ``minicnn.viz`` side by side, and, for a clicked
unit, its receptive field, its deconvnet projection and its top-9 training
patches. It runs offline: no analytics, no share link, bound to 127.0.0.1.

Modules, one concern each: ``preprocess`` (drawing -> MNIST-style digit),
``views`` (the arrays shown, all from ``minicnn.viz``), ``scan`` (the slow,
cached work in a background thread), ``app`` (the Gradio wiring),
``command`` (the ``minicnn explore`` command).
"""
INSTALL_HINT = "minicnn explore needs Gradio: pip install -e .[explore]  (or: pip install gradio)"
OFFLINE = dict(share=False, ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False)


def gradio_missing():
    """``INSTALL_HINT`` when Gradio cannot be imported, else ``None``."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return None


def theme():
    """Gradio's default theme with the system's fonts: nothing to fetch for the page."""
    import gradio as gr
    return gr.themes.Default(font=["system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def app(model, class_names=None, test_data=None, train_images=None, cache_dir=None,
        host="127.0.0.1", port=None, open_browser=False, device="cpu", block=None,
        progress=True):
    """Build and launch the explorer on ``model`` (a trained ``Sequential`` for 1x28x28
    inputs); returns the launched ``gradio.Blocks``.

    ``test_data``: ``(images uint8 (N, 28, 28), labels)`` for the test-image and
    misclassified pickers; ``train_images`` uint8 ``(N, 28, 28)`` for the top-9
    patches (scanned in the background, cached in ``cache_dir`` if given);
    ``host``/``port``: where to serve (loopback only, unless told otherwise);
    ``block``: wait until the server stops (default: yes in a script, no in a
    notebook or an interactive session, as Gradio decides).
    """
    hint = gradio_missing()
    if hint:
        raise ImportError(hint)
    from .app import CSS, build
    from .scan import Scans
    model = model.to(device)
    scans = None
    if train_images is not None or test_data is not None:
        scans = Scans(model, train_images, test_data, cache_dir, progress=progress).start()
    page = build(model, class_names, test_data, scans)
    options = dict(OFFLINE, server_name=host, server_port=port, inbrowser=open_browser,
                   theme=theme(), css=CSS, quiet=False)
    if block is not None:
        options["prevent_thread_lock"] = not block
    page.launch(**options)
    return page


__all__ = ["app", "gradio_missing", "INSTALL_HINT"]
