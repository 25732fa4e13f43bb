"""The contract every layer keeps: stateless forward/backward around an explicit cache."""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray
Params = dict[str, Array]


class Layer:
    """A layer holds parameters only; per-call state travels in the cache it returns.

    That is what makes inference thread-safe: two threads calling `forward` on the same
    layer share nothing but read-only weights.
    """

    kind: str = "layer"
    # Whether a training forward reads other samples of its batch (batch statistics) or draws
    # from the batch's one random stream: such a layer cannot run on slices (server/cnn/lanes.py).
    mixes_batch: bool = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.params: Params = {}  # trained by the optimizer
        self.buffers: Params = {}  # learnt from data but not by gradients (running statistics)

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        """Return the output and the cache `backward` needs."""
        raise NotImplementedError

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        """Return the gradient w.r.t. the input and w.r.t. each parameter (same keys)."""
        raise NotImplementedError

    def parameter_gradients(self, grad_out: Array, cache: Any) -> Params:
        """Only the parameters' gradients: what training needs of the first layer, whose input
        gradient nobody uses. Layers where that gradient is costly compute less here."""
        return self.backward(grad_out, cache)[1]

    def mask(self, cache: Any) -> Array | None:
        """Which input cells won, for layers that pick winners (max-pool); None for the rest."""
        return None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's output (no batch axis) for one sample's input shape."""
        return input_shape

    def config(self) -> dict[str, Any]:
        """Hyper-parameters that rebuild this layer (everything but the weights)."""
        return {}

    def spec(self) -> dict[str, Any]:
        """JSON-ready description: kind, name and config."""
        return {"kind": self.kind, "name": self.name, **self.config()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({self.name!r}{', ' if args else ''}{args})"
