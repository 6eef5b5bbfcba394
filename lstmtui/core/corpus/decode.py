"""Streaming decode: each source read chunk by chunk, decoded, checked and cleaned into pieces.

UTF-8 input read in whole lines is cleaned as bytes, never decoded to a str: the non-ASCII bytes
are checked with vectorised numpy code and a strict decode of those bytes alone, and a few wider
characters get spare byte values (``Cleaner.utf8``); anything else (invalid bytes, characters NFC
or lowercasing could change, too many distinct wide characters) takes the decoding path, which
gives the same text and reports errors with their byte offset. Text is cut between chunks only
where cleaning the parts apart equals cleaning the whole (``safe_cut``).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from typing import IO

from lstmtui.core.corpus.cleaning import Cleaner, Piece, normalise_newlines, safe_cut
from lstmtui.core.corpus.sources import SNIFF_BYTES, Source, guess_wide, is_wide, sniff_binary
from lstmtui.core.errors import CorpusError


def iter_corpus(
    sources: list[Source], clean: Cleaner, chunk_bytes: int, on_raw: Callable[[int, bytes], None]
) -> Iterator[Piece]:
    """Yield cleaned pieces of all sources, adding a newline between files where missing.

    ``on_raw(i, raw)`` sees every raw chunk read from source ``i``, before it is decoded.
    """
    last = None
    for i, src in enumerate(sources):
        if last is not None and last != 10:
            clean.last_counts = None  # they were the previous piece's
            yield b"\n"
            last = 10
        for piece in _SourceReader(src, clean, chunk_bytes, lambda raw, i=i: on_raw(i, raw)).pieces():
            if len(piece):
                last = int(piece[-1])
                yield piece


class _SourceReader:
    """Reads one source chunk by chunk and yields its cleaned pieces."""

    def __init__(self, src: Source, clean: Cleaner, chunk_bytes: int, on_raw: Callable[[bytes], None]):
        self.src, self.clean, self.chunk_bytes, self.on_raw = src, clean, chunk_bytes, on_raw
        self.encoding = clean.c.encoding
        self.wide = is_wide(self.encoding)
        self.utf8 = codecs.lookup(self.encoding).name == "utf-8"
        self.decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        self.pending = b""  # raw bytes after the last newline of the chunk read last
        self.read = 0  # raw bytes read so far
        self.fed = 0  # raw bytes handed to the decoder so far (a dropped BOM counts)
        self.chars = 0  # decoded characters so far (for NUL positions in wide encodings)
        self.carry = ""  # decoded text held back until the next chunk shows how it continues

    def pieces(self) -> Iterator[Piece]:
        """The cleaned pieces, in order; CorpusError when the source is unreadable, binary or misdecoded."""
        with self.src.open() as f:
            while True:
                want = self.chunk_bytes if self.read else max(self.chunk_bytes, 4)  # the first read sees any BOM whole
                raw = self._read_chunk(f, want)
                if self.read == 0 and not raw:
                    return
                final = len(raw) < want
                piece = self._clean(self._accept(raw, final), final)
                if piece is not None:
                    yield piece
                if final:
                    return

    def _read_chunk(self, f: IO[bytes], want: int) -> bytes:
        try:
            return f.read(want)
        except OSError as e:
            raise CorpusError(f"cannot read {self.src.label}: {e.strerror or e}; check the file and its disk") from None

    def _accept(self, raw: bytes, final: bool) -> bytes:
        """Check and count a raw chunk; return the bytes to clean now (whole lines where possible)."""
        if self.read == 0:
            self._check_start(raw)
        if raw:
            self.on_raw(raw)
            if not self.wide:
                self._check_no_nul(raw)
        if self.read == 0 and self.utf8 and raw.startswith(codecs.BOM_UTF8):
            raw, self.fed = raw[3:], 3
            self.read = 3
        self.read += len(raw)
        return self._whole_lines(raw, final)

    def _check_start(self, raw: bytes) -> None:
        """Refuse a source that starts like a known binary format or with a BOM its encoding does not take."""
        _check_bom(self.src, raw[:4], self.encoding)
        what = sniff_binary(raw[:SNIFF_BYTES], self.wide)
        if what and not what.startswith("binary data"):
            raise CorpusError(f"{self.src.label} is {what}, not text; pass a text file")

    def _check_no_nul(self, raw: bytes) -> None:
        nul = raw.find(b"\x00")
        if nul < 0:
            return
        guess = guess_wide(raw[:SNIFF_BYTES]) if self.read == 0 else None
        if guess:
            raise CorpusError(
                f"{self.src.label} looks like {guess.upper()} text without a byte-order mark; "
                f"set the corpus encoding to {guess}",
                "encoding",
            )
        raise CorpusError(
            f"{self.src.label} looks binary: it has a NUL byte at offset {self.read + nul}; pass a text file"
        )

    def _whole_lines(self, raw: bytes, final: bool) -> bytes:
        """The pending bytes and ``raw`` up to its last newline; the rest waits for the next chunk.

        Text that ends with a newline can be cleaned on its own, with no cutting and copying of
        the decoded string.
        """
        k = raw.rfind(b"\n") if not final and not self.wide else -1
        if k < 0:
            data, self.pending = self.pending + raw, b""
            return data
        # pending holds no newline, so this is the last one; one copy at most
        whole = not self.pending and k + 1 == len(raw)
        data = raw if whole else b"".join((self.pending, memoryview(raw)[: k + 1]))
        self.pending = raw[k + 1 :]
        return data

    def _clean(self, data: bytes, final: bool) -> Piece | None:
        """The cleaned piece ``data`` gives now, or None when it gives nothing yet."""
        # Whole lines of UTF-8 with nothing held back are cleaned as bytes, without a decode.
        if self.utf8 and not self.carry and (final or data.endswith(b"\n")) and self.decoder.getstate()[0] == b"":
            piece = self.clean.utf8(data)
            if piece is not None:
                self.fed += len(data)
                return piece if piece else None
        return self._clean_text(self._decode(data, final), final)

    def _decode(self, data: bytes, final: bool) -> str:
        try:
            state = self.decoder.getstate()
            buffered = len(state[0]) if isinstance(state, tuple) and isinstance(state[0], bytes) else 0
        except Exception:  # only used to locate a decoding error
            buffered = 0
        try:
            text = self.decoder.decode(data, final=final)
        except UnicodeDecodeError as e:
            raise _decode_error(self.src, self.encoding, e, self.fed - buffered + e.start) from None
        except (UnicodeError, ValueError, TypeError) as e:  # codecs such as punycode or undefined fail otherwise
            raise CorpusError(
                f"{self.src.label} cannot be decoded as {self.encoding} ({str(e).strip() or type(e).__name__}); "
                "set the corpus encoding to the file's real encoding",
                "encoding",
            ) from None
        self.fed += len(data)
        if self.wide:
            nul = text.find("\x00")
            if nul >= 0:
                raise CorpusError(
                    f"{self.src.label} looks binary: it has a NUL character at character {self.chars + nul}; "
                    "pass a text file"
                )
        self.chars += len(text)
        return text

    def _clean_text(self, text: str, final: bool) -> Piece | None:
        """Clean decoded text up to a safe cut; the rest is carried over to the next chunk."""
        s = self.carry + text if self.carry else text
        hold = ""
        if not final and s.endswith("\r"):
            s, hold = s[:-1], "\r"  # its LF may start the next chunk
        s = normalise_newlines(s)
        if final or s.endswith("\n"):
            # after a newline is a safe place to cut: see safe_cut
            piece, self.carry = s, hold
        else:
            cut = safe_cut(s)
            if cut is None:
                self.carry = s + hold
                return None
            piece, self.carry = s[:cut], s[cut:] + hold
        return self.clean(piece) if piece else None


def _decode_error(src: Source, encoding: str, e: UnicodeDecodeError, offset: int) -> CorpusError:
    bad = e.object[e.start : e.start + 1]
    byte = f" (byte 0x{bad[0]:02X})" if bad else ""
    if codecs.lookup(encoding).name == "utf-8":
        hint = "if it is Latin-1 text, set the corpus encoding to latin-1 (or cp1252, or the file's real encoding)"
    else:
        hint = "set the corpus encoding to the file's real encoding"
    if e.reason == "unexpected end of data":
        byte += ", at the very end: the file may be truncated"
    return CorpusError(f"{src.label} is not valid {encoding} at byte offset {offset}{byte}; {hint}", "encoding")


def _check_bom(src: Source, head: bytes, encoding: str) -> None:
    if is_wide(encoding):
        return
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise CorpusError(
            f"{src.label} is UTF-32 (it starts with a UTF-32 byte-order mark); set the corpus encoding to utf-32",
            "encoding",
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CorpusError(
            f"{src.label} is UTF-16 (it starts with a UTF-16 byte-order mark); set the corpus encoding to utf-16",
            "encoding",
        )
