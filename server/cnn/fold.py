"""Batch norm folded into the convolution before it: the network a batch-norm run trained,
served as the plain one (the same layers and trace time), since in evaluation a batch norm is
a fixed scale and shift per channel."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.cnn.layers import BatchNorm, Conv2D
from server.cnn.model import Sequential


def fold_batchnorm(model: Sequential) -> Sequential:
    """A new network in which every Conv2D followed by a BatchNorm is one Conv2D with a bias.

    conv(x) * s + (beta - mean * s) with s = gamma / sqrt(var + eps): output channel f of the
    kernel scaled by s[f], the shift as its bias. The other layers are copied as they are.
    """
    specs: list[dict[str, Any]] = []
    state: dict[str, np.ndarray] = {}
    layers = list(model.layers)
    for index, layer in enumerate(layers):
        before = layers[index - 1] if index else None
        if isinstance(layer, BatchNorm) and isinstance(before, Conv2D):
            continue  # folded into `before`
        after = layers[index + 1] if index + 1 < len(layers) else None
        if isinstance(layer, Conv2D) and isinstance(after, BatchNorm):
            weight, bias = folded(layer, after)
            specs.append({**layer.spec(), "bias": True})
            state |= {f"{layer.name}.weight": weight, f"{layer.name}.bias": bias}
            continue
        specs.append(layer.spec())
        state |= {f"{layer.name}.{k}": v.copy() for k, v in (layer.params | layer.buffers).items()}
    plain = Sequential.from_spec({"input_shape": list(model.input_shape), "layers": specs})
    plain.load_state_dict(state, source="folded batch norm")
    return plain


def folded(conv: Conv2D, norm: BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    """The weight (kh, kw, C, F) and bias (F,) of one convolution doing `conv` then `norm`."""
    variance = norm.buffers["running_var"].astype(np.float64)
    scale = norm.params["gamma"] / np.sqrt(variance + norm.eps)  # (F,)
    bias = conv.params["bias"] if conv.bias else np.zeros(conv.out_channels)
    shift = (bias - norm.buffers["running_mean"]) * scale + norm.params["beta"]  # (F,)
    return (conv.params["weight"] * scale).astype(np.float32), shift.astype(np.float32)
