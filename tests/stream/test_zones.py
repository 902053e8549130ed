"""Memory zones per buffer (stream/zones.py): spaCy frees a zone's lexemes and strings but its
hash tables keep growing; ``buffer_zone`` keeps them bounded and the vocab's answers unchanged.
``BufferZones`` runs a warm-up outside any zone first, whose words stay, and gives a zone's new
lexemes only the attributes the worker reads where its pipeline allows."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest
import spacy
from conftest import shared_descriptions
from spacy.attrs import IS_PUNCT, IS_SPACE, NORM, SENT_START

from stream_trf.stream.zones import (
    MIN_CAPACITY,
    BufferZones,
    buffer_zone,
    compact_vocab_tables,
    lean_lexeme_getters,
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


def test_compaction_keeps_the_permanent_lexemes_themselves() -> None:
    """The rebuilt lexeme table holds the very structs it held (the tokenizer's cache points
    at them): the vocab still has them, and what was written onto one by hand stays."""
    nlp = spacy.blank("en")
    nlp("warm words stay put")  # outside any zone: permanent
    nlp.vocab["stay"].is_stop = True  # written by hand; a rebuilt lexeme would not have it
    table = lexeme_table(nlp.vocab)
    assert table is not None
    orths = {w: nlp.vocab.strings[w] for w in ("warm", "words", "stay", "put")}
    addresses = {w: table[o] for w, o in orths.items()}
    _fill_tables(nlp)
    done = compact_vocab_tables(nlp.vocab)
    assert done.lexemes_rebuilt
    fresh = lexeme_table(nlp.vocab)
    assert fresh is not None and fresh is not table
    assert {w: fresh[o] for w, o in orths.items()} == addresses
    assert all(w in nlp.vocab for w in orths)
    assert nlp.vocab["stay"].is_stop
    # and a zone still drops its own words from the rebuilt table
    with nlp.memory_zone():
        nlp("zqtransientword")
    assert "zqtransientword" not in nlp.vocab


def test_warmup_buffers_keep_their_words_later_buffers_do_not() -> None:
    nlp = spacy.blank("en")
    zones = BufferZones(nlp, warmup_chars=30)
    seen = []
    for i, text in enumerate(["alphaword betaword", "gammaword deltaword", "epsilonword"]):
        with zones.buffer(len(text)) as zoned:
            nlp(text)
            seen.append(zoned)
        assert zones.warming_up == (i == 0)
    # 18 characters left 12 of the budget: the second buffer warmed up too, the third did not
    assert seen == [False, False, True]
    assert zones.warmup_buffers == 2
    for word in ("alphaword", "betaword", "gammaword", "deltaword"):
        assert word in nlp.vocab.strings and word in nlp.vocab
    assert "epsilonword" not in nlp.vocab.strings and "epsilonword" not in nlp.vocab


def test_no_warmup_zones_every_buffer_and_a_negative_budget_is_an_error() -> None:
    nlp = spacy.blank("en")
    zones = BufferZones(nlp)
    with zones.buffer(100) as zoned:
        nlp("omegaword")
    assert zoned and "omegaword" not in nlp.vocab.strings
    with pytest.raises(ValueError, match="warmup_chars"):
        BufferZones(nlp, warmup_chars=-1)


def test_a_warm_tokenizer_in_a_zone_gives_the_same_tokens() -> None:
    """The warm-up changes what is cached, not what comes out: special cases, prefixes,
    suffixes, infixes and URLs alike, in zones after it and with no warm-up at all."""
    texts = [
        "Don't split U.S.A. or e.g. here: (see https://example.org/a?b=1), it's 3.5x faster!",
        "A \"quoted\" word-with-hyphens, 10km/h; :-) and 'single' ones... don't.",
        "libfoo-dev (>= 1.2.3-4) provides foo's headers; see /usr/share/doc/foo.",
    ]
    cold = spacy.blank("en")
    expected = []
    for text in texts:
        with cold.memory_zone():
            doc = cold(text)
            expected.append([(t.text, t.idx, t.whitespace_, t.norm_, t.like_url) for t in doc])
    warm = spacy.blank("en")
    zones = BufferZones(warm, warmup_chars=1)
    with zones.buffer(sum(len(t) for t in texts)):
        for text in texts:
            warm(text)
    for _ in range(2):  # the first pass fills nothing (a zone), the second finds the cache
        for text, want in zip(texts, expected):
            with zones.buffer(len(text)) as zoned:
                assert zoned
                doc = warm(text)
                got = [(t.text, t.idx, t.whitespace_, t.norm_, t.like_url) for t in doc]
            assert got == want


def _sentencizer() -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def test_lean_getters_only_where_every_component_is_known_to_read_none_other() -> None:
    nlp = _sentencizer()
    getters = lean_lexeme_getters(nlp)
    assert getters is not None and set(getters) == {IS_PUNCT, IS_SPACE}
    assert getters[IS_PUNCT] is nlp.vocab.lex_attr_getters[IS_PUNCT]
    nlp.add_pipe("attribute_ruler")  # matches on any attribute
    assert lean_lexeme_getters(nlp) is None
    nlp.disable_pipe("attribute_ruler")  # a disabled one may be enabled again
    assert lean_lexeme_getters(nlp) is None
    assert BufferZones(_sentencizer(), lean_lexemes=False).lexeme_getters is None


def test_a_lean_zone_makes_lean_lexemes_only_of_new_words_and_restores_the_getters() -> None:
    nlp = _sentencizer()
    getters = nlp.vocab.lex_attr_getters
    zones = BufferZones(nlp, warmup_chars=1, lean_lexemes=True)
    with zones.buffer(20):
        nlp("Known words, KNOWN.")
    with zones.buffer(40) as zoned:
        assert zoned
        doc = nlp("Known Zqnewword 12345 \u2042 here.\n\nNext one.")
        known, new, number, asterism, here = doc[:5]
        assert (known.lower_, known.is_title) == ("known", True)  # warm-up: every attribute
        assert (new.lower_, new.is_title, number.like_num) == ("", False, False)  # lean
        assert asterism.is_punct and doc[5].is_punct and doc[6].is_space and not here.is_punct
        assert [s.text for s in doc.sents] == [
            "Known Zqnewword 12345 \u2042 here.",
            "\n\nNext one.",
        ]
    assert nlp.vocab.lex_attr_getters is getters
    outside = nlp("Zqotherword")[0]
    assert (outside.lower_, outside.is_title) == ("zqotherword", True)


def test_lean_zones_give_the_worker_the_same_sentences_flags_and_tokens_on_real_text() -> None:
    """What the worker reads of a doc — token texts and offsets, sentence starts, the
    punctuation and space flags — is the same with lean lexemes as with full ones, on real
    package descriptions after a small warm-up (most of their words new to each zone)."""
    texts = [r["text"] for r in shared_descriptions(3000)]
    warmup, texts = texts[:200], texts[200:]

    def read(lean: bool) -> list[tuple[list[str], np.ndarray]]:
        nlp = _sentencizer()
        zones = BufferZones(nlp, sum(map(len, warmup)), lean_lexemes=lean)
        out = []
        for batch in (warmup, *(texts[i : i + 256] for i in range(0, len(texts), 256))):
            with zones.buffer(sum(map(len, batch))) as zoned:
                for doc in nlp.pipe(batch):
                    if zoned:
                        columns = doc.to_array([SENT_START, IS_PUNCT, IS_SPACE, NORM])
                        out.append(([t.text for t in doc], columns))
        return out

    lean, full = read(True), read(False)
    assert len(lean) == len(full) == len(texts)
    assert all(a[0] == b[0] for a, b in zip(lean, full))
    assert all((a[1][:, :3] == b[1][:, :3]).all() for a, b in zip(lean, full))
    # and lexemes were lean: norms are missing where a word was new to the zone
    assert sum(int((a[1][:, 3] != b[1][:, 3]).sum()) for a, b in zip(lean, full)) > 1000
