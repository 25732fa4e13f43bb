"""Optimizers against hand-computed first steps and against torch.optim; the LR schedules.

Weight decay: ConvScope never decays biases (keys ending in "bias"). torch.optim decays every
parameter of a group, so the torch side puts the biases in their own group with
weight_decay=0. ConvScope's Adam with weight_decay is AdamW (decoupled), so it is compared
with torch.optim.AdamW, not with torch.optim.Adam(weight_decay=...) which is L2 in the gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.cnn import SGD, Adam, cosine_lr, step_lr

LR = 0.1


def make_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "fc.weight": rng.standard_normal((3, 4)),
        "fc.bias": rng.standard_normal(4),
        "conv.weight": rng.standard_normal((3, 3, 1, 2)),
    }


def make_grads(rng: np.random.Generator, params: dict, steps: int) -> list[dict[str, np.ndarray]]:
    return [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(steps)]


# --- hand-computed first steps -------------------------------------------------------------


def test_sgd_momentum_first_two_steps(rng: np.random.Generator) -> None:
    params = make_params(rng)
    p0 = {k: v.copy() for k, v in params.items()}
    g1, g2 = make_grads(rng, params, 2)
    opt = SGD(params, lr=LR, momentum=0.9)
    opt.step(g1)
    for k in params:  # v1 = g1
        np.testing.assert_allclose(params[k], p0[k] - LR * g1[k], rtol=1e-12)
    opt.step(g2)
    for k in params:  # v2 = 0.9 g1 + g2
        np.testing.assert_allclose(
            params[k], p0[k] - LR * g1[k] - LR * (0.9 * g1[k] + g2[k]), rtol=1e-12
        )


def test_sgd_nesterov_first_two_steps(rng: np.random.Generator) -> None:
    params = make_params(rng)
    p0 = {k: v.copy() for k, v in params.items()}
    g1, g2 = make_grads(rng, params, 2)
    opt = SGD(params, lr=LR, momentum=0.9, nesterov=True)
    opt.step(g1)
    opt.step(g2)
    for k in params:
        v1 = g1[k]
        v2 = 0.9 * v1 + g2[k]
        expected = p0[k] - LR * (g1[k] + 0.9 * v1) - LR * (g2[k] + 0.9 * v2)
        np.testing.assert_allclose(params[k], expected, rtol=1e-12)


def test_sgd_without_momentum_is_plain_gradient_descent(rng: np.random.Generator) -> None:
    params = make_params(rng)
    p0 = {k: v.copy() for k, v in params.items()}
    g1, g2 = make_grads(rng, params, 2)
    opt = SGD(params, lr=LR, momentum=0.0)
    opt.step(g1)
    opt.step(g2)
    for k in params:
        np.testing.assert_allclose(params[k], p0[k] - LR * (g1[k] + g2[k]), rtol=1e-12)


def test_sgd_weight_decay_skips_biases(rng: np.random.Generator) -> None:
    params = make_params(rng)
    p0 = {k: v.copy() for k, v in params.items()}
    opt = SGD(params, lr=LR, momentum=0.9, weight_decay=0.01)
    zero = {k: np.zeros_like(v) for k, v in params.items()}
    opt.step(zero)
    np.testing.assert_array_equal(params["fc.bias"], p0["fc.bias"])
    np.testing.assert_allclose(params["fc.weight"], p0["fc.weight"] * (1 - LR * 0.01), rtol=1e-12)
    np.testing.assert_allclose(
        params["conv.weight"], p0["conv.weight"] * (1 - LR * 0.01), rtol=1e-12
    )


def test_adam_first_two_steps(rng: np.random.Generator) -> None:
    params = make_params(rng)
    p0 = {k: v.copy() for k, v in params.items()}
    g1, g2 = make_grads(rng, params, 2)
    b1, b2, eps = 0.9, 0.999, 1e-8
    opt = Adam(params, lr=LR, betas=(b1, b2), eps=eps)
    opt.step(g1)
    for k in params:  # bias correction makes the first step lr * g / (|g| + eps) ~ lr * sign(g)
        expected = p0[k] - LR * g1[k] / (np.abs(g1[k]) + eps)
        np.testing.assert_allclose(params[k], expected, rtol=1e-12)
    p1 = {k: v.copy() for k, v in params.items()}
    opt.step(g2)
    for k in params:
        m = (1 - b1) * (b1 * g1[k] + g2[k])
        v = (1 - b2) * (b2 * g1[k] ** 2 + g2[k] ** 2)
        m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
        np.testing.assert_allclose(
            params[k], p1[k] - LR * m_hat / (np.sqrt(v_hat) + eps), rtol=1e-12
        )


def test_adamw_decay_is_decoupled_and_skips_biases(rng: np.random.Generator) -> None:
    params = make_params(rng)
    p0 = {k: v.copy() for k, v in params.items()}
    (g1,) = make_grads(rng, params, 1)
    opt = Adam(params, lr=LR, weight_decay=0.5)
    opt.step(g1)
    for k in params:
        decay = 1.0 if k.endswith("bias") else 1 - LR * 0.5
        expected = p0[k] * decay - LR * g1[k] / (np.abs(g1[k]) + 1e-8)
        np.testing.assert_allclose(params[k], expected, rtol=1e-12, err_msg=k)


def test_optimizer_updates_in_place_and_counts_steps(rng: np.random.Generator) -> None:
    params = make_params(rng)
    refs = dict(params)
    opt = Adam(params, lr=LR)
    opt.step(make_grads(rng, params, 1)[0])
    opt.step({"fc.bias": np.ones(4)})  # a subset of gradients is allowed
    assert opt.steps == 2
    assert all(params[k] is refs[k] for k in params)


def test_optimizer_rejects_unknown_keys_and_bad_lr(rng: np.random.Generator) -> None:
    params = make_params(rng)
    with pytest.raises(KeyError, match="nope"):
        SGD(params).step({"nope": np.zeros(1)})
    with pytest.raises(ValueError, match="learning rate"):
        Adam(params, lr=0.0)
    with pytest.raises(ValueError, match="learning rate"):
        SGD(params, lr=-1.0)


# --- against torch.optim ---------------------------------------------------------------------


def torch_groups(torch, params: dict[str, np.ndarray], weight_decay: float) -> tuple[list, dict]:
    tensors = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    groups = [
        {"params": [t for k, t in tensors.items() if not k.endswith("bias")]},
        {"params": [t for k, t in tensors.items() if k.endswith("bias")], "weight_decay": 0.0},
    ]
    return groups, tensors


def run_both(torch, ours_factory, theirs_factory, rng, weight_decay: float, steps: int = 6):
    params = make_params(rng)
    groups, tensors = torch_groups(torch, params, weight_decay)
    ours, theirs = ours_factory(params), theirs_factory(groups)
    for grads in make_grads(rng, params, steps):
        ours.step(grads)
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        theirs.step()
        for k, t in tensors.items():
            np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("momentum", "nesterov", "weight_decay"),
    [(0.9, False, 0.0), (0.9, True, 0.0), (0.9, False, 0.05), (0.8, True, 0.05), (0.0, False, 0.0)],
)
def test_sgd_matches_torch(
    momentum: float, nesterov: bool, weight_decay: float, rng: np.random.Generator
) -> None:
    torch = pytest.importorskip("torch")
    run_both(
        torch,
        lambda p: SGD(p, lr=LR, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay),
        lambda g: torch.optim.SGD(
            g, lr=LR, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        ),
        rng,
        weight_decay,
    )


@pytest.mark.parametrize(("betas", "eps"), [((0.9, 0.999), 1e-8), ((0.8, 0.99), 1e-6)])
def test_adam_matches_torch(
    betas: tuple[float, float], eps: float, rng: np.random.Generator
) -> None:
    torch = pytest.importorskip("torch")
    run_both(
        torch,
        lambda p: Adam(p, lr=0.01, betas=betas, eps=eps),
        lambda g: torch.optim.Adam(g, lr=0.01, betas=betas, eps=eps),
        rng,
        0.0,
    )


def test_adam_with_weight_decay_matches_torch_adamw(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    run_both(
        torch,
        lambda p: Adam(p, lr=0.01, weight_decay=0.1),
        lambda g: torch.optim.AdamW(g, lr=0.01, weight_decay=0.1),
        rng,
        0.1,
    )


# --- schedules -----------------------------------------------------------------------------


def test_cosine_lr_without_warmup() -> None:
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 25, 100) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0)
    assert cosine_lr(0.1, 500, 100) == pytest.approx(0.0)  # clamped past the end
    assert cosine_lr(0.1, 100, 100, min_lr=1e-3) == pytest.approx(1e-3)
    assert cosine_lr(0.1, 50, 100, min_lr=0.02) == pytest.approx(0.06)


def test_cosine_lr_with_warmup() -> None:
    base, total, warmup = 0.2, 110, 10
    rates = [cosine_lr(base, s, total, warmup, 1e-4) for s in range(total + 1)]
    assert rates[0] == pytest.approx(base / warmup)  # warm-up starts above zero
    np.testing.assert_allclose(rates[:warmup], base * np.arange(1, warmup + 1) / warmup)
    assert rates[warmup] == pytest.approx(base)  # the peak, right after warm-up
    assert rates[warmup + 50] == pytest.approx((base + 1e-4) / 2)  # half-way through the decay
    assert rates[total] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(rates[warmup:], rates[warmup + 1 :], strict=False))


def test_step_lr() -> None:
    assert [step_lr(1.0, s, 10, 0.5) for s in (0, 9, 10, 19, 20, 35)] == [
        1.0, 1.0, 0.5, 0.5, 0.25, 0.125,
    ]  # fmt: skip
    assert step_lr(0.1, 30, 10) == pytest.approx(1e-4)
