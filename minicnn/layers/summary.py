"""``model.summary()``: output shape, parameter counts and MACs per layer."""


class Summary:
    """The rows of a summary plus its totals; ``str()`` gives the table."""

    def __init__(self, rows, input_shape):
        self.rows = rows                # (index, name, output_shape, weights, biases, macs)
        self.input_shape = input_shape
        self.weights = sum(r[3] for r in rows)
        self.biases = sum(r[4] for r in rows)
        self.params = self.weights + self.biases
        self.macs = sum(r[5] for r in rows)

    def __str__(self):
        header = ("#", "layer", "output shape", "weights", "biases", "MACs")
        lines = [(str(i), name, str(shape), f"{w:,}", f"{b:,}", f"{m:,}")
                 for i, name, shape, w, b, m in self.rows]
        total = ("", "total", "", f"{self.weights:,}", f"{self.biases:,}", f"{self.macs:,}")
        widths = [max(len(r[c]) for r in [header, total] + lines) for c in range(6)]

        def fmt(r):
            return "  ".join(r[c].ljust(widths[c]) if c < 3 else r[c].rjust(widths[c])
                             for c in range(6))
        rule = "-" * len(fmt(header))
        return "\n".join([f"input shape: {self.input_shape}", fmt(header), rule]
                         + [fmt(r) for r in lines]
                         + [rule, fmt(total), f"parameters: {self.params:,}   "
                            f"MACs per example: {self.macs:,}"])

    __repr__ = __str__


def summarize(model, input_shape):
    """Walk ``model.layers`` from a per-example ``input_shape`` such as ``(1, 28, 28)``."""
    if input_shape is None:
        raise ValueError("summary() needs an input shape: pass summary(input_shape=(C, H, W)) "
                         "or build the model with Sequential(..., input_shape=...)")
    rows, shape = [], tuple(input_shape)
    for i, layer in enumerate(model.layers):
        macs = layer.macs(shape)
        shape = layer.output_shape(shape)
        named = list(layer.named_parameters())
        weights = sum(p.size for n, p in named if not n.endswith("bias"))
        biases = sum(p.size for n, p in named if n.endswith("bias"))
        rows.append((i, type(layer).__name__, shape, weights, biases, macs))
    return Summary(rows, tuple(input_shape))
