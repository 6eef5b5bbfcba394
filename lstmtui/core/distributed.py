"""Data parallelism across processes started by torchrun: torch.distributed + DistributedDataParallel.

One ``World`` per process says which rank it is and carries the few collectives training needs.
A process not started by torchrun gets ``World()``, a world of one that joins nothing, and every
collective is then the identity. Under torchrun (``RANK`` and ``WORLD_SIZE`` set) the process joins
the default process group: gloo for host tensors, and NCCL for CUDA tensors where CUDA exists.

The rules that keep N ranks on one trajectory:

- ``--batch`` is the global number of TBPTT streams; rank r trains the contiguous rows
  ``world.rows(batch)`` and carries their hidden state. DDP averages the gradients, so the
  update is the one a single process makes on all rows.
- Rank 0 alone decides what depends on a clock, a command or a validation figure, and ``share``s
  its decision (a few floats); every rank then takes the same branch, so no collective is left
  waiting and no rank drifts. Host-side collectives use gloo on small CPU tensors.
- Rank 0 alone evaluates, samples, emits events, serves the run socket and writes the profile; a save
  first ``gather_rows`` every rank's carried state.
- While rank 0 works alone (or any rank does: preparing, validating, sampling, writing, a pause), the
  others must not wait inside a collective, which gives up after the process group's timeout. Such
  work is marked ``solo()``; the next collective (and the next training step, whose gradients DDP
  averages) first waits at a barrier kept in the run's key-value store. That wait has no deadline
  while the others live: each rank's heartbeat thread counts up in the store every second, and a
  rank whose count stops for ``LOST_AFTER_S`` is taken for gone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from lstmtui.core.errors import ConfigError, LstmtuiError

TIMEOUT_ENV = "LSTMTUI_DIST_TIMEOUT"  # seconds a collective waits for the other ranks
# Ranks reach a collective together (work done alone ends at a barrier first), so this only bounds
# how long a rank waits for a peer that hangs inside one.
DEFAULT_TIMEOUT_S = 1800.0
MAX_KEEPALIVE_S = 10.0
BARRIER_POLL_S = 0.02
HEARTBEAT_S = 1.0
# A rank silent this long is gone: under torchrun, well inside the 30 s its agent gives the others to stop.
LOST_AFTER_S = 15.0
BACKEND_WORDS = ("gloo", "NCCL", "nccl", "ProcessGroup")  # in errors the backends raise as plain RuntimeError


class DistributedError(LstmtuiError):
    """A process of a distributed run is gone or stopped answering, or the run cannot start."""


class World:
    """This process's place in a data-parallel run; ``World()`` is a single process.

    ``joined``: in a process group, so collectives and DDP are used (even with one process).
    """

    def __init__(
        self,
        rank: int = 0,
        size: int = 1,
        local_rank: int = 0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        store: dist.Store | None = None,
    ) -> None:
        self.rank, self.size, self.local_rank, self.timeout_s = rank, size, local_rank, timeout_s
        self.joined = store is not None
        self.lost = False  # a peer was found gone
        self._store = store
        self._solo = False  # some rank works alone: wait at a barrier before the next collective
        self._barriers = 0
        self._heartbeat = _Heartbeat(store, rank, min(HEARTBEAT_S, timeout_s / 8)) if store is not None else None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the rank that decides, evaluates, reports and saves."""
        return self.rank == 0

    @property
    def keepalive_s(self) -> float:
        """How often a paused run's ranks exchange a decision, well inside the collectives' timeout."""
        return min(MAX_KEEPALIVE_S, self.timeout_s / 4)

    # ----- joining and leaving -----

    @classmethod
    def from_env(cls) -> World:
        """Join the process group when torchrun started this process (RANK and WORLD_SIZE set), else one process."""
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            return cls()
        if not dist.is_available():
            raise DistributedError("this build of PyTorch has no torch.distributed; train without torchrun")
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        timeout = _timeout_from_env()
        backend = "gloo"
        if torch.cuda.is_available():
            backend = "cpu:gloo,cuda:nccl"
            torch.cuda.set_device(local % torch.cuda.device_count())
        try:
            store, rank, size = next(dist.rendezvous("env://", rank, size, timeout=timedelta(seconds=timeout)))
            dist.init_process_group(
                backend, store=store, rank=rank, world_size=size, timeout=timedelta(seconds=timeout)
            )
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(f"cannot join the distributed run: {_first_line(exc)}") from None
        return cls(rank, size, local, timeout, dist.PrefixStore("lstmtui", store))

    def close(self) -> None:
        """Leave the process group (nothing for a single process)."""
        if self._heartbeat is not None:
            self._heartbeat.stopped.set()
        if self.joined and dist.is_initialized() and not self.lost:  # with a peer gone, leaving could wait on it
            dist.destroy_process_group()

    def label(self) -> str:
        """How the run's device is qualified in reports: '' for one process, else ', N processes'."""
        return f", {self.size} processes" if self.joined and self.size > 1 else ""

    # ----- what each rank trains on -----

    def rows(self, batch: int) -> slice:
        """The contiguous streams of the global ``batch`` this rank trains; a clear error if they do not split."""
        check_batch(batch, self.size)
        per = batch // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def device(self, device: torch.device) -> torch.device:
        """The device this rank trains on: under torchrun each rank takes CUDA device LOCAL_RANK."""
        if not self.joined or device.type == "cpu":
            return device
        if device.type == "cuda":
            if device.index is not None and device.index != self.local_rank and self.size > 1:
                raise ConfigError(
                    f"device {device}: each process of a torchrun run trains on cuda:LOCAL_RANK; give cuda or auto",
                    "device",
                )
            return torch.device("cuda", self.local_rank % torch.cuda.device_count())
        raise ConfigError(f"device {device.type}: torchrun runs train on cpu or cuda", "device")

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module the training step calls: DDP around ``model`` in a process group, else ``model``."""
        if not self.joined:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return self._guard(lambda: DistributedDataParallel(model, device_ids=ids))

    # ----- ranks that work alone, and the barrier that waits for them -----

    def solo(self) -> None:
        """Mark that ranks may now work alone (rank 0 validating, say): the next collective waits for all."""
        self._solo = self.joined

    def settle(self) -> None:
        """After work marked solo(): wait, without a deadline, until every rank gets here."""
        if self._solo:
            self._solo = False
            self._barrier()

    def _barrier(self) -> None:
        self._barriers += 1
        arrived, done = f"arrived/{self._barriers}", f"done/{self._barriers}"
        store = self._store
        others = _Pulse(store, [r for r in range(self.size) if r != self.rank], min(LOST_AFTER_S, self.timeout_s))
        try:
            if store.add(arrived, 1) == self.size:
                store.set(done, "1")
            while not store.check([done]):
                time.sleep(BARRIER_POLL_S)
                others.check()
            if self.is_main and self._barriers > 2:  # every rank is past the one before last: drop its keys
                store.delete_key(f"arrived/{self._barriers - 2}")
                store.delete_key(f"done/{self._barriers - 2}")
        except DistributedError:
            self.lost = True
            raise
        except RuntimeError as exc:
            self.lost = True
            raise DistributedError(
                f"the distributed run's store stopped answering ({_first_line(exc)}); "
                f"this rank stops and the profile keeps its last save"
            ) from None

    # ----- collectives (identities for a single process) -----

    def exchange(self, summed: list[float], main: list[float]) -> tuple[list[float], list[float]]:
        """One collective: ``summed`` added up over the ranks, and rank 0's ``main`` values."""
        if not self.joined:
            return list(summed), list(main)
        values = torch.tensor([*summed, *(main if self.is_main else [0.0] * len(main))], dtype=torch.float64)
        self._guard(lambda: dist.all_reduce(values))
        out = values.tolist()
        return out[: len(summed)], out[len(summed) :]

    def share(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every rank."""
        return self.exchange([], values)[1]

    def share_text(self, text: str) -> str:
        """Rank 0's ``text`` on every rank."""
        if not self.joined:
            return text
        data = text.encode("utf-8") if self.is_main else b""
        (length,) = self.share([float(len(data))])
        if not length:
            return ""
        buffer = torch.zeros(int(length), dtype=torch.uint8)
        if self.is_main and data:
            buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        self._guard(lambda: dist.broadcast(buffer, 0))
        return bytes(buffer.tolist()).decode("utf-8")

    def agree(self, ok: bool) -> bool:
        """Whether every rank says ``ok``."""
        if not self.joined:
            return ok
        (failed,), _ = self.exchange([0.0 if ok else 1.0], [])
        return failed == 0

    def gather_rows(self, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """Every rank's ``tensor`` joined along ``dim`` in rank order, on the CPU (same shapes on all ranks)."""
        local = tensor.detach().to("cpu").contiguous()
        if not self.joined:
            return local
        parts = [torch.empty_like(local) for _ in range(self.size)]
        self._guard(lambda: dist.all_gather(parts, local))
        return torch.cat(parts, dim=dim)

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` with rank 0's, in place."""
        if not self.joined:
            return
        for tensor in tensors:
            self._guard(lambda t=tensor: dist.broadcast(t.detach(), 0))

    def _guard(self, call):
        """Run a collective; a lost or silent peer becomes a DistributedError with one readable line."""
        self.settle()
        try:
            return call()
        except RuntimeError as exc:
            self.lost = True
            raise _lost(exc) from None

    @contextlib.contextmanager
    def peers_lost(self) -> Iterator[None]:
        """Around training steps: a peer lost in DDP's gradient averaging becomes a DistributedError."""
        try:
            yield
        except RuntimeError as exc:
            if self.joined and (isinstance(exc, dist.DistError) or any(k in str(exc) for k in BACKEND_WORDS)):
                self.lost = True
                raise _lost(exc) from None
            raise


class _Heartbeat(threading.Thread):
    """Counts up this rank's key in the store every ``every`` seconds, so waiting ranks know it lives."""

    def __init__(self, store: dist.Store, rank: int, every: float) -> None:
        super().__init__(name="lstmtui-heartbeat", daemon=True)
        self.store, self.key, self.every = store, f"beat/{rank}", every
        self.stopped = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.store.add(self.key, 1)
            except RuntimeError:  # the store is gone with the run
                return


class _Pulse:
    """The heartbeats of other ranks as a waiting rank sees them; check() raises once one stops."""

    def __init__(self, store: dist.Store, ranks: list[int], lost_after: float) -> None:
        self.store, self.lost_after = store, lost_after
        now = time.monotonic()
        self.seen = {rank: (-1, now) for rank in ranks}
        self.next_look = now

    def check(self) -> None:
        """Raise DistributedError once another rank has stopped beating."""
        now = time.monotonic()
        if now < self.next_look:
            return
        self.next_look = now + HEARTBEAT_S
        for rank, (count, since) in self.seen.items():
            beats = self.store.add(f"beat/{rank}", 0)
            if beats != count:
                self.seen[rank] = (beats, now)
            elif now - since > self.lost_after:
                raise DistributedError(
                    f"a process of the distributed run is gone or stopped answering (rank {rank} gave no sign "
                    f"of life for {self.lost_after:g}s); this rank stops and the profile keeps its last save"
                )


def check_batch(batch: int, size: int) -> None:
    """A clear error when ``batch`` streams do not split evenly over ``size`` processes."""
    if size > 1 and batch % size:
        raise ConfigError(
            f"batch size {batch} does not split evenly over {size} processes; use a multiple of {size}", "batch"
        )


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The torch seed of rank ``rank`` (> 0) from step ``step`` on: its own dropout masks, reproducibly."""
    return (seed * 1_000_003 + rank * 7_919 + step) % (2**63)


def _timeout_from_env() -> float:
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be a positive number of seconds, not {text}")
    return value


def _lost(exc: BaseException) -> DistributedError:
    return DistributedError(
        f"a process of the distributed run is gone or stopped answering ({_first_line(exc)}); "
        f"this rank stops and the profile keeps its last save"
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__
