"""``minicnn explore RUN_DIR``: the explorer on a run folder's ``model.npz``.

The run's ``config.json`` names its dataset: its test images feed the pickers
and its training images the top-9 scan (cached in ``RUN_DIR/explore/``). The
data is never downloaded here: without it the app still runs on drawings and
uploads, and says so. The page shows ``RUN_DIR/report-card.md``, or computes it on
request as ``minicnn report-card`` does. ``RUN_DIR/model.npz`` itself may be given for
RUN_DIR.
Every failure to start (no model, a bad config.json, a port in use, an address
that is not this machine's, no GPU) is one line and exit status 1.
"""
import os
import sys

from ..cli.common import number_option
from ..training.checkpoint import repair_run
from ..training.config import Limits
from ..training.run_folder import CONFIG, MODEL, read_settings

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
    from ..backend import check_device
    from ..cli.common import CLASS_NAMES
    from . import app, check_address, views
    run_dir = args.run_dir
    if os.path.isfile(run_dir) and run_dir.endswith(".npz"):     # the model file itself
        run_dir, path = os.path.dirname(run_dir) or ".", run_dir
    else:
        path = os.path.join(run_dir, MODEL)
    repair_run(run_dir)            # model.npz as the checkpoint says, after a kill
    if not os.path.isfile(path):
        return _error(f"no {MODEL} in {run_dir!r}: pass a run folder made by "
                      f"`minicnn train --out RUN_DIR` (after its first epoch)")
    try:
        check_device(args.device)
        model = load_model(path)
        views.check_model(model)
        dataset = _dataset(run_dir, CLASS_NAMES)
        check_address(args.host, args.port)        # before the data: say it at once
    except (ValueError, RuntimeError, OSError) as err:
        return _error(str(err))
    train_images, test_data = _data(dataset, args.data_dir)
    try:
        app(model, CLASS_NAMES[dataset], test_data, train_images,
            cache_dir=os.path.join(run_dir, "explore"), host=args.host, port=args.port,
            open_browser=not args.no_browser, device=args.device, block=True, run_dir=run_dir)
    except (ValueError, OSError) as err:
        return _error(str(err))
    except KeyboardInterrupt:       # before the page was up (app says it once it is)
        print("minicnn explore: stopped", file=sys.stderr)
    return 0


def _dataset(run_dir, known):
    """The dataset ``run_dir/config.json`` names ("mnist" without the file); a
    ``ValueError`` (one line) when the file is there but says no known one."""
    settings = read_settings(run_dir)
    dataset = "mnist" if settings is None else settings.get("dataset", "mnist")
    if not isinstance(dataset, str) or dataset not in known:
        raise ValueError(f"{os.path.join(run_dir, CONFIG)} names the dataset {dataset!r}; "
                         f"the explorer knows {' and '.join(known)}")
    return dataset


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
