"""Server-sent events as a client reads them: the fields of each event, from the lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def sse_events(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """{"event", "id", "data"} of each event (a blank line ends one; comments and pings carry no
    `event` and are skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if "event" in fields:
            yield fields
        fields = {}
