"""Read, clean, encode and cache training corpora; the vocabulary; the train/validation split.

Input is one file, several files, a directory, or ``-`` for standard input. Files are joined in
the order given (a newline is added after a file that does not end with one); a directory's text
files are taken in sorted order, skipping hidden and binary ones (listed in the provenance under
``skipped``); a file named explicitly is never skipped: if it is binary, that is an error naming
it. Cleaning (CRLF/CR to LF, control characters dropped, optional lowercasing, NFC, rare
characters to ``UNKNOWN_CHAR``) is recorded in the provenance.

The package, by job:

- ``sources``: finding files, walking directories, standard input, sniffing binary and UTF-16/32;
- ``detect``: ``encoding auto``, charset-normalizer on a sample of each file;
- ``decode``: streaming decode, chunk by chunk, into cleaned pieces;
- ``cleaning``: the cleaning steps (``CleaningOptions``, ``clean_text``) and their fast paths;
- ``vocab``: ``Vocab``, characters <-> ids;
- ``vocab_plan``: counting characters, rare characters, extending a vocabulary, the encoding table;
- ``cache``: the memory-mapped cache of encoded corpora and the spool between passes;
- ``cache_entries``: the cache's entries listed, bounded (least recently used evicted), cleared;
- ``split``: ``Corpus`` and its train/validation split;
- ``load``: ``load_corpus``, the two passes that tie the rest together.
"""

from lstmtui.core.corpus.cache import default_cache_dir
from lstmtui.core.corpus.cleaning import AUTO_ENCODING, CleaningOptions, clean_text
from lstmtui.core.corpus.load import CACHE_MIN_BYTES, load_corpus
from lstmtui.core.corpus.sources import CHUNK_BYTES, default_corpus_path
from lstmtui.core.corpus.split import MIN_CHARS, Corpus, check_trainable, val_size
from lstmtui.core.corpus.vocab import Vocab
from lstmtui.core.corpus.vocab_plan import UNKNOWN_CHAR

__all__ = [
    "AUTO_ENCODING",
    "CACHE_MIN_BYTES",
    "CHUNK_BYTES",
    "MIN_CHARS",
    "UNKNOWN_CHAR",
    "CleaningOptions",
    "Corpus",
    "Vocab",
    "check_trainable",
    "clean_text",
    "default_cache_dir",
    "default_corpus_path",
    "load_corpus",
    "val_size",
]
