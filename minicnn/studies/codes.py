"""Code vectors and interpreters: what the penultimate layer says about an image.

Cut a trained classifier before its last dense layer and each image becomes a
code vector (256 numbers for ``keras_cnn``, 1024 for ``lenet``, 16 for
``tiny_cnn``): the ReLU'd activations the final ``logits = W code + b`` reads.
Two questions, after the seed's talk:

- What do the codes look like? Project them on their two principal axes (PCA)
  and colour the points by class: the classes form separate clouds.
- How much of the network's skill is in the codes? Train other classifiers
  ("interpreters") on the training codes and score them on the test codes:
  minicnn's own softmax (one ``Dense`` + ``SoftmaxCrossEntropy`` + Adam) always;
  an SVM, a random forest, gradient boosting and a decision tree through
  scikit-learn when it is installed (``pip install -e .[studies]``).

PCA, for codes ``X (N, D)`` with mean ``m``: ``X - m = U S V^T`` (thin SVD);
the principal axes are the first rows of ``V^T``, the coordinates
``(X - m) V[:, :k]`` and the variance along axis ``i`` is ``S_i^2 / (N - 1)``.
"""
import time
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy
from ..files.atomic import save_figure
from ..layers import Dense, Sequential
from ..training.inference import chunks, eval_forward
from .transfer import accuracy, train_steps


def code_layer(model):
    """Index of the last ``Dense`` layer: ``model[:index]`` computes the codes."""
    dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]
    if not dense:
        raise ValueError("code vectors need a model that ends in a Dense classifier")
    return dense[-1]


def code_vectors(model, images, batch_size=500):
    """``images (N, C, H, W)`` -> codes ``(N, D)`` as float32 NumPy (eval mode, the
    model is left as it was). ``D`` is the last dense layer's ``in_features``."""
    out = [as_numpy(c).astype(np.float32)
           for c in eval_forward(model, chunks(images, batch_size), stop=code_layer(model))]
    width = model.layers[code_layer(model)].in_features
    return np.concatenate(out) if out else np.zeros((0, width), np.float32)


@dataclass
class PCA:
    """Principal axes of a set of rows: ``mean (D,)``, ``components (k, D)``
    (orthonormal rows, each signed so that its largest entry is positive),
    ``variance (k,)`` along each axis and ``ratio (k,)`` its share of the total."""
    mean: np.ndarray
    components: np.ndarray
    variance: np.ndarray
    ratio: np.ndarray

    def transform(self, x):
        """Coordinates ``(N, k)`` of rows ``x (N, D)`` on the principal axes."""
        return (np.asarray(x, np.float64) - self.mean) @ self.components.T


def pca(x, k=2):
    """The ``k`` principal axes of ``x (N, D)`` by a thin SVD of the centred data."""
    x = np.asarray(as_numpy(x), np.float64)
    if x.ndim != 2 or len(x) < 2 or not 1 <= k <= min(x.shape):
        raise ValueError(f"pca needs x of shape (N >= 2, D) and 1 <= k <= min(N, D), "
                         f"got shape {x.shape} and k={k}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:k]
    # an axis has no direction: fix one (largest entry positive) so results repeat
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    power = s ** 2
    return PCA(mean, components, power[:k] / (len(x) - 1), power[:k] / power.sum())


def standardize(train, *others):
    """Scale every feature by the training mean and std (constant features kept at 0);
    returns the scaled ``train`` and ``others``. The softmax and the SVM like
    unit-scale inputs; the trees do not care."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train,) + others]


def train_softmax(codes, labels, num_classes=None, epochs=10, batch_size=128, lr=1e-2, seed=0):
    """minicnn's own interpreter: ``Sequential([Dense(D, K)])`` trained with
    softmax cross-entropy and Adam on ``codes (N, D)``, ``labels (N,)``. The problem is
    convex and the codes standardized, so a large step (lr 1e-2) is safe; 1e-3 left
    MNIST codes under-fitted after 10 epochs."""
    codes, labels = np.asarray(codes, np.float32), np.asarray(labels)
    k = int(num_classes or labels.max() + 1)
    model = Sequential([Dense(codes.shape[1], k, init="glorot", seed=seed)])
    steps = max(1, epochs * int(np.ceil(len(codes) / batch_size)))
    train_steps(model, codes, labels, steps, batch_size=batch_size, lr=lr, seed=seed)
    return model


INTERPRETERS = ("softmax", "svm", "random_forest", "gradient_boosting", "decision_tree")
TITLES = {"network": "the network itself", "softmax": "softmax (minicnn Dense + Adam)",
          "svm": "SVM (RBF kernel)", "random_forest": "random forest (100 trees)",
          "gradient_boosting": "gradient boosting (histogram, 100 rounds)",
          "decision_tree": "decision tree"}


def _sklearn_classifier(name, seed):
    """A fresh scikit-learn classifier, imported only now (an optional extra)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier
    return {"svm": lambda: SVC(kernel="rbf"),
            "random_forest": lambda: RandomForestClassifier(100, random_state=seed, n_jobs=1),
            "gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=100,
                                                                        random_state=seed),
            "decision_tree": lambda: DecisionTreeClassifier(random_state=seed)}[name]()


def _thread_limit(threads):
    """A context capping native thread pools to ``threads`` (no-op for None)."""
    import contextlib
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # installed with scikit-learn
    return threadpool_limits(limits=int(threads))


@dataclass
class InterpreterScore:
    """One row of the table; ``accuracy`` is ``None`` when the classifier was skipped."""
    name: str
    accuracy: float
    seconds: float
    note: str = ""


def interpreter_scores(train_codes, train_labels, test_codes, test_labels,
                       names=INTERPRETERS, softmax_epochs=10, seed=0, threads=None):
    """Train each interpreter in ``names`` on the (standardized) training codes and
    score it on the test codes. scikit-learn ones are skipped, with a note saying
    so, when scikit-learn is not installed. ``threads`` caps scikit-learn's
    OpenMP/BLAS threads (on a busy shared machine, boosting's spinning threads
    can make it many times slower). Returns a list of ``InterpreterScore``."""
    unknown = set(names) - set(INTERPRETERS)
    if unknown:
        raise ValueError(f"unknown interpreters {sorted(unknown)}; choose from {INTERPRETERS}")
    x_train, x_test = standardize(np.asarray(train_codes, np.float32),
                                  np.asarray(test_codes, np.float32))
    y_train, y_test = np.asarray(train_labels), np.asarray(test_labels)
    try:
        import sklearn  # noqa: F401  (only to know whether the optional extra is there)
        missing = None
    except ImportError:
        missing = "skipped: scikit-learn is not installed (pip install -e .[studies])"
    scores = []
    for name in names:
        start = time.perf_counter()
        if name == "softmax":
            model = train_softmax(x_train, y_train, epochs=softmax_epochs, seed=seed)
            acc = accuracy(model, x_test, y_test)
        elif missing:
            scores.append(InterpreterScore(name, None, 0.0, missing))
            continue
        else:
            with _thread_limit(threads):
                clf = _sklearn_classifier(name, seed).fit(x_train, y_train)
                acc = float((clf.predict(x_test) == y_test).mean())
        scores.append(InterpreterScore(name, acc, time.perf_counter() - start))
    return scores


def format_scores(scores, network_accuracy=None):
    """A Markdown table: classifier, test accuracy in percent, training seconds."""
    lines = ["| classifier on the codes | test accuracy | fit time |", "|---|---|---|"]
    if network_accuracy is not None:
        lines.append(f"| {TITLES['network']} | {100 * network_accuracy:.2f}% | |")
    for s in scores:
        acc = s.note if s.accuracy is None else f"{100 * s.accuracy:.2f}%"
        lines.append(f"| {TITLES.get(s.name, s.name)} | {acc} | {s.seconds:.1f} s |")
    return "\n".join(lines)


def draw_code_pca(points, labels, class_names=None, ax=None, title="code vectors, PCA",
                  path=None):
    """Scatter ``points (N, 2)`` coloured by ``labels (N,)`` on ``ax`` (a new figure
    if none); written to ``path`` if given. Returns the ``Figure``."""
    import matplotlib
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(7, 6)).add_subplot()
    labels = np.asarray(labels)
    cmap = matplotlib.colormaps["tab10"]
    for c in np.unique(labels):
        pts = points[labels == c]
        name = class_names[c] if class_names else str(c)
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.5, color=cmap(int(c) % 10), label=name)
    ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    ax.set_title(title)
    return save_figure(ax.figure, path, dpi=90)
