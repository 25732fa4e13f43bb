"""The weights file: exact round trip, and a ModelFileError naming the file for every bad input."""

from __future__ import annotations

import gc
import io
import json
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from server.cnn import ModelFileError, Sequential, load_model, save_model
from server.cnn.architectures import mnist_cnn

METADATA = {"test_accuracy": 0.9931, "epochs": [{"epoch": 1, "val_accuracy": 0.98}], "note": "é"}


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Sequential]:
    model = mnist_cnn(seed=4)
    for key, value in model.parameters().items():  # non-zero biases: every array is distinct
        if key.endswith("bias"):
            value[...] = np.linspace(-1, 1, value.size, dtype=np.float32)
    path = tmp_path / "model.npz"
    save_model(path, model, METADATA)
    return path, model


def read_entries(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def write_entries(path: Path, entries: dict[str, np.ndarray]) -> None:
    np.savez(path, **entries)


def assert_model_file_error(path: Path, *fragments: str) -> None:
    """load_model(path) raises ModelFileError naming the path, and leaks no open file.

    A leaked handle only warns when it is garbage-collected, usually during some later test
    (where filterwarnings=error turns it into a confusing failure), so collect it here.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        message, error_path = str(info.value), info.value.path
        del info
        gc.collect()
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert error_path == str(path)
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, f"load_model left a file open: {leaks}"


def test_round_trip_is_exact(saved: tuple[Path, Sequential], rng: np.random.Generator) -> None:
    path, model = saved
    loaded = load_model(path)
    assert loaded.metadata == METADATA
    assert loaded.model.spec() == model.spec()
    assert loaded.model.output_shapes == model.output_shapes
    original, restored = model.parameters(), loaded.model.parameters()
    assert set(original) == set(restored)
    for key in original:
        assert restored[key].dtype == np.float32
        np.testing.assert_array_equal(restored[key], original[key], err_msg=key)
    x = rng.random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(loaded.model.forward(x), model.forward(x))


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "m.npz"  # parents are created
    save_model(path, mnist_cnn(), {})
    save_model(path, mnist_cnn(seed=1), {"second": True})  # overwrite in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.npz"]
    assert load_model(path).metadata == {"second": True}


def test_file_holds_no_pickles(saved: tuple[Path, Sequential]) -> None:
    path, _ = saved
    entries = read_entries(path)  # allow_pickle=False would raise on any object array
    assert {"format_version", "architecture", "metadata"} <= set(entries)
    assert all(e.dtype != object for e in entries.values())
    assert json.loads(str(entries["architecture"])) == saved[1].spec()


def test_object_array_is_refused(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    entries = read_entries(saved[0])
    entries["param/fc2.bias"] = np.array([{"evil": "pickle"}] * 10, dtype=object)
    bad = tmp_path / "pickled.npz"
    np.savez(bad, **entries)  # numpy pickles object arrays when saving
    assert_model_file_error(bad, "pickle")


def test_missing_file(tmp_path: Path) -> None:
    assert_model_file_error(tmp_path / "nope.npz", "no such file")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    assert_model_file_error(tmp_path, "no such file")


def test_truncated_file(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    data = saved[0].read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    assert_model_file_error(bad, "not a readable .npz")


def test_empty_file(tmp_path: Path) -> None:
    bad = tmp_path / "empty.npz"
    bad.write_bytes(b"")
    assert_model_file_error(bad)


def test_not_a_zip_file(tmp_path: Path) -> None:
    bad = tmp_path / "text.npz"
    bad.write_text("this is not a weights file\n" * 20)
    assert_model_file_error(bad, "not a readable .npz")


def test_plain_npy_file_named_npz(tmp_path: Path) -> None:
    """np.load returns a bare ndarray (not an archive) for a .npy file, whatever its name."""
    bad = tmp_path / "array.npz"
    with bad.open("wb") as handle:
        np.save(handle, np.zeros((3, 3), np.float32))
    assert_model_file_error(bad)


def test_corrupt_compressed_member(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    """A deflate stream whose first block header is invalid: zlib fails while reading the member."""
    data = bytearray(saved[0].read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("param/fc1.weight.npy")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len
    data[start] = 0xFF  # BFINAL=1, BTYPE=11: "invalid block type"
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(data))
    assert_model_file_error(bad)


def test_wrong_shape_for_a_key(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    entries = read_entries(saved[0])
    entries["param/conv2.weight"] = np.zeros((5, 5, 32, 64), np.float32)
    bad = tmp_path / "shape.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, "'conv2.weight'", "(5, 5, 32, 64)", "(3, 3, 32, 64)")


def test_missing_key(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    entries = read_entries(saved[0])
    del entries["param/fc1.bias"]
    bad = tmp_path / "missing.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, "missing", "fc1.bias")


def test_unexpected_key(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    entries = read_entries(saved[0])
    entries["param/fc3.weight"] = np.zeros((2, 2), np.float32)
    bad = tmp_path / "extra.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, "unexpected", "fc3.weight")


def test_unknown_layer_kind(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    entries = read_entries(saved[0])
    spec = json.loads(str(entries["architecture"]))
    spec["layers"][1]["kind"] = "swish"
    entries["architecture"] = np.array(json.dumps(spec))
    bad = tmp_path / "kind.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, "bad architecture", "swish")


@pytest.mark.parametrize(
    "architecture",
    [
        '{"input_shape": [28, 28, 1]}',  # no layers
        '{"input_shape": [28, 28, 1], "layers": [{"name": "x"}]}',  # no kind
        '{"input_shape": [28, 28, 1], "layers": [{"kind": "relu", "name": "r", "bogus": 1}]}',
        '{"input_shape": [28, 28, 1], "layers": [{"kind": "conv2d", "name": "c", '
        '"in_channels": 1, "out_channels": 2, "kernel_size": 0}]}',
        "[1, 2, 3]",
    ],
)
def test_malformed_architecture(
    saved: tuple[Path, Sequential], tmp_path: Path, architecture: str
) -> None:
    entries = read_entries(saved[0])
    entries["architecture"] = np.array(architecture)
    bad = tmp_path / "arch.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, "bad architecture")


@pytest.mark.parametrize("key", ["architecture", "metadata"])
def test_bad_json(saved: tuple[Path, Sequential], tmp_path: Path, key: str) -> None:
    entries = read_entries(saved[0])
    entries[key] = np.array('{"layers": [')
    bad = tmp_path / "json.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, f"entry {key!r} is not valid JSON")


@pytest.mark.parametrize("key", ["architecture", "metadata", "format_version"])
def test_missing_entry(saved: tuple[Path, Sequential], tmp_path: Path, key: str) -> None:
    entries = read_entries(saved[0])
    del entries[key]
    bad = tmp_path / "entry.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, "format version" if key == "format_version" else repr(key))


def test_future_format_version(saved: tuple[Path, Sequential], tmp_path: Path) -> None:
    entries = read_entries(saved[0])
    entries["format_version"] = np.array(2)
    bad = tmp_path / "v2.npz"
    write_entries(bad, entries)
    assert_model_file_error(bad, "format version 2, expected 1")
