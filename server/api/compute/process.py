"""Predictions in a process of their own beside the server's: their Python runs on another core
than the event loop's, instead of taking turns with it for the one GIL of a process.

The child loads the same model files as the server (and says which, by their SHA-256), then
answers jobs one at a time, in the order they come. A job is a route's work function
(module-level, so pickled by name) and its arguments; the child calls it with its own models and
settings, exactly as a compute thread would with the server's. The answer is the response's
status, body and media type (a known input error already turned into its 4xx), the time of each
pass through the network for the server's metrics, and the traceback of a bug for the server's
log. Jobs and answers travel as pickles over a socket pair that only these two processes hold;
the server reads the answers on its event loop, with no thread of its own for it."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from fastapi import HTTPException
from threadpoolctl import threadpool_limits

from server.api.errors import bad_input_answer, internal_error_answer
from server.api.prometheus import TimedPredictor
from server.api.registry import ModelRegistry
from server.config import Settings
from server.processes import end

logger = logging.getLogger("convscope")

CONTEXT = multiprocessing.get_context("spawn")  # never fork a threaded server
FRAME = struct.Struct("!i")  # multiprocessing.Connection's length prefix, which the child reads
START_TIMEOUT_S = 60.0  # loading the models takes about a second
STOP_WAIT_S = 5.0  # how long a closing server waits for the child before ending it by force

Work = Callable[..., Any]  # work(*args, models, settings) -> a Response
Weights = dict[str, str]  # model name -> SHA-256 of its weights file


class ComputeUnavailableError(HTTPException):
    """503 with Retry-After: the child ended with jobs in hand (killed, out of memory), or a new
    one could not start; the next job tries a new one."""

    def __init__(self, what: str) -> None:
        super().__init__(503, f"{what}; try again", headers={"Retry-After": "1"})


class ComputeStartError(RuntimeError):
    """A child could not load the models, or loaded other weights than the server's."""


@dataclass(frozen=True)
class Answer:
    """What the child sends back for one job."""

    status: int
    body: bytes
    media_type: str | None
    passes: list[tuple[str, float]]  # (kind, seconds) of each pass through the network
    failure: str | None = None  # a bug's traceback, logged by the server with the request id


@dataclass
class Child:
    """A running child: its process, our end of the socket pair, and its jobs in order."""

    process: BaseProcess
    writer: asyncio.StreamWriter
    jobs: deque[asyncio.Future[Answer]] = field(default_factory=deque)
    reading: asyncio.Task[None] | None = None


class ComputeProcess:
    """The server's end: starts a child, sends it jobs, hands each answer to its request, and
    starts another child when one ends."""

    def __init__(self, settings: Settings, weights: Weights) -> None:
        self.settings = settings
        self.weights = weights  # what the server serves; a child must load the same
        self.child: Child | None = None
        self.starting = asyncio.Lock()

    async def start(self) -> None:
        """A child that has loaded the server's weights (ComputeStartError if it could not)."""
        child, reader = await spawn(self.settings, self.weights)
        child.reading = asyncio.create_task(self.read_answers(child, reader))
        self.child = child
        logger.info("compute process %d ready", child.process.pid)

    async def run(self, work: Work, *args: object) -> Answer:
        """work(*args, models, settings) in the child; a new child first if the last one ended."""
        job = pickle.dumps((work, args), protocol=pickle.HIGHEST_PROTOCOL)  # before it queues
        async with self.starting:
            if self.child is None:
                try:
                    await self.start()
                except ComputeStartError as error:
                    logger.error("%s", error)
                    raise ComputeUnavailableError("the compute process could not start") from None
        child = self.child
        assert child is not None
        answer = asyncio.get_running_loop().create_future()
        child.jobs.append(answer)  # no await since the check above: the order is the child's
        child.writer.writelines((FRAME.pack(len(job)), job))
        return await answer  # cancelled (the client left): its answer is read and dropped

    async def read_answers(self, child: Child, reader: asyncio.StreamReader) -> None:
        """Hand each answer to the child's oldest job; when the child ends, fail the rest."""
        try:
            while True:
                answer = pickle.loads(await read_frame(reader))
                waiting = child.jobs.popleft()
                if not waiting.done():
                    waiting.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the child ended, or close() asked it to
        except Exception:
            logger.exception("cannot read the compute process's answers; ending it")
        finally:
            if self.child is child:
                self.child = None  # the next job starts a new child
            child.writer.close()
        code = await asyncio.to_thread(end, child.process, STOP_WAIT_S)
        if child.jobs or code != 0:
            logger.error("compute process stopped (exit code %s); the next job starts one", code)
        while child.jobs:
            waiting = child.jobs.popleft()
            if not waiting.done():
                waiting.set_exception(
                    ComputeUnavailableError(f"the compute process stopped (exit code {code})")
                )

    async def close(self) -> None:
        """Closing our end tells the child to finish its job and exit; queued jobs are dropped."""
        child, self.child = self.child, None
        if child is not None:
            child.writer.close()
            if child.reading is not None:
                await child.reading


async def spawn(settings: Settings, weights: Weights) -> tuple[Child, asyncio.StreamReader]:
    """Start a child and wait for it to say it has loaded `weights`; ComputeStartError if it
    does not, and then no process is left behind."""
    mine, theirs = CONTEXT.Pipe(duplex=True)  # a socket pair on POSIX
    process = CONTEXT.Process(
        target=serve, args=(theirs, settings), name="convscope-compute", daemon=True
    )
    process.start()
    theirs.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=os.dup(mine.fileno()))
    mine.close()
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        async with asyncio.timeout(START_TIMEOUT_S):
            said = pickle.loads(await read_frame(reader))
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        said = None
    except BaseException:  # cancelled: the request that started it went away
        abandon(process, writer, sock)
        raise
    if not isinstance(said, dict) or said != weights:
        abandon(process, writer, sock)
        raise ComputeStartError(f"the compute process did not start: {why_not(said, weights)}")
    assert writer is not None
    return Child(process, writer), reader


def why_not(said: object, weights: Weights) -> str:
    """What a child said instead of loading the server's weights."""
    if isinstance(said, str):
        return said  # its load error
    if isinstance(said, dict):
        return f"it loaded other weights than the server ({said} against {weights})"
    return f"it ended or went silent within {START_TIMEOUT_S:.0f} s while loading the models"


def abandon(process: BaseProcess, writer: asyncio.StreamWriter | None, sock: socket.socket) -> None:
    """Kill a child that did not start right (at once: nobody waits on it) and close our end."""
    if writer is not None:
        writer.close()
    else:
        sock.close()
    process.kill()
    process.join()


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = FRAME.unpack(await reader.readexactly(FRAME.size))
    return await reader.readexactly(size)


def serve(conn: Connection, settings: Settings) -> None:
    """The child: load the models, say which (or why not), then answer jobs until the server
    closes its end."""
    for name in (signal.SIGINT, signal.SIGTERM):  # to the whole group: the server closes us
        signal.signal(name, signal.SIG_IGN)
    threadpool_limits(limits=settings.blas_threads, user_api="blas")
    logging.getLogger("convscope").setLevel(logging.ERROR)  # the server has logged the loading
    passes: list[tuple[str, float]] = []
    loader = partial(TimedPredictor.load, observe=lambda kind, s: passes.append((kind, s)))
    try:
        models = ModelRegistry.load(settings.models_dir, settings.default_weights, loader)
    except Exception as error:  # the server says why it cannot start
        conn.send_bytes(pickle.dumps(str(error)))
        return
    conn.send_bytes(pickle.dumps({name: p.sha256 for name, p in models.models.items()}))
    threading.Thread(target=warm_neighbors, args=(models,), daemon=True).start()
    while True:
        try:
            job = conn.recv_bytes()
        except (EOFError, OSError):
            return
        passes.clear()
        answer = answer_job(job, models, settings, passes)
        try:
            conn.send_bytes(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
        except OSError:  # the server is gone
            return


def warm_neighbors(models: ModelRegistry) -> None:
    """Compute each atlas's neighbour vectors now, the default model's first, so that the first
    drawing asking for its neighbours does not wait a second or two for them."""
    for name in sorted(models.models, key=lambda name: name != models.default):
        if models.models[name].atlas is not None:
            models.models[name].neighbor_index  # noqa: B018 (computed on first access)


def answer_job(
    job: bytes, models: ModelRegistry, settings: Settings, passes: list[tuple[str, float]]
) -> Answer:
    """One job's answer, as the server's own error handlers would give it."""
    failure = None
    try:
        work, args = pickle.loads(job)
        response = work(*args, models, settings)
    except Exception as error:  # every job gets an answer
        response = bad_input_answer(error)
        if response is None:
            response = internal_error_answer()
            failure = traceback.format_exc()
    return Answer(response.status_code, bytes(response.body), response.media_type, passes, failure)
