"""What a job leaves on the shared broker (Redis or Valkey), and the few atomic steps on it.

SAQ owns the queue (its own keys, `saq:convscope-training:*`): who waits, who runs, cancelling,
and noticing a worker that died. Beside it, per job (all with the jobs' TTL):
- `convscope:job:<id>`           hash: status, place in line, progress, config, error, owner
- `convscope:job:<id>:events`    stream of the job's events, ids `0-1`, `0-2`, ... so an SSE
                                 client's Last-Event-ID is a plain number on every replica
- `convscope:job:<id>:w:<step>`  a snapshot's weights, `...:w:latest` the newest: plain .npz bytes
- `convscope:client:<client>`    the id of that client's newest job (one queued or running each)
- `convscope:running`            set of the jobs a worker has started and not yet finished
Each script below runs whole inside the broker, so two replicas or workers never interleave.
(The scripts name keys they compute: one Redis or Valkey server, not a cluster.)
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from server.training.jobs.messages import State

QUEUE = "convscope-training"  # SAQ's queue name
SAQ_PREFIX = f"saq:job:{QUEUE}:"  # how SAQ names a job's key from ours
RUNNING = "convscope:running"


def job_key(job_id: str) -> str:
    return f"convscope:job:{job_id}"


def events_key(job_id: str) -> str:
    return f"convscope:job:{job_id}:events"


def weights_key(job_id: str, step: int | str) -> str:
    return f"convscope:job:{job_id}:w:{step}"


def client_key(client: str) -> str:
    return f"convscope:client:{client}"


# ARGV: name, data, ttl. The next id from the job's hash, then the event under `0-<id>`.
APPEND = """
local n = redis.call('HINCRBY', KEYS[1], 'last_event', 1)
redis.call('XADD', KEYS[2], '0-' .. n, 'name', ARGV[1], 'data', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return n
"""

# KEYS: client key, SAQ's queued list. ARGV: job id, max queued, ttl, config JSON, created, SAQ's
# job-id prefix. Only jobs still `queued` count: SAQ puts a job back in its list when a worker
# shuts down under it, and that job has already ended here (`failed`); a worker skips it.
# A client's job still queued or running: {'busy', id, status}; the queue full: {'full'};
# else the job's hash is made and the client's key points at it: {'ok'}.
ADMIT = """
local own = redis.call('GET', KEYS[1])
if own then
  local status = redis.call('HGET', 'convscope:job:' .. own, 'status')
  if status == 'queued' or status == 'running' then return {'busy', own, status} end
end
local waiting = 0
for _, saq_id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local id = string.sub(saq_id, string.len(ARGV[6]) + 1)
  if redis.call('HGET', 'convscope:job:' .. id, 'status') == 'queued' then waiting = waiting + 1 end
end
if waiting >= tonumber(ARGV[2]) then return {'full'} end
local key = 'convscope:job:' .. ARGV[1]
redis.call('HSET', key, 'status', 'queued', 'position', 0, 'config', ARGV[4],
  'created', ARGV[5], 'last_event', 0, 'step', 0, 'epoch', 1, 'img_per_s', 0)
redis.call('EXPIRE', key, ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return {'ok'}
"""

# KEYS: SAQ's queued list. ARGV: SAQ's job-id prefix, ttl. Every waiting job whose place in
# line (among the jobs still `queued`) changed gets it in its hash and a `queued` event.
ANNOUNCE = """
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local i = 0
for _, saq_id in ipairs(ids) do
  local id = string.sub(saq_id, string.len(ARGV[1]) + 1)
  local key = 'convscope:job:' .. id
  if redis.call('HGET', key, 'status') == 'queued' then i = i + 1 end
  if redis.call('HGET', key, 'status') == 'queued'
      and tonumber(redis.call('HGET', key, 'position')) ~= i then
    redis.call('HSET', key, 'position', i)
    local n = redis.call('HINCRBY', key, 'last_event', 1)
    local stream = key .. ':events'
    redis.call('XADD', stream, '0-' .. n, 'name', 'queued', 'data', '{"position":' .. i .. '}')
    redis.call('EXPIRE', stream, ARGV[2])
  end
end
return #ids
"""

# KEYS: job hash, events stream. ARGV: from-status list (comma-separated), to-status, event
# name, event data, error (or ''), ttl. Ends the job only if it is still in a from-status, so
# the worker, a cancel and a sweep never end one job twice. Returns 1 if it ended it.
FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not string.find(',' .. ARGV[1] .. ',', ',' .. status .. ',', 1, true) then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'position', 0)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
local n = redis.call('HINCRBY', KEYS[1], 'last_event', 1)
redis.call('XADD', KEYS[2], '0-' .. n, 'name', ARGV[3], 'data', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('SREM', 'convscope:running', string.sub(KEYS[1], string.len('convscope:job:') + 1))
return 1
"""


def state_bytes(state: State) -> bytes:
    """Weights as plain .npz bytes (no pickles), the form they take on the broker."""
    buffer = io.BytesIO()
    save: Any = np.savez  # its stubs read a key named like a keyword as that keyword
    save(buffer, **state)
    return buffer.getvalue()


def state_from_bytes(data: bytes) -> State:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def text(value: Any) -> str | None:
    """A hash field as text (redis-py answers bytes), None when absent."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
