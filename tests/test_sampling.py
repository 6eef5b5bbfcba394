"""Sampling: each method's distribution properties, O(1) stepping, stops, primes, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lstmtui.core.config import ModelConfig
from lstmtui.core.corpus import UNKNOWN_CHAR, Vocab
from lstmtui.core.errors import ConfigError, VocabularyError
from lstmtui.core.model import CharLSTM
from lstmtui.core.sampling import (
    SETTING_NAMES,
    CharGenerator,
    CpuStepper,
    SamplingConfig,
    Stepper,
    compare,
    generation_speed,
    sample_text,
)
from lstmtui.core.sampling import generator as generator_module
from lstmtui.core.sampling.generator import chunks

CHARS = list("\n abcdefghijklmnopqrstuvwxyz.,")
VOCAB = Vocab(CHARS)


def make_model(hidden=32, layers=2, input="embedding", seed=0, scale=3.0, vocab=VOCAB) -> CharLSTM:
    """A small random-weight model; weights scaled up so its distributions are far from uniform."""
    torch.manual_seed(seed)
    model = CharLSTM(ModelConfig(vocab_size=len(vocab), hidden=hidden, layers=layers, input=input))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> CharLSTM:
    return make_model()


def full_probs(model, text: str) -> torch.Tensor:
    """Next-character probabilities from running the whole text through the network at once."""
    ids = torch.from_numpy(VOCAB.encode(text).astype(np.int64))[None]
    with torch.inference_mode():
        logits, _ = model(ids)
    return torch.softmax(logits[0, -1].double(), -1)


def logprob(model, prime: str, cont: str) -> float:
    """Log-probability of ``cont`` after ``prime`` under the model, by one full forward."""
    ids = VOCAB.encode(prime + cont).astype(np.int64)
    with torch.inference_mode():
        logits, _ = model(torch.from_numpy(ids[:-1])[None])
    logp = torch.log_softmax(logits[0].double(), -1)
    start = len(prime) - 1
    return float(sum(logp[start + i, ids[start + 1 + i]] for i in range(len(cont))))


def gen(model, prime="the ", **cfg) -> CharGenerator:
    g = CharGenerator(model, VOCAB, SamplingConfig(**cfg))
    g.prime(prime)
    return g


# ---- stepping ------------------------------------------------------------------------------


@pytest.mark.parametrize("input", ["embedding", "onehot"])
def test_stepping_matches_whole_sequence(input):
    m = make_model(input=input, layers=3)
    g = gen(m, prime="once upon a time", temperature=1.0, seed=3)
    text = ""
    for _ in range(5):
        text += "".join(g.stream(12))
        np.testing.assert_allclose(g.next_probs().double(), full_probs(m, "once upon a time" + text), atol=1e-5)
    assert len(text) == 60


@pytest.mark.parametrize("stepper", [Stepper, CpuStepper])
def test_both_steppers_match_the_network(stepper):
    """The torch stepper (other devices) and the NumPy one (CPU) give the network's logits."""
    m = make_model(layers=3, input="onehot")
    text = "the cat sat on the mat, and then it slept."
    ids = VOCAB.encode(text).astype(np.int64)
    with torch.inference_mode():
        full, _ = m(torch.from_numpy(ids)[None])
    s = stepper(m)
    for t, cid in enumerate(ids):
        np.testing.assert_allclose(np.asarray(s.step(int(cid))), full[0, t].numpy(), atol=1e-5)


def test_plain_sampling_follows_temperature_scaled_probabilities():
    """The Gumbel-max draw of the plain path samples softmax(logits / T)."""
    g = CharGenerator(make_model(), VOCAB, SamplingConfig(temperature=0.5, seed=9))
    logits = np.log(np.array([0.4, 0.3, 0.2, 0.1] + [1e-12] * (len(CHARS) - 4))).astype(np.float32)
    expected = np.exp(logits[:4] / 0.5) / np.exp(logits[:4] / 0.5).sum()
    draws = np.bincount([g.choose(logits) for _ in range(10000)], minlength=len(CHARS))
    np.testing.assert_allclose(draws[:4] / 10000, expected, atol=0.02)
    assert draws[4:].sum() == 0


def test_prime_fed_in_chunks_matches_one_call(model, monkeypatch):
    prime = ("it was the best of times, it was the worst of times.\n" * 20)[:1000]
    monkeypatch.setattr(generator_module, "PRIME_CHUNK", 77)
    g = gen(model, prime=prime)
    np.testing.assert_allclose(g.next_probs().double(), full_probs(model, prime), atol=1e-5)


def test_prime_chunks_come_in_few_lengths():
    """Primes of every length from 1 to 3000 use only power-of-two pieces (few oneDNN shapes)."""
    lengths = set()
    for n in range(1, 3001):
        pieces = list(chunks(n, 1024))
        assert pieces[0][0] == 0 and pieces[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
        lengths |= {stop - start for start, stop in pieces}
    assert lengths == {2**k for k in range(11)}


def test_long_prime_100kb(model):
    prime = ("to be or not to be, that is the question.\n" * 2500)[:100_000]
    g = gen(model, prime=prime, temperature=0.8, seed=1)
    assert len(g.generate(50)) == 50
    assert len(g.history) == 100_050


def test_stop_and_continue_keeps_state(model):
    one = gen(model, temperature=1.0, seed=7)
    whole = one.generate(40)
    two = gen(model, temperature=1.0, seed=7)
    parts = []
    it = two.stream(40)
    parts.append("".join(next(it) for _ in range(13)))
    it.close()  # stopped in the middle of a stream
    parts.append(two.generate(27))
    assert "".join(parts) == whole
    np.testing.assert_allclose(two.next_probs().double(), full_probs(model, "the " + whole), atol=1e-5)


def test_model_not_mutated():
    m = make_model()
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    gen(m, temperature=1.0, seed=1).generate(30)
    assert m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


# ---- methods -------------------------------------------------------------------------------


def test_greedy_picks_argmax(model):
    g = gen(model, temperature=0)
    for _ in range(40):
        expected = CHARS[int(torch.argmax(g.next_probs()))]
        assert next(g.stream(1)) == expected


def test_sampling_frequencies_follow_probabilities():
    g = CharGenerator(make_model(), VOCAB, SamplingConfig(temperature=1.0, seed=5))
    logits = torch.tensor(np.log([0.5, 0.3, 0.15, 0.05] + [1e-12] * (len(CHARS) - 4)), dtype=torch.float32)
    draws = np.bincount([g.choose(logits) for _ in range(8000)], minlength=len(CHARS))
    np.testing.assert_allclose(draws[:4] / 8000, [0.5, 0.3, 0.15, 0.05], atol=0.025)
    assert draws[4:].sum() == 0


def test_top_k_never_leaves_the_k_most_likely(model):
    g = gen(model, temperature=2.0, top_k=3, seed=2)
    seen = set()
    for _ in range(300):
        allowed = set(torch.topk(g.next_probs(), 3).indices.tolist())
        ch = next(g.stream(1))
        assert VOCAB.index(ch) in allowed
        seen.add(ch)
    assert len(seen) > 3  # the allowed set moves with the context, so it is not one fixed set


@pytest.mark.parametrize("top_p", [0.3, 0.6, 0.9])
def test_top_p_keeps_the_smallest_set_reaching_its_mass(model, top_p):
    g = gen(model, temperature=1.0, top_p=top_p, seed=4)
    for _ in range(100):
        probs = g.next_probs().double().numpy()
        kept = np.isfinite(g.filtered_logits(g._logits.numpy()))
        mass = probs[kept].sum()
        assert mass >= top_p - 1e-9
        # dropping the least likely kept character would fall short: the set is minimal
        assert mass - probs[kept].min() < top_p
        assert probs[kept].min() >= probs[~kept].max(initial=0.0)
        ch = next(g.stream(1))
        assert kept[VOCAB.index(ch)]


def test_temperature_orders_entropy(model):
    def entropy(t):
        g = gen(model, temperature=t)
        z = torch.tensor(g.filtered_logits(g._logits.numpy()))
        p = torch.softmax(z, -1)
        return float(-(p * torch.log(p)).sum())

    h = [entropy(t) for t in (0.3, 0.7, 1.0, 1.5, 3.0)]
    assert h == sorted(h) and h[0] < h[-1] - 0.5

    def empirical(t):
        text = gen(model, temperature=t, seed=11).generate(1500)
        counts = np.bincount(VOCAB.encode(text), minlength=len(CHARS)) / len(text)
        counts = counts[counts > 0]
        return float(-(counts * np.log(counts)).sum())

    assert empirical(0.3) < empirical(1.0) < empirical(2.0)


def test_top_k_and_top_p_combine_with_temperature(model):
    g = gen(model, temperature=1.5, top_k=5, top_p=0.5, seed=1)
    for _ in range(50):
        probs = g.next_probs()
        top5 = set(torch.topk(probs, 5).indices.tolist())
        kept = set(np.flatnonzero(np.isfinite(g.filtered_logits(g._logits.numpy()))).tolist())
        assert kept <= top5
        assert VOCAB.index(next(g.stream(1))) in kept


@pytest.mark.parametrize("seed", range(4))
def test_beam_search_at_least_as_likely_as_greedy(seed):
    m = make_model(seed=seed, scale=2.0)
    prime = "the quick brown fox "
    greedy = gen(m, prime=prime, temperature=0).generate(25)
    g = gen(m, prime=prime, beam=4)
    beam = g.generate(25)
    assert len(beam) == 25
    lp_beam, lp_greedy = logprob(m, prime, beam), logprob(m, prime, greedy)
    assert lp_beam >= lp_greedy - 1e-6
    ids, reported = gen(m, prime=prime, beam=4).beam_search(25)
    assert "".join(CHARS[i] for i in ids) == beam
    assert reported == pytest.approx(lp_beam, abs=1e-4)
    # the state after a beam is the state after its text
    np.testing.assert_allclose(g.next_probs().double(), full_probs(m, prime + beam), atol=1e-5)


@pytest.mark.parametrize("take", [0, 5, 30])
def test_beam_stream_closed_early_leaves_state_after_emitted_text(model, take):
    g = gen(model, beam=3)
    it = g.stream(30)
    head = "".join(next(it) for _ in range(take))
    it.close()
    np.testing.assert_allclose(g.next_probs().double(), full_probs(model, "the " + head), atol=1e-5)
    # and a stop on the very last character
    whole = gen(model, beam=3).generate(30)
    g = gen(model, beam=3, stop_chars=whole[-1])
    cut = g.generate(30)
    np.testing.assert_allclose(g.next_probs().double(), full_probs(model, "the " + cut), atol=1e-5)


def test_no_repeat_ngram_breaks_greedy_loops():
    m = make_model(seed=1, scale=1.0)  # weak weights: plain greedy settles into a loop
    plain = gen(m, temperature=0).generate(300)
    n = 6
    grams = [plain[i : i + n] for i in range(len(plain) - n + 1)]
    assert len(set(grams)) < len(grams)  # greedy repeats itself
    guarded = gen(m, temperature=0, no_repeat_ngram=n).generate(300)
    grams = [guarded[i : i + n] for i in range(len(guarded) - n + 1)]
    assert len(set(grams)) == len(grams)


def test_repetition_penalty_lowers_recent_characters(model):
    g = gen(model, temperature=1.0, repetition_penalty=3.0, repetition_window=8, seed=1)
    text = g.generate(20)
    z = g._logits.numpy().astype(np.float64)
    pen = g.filtered_logits(g._logits.numpy())
    recent = set(VOCAB.encode(text[-8:]).tolist())
    for i in range(len(CHARS)):
        if i in recent:
            assert pen[i] < z[i] or z[i] == 0
        else:
            assert pen[i] == z[i]


# ---- stops, primes, seeds ------------------------------------------------------------------


def test_length_and_stop_conditions(model):
    free = gen(model, temperature=1.2, seed=9).generate(400)
    assert len(free) == 400
    stop = free[150:152]
    cut = gen(model, temperature=1.2, seed=9, stop=(stop,)).generate(400)
    assert cut == free[: free.index(stop) + len(stop)]
    ch = free[200]
    cut = gen(model, temperature=1.2, seed=9, stop_chars=ch + "#").generate(400)
    assert cut == free[: free.index(ch) + 1]
    assert gen(model, temperature=1.2, seed=9).generate(0) == ""


def test_stop_string_blank_line():
    m = make_model(seed=2, scale=1.0)
    text = gen(m, temperature=1.0, seed=0).generate(2000)
    if "\n\n" not in text:
        pytest.skip("this model never writes a blank line")
    cut = gen(m, temperature=1.0, seed=0, stop=("\n\n",)).generate(2000)
    assert cut.endswith("\n\n") and cut.count("\n\n") == 1


def test_unknown_prime_characters(model):
    g = CharGenerator(model, VOCAB, SamplingConfig(seed=1))
    with pytest.raises(VocabularyError) as err:
        g.prime("héllo wörld!")
    msg = str(err.value)
    assert "'é'" in msg and "'ö'" in msg and "'!'" in msg and "\n" not in msg
    assert "--" not in msg  # the engine names no command-line flag
    g.prime("héllo wörld!", drop_unknown=True)
    np.testing.assert_allclose(g.next_probs().double(), full_probs(model, "hllo wrld"), atol=1e-5)


def test_unknown_prime_characters_map_to_the_unknown_symbol():
    vocab = Vocab(CHARS + [UNKNOWN_CHAR])
    m = make_model(vocab=vocab)
    g = CharGenerator(m, vocab, SamplingConfig(seed=1))
    g.prime("h€llo")
    assert g.history == vocab.encode("h" + UNKNOWN_CHAR + "llo").tolist()


def test_empty_prime_starts_from_newline(model):
    g = gen(model, prime="", temperature=0)
    np.testing.assert_allclose(g.next_probs().double(), full_probs(model, "\n"), atol=1e-5)
    assert CharGenerator(model, Vocab(list("ab")), SamplingConfig()).default_start() == "a"


def test_seed_reproducible(model):
    a = gen(model, temperature=1.0, seed=123).generate(200)
    b = gen(model, temperature=1.0, seed=123).generate(200)
    c = gen(model, temperature=1.0, seed=124).generate(200)
    assert a == b != c


def test_sample_text_and_compare(model):
    g1 = torch.Generator().manual_seed(5)
    g2 = torch.Generator().manual_seed(5)
    a = sample_text(model, VOCAB, "the ", 50, 0.8, generator=g1)
    assert len(a) == 50 and a == sample_text(model, VOCAB, "the ", 50, 0.8, generator=g2)
    outs = compare(model, VOCAB, "the ", [0.2, 0.5, 1.0, 1.2], length=30)
    assert len(outs) == 4 and all(len(o) == 30 for o in outs)
    outs = compare(model, VOCAB, "the ", [SamplingConfig(temperature=0), {"beam": 2}], length=10)
    assert outs[0] == gen(model, temperature=0).generate(10)
    assert outs[1] == gen(model, beam=2).generate(10)


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -0.1},
        {"temperature": math.nan},
        {"top_k": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"beam": -1},
        {"length": -5},
        {"repetition_penalty": 0.5},
        {"stop": ("",)},
        {"seed": -1},
        {"temperature": "hot"},
        {"stop": 5},
        {"stop": (None,)},
        {"stop_chars": 3},
    ],
)
def test_bad_settings_raise_config_error(bad):
    with pytest.raises(ConfigError) as err:
        SamplingConfig(**bad).validate()
    message = str(err.value)
    assert "\n" not in message
    # the engine names the setting in words; the CLI and the TUI say where the value came from
    (field,) = bad
    assert message.startswith(f"{SETTING_NAMES[field]} must ") and "--" not in message
    assert err.value.field == field


def test_generation_speed_reports_its_figures(model):
    figures = generation_speed(model, VOCAB, "the " * 50, chars=100)
    assert figures["chars"] == 100
    assert 0 < figures["prime_s"] <= figures["first_char_s"] and figures["chars_per_s"] > 0


@settings(max_examples=100, deadline=None)
@given(
    logits=st.lists(st.floats(-40, 40), min_size=len(CHARS), max_size=len(CHARS)),
    temperature=st.one_of(st.just(0.0), st.floats(0.05, 5.0)),
    top_k=st.integers(0, len(CHARS)),
    top_p=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**32),
)
# a tie at the top with top-k 1: filtered_logits kept one of the pair and choose the other
@example(logits=[0.0] * (len(CHARS) - 2) + [1.0, 1.0], temperature=1.0, top_k=1, top_p=1.0, seed=0)
@example(logits=[2.0, 2.0, 2.0] + [0.0] * (len(CHARS) - 3), temperature=0.7, top_k=2, top_p=0.5, seed=3)
def test_choice_always_inside_the_filtered_set(model, logits, temperature, top_k, top_p, seed):
    cfg = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    g = CharGenerator(model, VOCAB, cfg)
    x = torch.tensor(logits, dtype=torch.float32)
    kept = np.isfinite(g.filtered_logits(x.numpy()))
    for _ in range(5):
        i = g.choose(x)
        assert kept[i]
        if temperature == 0:
            assert x[i] == x.max()
        if top_k:
            assert (x > x[i]).sum() < top_k


def test_feed_extends_the_context_mid_stream(model):
    g = gen(model, prime="the ", temperature=1.0, seed=2)
    text = g.generate(10)
    g.feed("cat sat")
    np.testing.assert_allclose(g.next_probs().double(), full_probs(model, "the " + text + "cat sat"), atol=1e-5)


def test_checkpoint_restore_replays_a_sample(model):
    g = gen(model, prime="the ", temperature=1.0, seed=4)
    cp = g.checkpoint()
    g.generate(25)
    g.restore(cp)
    np.testing.assert_allclose(g.next_probs().double(), full_probs(model, "the "), atol=1e-5)
    again = CharGenerator(model, VOCAB, SamplingConfig(temperature=0))
    again.restore(cp)
    assert again.generate(20) == gen(model, prime="the ", temperature=0).generate(20)
