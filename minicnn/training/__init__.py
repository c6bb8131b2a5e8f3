"""Training a model: the ``Trainer`` and what a run needs around it.

==================  ==============================================================
``trainer``         the loop, the evaluation pass, checkpoints and resume
``config``          ``TrainConfig``: the settings, their limits, recipes; the
                    optimizer and schedule they build
``run_folder``      ``RunFolder``: a run's folder, the one place its files are named
``checkpoint``      a run's checkpoint: a model file plus the training state
                    (``checkpoint_checks``: every entry checked before use)
``validation``      the held-out split and the best epoch by it
``divergence``      NaN / exploding losses and bad labels, in one line each
``progress``        the progress bar; ``reporting``: metrics, curves, confusion
``inference``       the one eval-mode forward over many batches; ``ensemble``:
                    test-time augmentation and averaged runs
==================  ==============================================================
"""
from .config import TrainConfig
from .trainer import Trainer, evaluate

__all__ = ["Trainer", "TrainConfig", "evaluate"]
