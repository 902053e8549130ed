"""Memory zones per buffer (stream/zones.py): spaCy frees a zone's lexemes and strings but its
hash tables keep growing; ``buffer_zone`` keeps them bounded and the vocab's answers unchanged."""

from __future__ import annotations

import random
import string

import spacy
from spacy.attrs import NORM

from stream_trf.stream.zones import (
    MIN_CAPACITY,
    buffer_zone,
    compact_vocab_tables,
    lexeme_table,
    table_sizes,
)

WORDS_PER_ZONE = 8_000
ZONES = 20


def _novel_texts(rng: random.Random) -> list[str]:
    """``WORDS_PER_ZONE`` words no zone has seen (a stream's package names, URLs, numbers)."""
    words = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(WORDS_PER_ZONE)]
    return [" ".join(words[i : i + 100]) for i in range(0, len(words), 100)]


def test_spacy_zones_alone_leave_both_tables_growing() -> None:
    """The leak the module works around: if spaCy ever reuses the room, this fails and the
    workaround can go."""
    nlp = spacy.blank("en")
    rng = random.Random(0)
    assert lexeme_table(nlp.vocab) is not None
    for _ in range(ZONES):
        with nlp.memory_zone():
            for _doc in nlp.pipe(_novel_texts(rng)):
                pass
    sizes = table_sizes(nlp.vocab)
    # 160,000 transient entries, none live: both tables doubled past 2**16 cells anyway
    assert sizes.strings > MIN_CAPACITY
    assert sizes.lexemes > MIN_CAPACITY


def test_buffer_zone_keeps_both_tables_bounded() -> None:
    nlp = spacy.blank("en")
    rng = random.Random(0)
    seen = []
    for _ in range(ZONES):
        with buffer_zone(nlp):
            for _doc in nlp.pipe(_novel_texts(rng)):
                pass
        sizes = table_sizes(nlp.vocab)
        seen.append(sizes)
        assert sizes.strings <= MIN_CAPACITY
        assert sizes.lexemes <= MIN_CAPACITY
    # and the bound was reached, so compaction really ran (not a workload too small to grow)
    assert max(s.strings for s in seen) == MIN_CAPACITY
    assert max(s.lexemes for s in seen) == MIN_CAPACITY


def _fill_tables(nlp: spacy.language.Language) -> None:
    rng = random.Random(1)
    for _ in range(ZONES):
        with nlp.memory_zone():
            for _doc in nlp.pipe(_novel_texts(rng)):
                pass


def test_compaction_keeps_what_the_vocab_knows() -> None:
    nlp = spacy.blank("en")
    nlp.vocab.lookups.add_table("lexeme_norm", {"colour": "color"})
    label = nlp.vocab.strings.add("debian/section:utils")  # a permanent string (a label)
    text = "The colour can't be 12 times U.S.A. https://example.org/x"
    before = [(t.text, t.is_stop, t.like_num, t.like_url, t.norm_, t.shape_) for t in nlp(text)]
    norm_getter = nlp.vocab.lex_attr_getters[NORM]
    n_strings = len(nlp.vocab.strings)
    _fill_tables(nlp)
    grown = table_sizes(nlp.vocab)
    assert grown.strings > MIN_CAPACITY and grown.lexemes > MIN_CAPACITY

    done = compact_vocab_tables(nlp.vocab)
    assert done.strings_rebuilt and done.lexemes_rebuilt
    assert done.strings < grown.strings and done.lexemes < grown.lexemes
    # nothing the vocab knew is lost: permanent strings both ways, the same attribute getters
    # (NORM not wrapped in the lookup table once more), the same tokens and attributes
    assert len(nlp.vocab.strings) == n_strings
    assert nlp.vocab.strings[label] == "debian/section:utils"
    assert nlp.vocab.strings["debian/section:utils"] == label
    assert nlp.vocab.lex_attr_getters[NORM] is norm_getter
    with nlp.memory_zone():
        after = [(t.text, t.is_stop, t.like_num, t.like_url, t.norm_, t.shape_) for t in nlp(text)]
    assert after == before
    # a second call finds nothing to do
    again = compact_vocab_tables(nlp.vocab)
    assert not again.strings_rebuilt and not again.lexemes_rebuilt


def test_small_tables_are_left_alone() -> None:
    nlp = spacy.blank("en")
    with buffer_zone(nlp):
        nlp("a few words")
    done = compact_vocab_tables(nlp.vocab)
    assert not done.strings_rebuilt and not done.lexemes_rebuilt
