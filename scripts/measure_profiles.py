"""Size on disk and save/load times of profiles for 2x256 and 2x512 models (vocab 65, Adam state).

Usage: .venv/bin/python scripts/measure_profiles.py [--repeats N] [--home DIR]
Saves groups best/latest/optim/state like training does (fsync included) and loads them back.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lstmtui.core.checkpoint import optimizer_to_tensors
from lstmtui.core.config import ModelConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileStore


def build(hidden: int) -> tuple[dict, dict]:
    """A model with one Adam step taken, as meta and tensor groups."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=65, hidden=hidden, layers=2)
    model = CharLSTM(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.randint(0, 65, (8, 32))
    logits, _ = model(x)
    torch.nn.functional.cross_entropy(logits.reshape(-1, 65), x.reshape(-1)).backward()
    optimizer.step()
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optim, groups = optimizer_to_tensors(optimizer)
    meta = {
        "model": config.to_dict(),
        "vocab": [chr(32 + i) for i in range(64)] + ["\n"],
        "optim_groups": groups,
        "progress": {"epoch": 1, "step": 1},
        "history": {"train": [[i, 2.0, i * 0.1] for i in range(2000)], "val": []},
    }
    state = {"torch_rng": torch.get_rng_state(), "h": torch.zeros(2, 64, hidden), "c": torch.zeros(2, 64, hidden)}
    return meta, {"best": weights, "latest": weights, "optim": optim, "state": state}


def measure(store: ProfileStore, tmp: Path, label: str, variant: str, meta: dict, tensors: dict, repeats: int) -> None:
    """Save and load one profile repeatedly; print its size and median times."""
    name = f"measure-{label}"
    saves, loads = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        vdir = store.save(name, meta, tensors)
        saves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.load(name)
        loads.append(time.perf_counter() - t0)
    # Equal groups are hard links to one file: count each inode once.
    distinct = sum({p.stat().st_ino: p.stat().st_size for p in vdir.iterdir()}.values())
    sizes = {p.name.split(".")[0]: p.stat().st_size for p in vdir.iterdir()}
    archive = store.export(name, tmp / f"{name}.tar")
    params = sum(v.numel() for v in tensors["latest"].values())
    print(
        f"{label} ({params / 1e6:.2f}M parameters, {variant}): on disk {distinct / 1e6:.1f} MB "
        f"[{', '.join(f'{k} {v / 1e6:.2f}' for k, v in sorted(sizes.items()))} MB], "
        f"export {archive.stat().st_size / 1e6:.1f} MB, "
        f"save {statistics.median(saves) * 1000:.0f} ms, load all groups {statistics.median(loads) * 1000:.0f} ms"
    )
    store.remove(name)


def main() -> int:
    """Print one line per model size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--home", type=Path, default=None, help="profile home (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = ProfileStore(args.home or tmp)
        print(f"home: {store.home}  (torch {torch.__version__}, {args.repeats} repeats, median)")
        for hidden in (256, 512):
            meta, tensors = build(hidden)
            for variant in ("best is latest", "best differs"):
                if variant == "best differs":
                    tensors = dict(tensors, best={k: v + 0.01 for k, v in tensors["latest"].items()})
                measure(store, Path(tmp), f"2x{hidden}", variant, meta, tensors, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
