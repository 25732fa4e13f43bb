"""Augmentation: exact geometry for hand-made transforms, morphology vs loops, ranges and mass."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from server.training.augment import (
    AugmentConfig,
    augment,
    binarize,
    elastic_field,
    gaussian_matrix,
    neighbourhood,
    random_affine,
    vary_thickness,
    warp,
)

IDENTITY = AugmentConfig(
    max_shift=0.0,
    max_rotation=0.0,
    scale_range=(1.0, 1.0),
    max_shear=0.0,
    thicken_prob=0.0,
    thin_prob=0.0,
)


@pytest.fixture
def images(make_digits: Callable[..., tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Six digit-like float32 images in [0, 1] with an empty 3-pixel border."""
    raw, _ = make_digits(6, seed=7)
    x = raw.astype(np.float32) / 255.0
    x[:, :3] = x[:, -3:] = 0.0
    x[:, :, :3] = x[:, :, -3:] = 0.0
    return x


def eye(n: int) -> np.ndarray:
    return np.repeat(np.eye(2)[None], n, axis=0)


def test_identity_config_returns_the_input(images: np.ndarray, rng: np.random.Generator) -> None:
    out = augment(images, rng, IDENTITY)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, images, atol=1e-6)


@pytest.mark.parametrize(("dy", "dx"), [(1, 0), (0, 1), (-1, 0), (0, -1), (2, -1)])
def test_integer_shift_is_a_roll(images: np.ndarray, dy: int, dx: int) -> None:
    shift = np.tile([float(dy), float(dx)], (len(images), 1))
    out = warp(images, eye(len(images)), shift)
    expected = np.roll(images, (dy, dx), axis=(1, 2))  # borders are empty: roll == shift
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_half_pixel_shift_averages_neighbours(images: np.ndarray) -> None:
    out = warp(images, eye(len(images)), np.tile([0.0, 0.5], (len(images), 1)))
    expected = 0.5 * (images + np.roll(images, 1, axis=2))
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_rotation_by_90_degrees_is_rot90(images: np.ndarray) -> None:
    """Inverse map for np.rot90 (counter-clockwise): output (y, x) reads input (x, W-1-y)."""
    inverse = np.repeat(np.array([[0.0, 1.0], [-1.0, 0.0]])[None], len(images), axis=0)
    out = warp(images, inverse, np.zeros((len(images), 2)))
    np.testing.assert_allclose(out, np.rot90(images, 1, axes=(1, 2)), atol=1e-6)
    out = warp(images, np.linalg.inv(inverse), np.zeros((len(images), 2)))
    np.testing.assert_allclose(out, np.rot90(images, -1, axes=(1, 2)), atol=1e-6)


def test_each_image_gets_its_own_transform(images: np.ndarray) -> None:
    shift = np.zeros((len(images), 2))
    shift[1] = (0.0, 2.0)
    out = warp(images, eye(len(images)), shift)
    np.testing.assert_allclose(out[0], images[0], atol=1e-6)
    np.testing.assert_allclose(out[1], np.roll(images[1], 2, axis=1), atol=1e-6)


def test_shift_off_the_canvas_gives_zeros(images: np.ndarray) -> None:
    out = warp(images, eye(len(images)), np.tile([40.0, 0.0], (len(images), 1)))
    np.testing.assert_array_equal(out, np.zeros_like(images))


@pytest.mark.parametrize("degrees", [10.0, -12.0, 30.0])
def test_rotation_roughly_preserves_mass(images: np.ndarray, degrees: float) -> None:
    a = np.deg2rad(degrees)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    out = warp(images, np.repeat(np.linalg.inv(rotation)[None], len(images), 0), np.zeros((6, 2)))
    mass_in, mass_out = images.sum(axis=(1, 2)), out.sum(axis=(1, 2))
    np.testing.assert_allclose(mass_out, mass_in, rtol=0.05)
    assert not np.allclose(out, images, atol=0.1)  # it did rotate


def naive_neighbourhood(images: np.ndarray, reduce: Callable) -> np.ndarray:
    """Reduce over each pixel and its in-bounds 4-neighbours (a 3x3 cross)."""
    n, h, w = images.shape
    out = np.empty_like(images)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                values = [images[i, y, x]]
                for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                    if 0 <= y + dy < h and 0 <= x + dx < w:
                        values.append(images[i, y + dy, x + dx])
                out[i, y, x] = reduce(values)
    return out


def test_dilation_and_erosion_match_loops(rng: np.random.Generator) -> None:
    x = rng.random((2, 9, 11)).astype(np.float32)
    np.testing.assert_array_equal(neighbourhood(x, np.maximum), naive_neighbourhood(x, max))
    np.testing.assert_array_equal(neighbourhood(x, np.minimum), naive_neighbourhood(x, min))


def test_vary_thickness_thickens_and_thins(images: np.ndarray, rng: np.random.Generator) -> None:
    thick = vary_thickness(images, rng, AugmentConfig(thicken_prob=1.0, thin_prob=0.0))
    np.testing.assert_array_equal(thick, neighbourhood(images, np.maximum))
    assert (thick.sum(axis=(1, 2)) > images.sum(axis=(1, 2))).all()
    thin = vary_thickness(images, rng, AugmentConfig(thicken_prob=0.0, thin_prob=1.0))
    np.testing.assert_allclose(thin, 0.5 * (images + neighbourhood(images, np.minimum)))
    assert (thin.sum(axis=(1, 2)) < images.sum(axis=(1, 2))).all()
    same = vary_thickness(images, rng, AugmentConfig(thicken_prob=0.0, thin_prob=0.0))
    np.testing.assert_array_equal(same, images)


def test_random_affine_respects_zero_ranges(rng: np.random.Generator) -> None:
    inverse, shift = random_affine(5, rng, IDENTITY)
    np.testing.assert_allclose(inverse, eye(5), atol=1e-12)
    np.testing.assert_array_equal(shift, np.zeros((5, 2)))


def test_random_affine_is_inverse_of_rotation_times_scale() -> None:
    config = AugmentConfig(max_shift=2.0, max_rotation=15.0, scale_range=(0.9, 1.1), max_shear=0.0)
    inverse, shift = random_affine(50, np.random.default_rng(1), config)
    forward = np.linalg.inv(inverse)
    # rotation @ scale: forward^T forward = scale^2 * I, determinant = scale^2 > 0
    gram = np.einsum("nji,njk->nik", forward, forward)
    scale2 = gram[:, 0, 0]
    np.testing.assert_allclose(gram, scale2[:, None, None] * eye(50), atol=1e-12)
    assert ((scale2 >= 0.9**2 - 1e-12) & (scale2 <= 1.1**2 + 1e-12)).all()
    angles = np.degrees(np.arctan2(forward[:, 1, 0], forward[:, 0, 0]))
    assert np.abs(angles).max() <= 15.0 + 1e-9
    assert np.abs(shift).max() <= 2.0


def test_augment_output_range_dtype_and_determinism(images: np.ndarray) -> None:
    strong = AugmentConfig(max_shift=3.0, max_rotation=20.0, thicken_prob=0.5, thin_prob=0.3)
    out = augment(images, np.random.default_rng(0), strong)
    assert out.dtype == np.float32
    assert out.shape == images.shape
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    assert not np.allclose(out, images)
    np.testing.assert_array_equal(out, augment(images, np.random.default_rng(0), strong))
    # the default config keeps the digit: mass changes by thickening/thinning, not wholesale
    default = augment(images, np.random.default_rng(1))
    ratio = default.sum(axis=(1, 2)) / images.sum(axis=(1, 2))
    assert ((ratio > 0.4) & (ratio < 2.5)).all()


def test_gaussian_matrix_blurs_like_a_direct_convolution() -> None:
    rng = np.random.default_rng(0)
    signal = rng.uniform(-1, 1, 28)
    blurred = gaussian_matrix(28, 4.0) @ signal
    taps = np.exp(-0.5 * (np.arange(-27, 28) / 4.0) ** 2)
    direct = np.convolve(signal, taps / taps.sum(), mode="full")[27:-27]  # zeros beyond the ends
    np.testing.assert_allclose(blurred, direct, atol=1e-12)


def test_elastic_field_is_smooth_bounded_and_per_image() -> None:
    config = AugmentConfig(elastic_alpha=34.0, elastic_sigma=4.0)
    field = elastic_field(200, 28, 28, np.random.default_rng(1), config)
    assert field.shape == (200, 28, 28, 2)
    # Simard's setting moves pixels by a pixel or two, never by a large part of the digit
    assert 0.3 < np.abs(field).mean() < 3.0
    assert np.abs(field).max() < 8.0
    # smooth: neighbours move almost alike (white noise would differ as much as it varies)
    step = np.abs(np.diff(field, axis=1)).mean()
    assert step < 0.2 * np.abs(field).mean()
    assert not np.allclose(field[0], field[1])
    none = elastic_field(3, 28, 28, np.random.default_rng(1), AugmentConfig(elastic_alpha=0.0))
    assert not none.any()


def test_warp_with_a_constant_displacement_is_a_shift(images: np.ndarray) -> None:
    """Reading every pixel one row below moves the picture up: the same as shift -1."""
    n = len(images)
    field = np.zeros((n, 28, 28, 2))
    field[..., 0] = 1.0
    no_shift = np.zeros((n, 2))
    np.testing.assert_allclose(
        warp(images, eye(n), no_shift, field),
        warp(images, eye(n), np.tile([-1.0, 0.0], (n, 1))),
        atol=1e-6,
    )
    np.testing.assert_allclose(warp(images, eye(n), no_shift, field), np.roll(images, -1, axis=1))


def test_elastic_augment_keeps_the_digit(images: np.ndarray) -> None:
    config = dataclasses.replace(IDENTITY, elastic_alpha=34.0)
    out = augment(images, np.random.default_rng(3), config)
    assert out.dtype == np.float32
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    assert not np.allclose(out, images)
    mass_ratio = out.sum(axis=(1, 2)) / images.sum(axis=(1, 2))
    assert np.all((mass_ratio > 0.8) & (mass_ratio < 1.2))
    overlap = (out * images).sum(axis=(1, 2)) / np.sqrt(
        (out**2).sum(axis=(1, 2)) * (images**2).sum(axis=(1, 2))
    )
    assert np.all(overlap > 0.6), overlap  # still the same digit, bent a little


def test_binarize_makes_hard_edges(images: np.ndarray, rng: np.random.Generator) -> None:
    out = binarize(images, rng, dataclasses.replace(IDENTITY, binarize_prob=1.0))
    assert set(np.unique(out).tolist()) <= {0.0, 1.0}
    peak = images.max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_equal(out, (images > 0.5 * peak).astype(np.float32))
    assert binarize(images, rng, IDENTITY) is images


def naive_warp(
    images: np.ndarray, inverse: np.ndarray, shift: np.ndarray, displacement: np.ndarray
) -> np.ndarray:
    """warp's sum, one output pixel at a time: bilinear, zeros outside the image."""
    n, h, w = images.shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])

    def pixel(k: int, y: int, x: int) -> float:
        return float(images[k, y, x]) if 0 <= y < h and 0 <= x < w else 0.0

    out = np.zeros_like(images)
    for k in range(n):
        for y in range(h):
            for x in range(w):
                sy, sx = inverse[k] @ (np.array([y, x]) - centre - shift[k]) + centre
                sy, sx = sy + displacement[k, y, x, 0], sx + displacement[k, y, x, 1]
                y0, x0 = int(np.floor(sy)), int(np.floor(sx))
                fy, fx = sy - y0, sx - x0
                out[k, y, x] = (
                    (1 - fy) * (1 - fx) * pixel(k, y0, x0)
                    + (1 - fy) * fx * pixel(k, y0, x0 + 1)
                    + fy * (1 - fx) * pixel(k, y0 + 1, x0)
                    + fy * fx * pixel(k, y0 + 1, x0 + 1)
                )
    return out


def test_warp_matches_a_pixel_by_pixel_loop(images: np.ndarray, rng: np.random.Generator) -> None:
    """Pose and wobble, some pixels read from far off the canvas: the vectorised gathers and
    weights give each pixel the bilinear sum a loop gives."""
    config = AugmentConfig(max_shift=6, max_rotation=60, scale_range=(0.5, 2.0), elastic_alpha=40)
    batch = images[:3]
    inverse, shift = random_affine(len(batch), rng, config)
    field = elastic_field(len(batch), 28, 28, rng, config)
    np.testing.assert_allclose(
        warp(batch, inverse, shift, field),
        naive_warp(batch, inverse, shift, field),
        rtol=1e-5,
        atol=1e-6,
    )
