"""Files that cannot lose or lie: atomic writes (``atomic``), one process per folder
(``locks``), no blocking on special files (``regular``), and the model file format
(``model_files``: ``save_model``, ``load_model``, ``load_weights``)."""
from .model_files import load_model, load_weights, save_model

__all__ = ["save_model", "load_model", "load_weights"]
