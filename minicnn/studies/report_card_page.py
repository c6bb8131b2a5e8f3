"""The report card as a page: a markdown table with how to read it, and a figure.

``card`` is ``report_card``'s ``{name: scores}``. Rows are sorted by insertion minus
deletion AUC (best first), as ``faithfulness.format_table`` sorts; the baselines
``random`` and ``Sobel edges`` are rows too, without sanity numbers.
"""
import warnings

import numpy as np

from ..files.atomic import save_figure
from .report_card import IDENTITIES, LARGE, SMALL, sanity_verdict

VERDICT_COLOURS = {"passes": "tab:green", "mixed": "tab:orange", "fails": "tab:red"}

HOW_TO_READ = f"""**How to read this table.** Each row is one attribution method of `minicnn.viz`
explaining each image's predicted class (its pre-softmax logit). *Faithfulness*
(Petsiuk et al. 2018): the map orders the pixels; **deletion** sets them to the background
in that order, **insertion** copies them onto a blank image, and the area under the class's
probability is the score: low deletion and high insertion mean the map found the pixels
the model uses. Rows are sorted by insertion minus deletion; `random` (a random order) and
`Sobel edges` (an edge detector that knows nothing of the model) show what no knowledge of
the model scores. *Sanity* (Adebayo et al. 2018): the mean Spearman rank correlation of
each map with its map on the trained model once the logits layer is re-initialized, and
once every parameter layer is (cascading randomization; *abs*: of the maps' absolute
values). A map that explains the model must change when the model does. The paper gives no
number; the verdict makes the reading of docs/studies.md explicit with Cohen's bounds:
**passes** below {SMALL} with every layer random and below {LARGE} with the logits random,
**fails** at {LARGE} or more with every layer random (or with the logits random while
staying at {SMALL} or more), **mixed** otherwise. Sanity and faithfulness measure different
things: a map that only finds the strokes (guided backprop, excitation backprop) can fail
sanity and still delete well. *Identity*: the mean absolute residual of the identity that
defines the method (integrated gradients' completeness shrinks as its nodes grow; DeepLIFT
sums to the logit's change; LRP-0 equals gradient x input on a ReLU net); where LRP keeps or
loses relevance layer by layer: `minicnn.viz.relevance_by_layer`. *Time*: the maps on the
trained model, per image, on the machine and threads named above."""


def summary(card):
    """``[(name, row)]`` sorted best first; ``row``: deletion and insertion means and
    standard errors, ``top``, ``all``, ``all_abs`` (mean correlations, None for the
    baselines), ``verdict``, ``residual`` (mean ``|r|`` or None), ``ms`` per image."""
    rows = []
    for name, s in card.items():
        n = len(s["deletion"])
        row = dict(deletion=s["deletion"].mean(), insertion=s["insertion"].mean(),
                   deletion_se=s["deletion"].std(ddof=1) / np.sqrt(n) if n > 1 else 0.0,
                   insertion_se=s["insertion"].std(ddof=1) / np.sqrt(n) if n > 1 else 0.0,
                   top=None, all=None, all_abs=None, verdict="-", residual=None, ms=None)
        if "spearman" in s:
            with warnings.catch_warnings():          # a stage where every map was constant
                warnings.simplefilter("ignore", RuntimeWarning)
                signed, absolute = np.nanmean(s["spearman"], 1), np.nanmean(s["spearman_abs"], 1)
            row.update(top=signed[0], all=signed[-1], all_abs=absolute[-1],
                       verdict=sanity_verdict(signed[0], signed[-1]),
                       ms=1000 * float(s["seconds"]) / n, curve=signed)
            if np.size(s["residual"]):
                row["residual"] = float(np.abs(s["residual"]).mean())
        rows.append((name, row))
    return sorted(rows, key=lambda r: -(r[1]["insertion"] - r[1]["deletion"]))


def format_card(card, header):
    """The page: ``header`` (markdown lines), the table, the identities, how to read it."""
    lines = list(header) + ["", "| method | deletion AUC (lower is better) | insertion AUC "
                            "(higher is better) | insertion - deletion | sanity: logits random "
                            "| all random | abs, all random | verdict | identity residual "
                            "| ms / image |", "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    number = lambda v, f: "-" if v is None else format(v, f)          # noqa: E731
    for name, r in summary(card):
        lines.append(
            f"| {name} | {r['deletion']:.3f} ± {r['deletion_se']:.3f} | {r['insertion']:.3f} "
            f"± {r['insertion_se']:.3f} | {r['insertion'] - r['deletion']:.3f} | "
            f"{number(r['top'], '.3f')} | {number(r['all'], '.3f')} | "
            f"{number(r['all_abs'], '.3f')} | {r['verdict']} | {number(r['residual'], '.2e')} "
            f"| {number(r['ms'], '.1f')} |")
    lines += ["", "Identities: " + "; ".join(f"{name}: {identity}" for name, (identity, _)
                                             in IDENTITIES.items()) + ".", "", HOW_TO_READ, ""]
    return "\n".join(lines)


def draw_card(card, stages, title="report card", path=None):
    """A ``Figure``, one row per method in the table's order: left, insertion minus
    deletion AUC as bars coloured by the sanity verdict (the baselines grey); right, the
    cascading randomization as a table of colours, the mean signed rank correlation with
    the trained map at each stage (``stages``: the S + 1 stage names, "trained" first)."""
    from matplotlib.figure import Figure
    rows = summary(card)
    fig = Figure(figsize=(12, 1.6 + 0.27 * len(rows)))
    left, right = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[1, 1.15]))
    y = np.arange(len(rows))
    gaps = [r["insertion"] - r["deletion"] for _, r in rows]
    left.barh(y, gaps, color=[VERDICT_COLOURS.get(r["verdict"], "grey") for _, r in rows])
    for k, (_, r) in enumerate(rows):
        left.text(max(gaps[k], 0) + 0.01, k, f"del {r['deletion']:.3f}, ins {r['insertion']:.3f}",
                  va="center", fontsize=6)
    left.set_xlim(min(0, min(gaps)), 1.3 * max(max(gaps), 0.1))
    left.set_yticks(y)
    left.set_yticklabels([name for name, _ in rows], fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("insertion - deletion AUC (higher is more faithful)", fontsize=8)
    left.set_title("faithfulness; colour: sanity verdict (green passes, orange mixed, red "
                   "fails, grey: baseline)", fontsize=8)
    grid = np.full((len(rows), len(stages)), np.nan)
    for k, (_, r) in enumerate(rows):
        if "curve" in r:
            grid[k] = np.concatenate([[1.0], r["curve"]])
    right.imshow(grid, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    for (k, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            right.text(j, k, f"{v:.2f}", ha="center", va="center", fontsize=6)
    right.set_yticks(y)
    right.set_yticklabels([name for name, _ in rows], fontsize=7)
    right.set_xticks(range(len(stages)))
    right.set_xticklabels(stages, rotation=20, ha="right", fontsize=7)
    right.set_title("cascading randomization: rank correlation with the trained map "
                    "(signed, mean)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["summary", "format_card", "draw_card", "HOW_TO_READ"]
