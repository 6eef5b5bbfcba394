"""Runs reachable while they train: a per-run Unix socket serving a RunHost, and its clients.

``serve(host, name)`` makes a run reachable (returns a RunServer; ``.close()`` when done);
``list_runs()`` / ``find_run()`` find live runs; ``RunClient.connect(name)`` talks to one.
The protocol is in docs/protocol.md. This package imports the engine, never a user interface.
"""

from lstmtui.service.client import RunClient, find_run, is_live, list_runs
from lstmtui.service.paths import RunRecord, ServiceError, runs_dir
from lstmtui.service.protocol import event_from_dict, snapshot_from_dict
from lstmtui.service.server import RunServer, serve

__all__ = [
    "RunClient",
    "RunRecord",
    "RunServer",
    "ServiceError",
    "event_from_dict",
    "find_run",
    "is_live",
    "list_runs",
    "runs_dir",
    "serve",
    "snapshot_from_dict",
]
