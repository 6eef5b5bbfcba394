"""Data parallelism across processes started by torchrun: torch.distributed + DistributedDataParallel.

One ``World`` per process says which rank it is and carries the few collectives training needs.
A process not started by torchrun gets ``World()``, a world of one that joins nothing, and every
collective is then the identity. Under torchrun (``RANK`` and ``WORLD_SIZE`` set) the process joins
the default process group: gloo for host tensors, and NCCL for CUDA tensors where CUDA exists.

The rules that keep N ranks on one trajectory:

- ``--batch`` is the global number of TBPTT streams; rank r trains the contiguous rows
  ``stream_rows(batch, world)`` and carries their hidden state. DDP averages the gradients, so the
  update is the one a single process makes on all rows.
- Rank 0 alone decides what depends on a clock, a command or a validation figure, and ``share``s
  its decision (a few floats); every rank then takes the same branch, so no collective is left
  waiting and no rank drifts. Host-side collectives use gloo on small CPU tensors.
- Rank 0 alone evaluates, samples, emits events, serves the run socket and writes the profile; a save
  first ``gather_rows`` every rank's carried state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from lstmtui.core.errors import ConfigError, LstmtuiError

TIMEOUT_ENV = "LSTMTUI_DIST_TIMEOUT"  # seconds a collective waits for the other ranks
# Long enough for rank 0's own work while the others wait (reading a large corpus, a full validation,
# a save); a pause does not count: rank 0 keeps the ranks talking while paused (``keepalive_s``).
DEFAULT_TIMEOUT_S = 1800.0
MAX_KEEPALIVE_S = 10.0


class DistributedError(LstmtuiError):
    """A process of a distributed run is gone or stopped answering, or the run cannot start."""


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run; ``World()`` is a single process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    timeout_s: float = DEFAULT_TIMEOUT_S
    joined: bool = False  # in a process group: collectives and DDP are used, even with size 1

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
        if not dist.is_initialized():
            try:
                dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
            except (RuntimeError, ValueError) as exc:
                raise DistributedError(f"cannot join the distributed run: {_first_line(exc)}") from None
        return cls(rank=rank, size=size, local_rank=local, timeout_s=timeout, joined=True)

    def close(self) -> None:
        """Leave the process group (nothing for a single process)."""
        if self.joined and dist.is_initialized():
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
        try:
            return call()
        except RuntimeError as exc:
            raise DistributedError(
                f"a process of the distributed run is gone or stopped answering ({_first_line(exc)}); "
                f"this rank stops and the profile keeps its last save"
            ) from None


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


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__
