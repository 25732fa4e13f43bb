// "Latest wins" request scheduling: at most one request in flight; while one is in flight only
// the newest job waits, and it is sent as soon as the response lands (before that response is
// rendered, so rendering overlaps the next request). cancel() drops the waiting job and makes
// the in-flight one's answer be ignored.

export function createLatestWins(run, { onResult, onError }) {
  let busy = false;
  let waiting = null;
  let epoch = 0;

  async function start(job) {
    busy = true;
    const mine = epoch;
    let result;
    let error;
    let failed = false;
    try {
      result = await run(job);
    } catch (err) {
      failed = true;
      error = err;
    }
    busy = false;
    if (waiting) {
      const next = waiting;
      waiting = null;
      start(next);
    }
    if (mine !== epoch) return;
    if (failed) onError(job, error);
    else onResult(job, result);
  }

  return {
    submit(job) {
      if (busy) waiting = job;
      else start(job);
    },
    cancel() {
      waiting = null;
      epoch++;
    },
  };
}
