"""Faithfulness of attribution maps: deletion and insertion curves (Petsiuk et al. 2018).

A map ranks the pixels (largest value first; ties broken in a seeded random order).
With ``P`` pixels and ``steps`` equal steps, step ``s`` changes the first
``round(s P / steps)`` pixels of that order:

- **deletion**: start from the image, set the changed pixels to the background
  (the normalized value of a black pixel); a faithful map makes the target class's
  probability fall fast, so a *low* area under the curve is good;
- **insertion**: start from the all-background image, copy the changed pixels from
  the image; the probability should rise fast, a *high* area is good.

The curve is the softmax probability of the target at each of the ``steps + 1``
points; the area is the trapezoid rule over the fraction of pixels changed, in
[0, 1]. Baselines: a random order, and an edge detector (the Sobel gradient
magnitude of the image), which knows nothing of the model.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy, get_array_module
from ..viz import class_probabilities, resolve_target
from .sanity import BACKGROUND, method_suite


def pixel_order(scores, seed=0):
    """``scores (N, P)`` -> ``positions (N, P)``: where each pixel comes in the order
    (0 = changed first), largest score first, ties in a random order from ``seed``."""
    scores = np.asarray(scores, np.float64)
    n, p = scores.shape
    shuffle = np.random.default_rng(seed).permutation(p)
    order = shuffle[np.argsort(-scores[:, shuffle], axis=1, kind="stable")]
    positions = np.empty((n, p), np.int64)
    np.put_along_axis(positions, order, np.arange(p)[None].repeat(n, 0), axis=1)
    return positions


def perturbation_curves(model, x, scores, target=None, mode="deletion", steps=20,
                        background=BACKGROUND, seed=0, batch_size=256):
    """``(N, steps + 1)`` target probabilities along the deletion or insertion path of
    ``x (N, C, H, W)`` in the order of ``scores (N, H, W)`` or ``(N, C, H, W)`` (summed
    over channels: a pixel is changed in every channel at once). ``target``: as in
    ``minicnn.viz`` (``None``: the class predicted on the clean image)."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"perturbation_curves mode must be 'deletion' or 'insertion', "
                         f"got {mode!r}")
    xp = get_array_module(x)
    n, c, h, w = x.shape
    s = as_numpy(scores).reshape(n, -1, h * w).sum(axis=1)
    where = resolve_target(model, x, target).where
    classes = as_numpy(where[1])
    positions = xp.asarray(pixel_order(s, seed).reshape(n, 1, h, w))
    counts = np.rint(np.arange(steps + 1) * (h * w) / steps).astype(int)
    blank = xp.full_like(x, background)
    first, other = (blank, x) if mode == "deletion" else (x, blank)
    curves = np.empty((n, steps + 1))
    for lo in range(0, n, max(1, batch_size // (steps + 1))):
        hi = min(n, lo + max(1, batch_size // (steps + 1)))
        changed = positions[lo:hi, None] < xp.asarray(counts).reshape(1, -1, 1, 1, 1)
        path = xp.where(changed, first[lo:hi, None], other[lo:hi, None])   # (b, S+1, C, H, W)
        p = as_numpy(class_probabilities(model, path.reshape(-1, c, h, w)))
        curves[lo:hi] = p.reshape(hi - lo, steps + 1, -1)[np.arange(hi - lo), :, classes[lo:hi]]
    return curves


def area_under_curve(curves):
    """Trapezoid area of ``curves (..., steps + 1)`` over the fraction changed, 0..1."""
    curves = np.asarray(curves, np.float64)
    return (curves[..., 1:] + curves[..., :-1]).sum(axis=-1) / (2 * (curves.shape[-1] - 1))


def sobel_magnitude(x):
    """Edge strength ``sqrt(gx^2 + gy^2)`` of ``x (N, C, H, W)`` with the 3x3 Sobel
    kernels (edges padded by repetition), summed over channels: ``(N, H, W)``, NumPy."""
    a = np.pad(as_numpy(x).astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = a.shape[2] - 2, a.shape[3] - 2

    def win(dy, dx):
        return a[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    gx = (win(-1, 1) + 2 * win(0, 1) + win(1, 1)) - (win(-1, -1) + 2 * win(0, -1) + win(1, -1))
    gy = (win(1, -1) + 2 * win(1, 0) + win(1, 1)) - (win(-1, -1) + 2 * win(-1, 0) + win(-1, 1))
    return np.sqrt(gx * gx + gy * gy).sum(axis=1)


@dataclass
class Faithfulness:
    """``names (M,)``: the methods and the two baselines; ``fractions (S + 1,)``;
    ``deletion`` and ``insertion (M, N, S + 1)``: the probability curves; ``targets (N,)``."""
    names: list
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    targets: np.ndarray

    def auc(self):
        """``(deletion, insertion)`` areas, each ``(M, N)``."""
        return area_under_curve(self.deletion), area_under_curve(self.insertion)


def faithfulness_study(model, x, target=None, methods=None, steps=20, seed=0, chunk=50,
                       background=BACKGROUND, progress=None):
    """Deletion and insertion curves of every method of ``methods`` (default
    ``sanity.method_suite(model)``), plus ``"random"`` and ``"Sobel edges"``, on
    ``x (N, C, H, W)``; maps are computed ``chunk`` images at a time.
    ``progress(name)`` is called before each method. A ``Faithfulness``."""
    methods = method_suite(model, background=background) if methods is None else methods
    classes = as_numpy(resolve_target(model, x, target).where[1])
    n = x.shape[0]
    scores = {}
    for name, fn in methods.items():
        if progress is not None:
            progress(name)
        parts = []
        for lo in range(0, n, chunk):
            parts.append(as_numpy(fn(model, x[lo:lo + chunk], classes[lo:lo + chunk])))
        scores[name] = np.concatenate(parts)
    scores["random"] = np.random.default_rng(seed + 1).random((n, *x.shape[2:]))
    scores["Sobel edges"] = sobel_magnitude(x)
    curves = {mode: np.stack([perturbation_curves(model, x, s, classes, mode, steps,
                                                  background, seed)
                              for s in scores.values()])
              for mode in ("deletion", "insertion")}
    return Faithfulness(list(scores), np.arange(steps + 1) / steps, curves["deletion"],
                        curves["insertion"], classes)


def format_table(study):
    """Markdown table: mean (and standard error) deletion and insertion areas per method,
    sorted by insertion minus deletion (best first)."""
    deletion, insertion = study.auc()
    n = deletion.shape[1]
    rows = sorted(range(len(study.names)),
                  key=lambda m: -(insertion[m].mean() - deletion[m].mean()))
    lines = ["| method | deletion AUC (lower is better) | insertion AUC (higher is better) "
             "| insertion - deletion |", "|---|---:|---:|---:|"]
    for m in rows:
        d, i = deletion[m], insertion[m]
        lines.append(f"| {study.names[m]} | {d.mean():.3f} ± {d.std(ddof=1) / np.sqrt(n):.3f} "
                     f"| {i.mean():.3f} ± {i.std(ddof=1) / np.sqrt(n):.3f} "
                     f"| {i.mean() - d.mean():.3f} |")
    return "\n".join(lines)


BASELINE_STYLES = {"random": (":", "black", 2), "Sobel edges": ("-.", "grey", 2)}


def draw_faithfulness(study):
    """A ``matplotlib.figure.Figure`` (no pyplot): mean deletion and insertion curves,
    side by side, and one legend under them (inside a panel it hid curves) with each
    method's mean areas, deletion / insertion."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    axes = fig.subplots(1, 2)
    deletion, insertion = study.auc()
    for ax, curves, title in ((axes[0], study.deletion, "deletion"),
                              (axes[1], study.insertion, "insertion")):
        for m, name in enumerate(study.names):
            style, color, lw = BASELINE_STYLES.get(name, ("-" if m < 10 else "--", f"C{m % 10}",
                                                          1.2))
            ax.plot(study.fractions, curves[m].mean(axis=0), style, color=color, lw=lw,
                    label=f"{name} ({deletion[m].mean():.3f} / {insertion[m].mean():.3f})")
        ax.set_xlabel("fraction of pixels changed")
        ax.set_ylabel("probability of the target class")
        ax.set_title(f"{title}, mean of {curves.shape[1]} test digits", fontsize=9)
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4,
               fontsize=7, title="method (area under the curve: deletion / insertion)",
               title_fontsize=8)
    return fig


__all__ = ["pixel_order", "perturbation_curves", "area_under_curve", "sobel_magnitude",
           "Faithfulness", "faithfulness_study", "format_table", "draw_faithfulness"]
