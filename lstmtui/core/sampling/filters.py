"""What narrows and reshapes one step's logits: repetition guards, temperature, top-k, top-p.

``sorted_head`` is the one place that decides which characters top-k and top-p keep and in what
order (most likely first, ties by lowest id), so the filtered view and the draw always agree.
"""

from __future__ import annotations

import numpy as np

from lstmtui.core.sampling.config import SamplingConfig


def sorted_head(z: np.ndarray, temperature: float, top_k: int, top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """Ids that top-k and top-p keep, most likely first (ties by lowest id), with their weights
    ``exp((z - max) / temperature)``."""
    order = np.argsort(-z, kind="stable")
    if 0 < top_k < len(order):
        order = order[:top_k]
    zs = z[order].astype(np.float64)
    p = np.exp((zs - zs[0]) / temperature)
    if top_p < 1.0:
        n = nucleus_count(p, top_p)
        order, p = order[:n], p[:n]
    return order, p


def nucleus_count(p_sorted: np.ndarray, top_p: float) -> int:
    """How many of the descending weights ``p_sorted`` the nucleus keeps: the fewest whose share
    of the total reaches ``top_p`` (each character is kept while the mass before it is < top_p)."""
    cdf = np.cumsum(p_sorted)
    return min(len(cdf), int(np.searchsorted(cdf, top_p * cdf[-1], side="left")) + 1)


def penalise_recent(z: np.ndarray, recent_ids: list[int], penalty: float) -> None:
    """Divide positive (multiply negative) logits of the recent characters by ``penalty``, in place."""
    recent = np.unique(np.asarray(recent_ids))
    vals = z[recent]
    z[recent] = np.where(vals > 0, vals / penalty, vals * penalty)


def ban_repeats(z: np.ndarray, history: list[int], ngrams: dict[tuple[int, ...], set[int]], n: int) -> None:
    """Set to -inf, in place, each character that would complete an n-gram already emitted.

    Never bans every character: with all of them seen after this context, none is banned.
    """
    if len(history) >= n - 1:
        banned = ngrams.get(tuple(history[len(history) - n + 1 :]))
        if banned and len(banned) < len(z):
            z[list(banned)] = -np.inf


def filter_logits(
    z: np.ndarray, config: SamplingConfig, history: list[int], emitted: int, ngrams: dict[tuple[int, ...], set[int]]
) -> np.ndarray:
    """Apply the repetition guards (in place on float64 ``z``), then temperature, top-k and top-p.

    Greedy (temperature 0) returns the guarded logits unscaled; characters top-k and top-p drop
    come back as -inf.
    """
    if config.repetition_penalty != 1.0 and emitted:
        penalise_recent(z, history[-min(config.repetition_window, emitted) :], config.repetition_penalty)
    if config.no_repeat_ngram:
        ban_repeats(z, history, ngrams, config.no_repeat_ngram)
    if config.temperature == 0:
        return z
    if not (0 < config.top_k < len(z) or config.top_p < 1.0):
        return z / config.temperature
    # the very selection the draw uses, so ties and rounding at the edge agree
    kept, _ = sorted_head(z, config.temperature, config.top_k, config.top_p)
    masked = np.full_like(z, -np.inf)
    masked[kept] = z[kept] / config.temperature
    return masked


def inverse_cdf_index(p: np.ndarray, u: float) -> int:
    """The index that uniform ``u`` in [0, 1) picks in proportion to non-negative weights ``p``."""
    cdf = np.cumsum(p)
    i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    if i >= len(p):
        # only rounding at the very top gets here; never pick a zero-weight tail
        i = int(np.flatnonzero(p)[-1])
    return i
