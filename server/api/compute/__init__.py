"""Model work off the event loop: a compute process beside the server (process.py), the
dispatch between it and the compute threads (dispatch.py), and the work they run (work.py)."""
