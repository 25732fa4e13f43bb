"""Every model the server answers with, by name: the weights files of one folder, plus sources
(training jobs) that answer the names under their own prefix ("training:<id>")."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.api.errors import InputError
from server.cnn import ModelFileError
from server.inference import Predictor

logger = logging.getLogger("convscope")

Lookup = Callable[[str], Predictor]  # the rest of the name after "prefix:"; KeyError if unknown
Loader = Callable[[Path], Predictor]


class UnknownModelError(InputError):
    """A model name nobody answers to: a 404 saying which names there are."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


@dataclass(frozen=True)
class LoadProblem:
    """A weights file skipped at start-up, and why."""

    path: Path
    problem: str


class ModelRegistry:
    """Read-only after start-up but for `add_source`, so request threads share it freely."""

    def __init__(self, models: dict[str, Predictor], default: str) -> None:
        if default not in models:
            raise ValueError(f"the default model {default!r} is not among {sorted(models)}")
        self.models = dict(sorted(models.items()))
        self.default = default
        self.sources: dict[str, Lookup] = {}
        self.problems: list[LoadProblem] = []
        self.paths: dict[str, Path] = {}  # where each model loaded at start-up came from

    @classmethod
    def load(cls, folder: Path, default_path: Path, loader: Loader) -> ModelRegistry:
        """The default model (ModelFileError if it fails: nothing to serve), then every other
        top-level .npz in `folder`, each named by its file stem; bad ones are skipped, logged by
        name and kept in `problems`."""
        default = default_path.stem
        models = {default: loader(default_path)}
        paths = {default: default_path.resolve()}
        problems = []
        candidates = sorted(folder.glob("*.npz")) if folder.is_dir() else []
        for path in candidates:
            if path.stem in models:
                continue
            try:
                models[path.stem] = loader(path)
                paths[path.stem] = path.resolve()
            except ModelFileError as error:
                problems.append(LoadProblem(path, error.problem))
                logger.warning("skipped model %s: %s", path, error.problem)
        registry = cls(models, default)
        registry.problems = problems
        registry.paths = paths
        return registry

    def served_file(self, name: str) -> tuple[Path, Predictor]:
        """A model loaded from a file at start-up (not a training job's): its file and itself;
        UnknownModelError naming the ones there are."""
        if name not in self.models or name not in self.paths:
            raise UnknownModelError(
                f"no served model named {name!r}; models are {list(self.models)}"
            )
        return self.paths[name], self.models[name]

    def add_source(self, prefix: str, lookup: Lookup) -> None:
        """Names "prefix:rest" are answered by lookup(rest) from now on."""
        self.sources[prefix] = lookup

    def loaded(self, name: str | None) -> bool:
        """Whether `name` is one of the model files loaded at start-up (None: the default)."""
        return name is None or name in self.models

    def get(self, name: str | None) -> Predictor:
        """The model called `name`, the default for None; UnknownModelError otherwise."""
        if name is None:
            return self.models[self.default]
        if name in self.models:
            return self.models[name]
        prefix, colon, rest = name.partition(":")
        if colon and prefix in self.sources:
            try:
                return self.sources[prefix](rest)
            except KeyError as error:
                message = error.args[0] if error.args else f"no model named {name!r}"
                raise UnknownModelError(str(message)) from None
        raise UnknownModelError(
            f"no model named {name!r}; models are {list(self.models)}"
            + "".join(f" and {prefix}:<id>" for prefix in self.sources)
        )

    def listing(self) -> list[dict[str, Any]]:
        """GET /api/v1/models: one row per weights file, the default first flagged."""
        return [
            {
                "name": name,
                "default": name == self.default,
                "sha256": predictor.sha256,
                "parameters": predictor.model.parameter_count(),
                "test_accuracy": predictor.metadata.get("test_accuracy"),
                "layers": [row.kind for row in predictor.architecture()],
            }
            for name, predictor in self.models.items()
        ]
