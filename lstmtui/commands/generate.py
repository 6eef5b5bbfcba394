"""`lstmtui generate --profile NAME`: stream text from a trained profile to stdout.

Text goes to stdout as it is produced (pipe-friendly); notes (memorisation figure, settings) go
to stderr, so `lstmtui generate ... > file` holds only the samples. `--json` prints one JSON object
per sample instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lstmtui.commands.common import add_home_option
from lstmtui.core.errors import ConfigError, LstmtuiError, VocabularyError

if TYPE_CHECKING:
    from lstmtui.core.profiles import ProfileMeta

MAX_PRIME_CHARS = 10_000_000
MAX_THREADS = 1024  # as `train` allows
MAX_COUNT = 100_000
FLUSH_EVERY_S = 0.02
DEFAULT_COMPARE = "0.2,0.5,1.0,1.2"

# options whose defaults come from the profile's "sampling" settings, then SamplingConfig's
_SAMPLING_OPTIONS = ("temperature", "top_k", "top_p", "beam", "length", "repetition_penalty", "no_repeat_ngram")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `generate`."""
    parser = subparsers.add_parser(
        "generate",
        help="generate text from a trained profile",
        description=(
            "Continue a prime (seed text) with a trained profile's model, streaming characters to "
            "stdout as they are produced. Unset sampling options take the profile's saved defaults."
        ),
    )
    parser.add_argument("--profile", required=True, help="the trained profile to generate from")
    prime = parser.add_mutually_exclusive_group()
    prime.add_argument(
        "--prime", help="text for the model to continue, taken literally (default: start from a newline)"
    )
    prime.add_argument("--prime-file", type=Path, metavar="FILE", help="read the prime from FILE (UTF-8)")
    parser.add_argument(
        "--drop-unknown",
        action="store_true",
        help="drop prime characters the model's vocabulary lacks (default: refuse with a list of them)",
    )
    g = parser.add_argument_group("sampling (default: the profile's saved settings)")
    g.add_argument("--length", type=int, metavar="N", help="characters per sample (default: 500)")
    g.add_argument(
        "--temperature", type=float, metavar="T", help="0 = greedy; lower is safer, higher is wilder (default: 0.8)"
    )
    g.add_argument(
        "--top-k", type=int, metavar="K", help="sample only among the K most likely characters, 0 for off (default: 0)"
    )
    g.add_argument(
        "--top-p",
        type=float,
        metavar="P",
        help="nucleus sampling: the smallest set of characters holding this much probability, in (0, 1] "
        "(default: 1.0, off)",
    )
    g.add_argument(
        "--beam",
        type=int,
        metavar="W",
        help="beam search of this width for the most likely continuation, 0 for off (default: 0)",
    )
    g.add_argument(
        "--repetition-penalty",
        type=float,
        metavar="X",
        help="> 1 discourages characters used in the last 32 (default: 1.0, off)",
    )
    g.add_argument(
        "--no-repeat-ngram",
        type=int,
        metavar="N",
        help="never repeat an N-character sequence already generated; breaks greedy loops (default: 0, off)",
    )
    g.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="STR",
        help=r"stop after this string, e.g. '\n\n' for a blank line (\n, \t, \\ understood); repeatable",
    )
    g.add_argument(
        "--stop-chars", default="", metavar="CHARS", help=r"stop after any of these characters (\n, \t, \\ understood)"
    )
    g.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="random seed for reproducible samples (default: fresh; the seed used is in --json output); "
        "greedy decoding and beam search draw no random numbers",
    )
    g.add_argument(
        "--compare",
        nargs="?",
        const=DEFAULT_COMPARE,
        metavar="LIST",
        help="continue the same prime under each setting of a comma list: temperatures, greedy, "
        f"beamW, top-kK, top-pP (default list: {DEFAULT_COMPARE})",
    )
    o = parser.add_argument_group("output")
    o.add_argument(
        "--count", type=int, default=1, metavar="N", help="number of samples (per setting with --compare) (default: 1)"
    )
    o.add_argument("--output", type=Path, metavar="FILE", help="also write the output to FILE")
    o.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per sample (text, settings, memorisation) instead of plain text",
    )
    o.add_argument(
        "--memorisation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="report the share of generated text found verbatim (20+ characters) in the training corpus (default: on)",
    )
    m = parser.add_argument_group("model")
    m.add_argument(
        "--which",
        choices=("best", "latest"),
        default="best",
        help="best (lowest validation loss) or latest weights (default: best)",
    )
    m.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda, cuda:N, mps or auto; one character at a time is usually fastest on cpu (default: cpu)",
    )
    m.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 for torch's choice (default: 0)")
    add_home_option(parser)
    parser.set_defaults(handler=run, parser=parser)
    return parser


def unescape(text: str) -> str:
    """Turn the escapes \\n, \\t, \\r and \\\\ typed on a command line into characters."""
    out, i = [], 0
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def sampling_config(args: argparse.Namespace, profile_defaults: dict[str, Any] | None):
    """The SamplingConfig from profile defaults overridden by the options typed; validated."""
    from lstmtui.core.sampling import SamplingConfig

    values: dict[str, Any] = {}
    if isinstance(profile_defaults, dict):
        known = set(SamplingConfig.__dataclass_fields__) - {"seed", "stop", "stop_chars"}
        values.update({k: v for k, v in profile_defaults.items() if k in known})
    for name in _SAMPLING_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    values["stop"] = tuple(unescape(s) for s in args.stop)
    values["stop_chars"] = unescape(args.stop_chars)
    values["seed"] = args.seed
    config = SamplingConfig(**values)
    if args.length is not None and args.length < 1:
        raise ConfigError(f"--length must be at least 1, not {args.length}")
    try:
        return config.validate()
    except ConfigError as exc:
        if not any(getattr(args, n, None) is not None for n in _SAMPLING_OPTIONS):
            raise ConfigError(f"profile {args.profile!r} has bad sampling defaults: {exc}") from None
        raise


def parse_compare(spec: str, base) -> list:
    """Settings for --compare: each comma item is a temperature, greedy, beamW, top-kK or top-pP."""
    from dataclasses import replace

    out = []
    for raw in spec.split(","):
        item = raw.strip().lower().replace(":", "").replace("=", "")
        try:
            if item == "greedy":
                cfg = replace(base, temperature=0.0, beam=0)
            elif item.startswith("beam"):
                cfg = replace(base, beam=int(item[4:]))
            elif item.startswith("top-k") or item.startswith("topk"):
                cfg = replace(base, top_k=int(item.split("k", 1)[1]), beam=0)
            elif item.startswith("top-p") or item.startswith("topp"):
                cfg = replace(base, top_p=float(item.split("p", 2)[-1]), beam=0)
            else:
                cfg = replace(base, temperature=float(item), beam=0)
        except ValueError:
            raise ConfigError(
                f"--compare: {raw.strip()!r} is not a temperature, greedy, beamW, top-kK or top-pP"
            ) from None
        out.append(cfg.validate())
    if not out:
        raise ConfigError("--compare needs at least one setting")
    return out


def read_prime(args: argparse.Namespace) -> str:
    """The prime text from --prime or --prime-file ('' when neither)."""
    if args.prime_file is None:
        return args.prime or ""
    from lstmtui.core.userfiles import read_regular

    path = args.prime_file
    # a regular file only, and at most what a prime can use: /dev/zero or a FIFO never blocks or grows
    raw = read_regular(path, "--prime-file", 4 * MAX_PRIME_CHARS)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--prime-file {path} is not UTF-8 text (byte {exc.start})") from None
    if len(text) > MAX_PRIME_CHARS:
        raise ConfigError(f"--prime-file {path} is too large (over {MAX_PRIME_CHARS:,} characters)")
    return text


def memorisation_index(meta: ProfileMeta, vocab) -> tuple[Any, str]:
    """The corpus index for the memorisation figure, or (None, why it is unavailable)."""
    from lstmtui.core.corpus import CleaningOptions, load_corpus
    from lstmtui.core.memorisation import MAX_INDEX_CHARS, MemorisationIndex

    info = meta.corpus
    paths = list(info.paths) if info is not None else []
    if not paths or "-" in paths:
        return None, "the profile does not record corpus files"
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        return None, f"the training corpus {missing[0]} is no longer there"
    too_big = f"the corpus is over {MAX_INDEX_CHARS:,} characters"
    if info.n_chars is not None and info.n_chars > MAX_INDEX_CHARS:
        return None, too_big
    try:
        cleaning = CleaningOptions.from_dict(info.cleaning.options() if info.cleaning else {})
        corpus = load_corpus(paths, cleaning, vocab=vocab)
    except (LstmtuiError, OSError, ValueError, TypeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"the training corpus cannot be reloaded ({why})"
    if info.sha256 and corpus.provenance.get("sha256") != info.sha256:
        return None, "the corpus files changed since training"
    index = MemorisationIndex.from_corpus(corpus)
    if index is None:
        return None, too_big
    return index, ""


def prime_cleaning(meta: ProfileMeta):
    """The cleaning the profile's corpus had, which the prime gets too (defaults when unrecorded)."""
    from lstmtui.core.corpus import CleaningOptions

    record = meta.corpus.cleaning if meta.corpus is not None else None
    try:
        return CleaningOptions.from_dict(record.options() if record is not None else {})
    except (LstmtuiError, TypeError):
        return CleaningOptions()


class _Out:
    """stdout plus an optional --output file, flushed at most every FLUSH_EVERY_S while streaming."""

    def __init__(self, file: IO[str] | None) -> None:
        self.streams = [sys.stdout] + ([file] if file is not None else [])
        self.last = time.monotonic()

    def write(self, text: str, flush: bool = False) -> None:
        for s in self.streams:
            s.write(text)
        now = time.monotonic()
        if flush or now - self.last >= FLUSH_EVERY_S:
            for s in self.streams:
                s.flush()
            self.last = now


@contextmanager
def _output(args: argparse.Namespace) -> Iterator[_Out]:
    """stdout, plus the --output file while generating."""
    file = None
    if args.output is not None:
        from lstmtui.core.userfiles import open_output

        file = open_output(args.output, "--output")  # a FIFO no process reads is refused, never waited on
    try:
        yield _Out(file)
    finally:
        if file is not None:
            file.close()


@dataclass
class _Session:
    """What every sample of one `generate` run shares: the loaded model, the primed state, the seed."""

    args: argparse.Namespace
    name: str
    model: Any
    vocab: Any
    device: Any
    generator: Any
    seed: int
    prime: str
    index: Any  # MemorisationIndex or None
    why: str  # why the memorisation figure is unavailable
    primer: Any = None  # the CharGenerator that ran the prime
    primed: Any = None  # its state after the prime, where every sample starts
    prime_s: float = 0.0


def run(args: argparse.Namespace) -> int:
    """Generate --count samples (or one per --compare setting) and print them."""
    name = _check_options(args)
    prime_raw = read_prime(args)
    session, base, settings = _load(args, name, prime_raw)
    with _output(args) as out:
        _prime(session, base)
        for number, config in enumerate(settings, 1):
            _one_sample(session, out, number, config, base)
    return 0


def _check_options(args: argparse.Namespace) -> str:
    """Validate every option before loading anything; the profile name."""
    from lstmtui.core.profiles import validate_name

    name = validate_name(args.profile)
    if not 1 <= args.count <= MAX_COUNT:
        raise ConfigError(f"--count must be between 1 and {MAX_COUNT}, not {args.count}")
    if not 0 <= args.threads <= MAX_THREADS:
        raise ConfigError(f"threads must be between 0 and {MAX_THREADS}, not {args.threads}", "threads")
    if args.output is not None:
        from lstmtui.core.userfiles import check_output

        check_output(args.output, "--output")
    probe = sampling_config(args, None)
    if args.compare is not None:
        parse_compare(args.compare, probe)
    return name


def _load(args: argparse.Namespace, name: str, prime_raw: str) -> tuple[_Session, Any, list]:
    """Load the profile's model; the shared session, the base sampling settings and one per sample."""
    import torch

    from lstmtui.core.checkpoint import load_model
    from lstmtui.core.corpus import clean_text
    from lstmtui.core.device import pick_device, set_threads
    from lstmtui.core.profiles import ProfileStore

    device = pick_device(args.device)
    set_threads(args.threads)
    model, vocab, meta = load_model(ProfileStore(args.home), name, which=args.which, device=device)
    base = sampling_config(args, asdict(meta.sampling))
    if args.compare is not None:
        settings = [cfg for cfg in parse_compare(args.compare, base) for _ in range(args.count)]
    else:
        settings = [base] * args.count
    # the prime gets the corpus's own cleaning (newlines, NFC, lowercase) so that it matches
    prime = clean_text(prime_raw, prime_cleaning(meta)) if prime_raw else ""
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
    index, why = (None, "off") if not args.memorisation else memorisation_index(meta, vocab)
    if args.memorisation and index is None and not args.json:
        print(f"lstmtui: memorisation figure unavailable: {why}", file=sys.stderr)
    generator = torch.Generator().manual_seed(seed)
    session = _Session(args, name, model, vocab, device, generator, seed, prime, index, why)
    return session, base, settings


def _prime(session: _Session, base) -> None:
    """Run the prime through the network once; every sample starts from a copy of that state."""
    from lstmtui.core.sampling import CharGenerator

    session.primer = CharGenerator(
        session.model, session.vocab, base, device=session.device, generator=session.generator
    )
    started = time.perf_counter()
    try:
        session.primer.prime(session.prime, drop_unknown=session.args.drop_unknown)
    except VocabularyError as exc:
        raise VocabularyError(str(exc).replace("drop them with --drop-unknown", "--drop-unknown drops them")) from None
    session.prime_s = time.perf_counter() - started
    session.primed = session.primer.checkpoint()


def _one_sample(session: _Session, out: _Out, number: int, config, base) -> None:
    """Stream one sample from the primed state, then report it (JSON line, or a note on stderr)."""
    from lstmtui.core.sampling import CharGenerator

    args = session.args
    gen = session.primer
    if config is not base:
        gen = CharGenerator(session.model, session.vocab, config, device=session.device, generator=session.generator)
    gen.restore(session.primed)
    if not args.json:
        out.write(_separator(args, number, config))
    started = time.perf_counter()
    first = None
    pieces = []
    for ch in gen.stream(config.length):
        if first is None:
            first = time.perf_counter() - started
        pieces.append(ch)
        if not args.json:
            out.write(ch)
    elapsed = time.perf_counter() - started
    text = "".join(pieces)
    share = session.index.share(text, context=session.prime) if session.index is not None else None
    if args.json:
        record = _record(session, number, config, text, share, elapsed, first)
        out.write(json.dumps(record, ensure_ascii=False) + "\n", flush=True)
        return
    if not text.endswith("\n"):
        out.write("\n")
    out.write("", flush=True)
    randomness = "deterministic" if _deterministic(config) else f"seed {session.seed}"
    note = f"[{len(text)} chars, {config.method}, {randomness}"
    if share is not None:
        note += f", memorised {100 * share:.1f}% ({session.index.window}+ char copies)"
    print(note + "]", file=sys.stderr, flush=True)


def _deterministic(config) -> bool:
    """Whether the settings draw no random numbers (greedy, beam search), so no seed matters."""
    return config.beam > 0 or config.temperature == 0


def _separator(args: argparse.Namespace, number: int, config) -> str:
    """The line before a sample: the --compare setting, or `── sample 2/3 ──` when there are several."""
    count = f"{(number - 1) % args.count + 1}/{args.count}"
    if args.compare is not None:
        return f"{'-' * 8} {config.method}{f' ({count})' if args.count > 1 else ''} {'-' * 8}\n"
    return f"── sample {count} ──\n" if args.count > 1 else ""


def _record(
    session: _Session, number: int, config, text: str, share: float | None, elapsed: float, first: float | None
) -> dict[str, Any]:
    """One sample as its --json line."""
    index = session.index
    return {
        "profile": session.name,
        "which": session.args.which,
        "sample": number,
        "prime": session.prime,
        "text": text,
        "chars": len(text),
        "method": config.method,
        "settings": config.to_dict(),
        "seed": None if _deterministic(config) else session.seed,
        "memorisation": None if share is None else round(share, 6),
        "memorisation_window": index.window if index is not None else None,
        "memorisation_note": None if index is not None else session.why,
        "prime_s": round(session.prime_s, 6),
        "seconds": round(elapsed, 6),
        "first_char_s": None if first is None else round(first, 6),
        "chars_per_s": round(len(text) / elapsed, 1) if elapsed > 0 and text else None,
    }
