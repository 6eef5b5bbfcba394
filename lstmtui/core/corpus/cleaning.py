"""How raw text becomes training text: the cleaning steps, and a fast implementation of them.

Cleaning, applied in this order and recorded in the provenance under ``cleaning``:

1. decoding with ``CleaningOptions.encoding`` (UTF-8 by default; a UTF-8 byte-order mark at the
   start of a file is dropped; ``auto`` lets ``detect`` choose from a sample of each file);
2. newlines: CRLF and lone CR become LF;
3. control characters (Unicode category Cc) other than newline and tab are dropped, and so are
   lone surrogates (which no valid decoding yields, but a str handed to ``clean_text`` may hold);
4. lowercasing (``lowercase``, off by default);
5. Unicode NFC normalisation (``nfc``, on by default);
6. characters seen fewer than ``min_char_count`` times in the corpus map to ``UNKNOWN_CHAR``
   (off by default).

Step 1 happens in ``lstmtui.core.corpus.decode`` (reading files) and step 6 in
``lstmtui.core.corpus.vocab_plan`` (counting over the whole corpus).
Steps 2 to 5 are local (they look no further than neighbouring characters), so a corpus can be
cleaned chunk by chunk: ``safe_cut`` finds where text may be cut without changing the result.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from lstmtui.core.errors import ConfigError

MAX_CODEPOINT = 0x110000
AUTO_ENCODING = "auto"  # detect the encoding (lstmtui.core.corpus.detect); the provenance records what it chose
_COUNT_BLOCK = 1 << 20  # np.bincount casts to intp: count in blocks so the copy stays small
_LATIN1_CONTROLS = bytes([*range(0, 9), *range(11, 32), *range(127, 160)])
_LATIN1_LOWER = bytes(ord(chr(i).lower()) for i in range(256))  # each maps below U+0100 again
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# A chunk is cut just before one of these: none of them composes under NFC, none is cased or
# case-ignorable (so lowercasing's final-sigma rule cannot see across it), none is a CR.
_SAFE_CUT_RE = re.compile(r"[\n\t 0-9!\"#$%&()*+,\-/;<=>?@\[\\\]_{|}~]")
_CUT_WINDOW = 1 << 16
# Byte pieces hold one byte a character. Bytes 0x80-0x9F would be C1 controls, which cleaning
# drops, so they are free to stand for up to 32 wider characters (see Cleaner.extra).
BYTE_PIECES = (bytes, bytearray)
Piece = bytes | bytearray | np.ndarray  # a cleaned piece of text: see the comment above Cleaner
EXTRA_BASE = 0x80
EXTRA_SLOTS = 32
_DROP = 0x01  # a control character, so the final translate deletes it along with real ones
_ASCII_CONTROLS = bytes([*range(0, 9), *range(11, 32), 127])
_ASCII_LOWER = bytes(ord(chr(i).lower()) if i < 128 else i for i in range(256))
_SIGMA = "\u03a3"  # lowercasing it depends on its neighbours (final sigma)


@dataclass(frozen=True)
class CleaningOptions:
    """How raw bytes become training text (see the module docstring for the exact steps)."""

    encoding: str = "utf-8"
    nfc: bool = True
    lowercase: bool = False
    min_char_count: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.min_char_count, int) or self.min_char_count < 0:
            raise ConfigError(f"minimum character count must be 0 or more, not {self.min_char_count!r}")
        if self.encoding == AUTO_ENCODING:
            return
        try:
            codec = codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ConfigError(
                f"unknown encoding {self.encoding!r}; use a Python codec name such as utf-8, latin-1 or utf-16, or auto"
            ) from None
        if not getattr(codec, "_is_text_encoding", True):  # rot13, hex, base64, zlib: codecs, not text encodings
            raise ConfigError(
                f"{self.encoding!r} is a codec but not a text encoding; use one such as utf-8, latin-1 or utf-16, "
                "or auto",
                "encoding",
            )

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CleaningOptions:
        """Build from a dict, ignoring unknown keys (such as the recorded ``steps``)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self) -> dict:
        """The options plus the list of steps applied, as recorded in a corpus's provenance."""
        steps = ["decode " + self.encoding, "newlines CRLF/CR to LF", "drop control characters except newline and tab"]
        if self.lowercase:
            steps.append("lowercase")
        if self.nfc:
            steps.append("Unicode NFC")
        if self.min_char_count:
            steps.append(f"characters seen fewer than {self.min_char_count} times to U+FFFD")
        return {**self.to_dict(), "steps": steps}


def normalise_newlines(s: str) -> str:
    """CRLF and lone CR to LF."""
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    return s


def codepoints(s: str) -> np.ndarray:
    """The code points of a string as a numpy array (uint8 for ASCII, else uint32)."""
    if s.isascii():
        return np.frombuffer(s.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(s.encode("utf-32-le"), dtype="<u4")


# A cleaned "piece" of text is ``bytes`` (or a ``bytearray``: see BYTE_PIECES) with one byte a
# character (the common case, handled by fast bytes methods): a byte below 0x80 or from 0xA0 is
# that code point, and a byte in 0x80-0x9F is the wider character ``Cleaner.extra[byte - 0x80]``.
# Other text is a uint32 array of code points.


class Cleaner:
    """Cleans newline-normalised text into pieces; remembers what it had to do.

    Text below U+0100 takes a bytes fast path. Wider text is lowercased if asked, turned into code
    points and counted; the slow path (regex removal of controls, then NFC) runs only when the
    counts show a control character or a character that NFC could change or compose. Cleaning the
    same corpus again with ``trusted=True`` after a first pass that never needed the slow path
    skips the counting and the checks.
    """

    def __init__(self, c: CleaningOptions, trusted: bool = False, extra: list[int] | None = None):
        self.c = c
        self.trusted = trusted
        self.dirty = False  # some piece needed the slow path
        self.last_counts: np.ndarray | None = None  # bincount of the last wide piece, for Tally
        # Wider characters that byte pieces hold as 0x80 + their index here. A cleaner given the
        # list of an earlier one (reading the same corpus again) keeps it as it is.
        self.extra: list[int] = [] if extra is None else extra
        self._frozen = extra is not None
        self._byte_of: dict[int, int] = {}  # raw code point -> its byte in a piece; _DROP to delete
        self._skip = bytes(range(0x80, 0x100))  # for utf8(): non-ASCII, and ASCII seen so far (never a control)

    def utf8(self, data: bytes) -> bytes | bytearray | None:
        """Clean newline-terminated UTF-8 without decoding it to str; None when it needs ``__call__``."""
        self.last_counts = None
        # CR, LF and A-Z are ASCII, never inside a multi-byte character, so bytes methods do.
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self.c.lowercase:
            data = data.translate(_ASCII_LOWER)
        # One scan finds controls (rare) and the ASCII characters not seen before, for Tally:
        # what survives deleting every non-ASCII byte and every ASCII byte value seen so far.
        fresh = set(data.translate(None, self._skip))
        if data.isascii():
            return self._finish(data, fresh, ())
        a = np.frombuffer(data, dtype=np.uint8)
        high = np.flatnonzero(a >= 0x80)
        hb = a[high]
        is_lead = hb >= 0xC0
        lead, cont = high[is_lead], high[~is_lead]
        lb = hb[is_lead]
        follow = (lb >= 0xC0).astype(np.intp) + (lb >= 0xE0) + (lb >= 0xF0)
        # Each lead byte must be followed by exactly its continuation bytes, and no other byte may
        # be one; the strict decode of the non-ASCII bytes alone then checks the rest (overlong
        # forms, surrogates, range) with the same character boundaries as the whole text.
        if int(follow.sum()) != cont.size:
            return None
        starts = np.repeat(np.cumsum(follow) - follow, follow)
        claimed = np.repeat(lead, follow) + (np.arange(cont.size) - starts) + 1
        if not np.array_equal(claimed, cont):
            return None
        try:
            wide = hb.tobytes().decode("utf-8")
        except UnicodeDecodeError:
            return None  # the str path reports the error with its offset
        cps = np.frombuffer(wide.encode("utf-32-le"), dtype="<u4")
        present = np.flatnonzero(np.bincount(cps))  # distinct characters, faster than set(wide)
        byte_of = self._byte_of
        for cp in present.tolist():
            if cp not in byte_of:
                code = self._code_for(chr(cp))
                if code is None:
                    return None
                byte_of[cp] = code
        table = np.zeros(int(present[-1]) + 1, dtype=np.uint8)
        wide_codes = [byte_of[cp] for cp in present.tolist()]
        table[present] = wide_codes
        buf = bytearray(data)  # a bytearray piece saves the copy a bytes result would need
        view = np.frombuffer(buf, dtype=np.uint8)
        view[cont] = _DROP
        view[lead] = table[cps]
        # Deleting one byte value with replace copies the runs between them, several times faster
        # than translate's byte-by-byte deletion.
        return self._finish(buf.replace(bytes([_DROP]), b""), fresh, wide_codes)

    def _finish(self, b: bytes | bytearray, fresh: set[int], wide_codes: Sequence[int]) -> bytes | bytearray:
        """Drop ASCII controls if ``fresh`` (the new ASCII values) has any; give Tally the new characters."""
        if not fresh.isdisjoint(_ASCII_CONTROLS):
            b = b.translate(None, _ASCII_CONTROLS)
            fresh = fresh.difference(_ASCII_CONTROLS)
        self._skip += bytes(sorted(fresh))
        if not self.c.min_char_count:  # else Tally needs real counts and makes them itself
            present = np.zeros(256, dtype=np.int64)
            present[list(fresh)] = 1
            present[[c for c in wide_codes if c != _DROP]] = 1
            self.last_counts = present
        return b

    def _code_for(self, ch: str) -> int | None:
        """The byte that stands for raw character ``ch`` after cleaning, or None if that needs the str path."""
        if self.c.lowercase:
            if ch == _SIGMA:
                return None
            ch = ch.lower()
            if len(ch) != 1:
                return None
        cp = ord(ch)
        if cp < 0x80:
            return cp
        if cp < 0xA0:
            return _DROP  # a C1 control
        if cp < 0x100:
            return cp
        if self.c.nfc and cp >= 0x300 and not nfc_inert(cp):
            return None
        if cp in self.extra:
            return EXTRA_BASE + self.extra.index(cp)
        if self._frozen or len(self.extra) >= EXTRA_SLOTS:
            return None
        self.extra.append(cp)
        return EXTRA_BASE + len(self.extra) - 1

    def __call__(self, s: str) -> bytes | np.ndarray:
        self.last_counts = None
        try:
            b = s.encode("latin-1")  # fails at once, without a scan, when s holds a wider character
        except UnicodeEncodeError:
            return self._wide(s)
        # No NFC work: characters below U+0100 are NFC-stable and no two of them compose.
        b = b.translate(None, _LATIN1_CONTROLS)
        return b.translate(_LATIN1_LOWER) if self.c.lowercase else b

    def _wide(self, s: str) -> np.ndarray:
        t = s.lower() if self.c.lowercase else s
        try:
            cps = np.frombuffer(t.encode("utf-32-le"), dtype="<u4")
        except UnicodeEncodeError:  # lone surrogates: never from decoding, only from a str passed in
            return self._slow(s)
        if self.trusted:
            return cps
        counts = bincount(cps)
        if _controls_in(counts) or (self.c.nfc and not _nfc_inert_all(counts)):
            return self._slow(s)
        self.last_counts = counts
        return cps

    def _slow(self, s: str) -> np.ndarray:
        self.dirty = True
        t = _CONTROL_RE.sub("", s)
        if self.c.lowercase:
            t = t.lower()
        if self.c.nfc:
            t = unicodedata.normalize("NFC", t)
        cps = np.frombuffer(t.encode("utf-32-le"), dtype="<u4")
        self.last_counts = bincount(cps)
        return cps


def bincount(arr: np.ndarray) -> np.ndarray:
    """np.bincount in blocks (it casts to intp: a whole chunk at once would copy 8 bytes a char)."""
    total = np.zeros(0, dtype=np.int64)
    for i in range(0, arr.size, _COUNT_BLOCK):
        b = np.bincount(arr[i : i + _COUNT_BLOCK])
        if b.size > total.size:
            b[: total.size] += total
            total = b
        else:
            total[: b.size] += b
    return total


def _controls_in(counts: np.ndarray) -> bool:
    low = counts[:160]
    return bool(low[:9].any() or low[11:32].any() or low[127:160].any())


_COMPOSING: set[int] | None = None


def _composing() -> set[int]:
    """Code points that can be the second of a canonical composition (built once, in ~40 ms)."""
    global _COMPOSING
    if _COMPOSING is None:
        found = {*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)}  # Hangul vowels and final consonants
        # Two-character canonical decompositions exist only in planes 0 and 1 (planes 2+ hold CJK
        # compatibility singletons at most), so the scan stops at U+20000.
        for cp in range(0x300, 0x20000):
            d = unicodedata.decomposition(chr(cp))
            if d and d[0] != "<":
                parts = d.split()
                if len(parts) == 2:
                    found.add(int(parts[1], 16))
        _COMPOSING = found
    return _COMPOSING


@functools.cache
def nfc_inert(cp: int) -> bool:
    """Whether NFC leaves this character alone and never composes it with the one before."""
    ch = chr(cp)
    return unicodedata.combining(ch) == 0 and unicodedata.is_normalized("NFC", ch) and cp not in _composing()


def _nfc_inert_all(counts: np.ndarray) -> bool:
    # everything below U+0300 is NFC-stable, non-combining and never second in a composition
    return all(nfc_inert(int(cp)) for cp in np.flatnonzero(counts[0x300:]) + 0x300)


def piece_to_str(piece: bytes | np.ndarray) -> str:
    """Turn a cleaned piece (see ``Cleaner``) back into a string."""
    if isinstance(piece, bytes):
        return piece.decode("latin-1")
    return piece.astype("<u4", copy=False).tobytes().decode("utf-32-le")


def clean_text(text: str, cleaning: CleaningOptions = CleaningOptions()) -> str:
    """Apply the cleaning steps (all but the corpus-wide rare-character mapping) to a string."""
    return piece_to_str(Cleaner(cleaning)(normalise_newlines(text)))


def safe_cut(s: str) -> int | None:
    """Index to cut ``s`` at so that cleaning the two parts apart equals cleaning the whole."""
    lo = max(0, len(s) - _CUT_WINDOW)
    i = s.rfind("\n", lo)
    if i > 0:
        return i
    m = _SAFE_CUT_RE.search(s[lo:][::-1])
    if m is not None:
        i = len(s) - 1 - m.start()
        return i if i > 0 else None
    # Text without ASCII punctuation or spaces (a long line of CJK, say): cut before a letter of a
    # caseless script that NFC never touches or composes onto what precedes it.
    for i in range(len(s) - 1, max(lo, 0), -1):
        ch = s[i]
        if unicodedata.category(ch) == "Lo" and nfc_inert(ord(ch)):
            return i
    return None
