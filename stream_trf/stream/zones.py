"""One spaCy memory zone per buffer, and vocab hash tables that stop growing.

A stream never runs out of new words, so every buffer runs inside ``nlp.memory_zone()``
(spaCy ≥ 3.8): the lexemes and strings its docs added are freed when the buffer is done. The
zone frees the entries, not the room they took in the vocab's two hash tables (preshed maps:
the vocab's lexemes by orth, the string store's strings by hash). A cleared key leaves a
tombstone. A key seen before lands on its own tombstone again, but a new key reuses one only
when its probe happens to cross it, and a table whose live keys plus tombstones reach 60 %
doubles, however few keys are live. Each table therefore grows by about 16 bytes per word no
zone has seen before, for ever: ``spacy.blank("en")``, 20,000 new words per zone, went 285 →
418 MB over 4 M new words (``bench/zone_tables.py``). A stream keeps bringing such words
(package names, versions, URLs): small over minutes, unbounded over days.

``buffer_zone`` opens the zone and, once it has closed, rebuilds a table whose capacity has
outgrown its live keys (``compact_vocab_tables``): the string store's from its live entries
(same pointers, a right-sized table), the lexeme table empty. Emptying the lexeme table drops
the lexemes made outside any zone too (the tokenizer's special cases still point at theirs,
which stay allocated): spaCy makes them again, identical, from the strings and the language's
attribute getters, when next needed. Attributes written onto a lexeme by hand are not kept;
the worker writes none. Not thread-safe: the worker compacts between buffers, in the model
thread, when no doc of the closed zone is alive.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from preshed.maps import PreshMap  # spaCy's own hash table

# A table is rebuilt once its capacity is past both: 2**16 cells (1 MiB) and GROWTH × its live
# keys. Rebuilding is a pass over the table in Python (milliseconds at these sizes): rare.
MIN_CAPACITY = 2**16
GROWTH = 8
_VOCAB_PARTS = ("strings", "vectors", "lookups")


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
            # Vocab.from_bytes with every part excluded only starts a new lexeme table. It
            # would also wrap the NORM getter once more where the vocab has a norm lookup
            # table: keep the getters as they were.
            getters = dict(vocab.lex_attr_getters)
            vocab.from_bytes(vocab.to_bytes(exclude=_VOCAB_PARTS), exclude=_VOCAB_PARTS)
            vocab.lex_attr_getters = getters
            lexemes_rebuilt = True
    sizes = table_sizes(vocab)
    return TableSizes(sizes.strings, sizes.lexemes, strings_rebuilt, lexemes_rebuilt)


@contextmanager
def buffer_zone(nlp: Any) -> Iterator[None]:
    """``nlp.memory_zone()`` for one buffer, then the vocab's tables compacted if they grew.
    A plain block where spaCy has no memory zones."""
    zone = getattr(nlp, "memory_zone", None)
    if zone is None:
        yield
        return
    with zone():
        yield
    compact_vocab_tables(nlp.vocab)
