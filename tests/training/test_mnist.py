"""MNIST files: the IDX parser, checksum verification, and the download against a local server.

The download tests run a real HTTP server on 127.0.0.1 and never touch the outside network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import server.training.mnist
from server.training.mnist import MnistError, download_file, download_mnist, load_mnist, parse_idx

NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Encode an array as IDX by hand: magic 0 0 type ndim, big-endian uint32 dims, data."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def tiny_mnist(seed: int = 0, train: int = 12, test: int = 7) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": gen.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": gen.integers(0, 10, train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": gen.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": gen.integers(0, 10, test, dtype=np.uint8),
    }


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_dataset(directory: Path, arrays: dict[str, np.ndarray], gz: set[str]) -> dict[str, str]:
    """Write the four files (gzipped where named in `gz`); return their content MD5s."""
    directory.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        sums[name] = md5(data)
        if name in gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return sums


# --- parse_idx -----------------------------------------------------------------------------


def test_parse_idx_uint8_3d_and_1d(rng: np.random.Generator) -> None:
    images = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    raw = struct.pack(">BBBBIII", 0, 0, 8, 3, 3, 4, 5) + images.tobytes()
    parsed = parse_idx(raw)
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, images)
    labels = np.array([7, 0, 9, 3], dtype=np.uint8)
    parsed = parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x04" + labels.tobytes())
    np.testing.assert_array_equal(parsed, labels)
    assert parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x00").shape == (0,)


def test_parse_idx_big_endian_types() -> None:
    values = np.array([[1, -2], [70000, -70000]], dtype=">i4")
    parsed = parse_idx(idx_bytes(values, 0x0C))
    np.testing.assert_array_equal(parsed, [[1, -2], [70000, -70000]])
    floats = np.array([0.5, -1.25], dtype=">f4")
    np.testing.assert_array_equal(parse_idx(idx_bytes(floats, 0x0D)), [0.5, -1.25])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00",
        b"\x01\x00\x08\x01\x00\x00\x00\x01\x05",  # first magic byte not zero
        b"\x00\x00\x07\x01\x00\x00\x00\x01\x05",  # unknown type code
        b"PK\x03\x04\x00\x00\x00\x00",  # a zip, not IDX
    ],
)
def test_parse_idx_rejects_wrong_magic(data: bytes) -> None:
    with pytest.raises(MnistError, match="not an IDX file"):
        parse_idx(data, "labels.bin")


@pytest.mark.parametrize("delta", [-1, 1, -100])
def test_parse_idx_rejects_size_mismatch(delta: int) -> None:
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    data = data[:delta] if delta < 0 else data + b"\x00" * delta
    with pytest.raises(MnistError, match=r"images\.bin: .* bytes of data, header says 3136"):
        parse_idx(data, "images.bin")


def test_parse_idx_rejects_truncated_header() -> None:
    """Magic says 3 dimensions, but the file ends after the first: MnistError, not struct.error."""
    with pytest.raises(MnistError, match=r"images\.bin"):
        parse_idx(b"\x00\x00\x08\x03\x00\x00\x00\x01", "images.bin")


# --- load_mnist ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gz", [set(), set(NAMES), {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}]
)
def test_load_mnist_raw_and_gz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: set[str]
) -> None:
    arrays = tiny_mnist()
    sums = write_dataset(tmp_path, arrays, gz)
    data = load_mnist(tmp_path, verify=False)
    np.testing.assert_array_equal(data.train_images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.train_labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.test_images, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert data.checksums == sums  # MD5 of the decompressed content, whatever the format
    monkeypatch.setattr(server.training.mnist, "FILES", sums)
    assert load_mnist(tmp_path, verify=True).checksums == sums


def test_load_mnist_verify_names_file_and_both_md5s(tmp_path: Path) -> None:
    arrays = tiny_mnist()
    sums = write_dataset(tmp_path, arrays, {"train-images-idx3-ubyte"})
    load_mnist(tmp_path, verify=False)
    with pytest.raises(MnistError) as info:
        load_mnist(tmp_path)  # verify=True by default, against the real MNIST MD5s
    message = str(info.value)
    name = "train-images-idx3-ubyte"  # the first file checked
    assert str(tmp_path / f"{name}.gz") in message
    assert sums[name] in message
    assert server.training.mnist.FILES[name] in message


def test_load_mnist_missing_file(tmp_path: Path) -> None:
    arrays = tiny_mnist()
    write_dataset(tmp_path, arrays, set())
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path, verify=False)


def test_load_mnist_truncated_gzip(tmp_path: Path) -> None:
    arrays = tiny_mnist()
    write_dataset(tmp_path, arrays, set(NAMES))
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(MnistError, match=r"train-labels-idx1-ubyte\.gz"):
        load_mnist(tmp_path, verify=False)


def test_load_mnist_corrupt_gzip(tmp_path: Path) -> None:
    """Invalid deflate data in a gzip: zlib raises zlib.error, which must become MnistError."""
    arrays = tiny_mnist()
    write_dataset(tmp_path, arrays, set(NAMES))
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    assert data[3] == 0  # no optional header fields: the deflate stream starts at byte 10
    data[10] = 0xFF  # BFINAL=1, BTYPE=11: "invalid block type"
    path.write_bytes(bytes(data))
    with pytest.raises(MnistError, match=r"train-labels-idx1-ubyte\.gz"):
        load_mnist(tmp_path, verify=False)


@pytest.mark.skipif(not os.environ.get("MNIST_DIR"), reason="set MNIST_DIR to check the real data")
def test_real_mnist() -> None:
    data = load_mnist(os.environ["MNIST_DIR"])  # verified against the well-known MD5s
    assert data.train_images.shape == (60000, 28, 28)
    assert data.train_labels.shape == (60000,)
    assert data.test_images.shape == (10000, 28, 28)
    assert data.test_labels.shape == (10000,)
    assert data.train_images.dtype == data.train_labels.dtype == np.uint8
    for labels in (data.train_labels, data.test_labels):
        assert labels.min() == 0
        assert labels.max() == 9
        assert set(np.unique(labels)) == set(range(10))
    assert data.train_images.max() == 255
    assert data.train_images.min() == 0
    assert data.checksums == server.training.mnist.FILES


# --- download against a local server -------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, list]]:
    """(base URL, served directory, request log) of a server on 127.0.0.1, stopped afterwards."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    log: list[str] = []
    handler = type("Handler", (QuietHandler,), {"requests": log})
    server_ = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server_.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server_.server_address[1]}", root, log
    finally:
        server_.shutdown()
        server_.server_close()
        thread.join(timeout=10)


def serve_dataset(root: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Put gzipped IDX files under root/good/; return the MD5s of their decompressed content."""
    return write_dataset(root / "good", arrays, set(NAMES))


def test_download_mnist_falls_back_to_second_mirror(
    http_root: tuple[str, Path, list], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root, log = http_root
    arrays = tiny_mnist(seed=3)
    sums = serve_dataset(root, arrays)
    monkeypatch.setattr(server.training.mnist, "FILES", sums)
    target = tmp_path / "data"
    result = download_mnist(
        target, mirrors=[f"{base}/missing/", f"{base}/good"], show_progress=False
    )
    assert result == target
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{n}.gz" for n in NAMES)
    for name in NAMES:  # byte-identical to what was served
        assert (target / f"{name}.gz").read_bytes() == (root / "good" / f"{name}.gz").read_bytes()
    assert log == [p for n in NAMES for p in (f"/missing/{n}.gz", f"/good/{n}.gz")]
    data = load_mnist(target, verify=True)
    np.testing.assert_array_equal(data.test_images, arrays["t10k-images-idx3-ubyte"])
    # a second call finds everything in place and downloads nothing
    log.clear()
    download_mnist(target, mirrors=[f"{base}/good"], show_progress=False)
    assert log == []


def test_download_checksum_mismatch_leaves_nothing(
    http_root: tuple[str, Path, list], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root, _ = http_root
    sums = serve_dataset(root, tiny_mnist(seed=4))
    name = "train-labels-idx1-ubyte"
    monkeypatch.setattr(server.training.mnist, "FILES", {name: "0" * 32})
    target = tmp_path / "data"
    with pytest.raises(MnistError) as info:
        download_mnist(target, mirrors=[f"{base}/missing", f"{base}/good"], show_progress=False)
    message = str(info.value)
    assert name in message
    assert "404" in message  # the first mirror's failure is reported too
    assert sums[name] in message
    assert "0" * 32 in message
    assert list(target.iterdir()) == []  # no file, no .part left behind


def test_download_file_reports_progress_and_cleans_up_on_404(
    http_root: tuple[str, Path, list], tmp_path: Path
) -> None:
    base, root, _ = http_root
    sums = serve_dataset(root, tiny_mnist(seed=5))
    name = "t10k-images-idx3-ubyte"
    size = (root / "good" / f"{name}.gz").stat().st_size
    seen: list[tuple[int, int | None]] = []
    destination = tmp_path / "dl" / f"{name}.gz"
    download_file(
        f"{base}/good/{name}.gz", destination, sums[name], lambda n, t: seen.append((n, t))
    )
    assert destination.is_file()
    assert sum(n for n, _ in seen) == size
    assert {t for _, t in seen} == {size}
    other = tmp_path / "dl" / "other.gz"
    with pytest.raises(Exception, match="404"):
        download_file(f"{base}/nothing-here.gz", other, sums[name])
    assert sorted(p.name for p in destination.parent.iterdir()) == [f"{name}.gz"]
