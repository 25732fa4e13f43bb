"""Fixtures for the REST API tests: a weights file that trains nothing, the app, a client,
digits to send, and an independent float64 NumPy network to check the answers against.

The test folders are not packages, so shared helpers travel as the `kit` fixture.
"""

from __future__ import annotations

import base64
import copy
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont

from server.api.app import create_app
from server.cnn import Sequential, load_model, save_model
from server.cnn.architectures import mnist_cnn
from server.config import Settings
from server.training.mnist import Mnist

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_WEIGHTS = ROOT / "model_weights" / "mnist_cnn.npz"
SIDE = 28

# What the untrained test model carries beside its weights: the model card must echo the
# documented keys and nothing it does not know about.
METADATA: dict[str, Any] = {
    "test_accuracy": 0.1234,
    "best_epoch": 2,
    "epochs": [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_accuracy": 0.5 + 0.1 * e,
            "val_loss": 0.5 / e,
            "val_accuracy": 0.6 + 0.1 * e,
            "lr": 0.001,
            "seconds": 1.5,
        }
        for e in (1, 2)
    ],
    "confusion_matrix": [[100 if i == j else i + j for j in range(10)] for i in range(10)],
    "config": {"seed": 0, "epochs": 2},
    "created": "2024-01-01T00:00:00+00:00",
    "private_note": "not one of the model card's metric keys",
}


def default_settings_values() -> dict[str, Any]:
    """Every Settings field at its declared default: stray CONVSCOPE_* variables never leak in."""
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in Settings.model_fields.items()
    }


# --- model files and apps ------------------------------------------------------------------


@pytest.fixture(scope="session")
def weights_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained mnist_cnn (seed 0) saved as the server loads it: fast and deterministic."""
    path = tmp_path_factory.mktemp("weights") / "untrained.npz"
    save_model(path, mnist_cnn(seed=0), METADATA)
    return path


@pytest.fixture(scope="session")
def saved_metadata() -> dict[str, Any]:
    """The metadata stored in the test weights file."""
    return copy.deepcopy(METADATA)


@pytest.fixture(scope="session")
def engine(weights_path: Path) -> Sequential:
    """The engine's own copy of the served model, loaded apart from the app."""
    return load_model(weights_path).model


@pytest.fixture(scope="session")
def make_settings(
    weights_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """make_settings(**overrides): the shipped defaults, the test weights as the only model (an
    empty models folder), then the overrides."""
    empty = tmp_path_factory.mktemp("no-models")

    def make(**overrides: Any) -> Settings:
        base = {**default_settings_values(), "weights": weights_path, "models_dir": empty}
        return Settings(**{**base, **overrides})

    return make


@pytest.fixture(scope="session")
def app(make_settings: Callable[..., Settings]) -> FastAPI:
    """The app as shipped (front end mounted at /), serving the untrained test model."""
    return create_app(make_settings())


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    """One client for the session; entering it runs the lifespan, which loads the model."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def shipped_weights() -> Path:
    """The trained model; its tests skip (saying why) while it is not there. CI always has it."""
    if not SHIPPED_WEIGHTS.is_file():
        pytest.skip(f"{SHIPPED_WEIGHTS} is missing; train it with `make train` (CI ships it)")
    return SHIPPED_WEIGHTS


@pytest.fixture(scope="session")
def trained_client(
    shipped_weights: Path, make_settings: Callable[..., Settings]
) -> Iterator[TestClient]:
    """A client of an app serving the trained model."""
    with TestClient(create_app(make_settings(weights=shipped_weights))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def mnist_test(mnist: Mnist) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's test split (uint8 (10000, 28, 28), labels (10000,)); skips without MNIST_DIR."""
    return mnist.test_images, mnist.test_labels


# --- digits --------------------------------------------------------------------------------


def draw_digit(label: int, size: int = 280, ink: int = 0, paper: int = 255) -> Image.Image:
    """A typed digit drawn with Pillow's built-in font, as on paper: mode L, dark on light."""
    img = Image.new("L", (size, size), paper)
    font = ImageFont.load_default(size=int(size * 0.7))
    pen = ImageDraw.Draw(img)
    pen.text((size / 2, size / 2), str(label), fill=ink, font=font, anchor="mm")
    return img


def mnist_like_pixels(label: int) -> np.ndarray:
    """(28, 28) float values k/255, white ink on black, from the drawn digit (no server code)."""
    small = draw_digit(label, size=SIDE * 10, ink=255, paper=0).resize((SIDE, SIDE), Image.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0


# --- wire helpers --------------------------------------------------------------------------


class Kit:
    """Helpers the API tests share: images to bytes, bytes to base64, arrays off the wire."""

    # What /predict answers when asked for nothing extra (no layers, saliency, target or steps)
    PLAIN_ANSWER = frozenset(
        {"label", "probabilities", "input", "timings_ms", "model", "digit_score", "is_digit"}
    )

    draw_digit = staticmethod(draw_digit)
    mnist_like_pixels = staticmethod(mnist_like_pixels)

    @staticmethod
    def image_bytes(img: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
        buffer = io.BytesIO()
        img.save(buffer, fmt, **options)
        return buffer.getvalue()

    @staticmethod
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    @staticmethod
    def data_url(data: bytes, mime: str = "image/png") -> str:
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    @staticmethod
    def png_b64(img: Image.Image) -> str:
        return Kit.b64(Kit.image_bytes(img, "PNG"))

    @staticmethod
    def decode(value: Any) -> np.ndarray:
        """An `<array>` off the wire: nested lists, or {dtype, shape, data} base64 (checked)."""
        if isinstance(value, dict):
            assert set(value) == {"dtype", "shape", "data"}, value.keys()
            dtype = np.dtype(value["dtype"]).newbyteorder("<")
            raw = base64.b64decode(value["data"], validate=True)
            expected = int(np.prod(value["shape"])) * dtype.itemsize
            assert len(raw) == expected, f"{len(raw)} bytes for shape {value['shape']} {dtype}"
            return np.frombuffer(raw, dtype=dtype).reshape(value["shape"])
        return np.asarray(value, dtype=np.float64)

    @staticmethod
    def dequantize(value: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """An `encoding: "uint8"` map off the wire: (the bytes, offset + scale * byte)."""
        assert set(value) == {"dtype", "shape", "data", "scale", "offset"}, value.keys()
        assert value["dtype"] == "uint8"
        raw = base64.b64decode(value["data"], validate=True)
        assert len(raw) == int(np.prod(value["shape"])), f"{len(raw)} bytes for {value['shape']}"
        levels = np.frombuffer(raw, dtype=np.uint8).reshape(value["shape"])
        return levels, value["offset"] + value["scale"] * levels.astype(np.float64)

    @staticmethod
    def unpack_bits(value: dict[str, Any]) -> np.ndarray:
        """An `encoding: "uint8"` mask off the wire, via numpy.unpackbits (padding checked)."""
        assert set(value) == {"dtype", "shape", "data"}, value.keys()
        assert value["dtype"] == "bit"
        count = int(np.prod(value["shape"]))
        raw = np.frombuffer(base64.b64decode(value["data"], validate=True), dtype=np.uint8)
        assert len(raw) == -(-count // 8), f"{len(raw)} bytes for {count} bits"
        bits = np.unpackbits(raw)
        assert not bits[count:].any(), "the padding bits of the last byte are not 0"
        return bits[:count].reshape(value["shape"])

    @staticmethod
    def assert_error(response: httpx.Response, status: int, *words: str) -> str:
        """`status`, never a 5xx, JSON `detail`: a non-empty string naming each of `words`."""
        assert response.status_code < 500, f"server error {response.status_code}: {response.text}"
        assert response.status_code == status, (
            f"expected {status}, got {response.status_code}: {response.text[:500]}"
        )
        assert response.headers["content-type"].startswith("application/json")
        detail = response.json().get("detail")
        assert isinstance(detail, str), f"detail is not a string: {detail!r}"
        assert detail.strip(), "detail is empty"
        for word in words:
            assert word.lower() in detail.lower(), f"{word!r} not in detail {detail!r}"
        return detail

    @staticmethod
    def without_timings(body: dict[str, Any]) -> dict[str, Any]:
        """A predict response minus the one part that differs between identical requests."""
        return {key: value for key, value in body.items() if key != "timings_ms"}


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


@pytest.fixture(scope="session")
def digit_pixels() -> np.ndarray:
    """A drawn 3 as (28, 28) pixels in [0, 1], values k/255."""
    return mnist_like_pixels(3)


@pytest.fixture(scope="session")
def digit_png() -> bytes:
    """A drawn 7 as a 280x280 PNG, dark ink on white paper."""
    return Kit.image_bytes(draw_digit(7))


# --- an independent network ----------------------------------------------------------------


class ReferenceCNN:
    """The shipped architectures (the default, and the first one) in float64, written apart from
    the engine: the tests' oracle.

    Reads the weights file with np.load (not the server's loader). Kernels are stored
    (kh, kw, C_in, C_out), dense weights (in, out); flatten takes (H, W, C) order.
    """

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as archive:
            self.params = {
                key.removeprefix("param/"): archive[key].astype(np.float64)
                for key in archive.files
                if key.startswith("param/")
            }

    def conv(self, x: np.ndarray, name: str, same: bool = True) -> np.ndarray:
        """(H, W, C) -> (H', W', F): 'same' (or unpadded) cross-correlation as a sum over kernel
        offsets."""
        w, b = self.params[f"{name}.weight"], self.params[f"{name}.bias"]  # (k, k, C, F), (F,)
        k = w.shape[0]
        pad = k // 2 if same else 0
        padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
        h, width = padded.shape[0] - k + 1, padded.shape[1] - k + 1
        out = np.zeros((h, width, w.shape[3])) + b
        for i in range(k):
            for j in range(k):
                out += padded[i : i + h, j : j + width, :] @ w[i, j]  # (H', W', C) @ (C, F)
        return out

    @staticmethod
    def pool(x: np.ndarray) -> np.ndarray:
        """(H, W, C) -> (H/2, W/2, C), max over 2x2 windows."""
        h, w, c = x.shape
        return x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))

    def dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.params[f"{name}.weight"] + self.params[f"{name}.bias"]

    def layers(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output for one (28, 28) image; maps channels first, as the API sends."""
        x = np.asarray(image, dtype=np.float64)[:, :, None]  # (28, 28, 1)
        out: dict[str, np.ndarray] = {}
        x = out["conv1"] = self.conv(x, "conv1")
        x = out["relu1"] = np.maximum(x, 0)
        x = out["pool1"] = self.pool(x)
        x = out["conv2"] = self.conv(x, "conv2")
        x = out["relu2"] = np.maximum(x, 0)
        x = out["pool2"] = self.pool(x)
        dense_relu = "relu3"
        if "conv3.weight" in self.params:  # the three-conv network: an unpadded third conv
            x = out["conv3"] = self.conv(x, "conv3", same=False)
            x = out["relu3"] = np.maximum(x, 0)
            dense_relu = "relu4"
        x = out["flatten"] = x.reshape(-1)  # (H * W * C,) in H, W, C order
        x = out["fc1"] = self.dense(x, "fc1")
        x = out[dense_relu] = np.maximum(x, 0)
        out["dropout"] = x  # inference: identity
        out["fc2"] = self.dense(x, "fc2")
        return {k: v.transpose(2, 0, 1) if v.ndim == 3 else v for k, v in out.items()}

    def logits(self, image: np.ndarray) -> np.ndarray:
        return self.layers(image)["fc2"]

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        z = self.logits(image)
        e = np.exp(z - z.max())
        return e / e.sum()


@pytest.fixture(scope="session")
def reference(weights_path: Path) -> ReferenceCNN:
    return ReferenceCNN(weights_path)
