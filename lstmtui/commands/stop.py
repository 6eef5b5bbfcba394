"""`lstmtui stop NAME`: stop a running run at its next step boundary (it saves) and wait until it is gone."""

from __future__ import annotations

import argparse
import time

from lstmtui.service import RunClient, ServiceError

DEFAULT_TIMEOUT_S = 120.0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `stop`."""
    parser = subparsers.add_parser(
        "stop",
        help="stop a running run (it saves) and wait until it has",
        description="Stop the run NAME (see `lstmtui ps`) at its next step boundary; it saves its profile and "
        "ends. Waits until it has.",
    )
    parser.add_argument("name", metavar="NAME", help="the run's name, as `lstmtui ps` lists it")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up waiting after this long; the run still stops (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Send stop, then read the run's events until it ends; 0 when it ended saved, 2 otherwise."""
    deadline = time.monotonic() + args.timeout
    with RunClient.connect(args.name) as client:
        reply = client.request("stop", timeout=max(1.0, args.timeout))
        if reply.get("type") == "error":
            raise ServiceError(f"run {args.name} refused to stop: {reply.get('message')}")
        result = _wait_for_end(client, deadline)
        if result is None and not client.closed:
            raise ServiceError(
                f"run {args.name} has not ended within {args.timeout:g}s; it stops at its next step boundary"
            )
    return _report(args.name, result)


def _wait_for_end(client: RunClient, deadline: float) -> dict | None:
    """The run's final event once it ends (None when the connection closed without one, or at the deadline)."""
    result = None
    while time.monotonic() < deadline:
        message = client.read(min(0.5, max(0.0, deadline - time.monotonic())))
        if message is None:
            if client.closed:
                return result
            continue
        if message.get("type") == "end":
            return message.get("result") or result
        data = message.get("data") if message.get("type") == "event" else None
        if isinstance(data, dict) and data.get("event") in ("finished", "failed"):
            result = data
    return result


def _report(name: str, result: dict | None) -> int:
    if result is None:
        print(f"run {name} has ended")
        return 0
    if result.get("event") == "failed":
        raise ServiceError(f"run {name} failed: {result.get('message')}")
    print(f"stopped run {name} at step {result.get('step')} ({result.get('reason')}); its profile is saved")
    return 0
