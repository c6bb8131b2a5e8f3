"""What ``bench.py`` prints besides the timings: the machine, the threads in use,
tables, and the per-layer times of one minicnn model."""
import os
import platform
import statistics
import time

import numpy as np

import minicnn


def time_blocks(engines, blocks, block_steps, pause, block_warmup):
    """``[(wall s/step, cpu s/step)]`` per engine (each with ``step()`` and ``sync()``):
    medians over ``blocks`` blocks of ``block_steps`` steps, the engines taking turns,
    each block after a ``pause`` (s) and ``block_warmup`` untimed steps; who goes first
    alternates (the blocks protocol, README.md)."""
    records = [([], []) for _ in engines]
    for b in range(blocks):
        order = range(len(engines)) if b % 2 == 0 else reversed(range(len(engines)))
        for i in order:
            engine, (walls, cpus) = engines[i], records[i]
            time.sleep(pause)
            for _ in range(block_warmup):
                engine.step()
            engine.sync()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(block_steps):
                engine.step()
            engine.sync()
            walls.append((time.perf_counter() - wall) / block_steps)
            cpus.append((time.process_time() - cpu) / block_steps)
    return [(statistics.median(w), statistics.median(c)) for w, c in records]


def layer_times(engine, repeats, clock=time.perf_counter):
    """Median forward and backward seconds of each layer of ``engine.model`` (an
    ``engines.MinicnnStep``) over ``repeats`` steps, synchronised per layer; ``clock``:
    wall time, or ``time.process_time`` (CPU time of every thread: steadier on a busy
    machine, where wall time counts the waits for a core)."""
    model, opt, loss, x, y = engine.model, engine.opt, engine.loss, engine.x, engine.y
    fwd = [[] for _ in model.layers]
    bwd = [[] for _ in model.layers]
    for _ in range(repeats):
        opt.zero_grad()
        h = x
        for i, layer in enumerate(model.layers):
            engine.sync()
            start = clock()
            h = layer.forward(h)
            engine.sync()
            fwd[i].append(clock() - start)
        loss.forward(h, y)
        g = loss.backward()
        for i in reversed(range(len(model.layers))):
            layer, first = model.layers[i], i == 0
            engine.sync()
            start = clock()
            if first and getattr(layer, "skips_input_grad", False):     # as training does
                g = layer.backward(g, input_grad=False)
            else:
                g = layer.backward(g)
            engine.sync()
            bwd[i].append(clock() - start)
            layer.release()                                             # as training does
        opt.step()
    return [(f"{i} {layer_name(layer)}", statistics.median(f), statistics.median(b))
            for i, (layer, f, b) in enumerate(zip(model.layers, fwd, bwd))]


def torch_layer_times(engine, repeats, clock=time.perf_counter):
    """The same for ``engine.net`` (an ``engines.TorchStep``): each module's forward on a
    detached input that requires a gradient (not the images, as in training), and its
    backward alone (``torch.autograd.backward`` of its output), synchronised per module.
    Timed alone, a module pays autograd's set-up per call: the sum of these is more
    than PyTorch's step (which the table above times)."""
    import torch
    net, x, y = engine.net, engine.x, engine.y
    fwd = [[] for _ in net]
    bwd = [[] for _ in net]
    for _ in range(repeats):
        engine.opt.zero_grad()
        inputs, outputs, h = [], [], x
        for i, module in enumerate(net):
            h = h.detach().requires_grad_(i > 0)
            engine.sync()
            start = clock()
            out = module(h)
            engine.sync()
            fwd[i].append(clock() - start)
            inputs.append(h)
            outputs.append(out)
            h = out
        logits = h.detach().requires_grad_()
        torch.nn.functional.cross_entropy(logits, y).backward()
        g = logits.grad
        for i in reversed(range(len(net))):
            engine.sync()
            start = clock()
            outputs[i].backward(g)
            engine.sync()
            bwd[i].append(clock() - start)
            g = inputs[i].grad
        engine.opt.step()
    return [(statistics.median(f), statistics.median(b)) for f, b in zip(fwd, bwd)]


def layer_name(layer):
    """``Conv2D 1->32 5x5 s1 p2``, ``MaxPool2D 2x2 s2 p0``, ``Dense 3136->1024``, ``ReLU``."""
    cfg, kind = layer.config(), type(layer).__name__
    if "kernel_size" in cfg:
        (kh, kw), (sh, _), (ph, _) = cfg["kernel_size"], cfg["stride"], cfg["padding"]
        channels = f" {cfg['in_channels']}->{cfg['out_channels']}" if "in_channels" in cfg else ""
        groups = f" g{cfg['groups']}" if cfg.get("groups", 1) > 1 else ""
        return f"{kind}{channels} {kh}x{kw} s{sh} p{ph}{groups}"
    if "in_features" in cfg:
        return f"{kind} {cfg['in_features']}->{cfg['out_features']}"
    return kind


def threads_in_use(torch=None):
    """One line: each thread pool threadpoolctl sees, Numba's threads, minicnn's chunk
    threads (``minicnn.kernels.threads``), PyTorch's."""
    from minicnn.kernels import threads
    from threadpoolctl import threadpool_info
    pools = ", ".join(f"{p['internal_api']} {p['num_threads']} "
                      f"({os.path.basename(p['filepath'])})" for p in threadpool_info())
    import numba
    line = f"{pools}; numba {numba.get_num_threads()}; minicnn {threads.num_threads()}"
    if torch is not None:
        line += f"; torch {torch.get_num_threads()} intra-op"
    return line


def gpu_name():
    try:
        import cupy
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception as err:  # noqa: BLE001 - the name is decoration only
        return f"GPU name unknown ({err})"


def machine_info(args, torch=None):
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    import numba
    versions = (f"python {platform.python_version()}, numpy {np.__version__}, "
                f"numba {numba.__version__}, torch {torch.__version__ if torch else 'absent'}, "
                f"minicnn {getattr(minicnn, '__version__', '?')}")
    line = (f"{cpu}, {os.cpu_count()} logical cores, {args.threads} threads; {versions}; "
            f"engine: {args.impl}; load average before: {os.getloadavg()[0]:.2f}")
    if args.device == "gpu":
        import cupy
        line += f"; GPU: {gpu_name()}, cupy {cupy.__version__}"
        if torch is not None:
            line += (f", torch cuDNN TF32 "
                     f"{'off' if args.no_tf32 else 'allowed (its default)'}")
    return line


def print_table(header, rows, markdown=False):
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))
