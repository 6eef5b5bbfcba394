"""The engine: corpus, model, training, sampling, profiles. Never imports textual."""

import os

# oneDNN (torch's CPU LSTM kernels) caches a primitive for every distinct input shape and keeps up
# to 1024 of them; each generation prime of a new length adds ~0.4 MB, so the app, which re-primes
# on every settings change, grew by megabytes a minute (docs/reliability.md). A training step uses
# ~4 entries per layer, and training ran as fast with a cache of 2 (rebuilt every step) as with
# 1024, so a small cache costs nothing. oneDNN reads this when its cache is first used: it works
# after `import torch` too, as long as no LSTM has run yet. A user's own setting wins.
ONEDNN_CACHE_CAPACITY = 32
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE_CAPACITY))

# Worker threads (the TUI trains in one) allocate from glibc's main heap, so the training loop can
# reuse its buffers instead of page-faulting them in every step (core/heap.py).
from lstmtui.core.heap import use_one_arena  # noqa: E402

use_one_arena()
