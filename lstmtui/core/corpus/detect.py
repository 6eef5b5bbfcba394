"""``encoding auto``: charset-normalizer picks the corpus's encoding from the first ``DETECT_BYTES`` of each file.

charset-normalizer often finds several encodings that read a sample equally well (French in
Latin-1 reads as well in cp1250, which turns "à" into "ŕ"). Among the encodings tied with its
best guess, and the ones it says give the same text, the most widely used win: UTF-8, UTF-16,
UTF-32, then cp1252 and Latin-1. A file whose sample is plain ASCII accepts any ASCII-compatible
encoding; the files of one corpus must share one encoding, since the corpus is decoded with one
(and its provenance records that one, so reloading the corpus decodes it alike). A sample that no
encoding reads cleanly (binary data, mixed encodings) is refused. A file whose first non-ASCII
byte comes after the sample is decoded as UTF-8, and a byte that is not UTF-8 is then reported
with its offset, as with ``encoding utf-8``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from lstmtui.core.corpus.sources import SNIFF_BYTES, Source, names, sniff_binary
from lstmtui.core.errors import CorpusError
from lstmtui.core.units import format_size

DETECT_BYTES = 1 << 20
MAX_CHAOS = 0.2  # charset-normalizer's "mess" ratio above which a reading is not trusted
TIE = 0.01  # readings whose mess and coherence are this close count as equally good
_PREFERRED = ("utf-8", "utf-16", "utf-32", "cp1252", "iso8859-1", "iso8859-15")
_ASCII = ()  # the candidates of a sample that is plain ASCII: any ASCII-compatible encoding


@dataclass(frozen=True)
class Detection:
    """The encoding ``auto`` chose (a Python codec name) and the sources it was chosen for."""

    encoding: str
    sources: tuple[str, ...]  # labels of the files that were sampled
    ascii_only: bool  # every sample was plain ASCII

    def describe(self) -> str:
        """One line for the user: what was chosen, for which files, from how much of them."""
        which = self.sources[0] if len(self.sources) == 1 else f"the {len(self.sources)} corpus files"
        why = "; the sample is plain ASCII" if self.ascii_only else ""
        return (
            f"encoding auto chose {self.encoding} for {which} "
            f"(charset-normalizer on the first {format_size(DETECT_BYTES)} of each file{why})"
        )


def detect_encoding(sources: list[Source]) -> Detection:
    """The one encoding that reads every source's sample; CorpusError for binary, unclear or mixed input."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for src in sources:
        head = _head(src)
        if head:
            found.append((src.label, _candidates(src, head)))
    labels = tuple(label for label, _ in found) or tuple(s.label for s in sources)
    specific = [(label, c) for label, c in found if c != _ASCII]
    if not specific:
        return Detection("utf-8", labels, ascii_only=True)
    common = set(specific[0][1])
    for _, candidates in specific[1:]:
        common &= set(candidates)
    if len(specific) < len(found):  # some samples are ASCII, which a UTF-16/32 reading does not fit
        common = {c for c in common if not _wide(c)}
    if not common:
        a, b = _disagreeing(specific, len(specific) < len(found))
        raise CorpusError(
            f"{names(sources)} do not share one encoding ({a}, {b}); "
            "convert them to one encoding, or train on them separately"
        )
    encoding = next(c for c in specific[0][1] if c in common)
    return Detection(encoding, labels, ascii_only=False)


def _head(src: Source) -> bytes:
    """The source's first ``DETECT_BYTES``."""
    with src.open() as f:
        try:
            return f.read(DETECT_BYTES)
        except OSError as e:
            raise CorpusError(f"cannot read {src.label}: {e.strerror or e}; check the file and its disk") from None


def _candidates(src: Source, head: bytes) -> tuple[str, ...]:
    """The codec names that read ``head`` best, most widely used first; ``_ASCII`` for plain ASCII."""
    what = sniff_binary(head[:SNIFF_BYTES], wide=True)  # magic numbers only: UTF-16 text has NUL bytes
    if what:
        raise CorpusError(f"{src.label} is {what}, not text; pass a text file")
    import charset_normalizer  # only encoding auto needs it

    results = charset_normalizer.from_bytes(head, threshold=MAX_CHAOS)
    best = results.best()
    if best is None or best.chaos > MAX_CHAOS:
        raise CorpusError(
            f"the encoding of {src.label} cannot be told from its first {format_size(len(head))} "
            "(it may be binary, or mix encodings); set the corpus encoding to the file's real encoding"
        )
    if best.encoding == "ascii":
        return _ASCII
    found: list[str] = []
    for match in results:
        if abs(match.chaos - best.chaos) <= TIE and match.coherence >= best.coherence - TIE:
            for name in (match.encoding, *match.could_be_from_charset):
                codec = _codec(name)
                if codec and codec not in found:
                    found.append(codec)
    preferred = [c for c in _PREFERRED if c in found]
    return tuple(preferred + [c for c in found if c not in preferred])


def _codec(name: str) -> str | None:
    """Python's own name for an encoding ('latin_1' -> 'iso8859-1'); 'ascii' becomes UTF-8, its superset."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    return "utf-8" if codec == "ascii" else codec


def _wide(codec: str) -> bool:
    return codec.startswith(("utf-16", "utf-32"))


def _disagreeing(specific: list[tuple[str, tuple[str, ...]]], some_ascii: bool) -> tuple[str, str]:
    """Two files whose encodings differ, as 'label: encoding' (an ASCII file against a UTF-16 one counts)."""
    first_label, first = specific[0]
    for label, candidates in specific[1:]:
        if not set(first) & set(candidates):
            return f"{first_label}: {first[0]}", f"{label}: {candidates[0]}"
    wide = next(((label, c) for label, c in specific if _wide(c[0])), None)
    if some_ascii and wide is not None:
        return f"{wide[0]}: {wide[1][0]}", "others: ASCII"
    second_label, second = specific[1]  # no two disagree alone, but all of them together do
    return f"{first_label}: {first[0]}", f"{second_label}: {second[0]}"
