"""The stream batcher: every position predicted once per epoch, streams contiguous across steps."""

import numpy as np
import pytest

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
