"""docs/architecture.md stays true: its code map names every folder of server/ and web/js/, and
every server/ or web/js/ path the page names exists.

Paths are written from the repository root (`server/api/middleware/`, `web/js/api.js`); a folder
ends with a slash. A line marked "(pending move)" describes a move still landing in parallel: its
paths may not exist yet, and once they all do the mark must go.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAP_HEADING = "## Code map"
PENDING = "(pending move)"
# `server/...` or `web/js/...`, not inside a longer path (`tests/web/...`, `model_weights/...`)
PATH = re.compile(r"(?<![\w./-])(?:server|web/js)/[\w./-]*")


def mentioned(lines: list[tuple[int, str]]) -> list[tuple[int, str, bool]]:
    """(line number, path, pending) for every server/ or web/js/ path on these lines."""
    found = []
    for number, line in lines:
        pending = PENDING in line
        for match in PATH.finditer(line):
            path = match.group().rstrip(".")  # a sentence's full stop is not part of the path
            found.append((number, path, pending))
    return found


def numbered(text: str) -> list[tuple[int, str]]:
    """(line number, line), counting from 1 as editors do."""
    return list(enumerate(text.splitlines(), start=1))


def code_map(text: str) -> list[tuple[int, str]]:
    """The lines of the "## Code map" section, up to the next heading of its level."""
    lines = numbered(text)
    starts = [i for i, (_, line) in enumerate(lines) if line.strip() == MAP_HEADING]
    assert starts, f"{ARCHITECTURE.name} has no {MAP_HEADING!r} section"
    section = []
    for number, line in lines[starts[0] + 1 :]:
        if line.startswith("## "):
            break
        section.append((number, line))
    return section


def exists(path: str) -> bool:
    """A folder (trailing slash) must be a directory, a .py or .js name a file, anything else
    either."""
    target = ROOT / path
    if path.endswith("/"):
        return target.is_dir()
    if path.endswith((".py", ".js")):
        return target.is_file()
    return target.exists()


def code_folders() -> list[str]:
    """Every folder of server/ holding Python, and every folder of web/js/, as `a/b/`."""
    server = {p.parent for p in (ROOT / "server").rglob("*.py") if "__pycache__" not in p.parts}
    web = {ROOT / "web" / "js"} | {p for p in (ROOT / "web" / "js").rglob("*") if p.is_dir()}
    return sorted(f"{folder.relative_to(ROOT).as_posix()}/" for folder in server | web)


@pytest.fixture(scope="module")
def text() -> str:
    return ARCHITECTURE.read_text(encoding="utf-8")


def test_the_map_names_every_code_folder(text: str) -> None:
    named = {path for _, path, _ in mentioned(code_map(text))}
    missing = [folder for folder in code_folders() if folder not in named]
    assert not missing, (
        f"{ARCHITECTURE.relative_to(ROOT)}'s code map is missing {missing}: give each folder a "
        "line, written from the root with a trailing slash"
    )


def test_every_path_named_exists(text: str) -> None:
    stale = [
        f"line {number}: {path}"
        for number, path, pending in mentioned(numbered(text))
        if not pending and not exists(path)
    ]
    assert not stale, f"{ARCHITECTURE.relative_to(ROOT)} names paths that do not exist: {stale}"


def test_pending_marks_are_still_pending(text: str) -> None:
    """A pending line names at least one path that is not there yet; once the move lands, the
    mark goes, so the line is checked like any other."""
    by_line: dict[int, list[str]] = {}
    for number, path, pending in mentioned(numbered(text)):
        if pending:
            by_line.setdefault(number, []).append(path)
    landed = [
        f"line {number}: {paths}"
        for number, paths in by_line.items()
        if all(exists(path) for path in paths)
    ]
    assert not landed, (
        f"these moves have landed; remove {PENDING!r} from their lines in "
        f"{ARCHITECTURE.relative_to(ROOT)}: {landed}"
    )


def test_the_checks_see_paths_as_written() -> None:
    """The path pattern against the forms the map uses, and the ones it must not take."""
    lines = [
        (1, "server/api/middleware/   the pure ASGI pieces; see server/api/app.py."),
        (2, "tests/web/test_perf.py and model_weights/mnist_cnn.npz are not code paths"),
        (3, f"web/js/views/detail/  the dialog {PENDING}"),
    ]
    assert mentioned(lines) == [
        (1, "server/api/middleware/", False),
        (1, "server/api/app.py", False),
        (3, "web/js/views/detail/", True),
    ]
    assert exists("server/api/")
    assert not exists("server/api.py")
    assert not exists("server/nope/")
