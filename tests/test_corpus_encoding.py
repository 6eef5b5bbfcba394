"""`--encoding auto`: charset-normalizer on a sample of each file picks the encoding, and says which."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from lstmtui.core.corpus import CleaningOptions, load_corpus
from lstmtui.core.corpus import load as corpus_load
from lstmtui.core.errors import CorpusError

AUTO = CleaningOptions(encoding="auto")
FRENCH = (
    "Le cœur a ses raisons que la raison ne connaît point. "
    "L'été dernier, nous étions à Genève ; la forêt était très belle et l'air sentait la résine.\n"
    "Où êtes-vous allés après le dîner ? Nous sommes rentrés à pied, le long du lac, jusqu'à l'hôtel.\n"
    "Ça m'a fait plaisir de revoir François, qui étudie désormais la géologie à Besançon.\n"
    "Les élèves ont réfléchi longtemps avant de répondre à la dernière question de l'examen.\n"
    "À la fin de la soirée, on a bu un café crème et mangé des crêpes au beurre salé.\n"
    "Il faut être prêt à tout : la météo annonce de la neige sur les sommets dès jeudi.\n"
) * 6
GERMAN = (
    "Die Straße führt über die Brücke, vorbei an größeren Häusern mit schönen Gärten.\n"
    "Übermorgen fahren wir nach München; dort wohnt meine Großmutter seit über dreißig Jahren.\n"
    "Können Sie mir bitte sagen, wo der nächste Bäcker ist? Ich möchte frische Brötchen kaufen.\n"
) * 6
SMART = "“Smart quotes” — and an ellipsis… ‘single’ for €5.\n"  # cp1252's own characters, not in Latin-1
LATIN1 = FRENCH.replace("œ", "oe")  # Latin-1 has no œ


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def load_auto(paths: list[Path], **kw):
    notes: list[str] = []
    corpus = load_corpus(paths, AUTO, notice=notes.append, **kw)
    return corpus, notes


@pytest.mark.parametrize(
    ("text", "encoding", "chosen"),
    [
        (LATIN1, "latin-1", {"cp1252", "iso8859-1"}),  # the same text either way
        (GERMAN, "latin-1", {"cp1252", "iso8859-1"}),
        (FRENCH + SMART, "cp1252", {"cp1252"}),
        (GERMAN + SMART, "cp1252", {"cp1252"}),
        (FRENCH, "utf-16", {"utf-16"}),  # with a byte-order mark
        (FRENCH, "utf-16-le", {"utf-16-le"}),  # without one
        (FRENCH, "utf-16-be", {"utf-16-be"}),
        (FRENCH, "utf-8", {"utf-8"}),
        (FRENCH, "utf-8-sig", {"utf-8"}),  # the mark is dropped, as with --encoding utf-8
    ],
)
def test_auto_reads_each_encoding_correctly_and_says_what_it_chose(tmp_path, text, encoding, chosen):
    path = write(tmp_path, "corpus.txt", text.encode(encoding))
    corpus, notes = load_auto([path])
    assert corpus.text() == text
    cleaning = corpus.provenance["cleaning"]
    assert cleaning["encoding"] in chosen
    sample = "the first 1.0 MB of each file"
    assert cleaning["steps"][0] == f"decode {cleaning['encoding']} (chosen by encoding auto from {sample})"
    assert notes == [f"note: encoding auto chose {cleaning['encoding']} for {path} (charset-normalizer on {sample})"]
    # the recorded codec decodes the corpus alike, without detection (a profile reloads its corpus so)
    again = load_corpus([path], CleaningOptions.from_dict(cleaning))
    assert again.text() == text and again.provenance["sha256"] == corpus.provenance["sha256"]


def test_default_stays_strict_utf8(tmp_path):
    path = write(tmp_path, "latin.txt", LATIN1.encode("latin-1"))
    with pytest.raises(CorpusError, match="is not valid utf-8 at byte offset"):
        load_corpus([path])


def test_plain_ascii_is_read_as_utf8(tmp_path):
    path = write(tmp_path, "plain.txt", b"nothing but plain words here\n" * 40)
    corpus, notes = load_auto([path])
    assert corpus.provenance["cleaning"]["encoding"] == "utf-8"
    assert len(notes) == 1 and notes[0].endswith("; the sample is plain ASCII)")


def test_ascii_files_join_a_cp1252_file(tmp_path):
    a = write(tmp_path, "a.txt", b"an ascii introduction to the corpus\n" * 20)
    b = write(tmp_path, "b.txt", (GERMAN + SMART).encode("cp1252"))
    corpus, notes = load_auto([a, b])
    assert corpus.text() == "an ascii introduction to the corpus\n" * 20 + GERMAN + SMART
    assert corpus.provenance["cleaning"]["encoding"] == "cp1252"
    assert "for the 2 corpus files" in notes[0]


def test_a_directory_keeps_its_utf16_files(tmp_path):
    write(tmp_path / "docs", "a.txt", FRENCH.encode("utf-16-le"))
    write(tmp_path / "docs", "b.txt", GERMAN.encode("utf-16-le"))
    write(tmp_path / "docs", "blob.txt", bytes(range(256)) * 4)  # NUL bytes that are no UTF-16 text
    corpus, _ = load_auto([tmp_path / "docs"])
    assert corpus.text() == FRENCH + GERMAN
    assert corpus.provenance["skipped"] == ["blob.txt"]


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"a.txt": FRENCH.encode("utf-8"), "b.txt": (GERMAN + SMART).encode("cp1252")}, "do not share one encoding"),
        ({"a.txt": FRENCH.encode("utf-16-le"), "b.txt": b"plain ascii text\n" * 20}, "do not share one encoding"),
    ],
)
def test_files_in_different_encodings_are_refused_in_one_line(tmp_path, files, problem):
    paths = [write(tmp_path, name, data) for name, data in files.items()]
    with pytest.raises(CorpusError, match=problem) as exc:
        load_auto(paths)
    assert "\n" not in str(exc.value)


def test_binary_input_is_refused_in_one_line(tmp_path):
    rng = random.Random(3)
    noise = write(tmp_path, "noise.txt", bytes(rng.randrange(256) for _ in range(20_000)))
    with pytest.raises(CorpusError, match="the encoding of .*noise.txt cannot be told") as exc:
        load_auto([noise])
    assert "\n" not in str(exc.value)
    png = write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(CorpusError, match="is a PNG image, not text"):
        load_auto([png])


def test_only_the_sample_is_examined_and_later_bytes_are_still_checked(tmp_path, monkeypatch):
    """Past the sample, a byte the chosen codec cannot decode is the usual error with its offset."""
    from lstmtui.core.corpus import detect

    monkeypatch.setattr(detect, "DETECT_BYTES", 1000)
    head = b"plain ascii words, line after line\n" * 50
    path = write(tmp_path, "late.txt", head + "déjà".encode("latin-1"))
    with pytest.raises(CorpusError, match=f"is not valid utf-8 at byte offset {len(head) + 1}"):
        load_auto([path])


def test_auto_corpus_is_cached_and_hit_with_the_same_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)
    path = write(tmp_path, "corpus.txt", (FRENCH + SMART).encode("cp1252"))
    first, _ = load_auto([path], cache_dir=tmp_path / "cache")
    second, notes = load_auto([path], cache_dir=tmp_path / "cache")
    assert isinstance(second.data, np.memmap) and second.text() == FRENCH + SMART
    assert second.provenance == first.provenance and len(notes) == 1


def test_train_cli_prints_the_choice_and_the_profile_records_it(tmp_path):
    import subprocess
    import sys

    from lstmtui.core.profiles import ProfileStore

    path = write(tmp_path, "fr.txt", (LATIN1 * 8).encode("latin-1"))
    tiny = ["--hidden", "16", "--layers", "1", "--seq-len", "16", "--batch", "4", "--epochs", "1", "--max-steps", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "lstmtui", "train", str(path), "--encoding", "auto", "--plain", "--threads", "1", *tiny],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
    assert notes == [
        f"note: encoding auto chose cp1252 for {path} (charset-normalizer on the first 1.0 MB of each file)"
    ]
    meta = ProfileStore().load_meta("fr")
    assert meta.corpus.cleaning.encoding == "cp1252"
