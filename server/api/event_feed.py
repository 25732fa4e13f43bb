"""One reader per followed job per process, however many streams follow it: a class of 30 on
one job's stream costs one poll of the jobs' source (the process's jobs, or the broker), and a
stream waits on an asyncio event instead of polling on its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from server.training.jobs.backend import ENDINGS, UnknownJobError, WireEvent

logger = logging.getLogger("convscope")

Fetch = Callable[[str, int], Awaitable[list[WireEvent]]]
POLL_S = 0.1  # how often a feed asks for new events: far below the 0.25 s between progresses
RETRY_S = 1.0  # after the source failed (the broker away): ask again this much later


class JobFeed:
    """Every event of one job seen so far, and a wake-up for the streams waiting on more."""

    def __init__(self, job_id: str, fetch: Fetch) -> None:
        self.job_id, self.fetch = job_id, fetch
        self.events: list[WireEvent] = []  # in id order: 1, 2, ... (ids are contiguous)
        self.ended = False  # an ending event is in `events`, or the job is gone
        self.followers = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._read(), name=f"feed-{self.job_id[:8]}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        while not self.ended:
            last = self.events[-1].id if self.events else 0
            try:
                new = await self.fetch(self.job_id, last)
            except UnknownJobError:
                self.ended = True  # expired meanwhile: nothing more will come
                new = []
            except Exception:  # the broker away: the streams wait, the feed asks again later
                logger.warning("job %s: cannot read its events; trying again", self.job_id)
                await asyncio.sleep(RETRY_S)
                continue
            if new:
                self.events.extend(event for event in new if event.id > last)
                self.ended = self.ended or any(event.name in ENDINGS for event in new)
            if new or self.ended:
                self._changed.set()
                self._changed = asyncio.Event()
            if not self.ended:
                await asyncio.sleep(POLL_S)

    def after(self, last_id: int) -> list[WireEvent]:
        """Events with an id above `last_id` (ids are 1, 2, ..., so a slice finds them)."""
        start = 0 if not self.events else max(0, last_id - self.events[0].id + 1)
        return self.events[start:]

    async def wait(self, last_id: int, timeout: float) -> list[WireEvent]:
        """Events above `last_id`, waiting up to `timeout` s for some; [] when none came."""
        if not self.after(last_id) and not self.ended:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        return self.after(last_id)


class Feeds:
    """The feeds of this process, made on a job's first follower and dropped after its last."""

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.feeds: dict[str, JobFeed] = {}

    @contextlib.asynccontextmanager
    async def follow(self, job_id: str) -> AsyncIterator[JobFeed]:
        feed = self.feeds.get(job_id)
        if feed is None:
            feed = self.feeds[job_id] = JobFeed(job_id, self.fetch)
            feed.start()
        feed.followers += 1
        try:
            yield feed
        finally:
            feed.followers -= 1
            if feed.followers == 0 and self.feeds.get(job_id) is feed:
                del self.feeds[job_id]
                await feed.stop()

    async def close(self) -> None:
        for feed in list(self.feeds.values()):
            await feed.stop()
        self.feeds.clear()
