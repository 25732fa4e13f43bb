"""The weights file: one .npz of parameters, JSON architecture and JSON metadata, no pickle."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.cnn.model import Sequential

FORMAT_VERSION = 1
PARAM_PREFIX = "param/"
EXTRA_PREFIX = "extra/"  # arrays fitted after training (statistics of the features, ...)


class ModelFileError(ValueError):
    """A weights file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


@dataclass
class LoadedModel:
    """A rebuilt model and the metadata stored beside its weights."""

    model: Sequential
    metadata: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def save_model(
    path: str | os.PathLike[str],
    model: Sequential,
    metadata: dict[str, Any],
    extras: dict[str, np.ndarray] | None = None,
) -> None:
    """Write atomically (temporary file, then rename) so a crash never leaves half a file.

    `extras`: float arrays stored under `extra/<key>` beside the parameters, as float32.
    """
    arrays: dict[str, np.ndarray] = {
        PARAM_PREFIX + key: np.ascontiguousarray(value, dtype=np.float32)
        for key, value in model.state_dict().items()
    }
    for key, value in (extras or {}).items():
        arrays[EXTRA_PREFIX + key] = np.ascontiguousarray(value, dtype=np.float32)
    arrays["format_version"] = np.array(FORMAT_VERSION)
    arrays["architecture"] = np.array(json.dumps(model.spec()))
    arrays["metadata"] = np.array(json.dumps(metadata))
    write_npz(path, arrays)


def write_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """A compressed .npz written atomically (temporary file, then rename), readable by all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a server running as another user must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def state_sha256(state: dict[str, np.ndarray]) -> str:
    """A fingerprint of a set of weights, as a weights file's SHA-256 names a shipped model:
    what a training job's model is known by, and what an atlas belongs to."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(state[key], dtype=np.float32).tobytes())
    return digest.hexdigest()


def _read_json(archive: Any, key: str, path: Path) -> Any:
    if key not in archive.files:
        raise ModelFileError(path, f"missing entry {key!r}; is this a ConvScope weights file?")
    try:
        return json.loads(str(archive[key]))
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"entry {key!r} is not valid JSON: {exc}") from exc


def _open_npz(handle: Any, path: Path) -> Any:
    """np.load that insists on an .npz archive (a lone .npy array is not a weights file)."""
    archive = np.load(handle, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(path, "not an .npz archive (a single .npy array?)")
    return archive


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Rebuild the model from the file alone; every failure is a ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such file")
    try:
        # Open the file ourselves: np.load leaks its handle when the zip is bad.
        with path.open("rb") as handle, _open_npz(handle, path) as archive:
            version = int(archive["format_version"]) if "format_version" in archive.files else None
            if version != FORMAT_VERSION:
                raise ModelFileError(path, f"format version {version}, expected {FORMAT_VERSION}")
            spec = _read_json(archive, "architecture", path)
            metadata = _read_json(archive, "metadata", path)
            state = {
                key.removeprefix(PARAM_PREFIX): archive[key]
                for key in archive.files
                if key.startswith(PARAM_PREFIX)
            }
            extras = {
                key.removeprefix(EXTRA_PREFIX): archive[key]
                for key in archive.files
                if key.startswith(EXTRA_PREFIX)
            }
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(
            path, f"not a readable .npz file ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        model = Sequential.from_spec(spec)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"bad architecture: {exc}") from exc
    try:
        model.load_state_dict(state, source="weights")
    except ValueError as exc:
        raise ModelFileError(path, str(exc)) from exc
    return LoadedModel(model=model, metadata=metadata, extras=extras)
