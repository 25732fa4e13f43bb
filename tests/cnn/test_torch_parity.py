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

from server.cnn import Conv2D, MaxPool2D, Sequential, softmax_cross_entropy  # noqa: E402
from server.cnn.architectures import mnist_cnn  # noqa: E402
from server.cnn.im2col import resolve_padding  # noqa: E402

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
    """Run the same layer list in torch (inference: dropout is the identity)."""
    outputs: dict[str, torch.Tensor] = {}
    h = x
    for layer in model:
        if layer.kind == "conv2d":
            assert layer.padding == "same"
            assert layer.stride == 1
            pad = (layer.kernel_size - 1) // 2
            h = F.conv2d(h, p[f"{layer.name}.weight"], p[f"{layer.name}.bias"], padding=pad)
        elif layer.kind == "relu":
            h = F.relu(h)
        elif layer.kind == "maxpool2d":
            h = F.max_pool2d(h, layer.pool_size, layer.stride)
        elif layer.kind == "flatten":
            h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # NHWC order, like ours
        elif layer.kind == "dense":
            h = F.linear(h, p[f"{layer.name}.weight"], p[f"{layer.name}.bias"])
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
    grads, grad_x = model.backward(grad_logits, caches)
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
