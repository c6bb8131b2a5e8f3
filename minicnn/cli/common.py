"""What the ``minicnn`` subcommands share: the usage error, the data folder of a run,
and turning bad settings into usage errors."""
import argparse
import os

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


class UsageError(Exception):
    """A bad argument or a missing input; printed as ``minicnn: error: ...``."""


def load_data(dataset, data_dir, splits=("train", "test")):
    """``minicnn.data.load_data``, its ``DataError`` (the one line that says what to do)
    printed as a usage error."""
    from ..data import DataError
    from ..data import load_data as load
    try:
        return load(dataset, data_dir, splits=splits)
    except DataError as err:
        raise UsageError(str(err)) from None


def _data_folder(config, data_dir, run_dir, splits=("train", "test")):
    """The absolute folder to read a run's data from: ``--data-dir`` when given,
    else the folder the run recorded (``config["data_dir"]``), else the usual search
    ($MINICNN_DATA, then the download cache). Only the files of ``splits`` are needed."""
    from ..data import DataError, find_data
    recorded = config.get("data_dir") if data_dir is None else None
    try:
        return find_data(config["dataset"], recorded or data_dir, splits=splits)
    except DataError as err:
        if not recorded:
            raise UsageError(str(err)) from None
        raise UsageError(f"the run's data folder {recorded} (recorded in "
                         f"{os.path.join(run_dir, 'config.json')}) no longer serves it: "
                         f"{str(err).removeprefix('--data-dir: ')}; pass --data-dir DIR "
                         f"to read the data from elsewhere") from None


def _or_usage(build):
    """Turn the ValueErrors and RuntimeErrors of bad settings (unknown model, no GPU)
    into UsageErrors."""
    try:
        return build()
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None


def number_option(limits):
    """An argparse type for a number within ``limits`` (a ``minicnn.training.config.Limits``, or
    the name of one of ``LIMITS``: the same check ``TrainConfig.validate`` applies)."""
    from ..training.config import LIMITS
    limits = LIMITS[limits] if isinstance(limits, str) else limits

    def parse(text):
        try:
            value = int(text) if limits.whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {limits}, got {text!r}") from None
        try:
            return limits.check(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse
