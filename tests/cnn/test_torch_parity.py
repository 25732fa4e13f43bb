"""The NumPy engine against PyTorch: same weights in; same logits, masks, gradients out.

PyTorch is NCHW with conv weights (F, C, kh, kw) and dense weights (out, in); ConvScope is NHWC
with (kh, kw, C, F) and (in, out). Our Flatten flattens in NHWC order, so the torch model
permutes to NHWC before flattening; that keeps fc1's weight rows in the same order.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch parity needs the [parity] extra (torch==2.13.0)"
)
F = torch.nn.functional

from server.cnn import (  # noqa: E402
    AvgPool2D,
    BatchNorm,
    Conv2D,
    MaxPool2D,
    Sequential,
    Sigmoid,
    Tanh,
    softmax_cross_entropy,
)
from server.cnn.architectures import PRESETS, build_preset, mnist_cnn  # noqa: E402
from server.cnn.im2col import resolve_padding  # noqa: E402

from .test_fusion import BLOCKS, block_model  # noqa: E402

ATOL, RTOL = 1e-4, 1e-3


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).numpy()


def torch_params(model: Sequential) -> dict[str, torch.Tensor]:
    """Our parameters in torch layout, as leaf tensors that collect gradients."""
    out = {}
    for key, value in model.parameters().items():
        if value.ndim == 4:  # (kh, kw, C, F) -> (F, C, kh, kw)
            value = value.transpose(3, 2, 0, 1)
        elif value.ndim == 2:  # (in, out) -> (out, in)
            value = value.T
        out[key] = torch.tensor(np.ascontiguousarray(value), requires_grad=True)
    return out


def torch_forward(
    model: Sequential, p: dict[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run the same layer list in torch (inference: dropout is the identity, batch norm uses the
    running statistics); every padding as an explicit F.pad, which covers TF-style "same"."""
    outputs: dict[str, torch.Tensor] = {}
    h = x
    for layer in model:
        if isinstance(layer, Conv2D):
            k, stride = layer.kernel_size, layer.stride
            top, bottom, _ = resolve_padding(layer.padding, h.shape[2], k, stride)
            left, right, _ = resolve_padding(layer.padding, h.shape[3], k, stride)
            weight, bias = p[f"{layer.name}.weight"], p.get(f"{layer.name}.bias")
            h = F.conv2d(F.pad(h, (left, right, top, bottom)), weight, bias, stride=layer.stride)
        elif layer.kind == "relu":
            h = F.relu(h)
        elif layer.kind == "tanh":
            h = torch.tanh(h)
        elif layer.kind == "sigmoid":
            h = torch.sigmoid(h)
        elif layer.kind == "maxpool2d":
            h = F.max_pool2d(h, layer.pool_size, layer.stride)
        elif layer.kind == "avgpool2d":
            h = F.avg_pool2d(h, layer.pool_size, layer.stride)
        elif isinstance(layer, BatchNorm):  # inference: the running statistics
            h = F.batch_norm(
                h,
                torch.from_numpy(layer.buffers["running_mean"]),
                torch.from_numpy(layer.buffers["running_var"]),
                p[f"{layer.name}.gamma"],
                p[f"{layer.name}.beta"],
                training=False,
                eps=layer.eps,
            )
        elif layer.kind == "flatten":
            h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # NHWC order, like ours
        elif layer.kind == "dense":
            h = F.linear(h, p[f"{layer.name}.weight"], p.get(f"{layer.name}.bias"))
        elif layer.kind == "dropout":
            pass
        else:  # pragma: no cover - a new layer kind needs a torch twin here
            raise AssertionError(layer.kind)
        outputs[layer.name] = h
    return h, outputs


@pytest.fixture(scope="module")
def setup() -> tuple[Sequential, np.ndarray, np.ndarray]:
    model = mnist_cnn(seed=3)
    gen = np.random.default_rng(2024)
    for key, value in model.parameters().items():
        if key.endswith("bias"):  # non-zero biases, so a bias bug cannot hide
            value[...] = gen.standard_normal(value.shape).astype(np.float32) * 0.1
    x = gen.random((8, 28, 28, 1), dtype=np.float32)
    labels = gen.integers(0, 10, 8)
    return model, x, labels


def test_logits_and_every_layer_output_match(setup: tuple) -> None:
    model, x, _ = setup
    p = torch_params(model)
    with torch.no_grad():
        logits_t, outputs = torch_forward(model, p, nchw(x))
    np.testing.assert_allclose(model.forward(x), logits_t.numpy(), atol=ATOL, rtol=RTOL)
    trace = model.trace(x)
    assert [t.name for t in trace.layers] == list(outputs)
    for layer_trace in trace.layers:
        theirs = outputs[layer_trace.name]
        theirs = nhwc(theirs) if theirs.ndim == 4 else theirs.numpy()
        assert layer_trace.output.shape == theirs.shape, layer_trace.name
        np.testing.assert_allclose(
            layer_trace.output, theirs, atol=ATOL, rtol=RTOL, err_msg=layer_trace.name
        )


def test_pool_masks_match_torch_indices(setup: tuple) -> None:
    """Feed each pool's own input to torch's max_pool2d and rebuild a mask from its indices."""
    model, x, _ = setup
    trace = model.trace(x)
    previous = trace.input
    checked = 0
    for layer, layer_trace in zip(model, trace.layers, strict=True):
        if isinstance(layer, MaxPool2D):
            inp = nchw(previous)  # (N, C, H, W)
            out, indices = F.max_pool2d(inp, layer.pool_size, layer.stride, return_indices=True)
            n, c, h, w = inp.shape
            mask = torch.zeros(n, c, h * w, dtype=torch.uint8)
            mask.scatter_(2, indices.reshape(n, c, -1), 1)
            np.testing.assert_array_equal(layer_trace.mask, nhwc(mask.reshape(n, c, h, w)))
            np.testing.assert_array_equal(layer_trace.output, nhwc(out))
            checked += 1
        previous = layer_trace.output
    assert checked == 2


def test_parameter_and_input_gradients_match(setup: tuple) -> None:
    model, x, labels = setup
    p = torch_params(model)
    xt = nchw(x).requires_grad_(True)
    logits_t, _ = torch_forward(model, p, xt)
    loss_t = F.cross_entropy(logits_t, torch.from_numpy(labels))
    loss_t.backward()

    logits, caches = model.forward_train(x, training=False)
    loss, grad_logits = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(loss_t.item(), rel=1e-5)
    grad_x, grads = model.backward(grad_logits, caches)
    assert set(grads) == set(p)
    for key, tensor in p.items():
        theirs = tensor.grad.numpy()
        if theirs.ndim == 4:
            theirs = theirs.transpose(2, 3, 1, 0)  # (F, C, kh, kw) -> (kh, kw, C, F)
        elif theirs.ndim == 2:
            theirs = theirs.T
        scale = np.abs(theirs).max()
        assert scale > 0, key
        np.testing.assert_allclose(grads[key], theirs, atol=ATOL * scale, rtol=RTOL, err_msg=key)
    np.testing.assert_allclose(grad_x, nhwc(xt.grad), atol=1e-6, rtol=RTOL)


@pytest.mark.parametrize(
    ("h", "w", "c", "f", "k", "stride", "padding"),
    [
        (9, 9, 3, 4, 3, 2, 1),
        (8, 11, 2, 3, 3, 2, 0),
        (10, 7, 1, 2, 5, 2, 2),
        (7, 7, 9, 3, 3, 2, 1),  # gather path
        (8, 8, 2, 3, 3, 2, "same"),  # asymmetric: torch gets an explicit F.pad
        (9, 10, 3, 2, 4, 1, "same"),  # even kernel: asymmetric even with stride 1
        (7, 9, 2, 2, 3, 3, "valid"),
    ],
)
def test_conv2d_forward_and_backward_match_torch(
    h: int,
    w: int,
    c: int,
    f: int,
    k: int,
    stride: int,
    padding: str | int,
    rng: np.random.Generator,
) -> None:
    layer = Conv2D("conv", c, f, k, stride=stride, padding=padding, rng=rng)
    layer.params["bias"] = rng.standard_normal(f).astype(np.float32)
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    out, cache = layer.forward(x)

    weight = torch.tensor(layer.params["weight"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    bias = torch.tensor(layer.params["bias"], requires_grad=True)
    xt = nchw(x).requires_grad_(True)
    if padding == "same":
        top, bottom, _ = resolve_padding("same", h, k, stride)
        left, right, _ = resolve_padding("same", w, k, stride)
        out_t = F.conv2d(F.pad(xt, (left, right, top, bottom)), weight, bias, stride=stride)
    elif padding == "valid":
        out_t = F.conv2d(xt, weight, bias, stride=stride)
    else:
        out_t = F.conv2d(xt, weight, bias, stride=stride, padding=padding)
    np.testing.assert_allclose(out, nhwc(out_t), atol=ATOL, rtol=RTOL)

    R = rng.standard_normal(out.shape).astype(np.float32)
    (out_t * nchw(R)).sum().backward()
    grad_x, grads = layer.backward(R, cache)
    np.testing.assert_allclose(grad_x, nhwc(xt.grad), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(
        grads["weight"], weight.grad.numpy().transpose(2, 3, 1, 0), atol=ATOL, rtol=RTOL
    )
    np.testing.assert_allclose(grads["bias"], bias.grad.numpy(), atol=ATOL, rtol=RTOL)


def test_overlapping_pool_matches_torch(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 9, 7, 3)).astype(np.float32)
    layer = MaxPool2D("pool", 3, 2)
    out, cache = layer.forward(x)
    xt = nchw(x).requires_grad_(True)
    out_t = F.max_pool2d(xt, 3, 2)
    np.testing.assert_array_equal(out, nhwc(out_t))
    R = rng.standard_normal(out.shape).astype(np.float32)
    (out_t * nchw(R)).sum().backward()
    np.testing.assert_allclose(layer.backward(R, cache)[0], nhwc(xt.grad), atol=1e-6)


# --- the presets, end to end ---------------------------------------------------------------


def with_trained_looking_state(model: Sequential, gen: np.random.Generator) -> Sequential:
    """Non-zero biases and betas, gammas and running statistics away from their start."""
    for key, value in model.parameters().items():
        if key.endswith(("bias", "beta")):
            value[...] = gen.standard_normal(value.shape).astype(np.float32) * 0.1
        elif key.endswith("gamma"):
            value[...] = gen.uniform(0.5, 1.5, value.shape)
    for layer in model:
        if isinstance(layer, BatchNorm):
            layer.buffers["running_mean"][...] = gen.standard_normal(layer.num_features) * 0.2
            layer.buffers["running_var"][...] = gen.uniform(0.5, 2.0, layer.num_features)
    return model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_matches_torch_forward_and_backward(name: str) -> None:
    gen = np.random.default_rng(7)
    model = with_trained_looking_state(build_preset(name, seed=1), gen)
    x = gen.random((4, 28, 28, 1), dtype=np.float32)
    labels = gen.integers(0, 10, 4)
    p = torch_params(model)
    xt = nchw(x).requires_grad_(True)
    logits_t, outputs = torch_forward(model, p, xt)
    trace = model.trace(x)
    for layer_trace in trace.layers:
        theirs = outputs[layer_trace.name].detach()
        theirs = nhwc(theirs) if theirs.ndim == 4 else theirs.numpy()
        np.testing.assert_allclose(
            layer_trace.output, theirs, atol=ATOL, rtol=RTOL, err_msg=layer_trace.name
        )
    F.cross_entropy(logits_t, torch.from_numpy(labels)).backward()
    _, grad_logits = softmax_cross_entropy(trace.logits, labels)
    grad_x, grads = model.backward(grad_logits, trace.caches)
    assert set(grads) == set(p)
    for key, tensor in p.items():
        theirs = tensor.grad.numpy()
        theirs = theirs.transpose(2, 3, 1, 0) if theirs.ndim == 4 else theirs.T
        scale = np.abs(theirs).max()
        np.testing.assert_allclose(grads[key], theirs, atol=ATOL * scale, rtol=RTOL, err_msg=key)
    np.testing.assert_allclose(grad_x, nhwc(xt.grad), atol=1e-6, rtol=RTOL)


# --- the new layers one by one ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("h", "w", "pool", "stride"), [(8, 8, 2, 2), (7, 9, 2, 2), (9, 7, 3, 2), (6, 7, 2, 1)]
)
def test_avgpool_matches_torch(
    h: int, w: int, pool: int, stride: int, rng: np.random.Generator
) -> None:
    x = rng.standard_normal((2, h, w, 3)).astype(np.float32)
    layer = AvgPool2D("pool", pool, stride)
    out, cache = layer.forward(x)
    xt = nchw(x).requires_grad_(True)
    out_t = F.avg_pool2d(xt, pool, stride)
    np.testing.assert_allclose(out, nhwc(out_t), atol=1e-6)
    R = rng.standard_normal(out.shape).astype(np.float32)
    (out_t * nchw(R)).sum().backward()
    np.testing.assert_allclose(layer.backward(R, cache)[0], nhwc(xt.grad), atol=1e-6)


@pytest.mark.parametrize(
    ("layer", "twin"), [(Tanh("t"), torch.tanh), (Sigmoid("s"), torch.sigmoid)], ids=["tanh", "sig"]
)
def test_squashing_activations_match_torch(
    layer: Tanh | Sigmoid, twin: object, rng: np.random.Generator
) -> None:
    x = (rng.standard_normal((2, 5, 5, 3)) * 4).astype(np.float32)
    out, cache = layer.forward(x)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = twin(xt)  # type: ignore[operator]
    np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-6)
    R = rng.standard_normal(out.shape).astype(np.float32)
    (out_t * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(layer.backward(R, cache)[0], xt.grad.numpy(), atol=1e-6)


def to_torch_layout(x: np.ndarray) -> torch.Tensor:
    """Channels second, as torch's batch norm wants: (N, H, W, C) -> (N, C, H, W); (N, F) stays."""
    return nchw(x) if x.ndim == 4 else torch.from_numpy(x.copy())


def from_torch_layout(t: torch.Tensor) -> np.ndarray:
    return nhwc(t) if t.ndim == 4 else t.detach().numpy()


@pytest.mark.parametrize("shape", [(4, 5, 6, 3), (16, 7)], ids=["maps", "vectors"])
def test_batchnorm_training_steps_match_torch(
    shape: tuple[int, ...], rng: np.random.Generator
) -> None:
    """Three training steps (output, input and parameter gradients, running statistics each
    time), then evaluation with the statistics both accumulated."""
    c = shape[-1]
    layer = BatchNorm("bn", c, momentum=0.2, eps=1e-3)
    layer.params["gamma"][...] = rng.uniform(0.5, 1.5, c)
    layer.params["beta"][...] = rng.standard_normal(c)
    twin = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(
        c, momentum=0.2, eps=1e-3
    )
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.params["gamma"]))
        twin.bias.copy_(torch.from_numpy(layer.params["beta"]))
    twin.train()
    for step in range(3):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        assert_batchnorm_step(layer, twin, x, rng, training=True)
        np.testing.assert_allclose(
            layer.buffers["running_mean"], twin.running_mean.numpy(), atol=1e-5, rtol=1e-5
        )
        np.testing.assert_allclose(
            layer.buffers["running_var"], twin.running_var.numpy(), atol=1e-5, rtol=1e-5
        )
    twin.eval()
    assert_batchnorm_step(layer, twin, rng.standard_normal(shape).astype(np.float32), rng)


def assert_batchnorm_step(
    layer: BatchNorm,
    twin: torch.nn.Module,
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    training: bool = False,
) -> None:
    """One forward and backward through both (twin already in the matching mode): the output,
    the input gradient and gamma's and beta's gradients agree."""
    out, cache = layer.forward(x, training=training)
    xt = to_torch_layout(x).requires_grad_(True)
    twin.zero_grad()
    out_t = twin(xt)
    np.testing.assert_allclose(out, from_torch_layout(out_t), atol=ATOL, rtol=RTOL)
    R = rng.standard_normal(out.shape).astype(np.float32)
    (out_t * to_torch_layout(R)).sum().backward()
    grad_x, grads = layer.backward(R, cache)
    np.testing.assert_allclose(grad_x, from_torch_layout(xt.grad), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(grads["gamma"], twin.weight.grad.numpy(), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(grads["beta"], twin.bias.grad.numpy(), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_benchmark_twin_has_every_layer_and_parameter(name: str) -> None:
    """`convscope bench` times a PyTorch copy of the network: same output, same weight count."""
    from server.cli.bench import torch_twin

    model = build_preset(name)
    twin = torch_twin(model).eval()
    assert tuple(twin(torch.rand(2, 1, 28, 28)).shape) == (2, 10)
    assert sum(p.numel() for p in twin.parameters()) == model.parameter_count()


# --- fused passes (server/cnn/fusion.py) ------------------------------------------------------


@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_fused_blocks_match_torch(block: int, rng: np.random.Generator) -> None:
    """forward_train runs conv, activation and pool as one block (the pool's windows over the
    conv's output in offset order, a ReLU after a max-pool): logits and every gradient as
    PyTorch's autograd gives them for the layers one by one."""
    shape, conv, activation, pool = BLOCKS[block]
    model = block_model(shape, conv, activation, pool, rng)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    x[0] = 0  # a blank image: ties in every window
    p = torch_params(model)
    xt = nchw(x).requires_grad_(True)
    logits_t, _ = torch_forward(model, p, xt)
    logits, caches = model.forward_train(x, training=False)
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), atol=ATOL, rtol=RTOL)
    R = rng.standard_normal(logits.shape).astype(np.float32)
    (logits_t * torch.from_numpy(R)).sum().backward()
    grad_x, grads = model.backward(R, caches)
    for key, tensor in p.items():
        theirs = tensor.grad.numpy()
        theirs = theirs.transpose(2, 3, 1, 0) if theirs.ndim == 4 else theirs.T
        scale = np.abs(theirs).max()
        np.testing.assert_allclose(grads[key], theirs, atol=ATOL * scale, rtol=RTOL, err_msg=key)
    np.testing.assert_allclose(grad_x, nhwc(xt.grad), atol=1e-5, rtol=RTOL)
