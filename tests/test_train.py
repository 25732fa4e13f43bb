"""Training end to end on tiny synthetic data: the file it writes, its metadata, determinism."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import server.mnist
import server.train
from server.cnn import load_model, save_model
from server.cnn.architectures import mnist_cnn
from server.mnist import Mnist
from server.train import TrainConfig, train

Digits = Callable[..., tuple[np.ndarray, np.ndarray]]

EPOCH_KEYS = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}


def tiny_data(make_digits: Digits, train_n: int = 96, test_n: int = 40) -> Mnist:
    train_x, train_y = make_digits(train_n, seed=10)
    test_x, test_y = make_digits(test_n, seed=11)
    return Mnist(train_x, train_y, test_x, test_y, checksums={"synthetic": "0" * 32})


def assert_metadata(metadata: dict, test_n: int, epochs: int) -> None:
    assert 0.0 <= metadata["test_accuracy"] <= 1.0
    assert [e["epoch"] for e in metadata["epochs"]] == list(range(1, epochs + 1))
    for epoch in metadata["epochs"]:
        assert set(epoch) == EPOCH_KEYS
        assert np.isfinite(epoch["train_loss"])
        assert epoch["train_loss"] > 0
    matrix = np.array(metadata["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum() == test_n
    assert (matrix >= 0).all()
    assert np.trace(matrix) / test_n == pytest.approx(metadata["test_accuracy"])
    assert 1 <= metadata["best_epoch"] <= epochs
    best = max(e["val_accuracy"] for e in metadata["epochs"])
    assert metadata["epochs"][metadata["best_epoch"] - 1]["val_accuracy"] == best


def test_train_produces_a_loadable_model_with_metadata(make_digits: Digits, tmp_path: Path) -> None:
    """The real architecture, two short epochs (one step each)."""
    data = tiny_data(make_digits, train_n=96, test_n=40)
    config = TrainConfig(epochs=2, batch_size=64, limit=64, validation=32, augment=True, seed=3)
    model, metadata = train(data, config, show_progress=False)
    assert_metadata(metadata, test_n=40, epochs=2)
    assert metadata["config"] == dataclasses.asdict(config)
    assert metadata["data_checksums_md5"] == {"synthetic": "0" * 32}
    # the reported accuracy is the returned model's accuracy on the test set
    logits = model.forward((data.test_images.astype(np.float32) / 255.0)[..., None])
    assert float((logits.argmax(axis=1) == data.test_labels).mean()) == metadata["test_accuracy"]

    path = tmp_path / "out" / "m.npz"
    save_model(path, model, metadata)
    loaded = load_model(path)
    assert loaded.metadata == json.loads(json.dumps(metadata))
    assert loaded.model.spec() == mnist_cnn(dropout=config.dropout).spec()
    for key, value in model.parameters().items():
        np.testing.assert_array_equal(loaded.model.parameters()[key], value)


@pytest.fixture
def small_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same layer stack, a quarter of the width: keeps the multi-epoch tests quick."""
    small = functools.partial(mnist_cnn, conv1=8, conv2=16, hidden=32)
    monkeypatch.setitem(server.cnn.architectures.PRESETS, "default", small)


def test_same_seed_gives_identical_weights(make_digits: Digits, small_architecture: None) -> None:
    data = tiny_data(make_digits)
    config = TrainConfig(epochs=2, batch_size=16, limit=48, validation=24, seed=5)
    a, meta_a = train(data, config, show_progress=False)
    b, meta_b = train(data, config, show_progress=False)
    for key, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[key], err_msg=key)
    strip = ("seconds",)
    for ea, eb in zip(meta_a["epochs"], meta_b["epochs"], strict=True):
        assert {k: v for k, v in ea.items() if k not in strip} == {
            k: v for k, v in eb.items() if k not in strip
        }
    assert meta_a["confusion_matrix"] == meta_b["confusion_matrix"]
    c, _ = train(data, dataclasses.replace(config, seed=6), show_progress=False)
    assert not np.array_equal(a.parameters()["fc2.weight"], c.parameters()["fc2.weight"])


def test_training_learns_the_synthetic_digits(
    make_digits: Digits, small_architecture: None
) -> None:
    data = tiny_data(make_digits, train_n=240, test_n=60)
    config = TrainConfig(
        epochs=4, batch_size=16, lr=1e-2, validation=40, augment=False, dropout=0.0, seed=0
    )
    _, metadata = train(data, config, show_progress=False)
    losses = [e["train_loss"] for e in metadata["epochs"]]
    assert losses[-1] < 0.5 * losses[0], losses
    assert metadata["test_accuracy"] > 0.4  # chance is 0.1


def write_idx(path: Path, array: np.ndarray) -> str:
    data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    path.write_bytes(gzip.compress(data))
    return hashlib.md5(data).hexdigest()


def test_main_cli_writes_model(
    make_digits: Digits,
    small_architecture: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`convscope train` on a synthetic MNIST directory (5000 images go to validation)."""
    base_x, base_y = make_digits(200, seed=20)
    pick = np.random.default_rng(0).integers(0, 200, 5040)  # repeats are fine for this test
    train_x, train_y = base_x[pick], base_y[pick]
    test_x, test_y = make_digits(30, seed=21)
    data_dir = tmp_path / "mnist"
    data_dir.mkdir()
    sums = {
        "train-images-idx3-ubyte": write_idx(data_dir / "train-images-idx3-ubyte.gz", train_x),
        "train-labels-idx1-ubyte": write_idx(data_dir / "train-labels-idx1-ubyte.gz", train_y),
        "t10k-images-idx3-ubyte": write_idx(data_dir / "t10k-images-idx3-ubyte.gz", test_x),
        "t10k-labels-idx1-ubyte": write_idx(data_dir / "t10k-labels-idx1-ubyte.gz", test_y),
    }
    monkeypatch.setattr(server.mnist, "FILES", sums)
    out = tmp_path / "weights" / "model.npz"
    argv = ["--data-dir", str(data_dir), "--epochs", "2", "--limit", "32", "--batch-size", "16"]
    argv += ["--seed", "1", "--out", str(out), "--quiet", "--no-augment"]
    assert server.train.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    loaded = load_model(out)
    metadata = loaded.metadata
    assert summary == {
        "out": str(out),
        "test_accuracy": metadata["test_accuracy"],
        "best_epoch": metadata["best_epoch"],
    }
    assert_metadata(metadata, test_n=30, epochs=2)
    assert metadata["data_checksums_md5"] == sums
    config = metadata["config"]
    assert (config["epochs"], config["limit"], config["batch_size"], config["seed"]) == (
        2,
        32,
        16,
        1,
    )
    assert config["augment"] is False
    assert loaded.model.output_shapes[-1] == (10,)
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.npz"]
