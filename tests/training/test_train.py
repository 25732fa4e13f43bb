"""Training end to end on tiny synthetic data: the file it writes, its metadata, determinism."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import server.cli.train
from server.cnn import load_model, save_model
from server.cnn.architectures import PRESETS, build_preset, mnist_cnn
from server.cnn.spec import build_from_spec
from server.inference import Predictor
from server.training.mnist import Mnist, load_mnist
from server.training.train import TrainConfig, train

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


def test_main_cli_writes_model(
    synthetic_mnist_dir: tuple[Path, dict[str, str]],
    small_architecture: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`convscope train` on a synthetic MNIST directory: the weights, and their atlas beside."""
    data_dir, sums = synthetic_mnist_dir
    out = tmp_path / "weights" / "model.npz"
    argv = ["--data-dir", str(data_dir), "--epochs", "2", "--limit", "32", "--batch-size", "16"]
    argv += ["--seed", "1", "--out", str(out), "--quiet", "--no-augment"]
    assert server.cli.train.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    loaded = load_model(out)
    metadata = loaded.metadata
    assert summary == {
        "out": str(out),
        "test_accuracy": metadata["test_accuracy"],
        "best_epoch": metadata["best_epoch"],
        "atlas": str(out.parent / "atlas" / "model.npz"),
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
    assert sorted(p.name for p in out.parent.iterdir()) == ["atlas", "model.npz"]
    atlas = Predictor.from_file(out).atlas  # served: made for these very weights
    assert atlas is not None
    test_labels = load_mnist(data_dir).test_labels
    np.testing.assert_array_equal(atlas.test_labels, test_labels)
    np.testing.assert_array_equal(atlas.labels, test_labels[atlas.index])
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (atlas.test_labels, atlas.test_predicted), 1)
    np.testing.assert_array_equal(counts, metadata["confusion_matrix"])


def test_no_atlas_skips_the_atlas(
    synthetic_mnist_dir: tuple[Path, dict[str, str]],
    small_architecture: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir, _ = synthetic_mnist_dir
    out = tmp_path / "model.npz"
    argv = ["--data-dir", str(data_dir), "--epochs", "1", "--limit", "16", "--batch-size", "16"]
    argv += ["--out", str(out), "--quiet", "--no-atlas"]
    assert server.cli.train.main(argv) == 0
    assert "atlas" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist", "model.npz"]
    assert Predictor.from_file(out).atlas is None


# --- presets and --arch-file ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_trains_and_round_trips_through_the_weights_file(
    name: str, make_digits: Digits, tmp_path: Path
) -> None:
    data = tiny_data(make_digits, train_n=72, test_n=20)
    config = TrainConfig(arch=name, epochs=1, batch_size=16, limit=48, validation=24, seed=2)
    model, metadata = train(data, config, show_progress=False)
    assert_metadata(metadata, test_n=20, epochs=1)
    assert metadata["config"]["arch"] == name
    fresh = build_preset(name, seed=2, dropout=config.dropout)
    assert model.spec() == fresh.spec()
    changed = [
        k for k, v in model.state_dict().items() if not np.array_equal(v, fresh.state_dict()[k])
    ]
    assert sorted(changed) == sorted(fresh.state_dict()), "every parameter and buffer trained"

    path = tmp_path / f"{name}.npz"
    save_model(path, model, metadata)
    loaded = load_model(path).model
    assert loaded.spec() == model.spec()
    assert set(loaded.state_dict()) == set(model.state_dict())
    for key, value in model.state_dict().items():  # batch norm's running statistics included
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    x = (data.test_images.astype(np.float32) / 255.0)[..., None]
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def write_spec(path: Path, spec: object) -> Path:
    path.write_text(json.dumps(spec))
    return path


def strided_spec() -> dict:
    """Stride-2 convolutions, batch norm, no pooling; input_shape left to the CLI."""
    return {
        "layers": [
            {"kind": "conv2d", "name": "c1", "in_channels": 1, "out_channels": 4,
             "kernel_size": 3, "stride": 2},
            {"kind": "batchnorm", "name": "bn1", "num_features": 4},
            {"kind": "relu", "name": "r1"},
            {"kind": "conv2d", "name": "c2", "in_channels": 4, "out_channels": 8,
             "kernel_size": 3, "stride": 2},
            {"kind": "tanh", "name": "t2"},
            {"kind": "flatten", "name": "flat"},
            {"kind": "dense", "name": "fc", "in_features": 7 * 7 * 8, "out_features": 10},
        ]
    }  # fmt: skip


def test_cli_trains_any_network_from_an_arch_file(
    synthetic_mnist_dir: tuple[Path, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir, _ = synthetic_mnist_dir
    arch = write_spec(tmp_path / "net.json", strided_spec())
    out = tmp_path / "net.npz"
    argv = ["--arch-file", str(arch), "--data-dir", str(data_dir), "--epochs", "1"]
    argv += ["--limit", "32", "--batch-size", "16", "--out", str(out), "--quiet"]
    assert server.cli.train.main(argv) == 0
    loaded = load_model(out)
    assert loaded.model.spec() == build_from_spec(strided_spec(), input_shape=(28, 28, 1)).spec()
    assert loaded.model.input_shape == (28, 28, 1)
    assert [layer.kind for layer in loaded.model] == [e["kind"] for e in strided_spec()["layers"]]
    assert loaded.metadata["config"]["arch"] == str(arch)
    assert np.any(loaded.model.layer("bn1").buffers["running_mean"] != 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read it: No such file or directory"),
        ("{not json", "not valid JSON: Expecting property name"),
        (
            {"layers": [{"kind": "gelu", "name": "g"}]},
            "layers[0]: unknown kind 'gelu'; known kinds are avgpool2d, batchnorm, conv2d",
        ),
        (
            {"layers": [*strided_spec()["layers"][:-1],
                        {"kind": "dense", "name": "fc", "in_features": 100, "out_features": 10}]},
            "layers[6] (dense 'fc'): in_features is 100 but its input has 392 values",
        ),
        (
            {"layers": [{"kind": "conv2d", "name": "c", "in_channels": 1, "out_channels": 2,
                         "kernel_size": 29}]},
            "layers[0] (conv2d 'c'): kernel 29x29 is larger than its 28x28 input",
        ),
        (
            {"input_shape": [32, 32, 1], "layers": strided_spec()["layers"]},
            "input_shape is [32, 32, 1] but the images are [28, 28, 1]",
        ),
        (
            {"layers": strided_spec()["layers"][:-1]},
            "the network ends in [392]; it must end in 10 class scores",
        ),
    ],
)  # fmt: skip
def test_cli_refuses_a_bad_arch_file_before_training(
    content: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 and the problem on stderr, before any data is read (there is none here)."""
    arch = tmp_path / "net.json"
    if isinstance(content, str):
        arch.write_text(content)
    elif content is not None:
        write_spec(arch, content)
    out = tmp_path / "never.npz"
    argv = ["--arch-file", str(arch), "--data-dir", str(tmp_path / "no-mnist"), "--out", str(out)]
    assert server.cli.train.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"convscope train: --arch-file {arch}:\n  ")
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_arch_and_arch_file_are_mutually_exclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arch = write_spec(tmp_path / "net.json", strided_spec())
    with pytest.raises(SystemExit) as exited:
        server.cli.train.main(["--arch", "tiny", "--arch-file", str(arch)])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
