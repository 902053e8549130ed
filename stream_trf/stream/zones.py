"""One spaCy memory zone per buffer (after a warm-up), and vocab hash tables that stop growing.

A stream never runs out of new words, so every buffer runs inside ``nlp.memory_zone()``
(spaCy ≥ 3.8): the lexemes and strings its docs added are freed when the buffer is done. The
zone frees the entries, not the room they took in the vocab's two hash tables (preshed maps:
the vocab's lexemes by orth, the string store's strings by hash). A cleared key leaves a
tombstone. A key seen before lands on its own tombstone again, but a new key reuses one only
when its probe happens to cross it, and a table whose live keys plus tombstones reach 60 %
doubles, however few keys are live. Each table therefore grows by about 16 bytes per word no
zone has seen before, for ever, and a stream keeps bringing such words (package names, versions,
URLs): small over minutes, unbounded over days (docs/decisions/zones.md).

``buffer_zone`` opens the zone and, once it has closed, rebuilds a table whose capacity has
outgrown its live keys (``compact_vocab_tables``): each from its live entries (the same
pointers in a right-sized table; after a zone has closed the live lexemes are the permanent
ones, which the tokenizer's cache points at). Not thread-safe: the worker compacts between
buffers, in the model thread, when no doc of the closed zone is alive.

A zone has a price: spaCy's tokenizer caches nothing inside one (``Tokenizer._save_cached``
returns early), so every whitespace-separated chunk goes through the prefix, suffix and infix
rules again and every word becomes a lexeme again, however often the stream repeats it.
``BufferZones`` therefore lets a worker's first buffers run outside any zone, until a budget of
text is spent: the stream's common words and chunks stay cached for good (a bounded set), and
every later buffer, each in its zone, finds them there.

A word new to the vocabulary becomes a lexeme through every lexical attribute getter of the
language (lower case, norm, shape, prefix, suffix, two dozen flags): a fifth of what spaCy's
tokenizer costs a buffer in its zone. When every component of the pipeline is one known to read
no lexical attribute but the punctuation and space flags (``LEAN_FACTORIES``: the worker's own
pipeline), and so is what reads the docs (the worker's records), a zone's new lexemes get only
those two (:func:`lean_lexeme_getters`). They die with the zone; the warm-up's lexemes, which
outlive it, have every attribute.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from preshed.maps import PreshMap  # spaCy's own hash table
from spacy.attrs import IS_PUNCT, IS_SPACE

# A table is rebuilt once its capacity is past both: 2**16 cells (1 MiB) and GROWTH × its live
# keys. Rebuilding is a pass over the table in Python (milliseconds at these sizes): rare.
MIN_CAPACITY = 2**16
GROWTH = 8
_VOCAB_PARTS = ("strings", "vectors", "lookups")

# Components known to read no lexical attribute of a token but IS_PUNCT and IS_SPACE (the
# sentencizer's punctuation test; the wordpiecer's token columns, the record's word count).
LEAN_FACTORIES = frozenset({"sentencizer", "trf_wordpiecer", "trf_tok2vec", "trf_textcat"})
LEAN_ATTRS = (IS_PUNCT, IS_SPACE)


def lean_lexeme_getters(nlp: Any) -> dict[int, Any] | None:
    """The lexical attribute getters a zone's new words need, when every component of ``nlp``
    (disabled ones too) is in ``LEAN_FACTORIES``; None, keeping them all, otherwise."""
    factories = {nlp.get_pipe_meta(name).factory for name in nlp.component_names}
    if not factories <= LEAN_FACTORIES:
        return None
    getters = nlp.vocab.lex_attr_getters or {}
    return {attr: getters[attr] for attr in LEAN_ATTRS if attr in getters}


@dataclass(frozen=True)
class TableSizes:
    """Capacities (cells) of the vocab's two hash tables, and whether this call rebuilt them."""

    strings: int
    lexemes: int
    strings_rebuilt: bool = False
    lexemes_rebuilt: bool = False


def lexeme_table(vocab: Any) -> Any | None:
    """The vocab's lexeme table (a private attribute of a Cython class: found through the
    garbage collector's view of the vocab, which lists its object fields). None if the vocab
    does not hold exactly one."""
    tables = [o for o in gc.get_referents(vocab) if type(o) is PreshMap]
    return tables[0] if len(tables) == 1 else None


def table_sizes(vocab: Any) -> TableSizes:
    table = lexeme_table(vocab)
    strings = getattr(vocab.strings, "_map", None)
    return TableSizes(
        strings=int(strings.capacity) if strings is not None else 0,
        lexemes=int(table.capacity) if table is not None else 0,
    )


def _too_big(capacity: int, live: int) -> bool:
    return capacity > max(MIN_CAPACITY, GROWTH * live)


def compact_vocab_tables(vocab: Any) -> TableSizes:
    """Rebuild whichever of the vocab's hash tables has outgrown its live keys. Call it outside
    any memory zone, with no doc of a closed zone alive."""
    strings = vocab.strings
    strings_rebuilt = lexemes_rebuilt = False
    table: Any = getattr(strings, "_map", None)
    if isinstance(table, PreshMap) and _too_big(table.capacity, len(strings)):
        fresh = PreshMap(initial_size=2 * max(len(strings), 8))
        for key, value in table.items():
            fresh[key] = value
        strings._map = fresh
        strings_rebuilt = True
    lexemes = lexeme_table(vocab)
    if lexemes is not None and lexemes.capacity > MIN_CAPACITY:
        live = sum(1 for _ in lexemes)  # PreshMap iterates its live keys
        if _too_big(lexemes.capacity, live):
            kept = list(lexemes.items())  # (orth, LexemeC address)
            # Vocab.from_bytes with every part excluded only starts a new, empty lexeme table
            # (the lexemes themselves stay allocated in the vocab's pool). It would also wrap
            # the NORM getter once more where the vocab has a norm lookup table: keep the
            # getters as they were. Then the live lexemes go back in, the same structs: the
            # tokenizer's cache and special cases point at them, and a new copy of each would
            # cost memory and a pass through the attribute getters.
            getters = dict(vocab.lex_attr_getters)
            vocab.from_bytes(vocab.to_bytes(exclude=_VOCAB_PARTS), exclude=_VOCAB_PARTS)
            vocab.lex_attr_getters = getters
            fresh = lexeme_table(vocab)
            if fresh is not None:
                for orth, address in kept:
                    fresh[orth] = address
            lexemes_rebuilt = True
    sizes = table_sizes(vocab)
    return TableSizes(sizes.strings, sizes.lexemes, strings_rebuilt, lexemes_rebuilt)


@contextmanager
def buffer_zone(nlp: Any, lexeme_getters: dict[int, Any] | None = None) -> Iterator[None]:
    """``nlp.memory_zone()`` for one buffer, then the vocab's tables compacted if they grew.
    ``lexeme_getters``: the lexical attribute getters of the lexemes the zone makes (None: the
    language's own). A plain block where spaCy has no memory zones."""
    zone = getattr(nlp, "memory_zone", None)
    if zone is None:
        yield
        return
    vocab = nlp.vocab
    with zone():
        if lexeme_getters is None:
            yield
        else:
            kept = vocab.lex_attr_getters
            vocab.lex_attr_getters = lexeme_getters
            try:
                yield
            finally:
                vocab.lex_attr_getters = kept
    compact_vocab_tables(vocab)


class BufferZones:
    """A memory zone per buffer, once ``warmup_chars`` characters of text have run without; its
    new lexemes lean if asked and the pipeline allows (:func:`lean_lexeme_getters`).

    The warm-up buffers' words, strings and tokenizer cache entries stay for the life of the
    process: memory bounded by the budget plus at most one buffer (a buffer that starts within
    the budget runs whole outside a zone), spent on the words a stream repeats most (the ones it
    brings first, by Zipf's law), so that later buffers, each in its zone, find them cached
    (docs/decisions/zones.md).
    """

    def __init__(self, nlp: Any, warmup_chars: int = 0, *, lean_lexemes: bool = False) -> None:
        """``lean_lexemes``: the caller reads no lexical attribute of a zone's tokens but the
        punctuation and space flags, so its zones' new lexemes may lean where the pipeline
        allows."""
        if warmup_chars < 0:
            raise ValueError(f"warmup_chars must be 0 or positive, got {warmup_chars}")
        self.nlp = nlp
        self.warmup_left = warmup_chars
        self.warmup_buffers = 0
        self.lexeme_getters = lean_lexeme_getters(nlp) if lean_lexemes else None

    @property
    def warming_up(self) -> bool:
        return self.warmup_left > 0

    @contextmanager
    def buffer(self, chars: int) -> Iterator[bool]:
        """The block one buffer of ``chars`` characters of text runs in; yields whether it is a
        memory zone (False while warming up)."""
        if self.warmup_left > 0:
            self.warmup_left -= chars
            self.warmup_buffers += 1
            yield False
            return
        with buffer_zone(self.nlp, self.lexeme_getters):
            yield True
