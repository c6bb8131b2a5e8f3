"""Studies of a trained network, after the seed talks; one module per study.

- ``features``: the last dense layer as a library of features (``analyze_dense_features``).
- ``invariance``: pooling and local translation invariance (``pooling_invariance``).
- ``gallery``: every test error in one figure (``misclassified``, ``draw_gallery``).
- ``translation``: class probability against shifts of -5..+5 pixels (``translation_curves``).
- ``codes``: penultimate activations as code vectors, PCA and other classifiers
  (``code_vectors``, ``pca``, ``interpreter_scores``; scikit-learn optional).
- ``transfer``: frozen features reused for new digits and for Fashion-MNIST
  (``digits_transfer``, ``few_labels_transfer``).
- ``segmentation``: pixelwise classification by patches, fully convolutional
  (``patch_outputs``, ``class_map``).
- ``sanity``: Adebayo et al.'s sanity checks of attribution maps, model-parameter and
  data randomization (``cascading_randomization``, ``independent_randomization``,
  ``data_randomization``, ``spearman``).
- ``faithfulness``: deletion and insertion curves (``faithfulness_study``,
  ``perturbation_curves``, ``area_under_curve``).

The example scripts ``examples/study_*.py`` draw each figure; ``docs/studies.md``
holds the measured numbers.
"""
from . import (codes, faithfulness, features, gallery, invariance, sanity, segmentation, transfer,
               translation)

__all__ = ["codes", "faithfulness", "features", "gallery", "invariance", "sanity",
           "segmentation", "transfer", "translation"]
