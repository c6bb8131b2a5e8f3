"""``minicnn explore``: draw a digit and watch your own network think, in the browser.

    minicnn explore RUN_DIR            # the command line (see minicnn.explore.command)
    minicnn.explore.app(model)         # Python, inline in a Jupyter notebook too

A local web page (Gradio, the optional extra ``pip install -e .[explore]``)
on one trained model: draw, pick a test image or upload one; see the 28x28
image the network sees, its class probabilities, every layer's feature maps,
every attribution method of ``minicnn.viz`` side by side, and, for a clicked
unit, its receptive field, its deconvnet projection and its top-9 training
patches; the backward pass layer by layer with each layer's check, where LRP,
DeepLIFT and integrated gradients keep relevance, and the run's report card.
It runs offline: no analytics, no share link, bound to 127.0.0.1.

Modules, one concern each: ``preprocess`` (drawing -> MNIST-style digit),
``views`` (the arrays shown, all from ``minicnn.viz``), ``scan`` (the slow,
cached work in a background thread), ``page`` (the Gradio wiring),
``command`` (the ``minicnn explore`` command), ``upload`` (uploaded files);
``backward_views`` (the backward pass's images), ``sections`` (their parts of the
page and the report card's), ``card`` (the report card in the background).
"""
import errno
import socket
import sys
import time

INSTALL_HINT = "minicnn explore needs Gradio: pip install -e .[explore]  (or: pip install gradio)"
OFFLINE = dict(share=False, ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False)


def gradio_missing():
    """``INSTALL_HINT`` when Gradio cannot be imported, else ``None``."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return None


class AddressError(OSError):
    """The page cannot listen where it was told to; ``str(err)`` is one line."""

    def __str__(self):
        return self.strerror


def check_address(host, port):
    """Raise ``AddressError`` (one line: why, and what to pass instead) unless a
    server can listen on ``host:port`` now. Gradio answers every such failure
    with "Cannot find empty port" and a traceback; this says which it is."""
    if not 0 <= port <= 65535:
        raise AddressError(errno.EINVAL, f"--port {port} is not a port: pass one from 1024 "
                           f"to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise AddressError(errno.EADDRNOTAVAIL, f"--host {host!r} is not an address or a known "
                           f"name ({err}): use 127.0.0.1 (this machine only) or 0.0.0.0") from None
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as the server does
        try:
            s.bind(address)
        except OSError as err:
            raise AddressError(err.errno, _bind_failure(host, port, err)) from None


def _bind_failure(host, port, err):
    if err.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is in use (another minicnn explore?): stop that "
                f"program, or pass another --port")
    if err.errno == errno.EADDRNOTAVAIL:
        return (f"--host {host} is not an address of this machine: use 127.0.0.1 (this "
                f"machine only) or 0.0.0.0 (every network it is on)")
    if err.errno == errno.EACCES:
        return f"port {port} needs administrator rights here: pass a --port from 1024 up"
    return f"cannot listen on {host}:{port} ({err.strerror or err}): pass another --host or --port"


def theme():
    """Gradio's default theme with the system's fonts: nothing to fetch for the page."""
    import gradio as gr
    return gr.themes.Default(font=["system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def app(model, class_names=None, test_data=None, train_images=None, cache_dir=None,
        host="127.0.0.1", port=None, open_browser=False, device="cpu", block=None,
        progress=True, run_dir=None):
    """Build and launch the explorer on ``model`` (a trained ``Sequential`` for 1x28x28
    inputs); returns the launched ``gradio.Blocks``.

    ``test_data``: ``(images uint8 (N, 28, 28), labels)`` for the test-image and
    misclassified pickers; ``train_images`` uint8 ``(N, 28, 28)`` for the top-9
    patches (scanned in the background, cached in ``cache_dir`` if given);
    ``run_dir``: the run folder of ``model``, whose ``report-card.md`` is shown (with
    ``test_data``, a button computes it: ``minicnn report-card``'s own function);
    ``host``/``port``: where to serve (loopback only, unless told otherwise;
    ``port=None``: the first free one from 7860); ``block``: serve until Ctrl-C
    (default: yes in a script, no in a notebook or an interactive session).

    Raises ``ValueError`` for a model the page cannot show (``views.check_model``)
    and ``AddressError`` where it cannot listen, each with a one-line message.
    Prints one line with the page's address (Gradio's own lines, among them a
    hint about public links that this page never makes, are silenced).
    """
    hint = gradio_missing()
    if hint:
        raise ImportError(hint)
    from . import views
    from .card import CardJob
    from .page import CSS, build
    from .scan import Scans
    views.check_model(model)
    class_names, note = views.class_names(model, class_names)
    if note:
        print(f"minicnn explore: {note}", file=sys.stderr)
    if port is not None:
        check_address(host, port)
    model = model.to(device)
    scans = None
    if train_images is not None or test_data is not None:
        scans = Scans(model, train_images, test_data, cache_dir, progress=progress).start()
    card = CardJob(run_dir, test_data, device) if run_dir and test_data is not None else None
    page = build(model, class_names, test_data, scans, run_dir=run_dir, card=card)
    try:
        page.launch(**OFFLINE, server_name=host, server_port=port, inbrowser=open_browser,
                    theme=theme(), css=CSS, quiet=True, prevent_thread_lock=True)
    except OSError as err:           # taken between the check and the launch
        raise AddressError(err.errno, f"cannot listen on {host}:{port}: "
                           f"{str(err).splitlines()[0]}") from None
    print(f"minicnn explore: the page is at {page.local_url} (Ctrl-C stops it)", flush=True)
    if block is None:
        block = not (hasattr(sys, "ps1") or sys.flags.interactive or _in_ipython())
    if block:
        _serve(page, scans)
    return page


def _in_ipython():
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


def _serve(page, scans=None):
    """Wait while ``page`` serves; Ctrl-C stops the scan, closes the page and returns."""
    try:
        while page.is_running:
            time.sleep(0.1)
    except KeyboardInterrupt:
        if scans is not None:
            scans.stop()
        page.close(verbose=False)
        print("minicnn explore: stopped", file=sys.stderr)


__all__ = ["app", "check_address", "AddressError", "gradio_missing", "INSTALL_HINT"]
