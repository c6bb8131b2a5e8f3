"""How fast the explorer answers a stroke: ``python -m minicnn.explore.speed RUN_DIR``.

Times what the app runs on each new drawing, on the CPU, for ``n`` different
MNIST-style digits (test images drawn again through ``mnist_style``, or random
strokes without data), and prints the median of each part in milliseconds:

- ``fast``: preprocessing, class probabilities and the feature maps of every layer
  (the app draws one layer at a time; every layer is timed here, the worst case);
- ``gradient methods``: all the attribution maps but occlusion;
- ``occlusion``: the occlusion map;
- ``backward view``: the step-through with every layer's check, as images and a table
  (the app shows it right after the fast part);
- ``conservation``: the LRP, DeepLIFT and integrated-gradients maps and the plot of their
  totals per layer with the identities' residuals (the app shows it last).
"""
import argparse
import os
import time

import numpy as np

from .. import load_model
from ..training.run_folder import MODEL
from . import views
from .backward_views import backward_view, conservation_view
from .preprocess import mnist_style, model_input


def strokes(n, seed=0):
    """``n`` random 280x280 drawings: a thick polyline of 6 points on white paper."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:280, :280]
    out = []
    for _ in range(n):
        canvas = np.full((280, 280), 255, dtype=np.uint8)
        pts = rng.uniform(60, 220, size=(6, 2))
        for (y0, x0), (y1, x1) in zip(pts[:-1], pts[1:]):
            for t in np.linspace(0, 1, 40):
                y, x = y0 + t * (y1 - y0), x0 + t * (x1 - x0)
                canvas[(yy - y) ** 2 + (xx - x) ** 2 < 100] = 0
        out.append(canvas)
    return out


def measure(model, drawings, names=tuple("0123456789"), clock=time.perf_counter):
    """Median seconds of each part over the drawings: ``{part: seconds}``. ``clock``:
    ``time.perf_counter`` (wall) or ``time.process_time`` (CPU time of this process,
    which other programs on a busy machine inflate less)."""
    parts = {"fast": [], "gradient methods": [], "occlusion": [], "backward view": [],
             "conservation": []}
    for drawing in drawings:
        t = [clock()]
        x = model_input(mnist_style(drawing))
        views.probabilities(model, views.forward(model, x), names)
        t.append(clock())
        for view in (views.attribution_maps, views.occlusion_map, backward_view,
                     conservation_view):
            view(model, x)
            t.append(clock())
        for part, start, end in zip(parts, t, t[1:]):
            parts[part].append(end - start)
    return {part: float(np.median(v)) for part, v in parts.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-n", type=int, default=50, help="drawings (default 50)")
    args = p.parse_args(argv)
    model = load_model(os.path.join(args.run_dir, MODEL))
    measure(model, strokes(2, seed=1))                  # compile the kernels first
    drawings = strokes(args.n)
    load = os.getloadavg()[0]
    wall = measure(model, drawings)
    cpu = measure(model, drawings, clock=time.process_time)
    from ..kernels.threads import num_threads
    print(f"median over {args.n} drawings, {os.cpu_count()} CPUs, {num_threads()} minicnn "
          f"threads, load average {load:.1f} before, {os.getloadavg()[0]:.1f} after:")
    print(f"  {'':18s} {'wall':>9s} {'CPU time':>9s}")
    for part in wall:
        print(f"  {part:18s} {1000 * wall[part]:6.0f} ms {1000 * cpu[part]:6.0f} ms")
    print(f"  {'all':18s} {1000 * sum(wall.values()):6.0f} ms {1000 * sum(cpu.values()):6.0f} ms")


if __name__ == "__main__":
    main()
