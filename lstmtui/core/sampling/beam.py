"""Beam search: the most likely continuation of a given length, never less likely than greedy.

Plain beam search can prune the greedy path and end below it, so the greedy continuation rides
along as one extra row of the batch (row ``k``) and wins if it scores higher. Characters are
yielded as soon as every row agrees on them (rows only ever descend from rows, so an agreed
position is final), and the rest once the best row is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from lstmtui.core.sampling.stepper import BatchStepper, Stepper

State = tuple[torch.Tensor, torch.Tensor]
# Called once the best row is known, before its remaining characters are yielded.
OnDone = Callable[[State, torch.Tensor, float], None]


class BeamSearch:
    """The rows of one search: their characters so far, scores, and LSTM state."""

    def __init__(
        self,
        model,
        stepper: Stepper | None,
        device: torch.device,
        state: State,
        logits: torch.Tensor,
        length: int,
        width: int,
    ) -> None:
        self.model, self.device = model, device
        self.vocab = v = logits.numel()
        h, c = state
        logp0 = torch.log_softmax(logits.double(), -1)
        self.k = k = min(width, v)
        self.scores, first = torch.topk(logp0, k)
        self.tokens = torch.zeros((k + 1, length), dtype=torch.long)  # last row: greedy
        self.tokens[:k, 0] = first
        self.tokens[k, 0] = first[0]
        self.greedy_score = self.scores[0].clone()
        on_cpu = stepper is not None and device.type == "cpu"
        self.batch = BatchStepper(stepper, k + 1, h, c) if on_cpu else None
        if self.batch is None:
            self.hb, self.cb = h.repeat(1, k + 1, 1), c.repeat(1, k + 1, 1)
        self.last = logits

    def agreed(self, position: int) -> bool:
        """Whether every row has the same character at ``position``."""
        return bool((self.tokens[:, position] == self.tokens[0, position]).all())

    def feed(self, position: int) -> None:
        """Run every row's character at ``position`` through the network."""
        if self.batch is not None:
            self.last = self.batch.step(self.tokens[:, position])
        else:
            out, (self.hb, self.cb) = self.model(
                self.tokens[:, position : position + 1].to(self.device), (self.hb, self.cb)
            )
            self.last = out[:, -1]

    def extend(self, position: int) -> None:
        """Choose every row's character at ``position``: the k best children, and greedy's."""
        k, v = self.k, self.vocab
        logp = torch.log_softmax(self.last.double().cpu(), -1)
        total = (self.scores[:, None] + logp[:k]).reshape(-1)
        self.scores, flat = torch.topk(total, k)
        g_best, g_tok = torch.max(logp[k], -1)
        self.greedy_score = self.greedy_score + g_best
        rows = torch.cat([flat // v, torch.tensor([k])])
        self.tokens = self.tokens[rows]
        self.tokens[:k, position] = flat % v
        self.tokens[k, position] = g_tok
        if self.batch is not None:
            self.batch.reorder(rows)
        else:
            rows = rows.to(self.device)
            self.hb, self.cb = self.hb[:, rows], self.cb[:, rows]

    def best(self) -> tuple[int, float, State, torch.Tensor]:
        """The winning row, its log-probability, its state, and its logits for the next character."""
        best = int(torch.argmax(self.scores))
        score = float(self.scores[best])
        if float(self.greedy_score) > score:
            best, score = self.k, float(self.greedy_score)
        if self.batch is not None:
            state = self.batch.row_state(best)
        else:
            state = (self.hb[:, best : best + 1], self.cb[:, best : best + 1])
        return best, score, state, self.last[best].float().cpu().clone()


def beam_ids(search: BeamSearch, length: int, on_done: OnDone) -> Iterator[int]:
    """Yield the ids of the best continuation, each as soon as it is certain."""
    yielded = 0
    for t in range(1, length + 1):
        while yielded < t and search.agreed(yielded):
            yield int(search.tokens[0, yielded])
            yielded += 1
        with torch.inference_mode():
            search.feed(t - 1)
            if t == length:
                break
            search.extend(t)
    with torch.inference_mode():
        best, score, state, logits = search.best()
        on_done(state, logits, score)
    for i in range(yielded, length):
        yield int(search.tokens[best, i])
