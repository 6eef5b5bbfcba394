"""The run protocol, version 1: newline-delimited JSON over a Unix socket (docs/protocol.md).

Every message is one JSON object on one line, with ``"v": 1``. The server sends ``hello``, then
``snapshot``, then ``event`` messages (each carrying an event exactly as ``--log-jsonl`` writes it),
replies (``ack`` / ``error``) to commands, and ``end`` when the run is over. A client sends
commands: ``{"v": 1, "cmd": "pause", "id": 1}``. JSON here is strict: non-finite floats are null.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from typing import Any

from lstmtui.core import events as events_module
from lstmtui.core.config import TrainConfig
from lstmtui.core.errors import LstmtuiError
from lstmtui.core.events import Event
from lstmtui.core.runhost import LossHistory, LossPoint, RunSnapshot

VERSION = 1
MAX_LINE = 64 * 1024  # longest line a client may send, newline included
MAX_ID_CHARS = 200
# what a client may ask; "value" is required by set_lr only
COMMANDS = ("pause", "resume", "stop", "save", "sample", "set_lr", "snapshot", "ping")

# error codes of replies
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
BAD_VERSION = "bad_version"
UNKNOWN_COMMAND = "unknown_command"
BAD_VALUE = "bad_value"
LINE_TOO_LONG = "line_too_long"
TOO_MANY_ERRORS = "too_many_errors"


def jsonable(value: object) -> object:
    """A strict-JSON-ready copy: tuples as lists, non-finite floats as None, other objects as text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def encode(message: dict) -> bytes:
    """One protocol line: strict JSON (no NaN or Infinity), UTF-8, newline-terminated."""
    return json.dumps(message, allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def event_dict(event: Event) -> dict:
    """An event as ``--log-jsonl`` writes it, in strict JSON."""
    return jsonable(event.to_dict())  # type: ignore[return-value]


def hello(info: dict) -> dict:
    """The first message of a connection: the protocol version, the run and the commands it takes."""
    return {"v": VERSION, "type": "hello", "protocol": VERSION, "commands": list(COMMANDS), **info}


def snapshot_message(snapshot: RunSnapshot) -> dict:
    """The run as it stands; a later snapshot on the same connection replaces everything before it."""
    return {"v": VERSION, "type": "snapshot", "snapshot": jsonable(snapshot.to_dict())}


def event_message(event: Event) -> dict:
    """One training event."""
    return {"v": VERSION, "type": "event", "data": event_dict(event)}


def end_message(result: Event | None) -> dict:
    """The run is over (its final event, if any); the server closes the connection next."""
    return {"v": VERSION, "type": "end", "result": None if result is None else event_dict(result)}


def ack(request_id: object, cmd: str, **extra: object) -> dict:
    """A command was accepted (it acts at the next step boundary)."""
    return {"v": VERSION, "type": "ack", "id": request_id, "cmd": cmd, **extra}


def error(code: str, message: str, request_id: object = None) -> dict:
    """A message could not be carried out; the run is unaffected."""
    return {"v": VERSION, "type": "error", "id": request_id, "code": code, "message": message}


@dataclass(frozen=True)
class Command:
    """A checked client command."""

    cmd: str
    id: object = None
    value: float | None = None


class ProtocolError(ValueError):
    """A client line that is not a valid command; carries the reply's code and the request id."""

    def __init__(self, code: str, message: str, request_id: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


def command(line: bytes) -> Command:
    """Parse and check one client line (without its newline); ProtocolError says what is wrong."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError(BAD_JSON, "not a JSON object on one line of UTF-8") from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, "a message must be a JSON object")
    request_id = data.get("id")
    if not _valid_id(request_id):
        raise ProtocolError(BAD_MESSAGE, f"id must be a string of at most {MAX_ID_CHARS} characters or an integer")
    version = data.get("v")
    if version != VERSION or isinstance(version, bool):
        raise ProtocolError(BAD_VERSION, f'protocol version {VERSION} is spoken here (send "v": 1)', request_id)
    cmd = data.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError(BAD_MESSAGE, 'a command needs "cmd", a string', request_id)
    if cmd not in COMMANDS:
        raise ProtocolError(UNKNOWN_COMMAND, f"unknown command {cmd[:40]!r}; one of {', '.join(COMMANDS)}", request_id)
    value = None
    if cmd == "set_lr":
        raw = data.get("value")
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ProtocolError(BAD_VALUE, 'set_lr needs "value", a number', request_id)
        value = float(raw)
    return Command(cmd, request_id, value)


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 2**63
    return isinstance(value, str) and len(value) <= MAX_ID_CHARS


# ----- decoding for clients that want the engine's types back -----

_EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in vars(events_module).values()
    if isinstance(cls, type) and issubclass(cls, Event) and cls is not Event
}
# fields typed plain float, whose null stands for a non-finite value
_FLOAT_FIELDS = {
    cls: frozenset(name for name, hint in typing.get_type_hints(cls).items() if hint is float)
    for cls in _EVENT_TYPES.values()
}


def event_from_dict(data: object) -> Event | None:
    """The Event a ``--log-jsonl`` dict describes (null floats read as NaN), or None if it is not one."""
    if not isinstance(data, dict):
        return None
    cls = _EVENT_TYPES.get(data.get("event"))  # type: ignore[arg-type]
    if cls is None:
        return None
    floats = _FLOAT_FIELDS[cls]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            values[f.name] = math.nan if value is None and f.name in floats else value
    try:
        return cls(**values)
    except TypeError:
        return None


def snapshot_from_dict(data: dict) -> RunSnapshot:
    """A RunSnapshot from its ``to_dict()`` form as a snapshot message carries it."""

    def event(key: str) -> Any:
        return event_from_dict(data.get(key))

    def points(rows: object) -> tuple[LossPoint, ...]:
        out = []
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, list) and len(row) == 3:
                loss = math.nan if row[1] is None else float(row[1])
                out.append(LossPoint(int(row[0]), loss, float(row[2] or 0.0)))
        return tuple(out)

    config = None
    if isinstance(data.get("config"), dict):
        try:
            config = TrainConfig.from_dict(data["config"])
        except (LstmtuiError, TypeError):
            config = None
    history = data.get("history") if isinstance(data.get("history"), dict) else {}
    samples = tuple(s for s in (event_from_dict(d) for d in data.get("samples") or []) if s is not None)
    best = data.get("best_val_loss")
    return RunSnapshot(
        name=data.get("name"),
        state=str(data.get("state", "")),
        detail=str(data.get("detail", "")),
        config=config,
        parameters=int(data.get("parameters") or 0),
        device=str(data.get("device", "")),
        precision=str(data.get("precision", "")),
        history=LossHistory(points(history.get("train")), points(history.get("val"))),
        last_step=event("last_step"),
        last_eval=event("last_eval"),
        last_checkpoint=event("last_checkpoint"),
        prepare=event("prepare"),
        samples=samples,  # type: ignore[arg-type]
        best_val_loss=float(best) if isinstance(best, (int, float)) else None,
        paused=bool(data.get("paused")),
        result=event("result"),
    )
