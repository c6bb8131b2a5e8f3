"""``minicnn explore RUN_DIR``: the explorer on a run folder's ``model.npz``.

The run's ``config.json`` names its dataset: its test images feed the pickers
and its training images the top-9 scan (cached in ``RUN_DIR/explore/``). The
data is never downloaded here: without it the app still runs on drawings and
uploads, and says so.
"""
import json
import os
import sys

from ..checkpoint import MODEL, repair_run
from ..cli_common import number_option
from ..config import Limits
from ..train import CONFIG

PORTS = Limits(1, 65535, whole=True)


def add_arguments(p):
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (made by minicnn train)")
    p.add_argument("--port", type=number_option(PORTS), default=7860, help="(default 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="(default cpu)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the dataset files (or with mnist/ and fashion-mnist/); "
                        "default: $MINICNN_DATA, then the download cache")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")


def run(args):
    """Load the run, start the scan and serve until interrupted; the exit status."""
    from . import gradio_missing
    hint = gradio_missing()
    if hint:
        print(hint, file=sys.stderr)
        return 1
    # No usage reports from this program (Gradio reads this when it is imported).
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from .. import load_model
    from ..cli_common import CLASS_NAMES
    from ..backend import check_device
    from . import app
    repair_run(args.run_dir)       # model.npz as the checkpoint says, after a kill
    path = os.path.join(args.run_dir, MODEL)
    if not os.path.exists(path):
        return _error(f"no {MODEL} in {args.run_dir!r}: pass a run folder made by "
                      f"`minicnn train --out RUN_DIR` (after its first epoch)")
    try:
        check_device(args.device)
        model = load_model(path)
    except (ValueError, RuntimeError) as err:
        return _error(str(err))
    dataset = _dataset(args.run_dir)
    train_images, test_data = _data(dataset, args.data_dir)
    try:
        app(model, CLASS_NAMES.get(dataset), test_data, train_images,
            cache_dir=os.path.join(args.run_dir, "explore"), host=args.host, port=args.port,
            open_browser=not args.no_browser, device=args.device, block=True)
    except KeyboardInterrupt:
        pass
    return 0


def _dataset(run_dir):
    try:
        with open(os.path.join(run_dir, CONFIG)) as f:
            return json.load(f).get("dataset", "mnist")
    except (OSError, ValueError):
        return "mnist"


def _data(dataset, data_dir):
    """``(train_images, (test_images, test_labels))``, or ``(None, None)`` with a note."""
    from ..data import load_dataset
    try:
        (x, _), test = load_dataset(dataset, root=data_dir, download=False)
        return x, test
    except (OSError, ValueError) as err:
        print(f"minicnn explore: no {dataset} data ({str(err).splitlines()[0]}); drawing and "
              f"uploads work, test images and top-9 patches need --data-dir DIR",
              file=sys.stderr)
        return None, None


def _error(message):
    print(f"minicnn explore: error: {message}", file=sys.stderr)
    return 1
