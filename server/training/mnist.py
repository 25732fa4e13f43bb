"""MNIST from its four canonical IDX files: read, verify, and (optionally) download."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# MD5 of the *decompressed* files: the well-known values, valid for any gzip of them.
FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IDX_DTYPES: dict[int, str | type[np.generic]] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class MnistError(RuntimeError):
    """MNIST files that are missing, corrupt or fail their checksum; names the file."""


@dataclass(frozen=True)
class Mnist:
    """uint8 images (N, 28, 28) and uint8 labels (N,) for both splits."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    checksums: dict[str, str]


def default_data_dir() -> Path:
    """$MNIST_DIR if set, else the user cache directory."""
    if os.environ.get("MNIST_DIR"):
        return Path(os.environ["MNIST_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "convscope" / "mnist"


def find_file(directory: Path, name: str) -> Path:
    """The raw or gzipped file for `name`, or MnistError naming both paths tried."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise MnistError(f"{directory / name}[.gz] not found; pass --download to fetch MNIST")


def read_bytes(path: Path) -> bytes:
    """File content, decompressed if it is gzip (by magic bytes, not by name)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise MnistError(f"{path}: corrupt gzip data ({exc})") from exc
    return raw


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """Decode the IDX format: magic (0, 0, dtype, ndim), big-endian dims, then the values."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_DTYPES:
        raise MnistError(f"{source}: not an IDX file (magic {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistError(f"{source}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise MnistError(f"{source}: {len(data) - header} bytes of data, header says {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def load_mnist(directory: str | os.PathLike[str], verify: bool = True) -> Mnist:
    """Read and (by default) MD5-verify the four files in `directory`."""
    directory = Path(directory)
    arrays, checksums = {}, {}
    for name, md5 in FILES.items():
        path = find_file(directory, name)
        data = read_bytes(path)
        digest = hashlib.md5(data).hexdigest()
        if verify and digest != md5:
            raise MnistError(f"{path}: MD5 of decompressed content is {digest}, expected {md5}")
        arrays[name] = parse_idx(data, str(path))
        checksums[name] = digest
    return Mnist(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"],
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"],
        checksums=checksums,
    )


def download_file(
    url: str,
    destination: Path,
    md5: str,
    progress: Callable[[int, int | None], None] | None = None,
) -> None:
    """Stream `url` to a temporary file beside `destination`, verify, then rename atomically."""
    import httpx

    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=destination.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as handle,
            httpx.stream("GET", url, follow_redirects=True, timeout=60) as response,
        ):
            response.raise_for_status()
            total = (
                int(response.headers["content-length"])
                if "content-length" in response.headers
                else None
            )
            for chunk in response.iter_bytes():
                handle.write(chunk)
                if progress:
                    progress(len(chunk), total)
        digest = hashlib.md5(read_bytes(tmp)).hexdigest()
        if digest != md5:
            raise MnistError(f"{url}: MD5 of decompressed content is {digest}, expected {md5}")
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def download_mnist(
    directory: str | os.PathLike[str], mirrors: Iterable[str] = MIRRORS, show_progress: bool = True
) -> Path:
    """Fetch whichever of the four files are missing, trying each mirror in turn."""
    from tqdm import tqdm

    directory = Path(directory)
    mirrors = list(mirrors)
    for name, md5 in FILES.items():
        if any((directory / n).is_file() for n in (f"{name}.gz", name)):
            continue
        errors = []
        for mirror in mirrors:
            url = f"{mirror.rstrip('/')}/{name}.gz"
            with tqdm(desc=name, unit="B", unit_scale=True, disable=not show_progress) as bar:

                def advance(n: int, total: int | None, bar: tqdm = bar) -> None:
                    bar.total = total
                    bar.update(n)

                try:
                    download_file(url, directory / f"{name}.gz", md5, advance)
                    break
                except Exception as exc:
                    errors.append(f"{url}: {exc}")
        else:
            raise MnistError(f"could not download {name}: " + "; ".join(errors))
    return directory
