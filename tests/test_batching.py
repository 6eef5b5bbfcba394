"""The stream batcher: every position predicted once per epoch, streams contiguous across steps."""

import numpy as np
import pytest
import torch

from lstmtui.core.batching import StreamBatcher
from lstmtui.core.errors import CorpusError


@pytest.mark.parametrize("n,batch,seq_len", [(1001, 4, 7), (64, 3, 100), (10_000, 16, 50), (33, 32, 1)])
def test_every_position_predicted_exactly_once(n, batch, seq_len):
    data = np.arange(n, dtype=np.int64) % 251  # ids are positions mod 251: recover positions below
    positions = np.arange(n)
    batcher = StreamBatcher(positions, batch, seq_len)
    seen = []
    for x, y in batcher:
        assert x.shape == y.shape and x.shape[0] == batch and x.shape[1] <= seq_len
        # Each target is the character right after its input.
        assert ((y - x) == 1).all()
        seen.extend(y.flatten().tolist())
    assert len(seen) == len(set(seen)), "a position was predicted twice"
    assert len(seen) == batcher.chars_per_epoch
    # Only the final (< batch) characters can be left unpredicted; nothing in the middle is skipped.
    missing = set(range(1, n)) - set(seen)
    assert all(m > n - 1 - batch for m in missing)
    assert len(missing) < batch
    del data


def test_streams_continue_from_step_to_step():
    batcher = StreamBatcher(np.arange(2001), 5, 10)
    previous = None
    for x, _ in batcher:
        if previous is not None:
            # Row i of step k+1 starts where row i of step k ended: the carried state is valid.
            assert (x[:, 0] == previous[:, -1] + 1).all()
        previous = x


def test_uint8_input_gives_int64_windows():
    data = np.frombuffer(b"hello world, hello streams" * 10, dtype=np.uint8)
    x, y = StreamBatcher(data, 2, 8).window(0)
    assert x.dtype.is_floating_point is False and str(x.dtype) == "torch.int64"
    assert bytes(x[0].tolist()) == b"hello wo"
    assert bytes(y[0].tolist()) == b"ello wor"


def test_too_short_for_batch_is_a_clear_error():
    with pytest.raises(CorpusError, match="smaller batch size"):
        StreamBatcher(np.arange(10), 64, 8)


def test_ranks_take_contiguous_blocks_of_the_same_streams():
    data = np.arange(5001)
    whole = StreamBatcher(data, 8, 16)
    parts = [StreamBatcher(data, 8, 16, rows=slice(r * 4, (r + 1) * 4)) for r in range(2)]
    assert all(p.steps == whole.steps and p.chars_per_epoch == whole.chars_per_epoch for p in parts)
    for k in range(whole.steps):
        x, y = whole.window(k)
        (x0, y0), (x1, y1) = parts[0].window(k), parts[1].window(k)
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


def test_staged_windows_equal_the_plain_ones():
    """Windows copied through the ring of staging buffers (pinned on CUDA) are the plain windows, the short
    last one included, and none aliases a buffer that is refilled later."""
    data = np.frombuffer(b"staged windows through a ring of buffers " * 40, dtype=np.uint8)
    plain, staged = StreamBatcher(data, 3, 5), StreamBatcher(data, 3, 5, staging=2)
    windows = [staged.window(k) for k in range(staged.steps)]  # all kept: a reused buffer must not show through
    for k, (x, y) in enumerate(windows):
        px, py = plain.window(k)
        assert x.dtype == torch.int64 and torch.equal(x, px) and torch.equal(y, py)
    assert windows[-1][0].shape[1] < 5
