"""Corpus reading, cleaning, encoding, caching and splitting, including every bad input we refuse."""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lstmtui.core.corpus import (
    UNKNOWN_CHAR,
    CleaningOptions,
    Corpus,
    Vocab,
    check_trainable,
    clean_text,
    default_corpus_path,
    load_corpus,
)
from lstmtui.core.corpus import cache as corpus_cache
from lstmtui.core.corpus import load as corpus_load
from lstmtui.core.errors import ConfigError, CorpusError, VocabularyError


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


# --- cleaning -----------------------------------------------------------------------------------


def test_newlines_become_lf():
    assert clean_text("a\r\nb\rc\n\rd") == "a\nb\nc\n\nd"


def test_control_characters_dropped_but_tab_and_newline_kept():
    assert clean_text("a\x00b\x07c\td\ne\x1bf\x7fg\x85h\x9fi") == "abc\td\nefghi"


def test_nfc_composes_combining_sequences_and_can_be_turned_off():
    decomposed = "e\u0301te\u0301"  # e + combining acute
    assert clean_text(decomposed) == "\u00e9t\u00e9"
    assert clean_text(decomposed, CleaningOptions(nfc=False)) == decomposed
    # a combining mark with no precomposed form stays as two characters
    assert clean_text("q\u0307") == "q\u0307"


def test_lowercase_handles_non_ascii():
    opts = CleaningOptions(lowercase=True)
    assert clean_text("ÉCOLE Straße ΟΔΟΣ", opts) == "école straße οδος"


def test_non_ascii_text_survives_round_trip(tmp_path):
    text = "Zoë naïve café — 日本語のテキスト 🙂👍🏽 Ωμέγα\n" * 20
    c = load_corpus([write(tmp_path, "u.txt", text)])
    assert c.text() == text
    assert set("日本語🙂👍🏽Ωμ") <= set(c.vocab.chars)


def test_utf8_bom_is_dropped(tmp_path):
    c = load_corpus([write(tmp_path, "bom.txt", b"\xef\xbb\xbfhello world")])
    assert c.text() == "hello world"


def test_rare_characters_map_to_unknown(tmp_path):
    text = "abababababab" * 5 + "x" + "é"
    c = load_corpus([write(tmp_path, "r.txt", text)], CleaningOptions(min_char_count=2))
    assert c.vocab.chars == sorted(["a", "b", UNKNOWN_CHAR])
    assert c.text().endswith(UNKNOWN_CHAR * 2)
    assert c.provenance["cleaning"]["min_char_count"] == 2


# --- encoding and vocabulary --------------------------------------------------------------------


def test_vocab_sorted_and_uint8(tmp_path):
    c = load_corpus([write(tmp_path, "a.txt", "hello world\n")])
    assert c.vocab.chars == sorted(set("hello world\n"))
    assert c.data.dtype == np.uint8
    assert c.vocab.decode(c.data) == "hello world\n"


def test_large_vocab_uses_uint16(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(300)) * 2
    c = load_corpus([write(tmp_path, "cjk.txt", text)])
    assert len(c.vocab) == 300 and c.data.dtype == np.uint16
    assert c.text() == text


def test_vocab_encode_decode_and_errors():
    v = Vocab(list("abc\n"))
    ids = v.encode("cab\n")
    assert ids.tolist() == [2, 0, 1, 3] and ids.dtype == np.uint8
    assert v.decode(ids) == "cab\n" and v.decode(2) == "c" and v.decode([]) == ""
    assert v.missing("abxyx") == ["x", "y"]
    assert v.index("c") == 2
    with pytest.raises(VocabularyError, match="'x'"):
        v.encode("ax")
    with pytest.raises(VocabularyError):
        v.index("z")
    with pytest.raises(VocabularyError):
        v.decode([4])
    assert Vocab.from_list(v.to_list()) == v
    for bad in (["a", "a"], ["ab"], [""], "abc", [1]):
        with pytest.raises(VocabularyError):
            Vocab.from_list(bad)


def test_vocab_decode_accepts_torch_tensor():
    torch = pytest.importorskip("torch")
    v = Vocab(list("xyz"))
    assert v.decode(torch.tensor([2, 0, 1])) == "zxy"


def test_missing_characters_name_them_and_suggest_extend_vocab(tmp_path):
    path = write(tmp_path, "ft.txt", "abc déjà vu")
    base = Vocab(list(" abc"))
    with pytest.raises(VocabularyError) as e:
        load_corpus([path], vocab=base)
    msg = one_line(e)
    assert "extend the vocabulary" in msg and "minimum character count" in msg and "'é'" in msg and "'v'" in msg
    assert "--" not in msg  # core names settings; the CLI adds its flags


def test_extend_vocab_appends_and_keeps_old_ids(tmp_path):
    path = write(tmp_path, "ft.txt", "zab ba")
    base = Vocab(list("ba "))
    c = load_corpus([path], vocab=base, extend_vocab=True)
    assert c.vocab.chars[:3] == ["b", "a", " "]
    assert c.vocab.chars[3:] == ["z"]
    assert c.text() == "zab ba"
    same = load_corpus([path], vocab=c.vocab)
    assert same.vocab == c.vocab and np.array_equal(same.data, c.data)


# --- inputs -------------------------------------------------------------------------------------


def test_multiple_files_in_order_with_joining_newline(tmp_path):
    a = write(tmp_path, "a.txt", "first")
    b = write(tmp_path, "b.txt", "second\n")
    c = write(tmp_path, "c.txt", "third")
    corpus = load_corpus([b, a, c])
    assert corpus.text() == "second\nfirst\nthird"
    assert corpus.provenance["paths"] == [str(p.resolve()) for p in (b, a, c)]
    assert len(corpus.provenance["file_sha256"]) == 3


def test_directory_sorted_recursive_skipping_hidden_and_binary(tmp_path):
    d = tmp_path / "corpus"
    write(d, "b/2.txt", "two\n")
    write(d, "a.txt", "one\n")
    write(d, "b/1.md", "one-b\n")
    write(d, ".hidden.txt", "secret\n")
    write(d, ".git/config", "secret\n")
    write(d, "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(d, "blob", b"abc\x00def")
    c = load_corpus([d])
    assert c.text() == "one\none-b\ntwo\n"
    assert c.provenance["skipped"] == ["blob", "logo.png"]


def test_stdin(monkeypatch):
    class FakeStdin:
        buffer = io.BytesIO(b"from a pipe\r\nok\n")

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    c = load_corpus(["-"])
    assert c.text() == "from a pipe\nok\n"
    assert c.provenance["paths"] == ["-"]


def test_encoding_override(tmp_path):
    latin = write(tmp_path, "l.txt", "café au lait\n".encode("latin-1"))
    assert load_corpus([latin], CleaningOptions(encoding="latin-1")).text() == "café au lait\n"
    utf16 = write(tmp_path, "u16.txt", "héllo wörld\n".encode("utf-16"))
    assert load_corpus([utf16], CleaningOptions(encoding="utf-16")).text() == "héllo wörld\n"


def test_single_50mb_line(tmp_path):
    path = tmp_path / "line.txt"
    word = b"lorem ipsum dolor sit amet "
    path.write_bytes(word * (50_000_000 // len(word)))
    c = load_corpus([path])
    assert len(c) == path.stat().st_size
    assert c.text(0, len(word)) == word.decode()
    assert "\n" not in c.vocab.chars


def test_long_line_without_spaces_in_a_caseless_script(tmp_path):
    text = "日本語のテキストを読む" * 3000  # ~100 KB of UTF-8 with no ASCII at all
    path = write(tmp_path, "cjk.txt", text)
    c = load_corpus([path], chunk_bytes=4096)
    assert c.text() == text


# --- bad input ----------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_corpus([tmp_path / "nope.txt"])
    assert "does not exist" in one_line(e)


def test_directory_without_text_files(tmp_path):
    d = tmp_path / "imgs"
    write(d, "a.png", b"\x89PNG\r\n\x1a\n\x00")
    write(d, ".notes.txt", "hidden")
    with pytest.raises(CorpusError) as e:
        load_corpus([d])
    assert "no text files" in one_line(e)


def test_empty_file(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "e.txt", b"")])
    assert "empty" in one_line(e)


def test_only_control_characters(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "c.txt", b"\x01\x02\x1b")])
    assert "no text after cleaning" in one_line(e)


def test_one_character(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "one.txt", "x")])
    assert "only 1 character" in one_line(e)


def test_one_distinct_character(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "aaa.txt", "aaaaaaaa")])
    assert "one distinct character" in one_line(e)


def test_shorter_than_one_batch(tmp_path):
    c = load_corpus([write(tmp_path, "short.txt", "abcdefghij" * 10)])  # 100 chars
    with pytest.raises(CorpusError) as e:
        check_trainable(c, batch=64, seq_len=128, val_fraction=0.1)
    msg = one_line(e)
    assert "batch size 64" in msg and "90 characters" in msg and "lower the batch size to 45" in msg
    assert "--" not in msg  # core names settings; the CLI adds its flags
    assert check_trainable(c, batch=45, seq_len=128, val_fraction=0.1) == 1
    assert check_trainable(c, batch=4, seq_len=8, val_fraction=0.1) == 8
    with pytest.raises(CorpusError) as e:
        check_trainable(c, batch=1, seq_len=8, val_fraction=0.01)
    assert "validation fraction" in one_line(e)


def test_nul_bytes(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "bin.dat", b"hello\x00world")])
    msg = one_line(e)
    assert "bin.dat" in msg and "binary" in msg and "offset 5" in msg


def test_image(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "pic.png", png)])
    assert "PNG image" in one_line(e) and "pic.png" in str(e.value)
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "photo.jpg", b"\xff\xd8\xff\xe0" + bytes(range(1, 256)))])
    assert "JPEG image" in one_line(e)


def test_utf16_with_bom(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "w.txt", "hello\n".encode("utf-16"))])
    msg = one_line(e)
    assert "UTF-16" in msg and "set the corpus encoding to utf-16" in msg


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_without_bom(tmp_path, encoding):
    path = write(tmp_path, "w.txt", "plain words, and more words\n".encode(encoding) * 3)
    with pytest.raises(CorpusError) as e:
        load_corpus([path])
    assert f"set the corpus encoding to {encoding}" in one_line(e)
    assert load_corpus([path], CleaningOptions(encoding=encoding)).text() == "plain words, and more words\n" * 3


def test_latin1_read_as_utf8(tmp_path):
    data = "plain start, then caf\u00e9".encode("latin-1")
    with pytest.raises(CorpusError) as e:
        load_corpus([write(tmp_path, "l1.txt", data)])
    msg = one_line(e)
    assert f"offset {data.index(0xE9)}" in msg and "0xE9" in msg and "set the corpus encoding to latin-1" in msg


def test_bad_utf8_offset_found_across_chunks(tmp_path):
    data = ("é" * 50).encode() + b"\xff" + b"tail"
    path = write(tmp_path, "x.txt", data)
    for chunk in (3, 7, 64, 1 << 20):
        with pytest.raises(CorpusError, match="offset 100 "):
            load_corpus([path], chunk_bytes=chunk)


def test_bad_byte_offset_counts_a_dropped_bom(tmp_path):
    path = write(tmp_path, "b.txt", b"\xef\xbb\xbfabc\nd\xffe")
    for chunk in (1, 2, 4, 100):
        with pytest.raises(CorpusError, match="offset 8 "):
            load_corpus([path], chunk_bytes=chunk)
    path.write_bytes(b"\xef\xbb\xbfab")
    assert all(load_corpus([path], chunk_bytes=c).text() == "ab" for c in (1, 2, 3, 100))


def test_truncated_utf8_at_end(tmp_path):
    path = write(tmp_path, "t.txt", "abc é".encode()[:-1])
    with pytest.raises(CorpusError, match="truncated") as e:
        load_corpus([path])
    assert "offset 4 (byte 0xC3" in one_line(e)


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX permissions")
def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path, "secret.txt", "text")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail as it would for a user
        real_open = open

        def deny(file, *a, **k):
            if Path(file) == path.resolve():
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *a, **k)

        monkeypatch.setattr("builtins.open", deny)
    try:
        with pytest.raises(CorpusError) as e:
            load_corpus([path])
        assert "permission denied" in one_line(e)
    finally:
        path.chmod(0o600)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result: list[BaseException] = []
    t = threading.Thread(target=lambda: result.append(pytest.raises(CorpusError, load_corpus, [fifo]).value))
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading a FIFO blocked"
    assert "FIFO" in str(result[0]) and "\n" not in str(result[0])


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_device_is_refused():
    with pytest.raises(CorpusError) as e:
        load_corpus(["/dev/zero"])
    assert "character device" in one_line(e)


def test_unknown_encoding():
    with pytest.raises(ConfigError, match="unknown encoding"):
        CleaningOptions(encoding="no-such-codec")
    with pytest.raises(ConfigError, match="^minimum character count must be 0 or more"):
        CleaningOptions(min_char_count=-1)


def test_no_paths():
    with pytest.raises(CorpusError, match="no corpus"):
        load_corpus([])


# --- chunks, cache, progress, split -------------------------------------------------------------


TRICKY = (
    "Ligne un\r\nligne deux\r\rtrois\r\n"
    + "e\u0301 ΟΔΟΣ ΣΑΣ. 日本語 🙂👍🏽\t"
    + "x\u0301\u0323y\x07z " * 30
    + "ΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣ" * 5
    + "\r\n" * 5
    + "last line"
)


@pytest.mark.parametrize("opts", [CleaningOptions(), CleaningOptions(lowercase=True), CleaningOptions(nfc=False)])
def test_chunked_read_equals_whole_text(tmp_path, opts):
    path = write(tmp_path, "t.txt", TRICKY)
    expected = clean_text(TRICKY, opts)
    for chunk in (1, 2, 3, 5, 8, 13, 64, 1 << 20):
        assert load_corpus([path], opts, chunk_bytes=chunk).text() == expected, chunk


def test_cache_written_and_hit_with_identical_data(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    path = write(tmp_path, "t.txt", TRICKY * 20)
    cache = tmp_path / "cache"
    stages: list[str] = []
    first = load_corpus([path], cache_dir=cache, chunk_bytes=100, progress=lambda s, d, t: stages.append(s))
    assert isinstance(first.data, np.memmap) and not first.data.flags.writeable
    assert "encoding" in stages and "cache" not in stages
    files = sorted(p.name for p in (cache / "corpora").iterdir())
    assert any(f.endswith(".npy") for f in files) and any(f.endswith(".json") for f in files)
    assert not [f for f in files if f.endswith(".tmp")]

    stages.clear()
    second = load_corpus([path], cache_dir=cache, progress=lambda s, d, t: stages.append(s))
    assert stages == ["cache"]
    assert np.array_equal(first.data, second.data) and second.vocab == first.vocab
    assert second.provenance == first.provenance

    # other cleaning options make another entry, not a wrong hit
    lower = load_corpus([path], CleaningOptions(lowercase=True), cache_dir=cache)
    assert lower.text() == clean_text(TRICKY * 20, CleaningOptions(lowercase=True))


@pytest.mark.parametrize("spool", [True, False])
def test_large_corpus_paths_equal_whole_text(tmp_path, monkeypatch, spool):
    """Pass 2 reads the spooled pieces, or (no spool) reads and cleans the files again."""
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    if not spool:
        monkeypatch.setattr(corpus_cache.Spool, "create", classmethod(lambda cls, d: None))
    a = write(tmp_path, "a.txt", TRICKY)
    b = write(tmp_path, "b.txt", "plain ascii tail " * 20)
    for opts in (CleaningOptions(), CleaningOptions(lowercase=True, min_char_count=3)):
        c = load_corpus([a, b], opts, chunk_bytes=7, cache_dir=tmp_path / f"cache{spool}")
        whole = load_corpus([a, b], opts, chunk_bytes=1 << 20, cache_dir=tmp_path / "other")
        assert c.text() == whole.text() and c.vocab == whole.vocab
        if not opts.min_char_count:
            assert c.text() == clean_text(TRICKY, opts) + "\n" + "plain ascii tail " * 20
    assert not list((tmp_path / f"cache{spool}" / "corpora").glob("*.tmp"))


@pytest.mark.parametrize("spool", [True, False])
def test_byte_pieces_with_more_wide_characters_than_slots(tmp_path, monkeypatch, spool):
    """Whole UTF-8 lines are cleaned as bytes, with a few wider characters given spare byte values;
    once those run out, lines fall back to the str path, and every mix gives the same text."""
    from lstmtui.core.corpus.cleaning import EXTRA_SLOTS

    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    if not spool:
        monkeypatch.setattr(corpus_cache.Spool, "create", classmethod(lambda cls, d: None))
    wide = [chr(0x400 + i) for i in range(EXTRA_SLOTS + 8)]  # Cyrillic: more than the spare byte values
    lines = [
        f"line {i} caf\u00e9 \u2014 {w}{w.lower()} na\u00efve\u0085 Kelvin \u212a\x07\r\n" for i, w in enumerate(wide)
    ]
    text = "".join(lines) + "no newline at the end \U0001f642"
    path = write(tmp_path, "t.txt", text)
    for opts in (CleaningOptions(), CleaningOptions(lowercase=True), CleaningOptions(min_char_count=2)):
        for chunk in (len(lines[0].encode()), 64, 1 << 20):
            c = load_corpus([path], opts, chunk_bytes=chunk, cache_dir=tmp_path / f"cache{spool}")
            whole = load_corpus([path], opts, cache_dir=tmp_path / f"whole{spool}", chunk_bytes=1 << 30)
            assert c.text() == whole.text() and c.vocab == whole.vocab
            if not opts.min_char_count:
                assert c.text() == clean_text(text, opts)


def test_stale_temporary_files_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    corpora = tmp_path / "cache" / "corpora"
    corpora.mkdir(parents=True)
    old, fresh = corpora / ".abc.npy.123.tmp", corpora / ".spool.456.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (1, 1))
    load_corpus([write(tmp_path, "t.txt", "words and more words\n" * 50)], chunk_bytes=64, cache_dir=tmp_path / "cache")
    assert not old.exists() and fresh.exists()


def test_cache_default_dir_from_env_and_changed_file(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    path = write(tmp_path, "t.txt", "version one\n" * 10)
    assert load_corpus([path]).text() == "version one\n" * 10
    assert list((Path(os.environ["LSTMTUI_CACHE"]) / "corpora").glob("*.npy"))
    path.write_text("version two!\n" * 10)
    assert load_corpus([path]).text() == "version two!\n" * 10


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    path = write(tmp_path, "t.txt", "some text here\n" * 10)
    cache = tmp_path / "cache"
    load_corpus([path], cache_dir=cache)
    for npy in (cache / "corpora").glob("*.npy"):
        npy.write_bytes(b"garbage")
    assert load_corpus([path], cache_dir=cache).text() == "some text here\n" * 10


def test_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    path = write(tmp_path, "t.txt", "some text here\n" * 10)
    blocker = write(tmp_path, "not-a-dir", "x")  # the cache dir cannot be created under a file
    c = load_corpus([path], cache_dir=blocker)
    assert c.text() == "some text here\n" * 10 and not isinstance(c.data, np.memmap)


def test_progress_is_throttled_and_completes(tmp_path):
    path = write(tmp_path, "t.txt", "abcdefgh\n" * 2000)
    calls: list[tuple[str, int, int]] = []
    load_corpus([path], chunk_bytes=16, progress=lambda *a: calls.append(a))
    assert len(calls) < 10  # 1125 chunks, a handful of reports
    assert calls[-1][1] == calls[-1][2] == path.stat().st_size


def test_split_is_contiguous_tail(tmp_path):
    c = load_corpus([write(tmp_path, "s.txt", "0123456789" * 10)])
    train, val = c.split(0.1)
    assert len(train) == 90 and len(val) == 10
    assert np.array_equal(np.concatenate([train, val]), c.data)
    assert c.vocab.decode(val) == "0123456789"
    assert len(c.split(0.0)[1]) == 0
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ConfigError, match="^validation fraction must be at least 0 and below 1"):
            c.split(bad)


def test_provenance(tmp_path):
    path = write(tmp_path, "p.txt", "héllo\r\n")
    c = load_corpus([path], CleaningOptions(lowercase=True))
    p = c.provenance
    assert p["paths"] == [str(path.resolve())]
    assert p["size_bytes"] == 8 and p["n_chars"] == 6 and p["vocab_size"] == 5
    import hashlib

    assert p["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert p["cleaning"]["lowercase"] is True and "lowercase" in p["cleaning"]["steps"]
    assert CleaningOptions.from_dict(p["cleaning"]) == CleaningOptions(lowercase=True)


def test_corpus_constructed_directly():
    v = Vocab(list("ab"))
    c = Corpus(v.encode("abba"), v, {})
    assert len(c) == 4 and c.text(1, 3) == "bb"


def test_default_corpus_is_bundled_prose():
    path = default_corpus_path()
    assert path.is_file()
    c = load_corpus([path])
    assert len(c) > 200_000 and c.data.dtype == np.uint8
    check_trainable(c, batch=64, seq_len=128, val_fraction=0.1)


def test_sample_corpora_are_reproduced_by_their_generator():
    import ast
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_sample_corpora.py"
    spec = importlib.util.spec_from_file_location("make_sample_corpora", script)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    files = gen.generate()
    for path, text in files.items():
        assert path.read_bytes() == text.encode("utf-8"), f"{path} differs from its generator's output"
    assert default_corpus_path().read_bytes() == files[gen.OUT_DIR / "prose.txt"].encode()
    ast.parse(files[gen.OUT_DIR / "code.txt"])
    for line in files[gen.OUT_DIR / "arithmetic.txt"].splitlines():
        left, result = line.split("=")
        assert eval(left) == int(result)  # noqa: S307 - digits and one operator, made above
    assert all(gen._balanced(line) for line in files[gen.OUT_DIR / "brackets.txt"].splitlines())


def test_killed_while_caching_leaves_a_usable_cache(tmp_path, monkeypatch):
    """kill -9 at several moments of a cached load: the next load still gives the right corpus."""
    import signal
    import subprocess
    import time

    path = tmp_path / "big.txt"
    path.write_bytes(("Zoë's line of text, repeated — again\n" * 60_000).encode())  # ~2.4 MB
    cache = tmp_path / "cache"
    code = (
        "import sys; from pathlib import Path; from lstmtui.core.corpus import load as c;"
        "c.CACHE_MIN_BYTES = 0; c.load_corpus([sys.argv[1]], cache_dir=Path(sys.argv[2]), chunk_bytes=1 << 16)"
    )
    for delay in (0.3, 0.6, 0.9):
        proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(cache)])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    got = load_corpus([path], cache_dir=cache)
    again = load_corpus([path], cache_dir=cache)
    expected = "Zoë's line of text, repeated — again\n" * 60_000
    assert got.text() == expected and again.text() == expected
