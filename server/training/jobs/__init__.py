"""Live training jobs: one process per job trains with server.training.train's loop and reports its
progress, evaluations and snapshots over a pipe; the parent keeps them for the API to relay."""
