"""Sentences → the model's own wordpieces, boundary tokens placed as the model was pretrained.

Nothing here knows model names. The tokenizer's post-processor puts the boundary tokens where
its family expects them (BERT ``[CLS] … [SEP]``, RoBERTa ``<s> … </s>``, XLNet ``… <sep> <cls>``,
XLM ``<s> … </s>``, GPT-2 none at all); we read them back from the special-tokens mask and
remember, per sentence, how many sit before and after the content, so that long sentences can be
cut into windows that each carry the same boundary tokens.

Character offsets come from the tokenizer where it gives them (every fast tokenizer). A slow,
pure-Python tokenizer (XLM's: Moses, lowercasing, accents stripped, ``</w>`` word ends) gives
none, so its pieces are aligned to the text by their strings (``spacy-alignments``).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SentencePieces:
    """One sentence as the model sees it, offsets already shifted into the doc's text."""

    ids: IntArray  # the full sequence, boundary tokens included
    type_ids: IntArray | None  # token type ids, when the tokenizer produces them
    is_boundary: npt.NDArray[np.bool_]  # boundary tokens ([CLS], [SEP], <cls>, ...)
    starts: IntArray | None  # character offsets in the doc, boundary tokens -1 (None: not read)
    ends: IntArray | None
    n_prefix: int  # boundary tokens before the content
    n_suffix: int  # boundary tokens after the content
    strings: list[str]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PieceBatch:
    """Many sentences' wordpieces end to end: flat arrays plus where each sentence starts.

    Flat, because the per-sentence arrays of a batch are only ever concatenated again per doc:
    a doc takes one slice of each array.
    """

    ids: IntArray
    type_ids: IntArray | None
    is_boundary: npt.NDArray[np.bool_]
    starts: IntArray | None  # character offsets in each sentence's doc, boundary tokens -1;
    ends: IntArray | None  # None when not asked for (``offsets=False``)
    strings: list[str]
    bounds: IntArray  # sentence i is pieces [bounds[i], bounds[i + 1])
    n_prefix: IntArray  # per sentence
    n_suffix: IntArray

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __iter__(self) -> Iterator[SentencePieces]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> SentencePieces:
        a, b = int(self.bounds[i]), int(self.bounds[i + 1])
        return SentencePieces(
            ids=self.ids[a:b],
            type_ids=None if self.type_ids is None else self.type_ids[a:b],
            is_boundary=self.is_boundary[a:b],
            starts=None if self.starts is None else self.starts[a:b],
            ends=None if self.ends is None else self.ends[a:b],
            n_prefix=int(self.n_prefix[i]),
            n_suffix=int(self.n_suffix[i]),
            strings=self.strings[a:b],
        )


def uses_token_types(tokenizer: Any) -> bool:
    """Whether the model expects token type ids (decided by the tokenizer, not by a name)."""
    return "token_type_ids" in getattr(tokenizer, "model_input_names", ())


def _flat(lists: Sequence[Sequence[Any]], dtype: Any, count: int) -> np.ndarray:
    return np.fromiter(chain.from_iterable(lists), dtype=dtype, count=count)


def tokenize_sentences(
    tokenizer: Any, texts: Sequence[str], char_offsets: Sequence[int], *, offsets: bool = True
) -> PieceBatch:
    """Tokenize many sentences in one call to the (Rust) tokenizer.

    ``char_offsets[i]`` is where ``texts[i]`` starts in its doc. ``offsets=False`` leaves the
    pieces' character offsets unread (``starts``/``ends`` None): only the alignment to spaCy's
    tokens needs them, and turning a batch's offsets into arrays costs more than the rest of
    this function's Python together.
    """
    with_types = uses_token_types(tokenizer)
    n = len(texts)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return PieceBatch(
            empty, empty if with_types else None, empty.astype(bool),
            empty if offsets else None, empty if offsets else None, [], np.zeros(1, np.int64),
            empty, empty,
        )  # fmt: skip
    backend = rust_tokenizer(tokenizer)
    if backend is not None:
        # Without offsets, the encoder that skips them (tokenizers >= 0.20): a third less
        # Rust time; its encodings name no piece (``tokens`` empty), nothing here reads them.
        encode = backend.encode_batch if offsets else _encode_without_offsets(backend)
        encodings = encode(list(texts), add_special_tokens=True)
        id_lists = [e.ids for e in encodings]
        special_lists = [e.special_tokens_mask for e in encodings]
        offset_lists = [e.offsets for e in encodings] if offsets else []
        string_lists = None  # looked up from the ids, below: cheaper than each encoding's own
        type_lists = [e.type_ids for e in encodings] if with_types else []
    elif not getattr(tokenizer, "is_fast", True):
        id_lists, special_lists, offset_lists, string_lists, type_lists = _encode_by_strings(
            tokenizer, texts, with_types, offsets
        )
    else:
        enc = tokenizer(
            list(texts),
            add_special_tokens=True,
            return_offsets_mapping=offsets,
            return_special_tokens_mask=True,
            return_token_type_ids=with_types,
            return_attention_mask=False,
            truncation=False,
            verbose=False,
        )
        id_lists, special_lists = enc["input_ids"], enc["special_tokens_mask"]
        offset_lists = enc["offset_mapping"] if offsets else []
        string_lists = [enc.tokens(i) for i in range(n)]
        type_lists = enc["token_type_ids"] if with_types else []
    lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=n)
    bounds = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    total = int(bounds[-1])
    ids = _flat(id_lists, np.int64, total)
    special = _flat(special_lists, bool, total)
    if string_lists is None:
        strings = _strings_from_ids(tokenizer, ids, bounds, texts)
    else:
        strings = list(chain.from_iterable(string_lists))
    guarded = _injectable_ids(tokenizer)
    if len(guarded):
        # A vocabulary that holds its special tokens as ordinary pieces (a Unigram model
        # trained with them) can still match "<cls>" typed in a document: such a piece would
        # act as a real boundary token. It becomes the unknown token instead.
        injected = np.flatnonzero(~special & np.isin(ids, guarded))
        if len(injected):
            ids[injected] = tokenizer.unk_token_id
            for k in injected.tolist():
                strings[k] = tokenizer.unk_token
    starts = ends = None
    if offsets:
        spans = np.fromiter(
            chain.from_iterable(chain.from_iterable(offset_lists)),
            dtype=np.int64,
            count=2 * total,
        ).reshape(total, 2)
        base = np.repeat(np.asarray(char_offsets, dtype=np.int64), lengths)
        starts = np.where(special, -1, spans[:, 0] + base)
        ends = np.where(special, -1, spans[:, 1] + base)
    # Boundary tokens before the first and after the last content piece of each sentence
    # (a sentence of boundary tokens only counts them all as prefix).
    sentence = np.repeat(np.arange(n), lengths)
    position = np.arange(total) - bounds[sentence]
    content = np.flatnonzero(~special)
    first = lengths.copy()
    last = np.full(n, -1, dtype=np.int64)
    np.minimum.at(first, sentence[content], position[content])
    np.maximum.at(last, sentence[content], position[content])
    n_suffix = np.where(last >= 0, lengths - last - 1, 0)
    types = _flat(type_lists, np.int64, total) if with_types else None
    return PieceBatch(ids, types, special, starts, ends, strings, bounds, first, n_suffix)


# tokenizer → (its Rust tokenizer, vocabulary size, our copy of it)
_RUST_COPIES: weakref.WeakKeyDictionary[Any, tuple[Any, int, Any]] = weakref.WeakKeyDictionary()
# our copy of a Rust tokenizer (by id, the copy kept alive) → its piece strings by id
_VOCABULARIES: dict[int, tuple[Any, np.ndarray]] = {}
_KEEP_VOCABULARIES = 8


def _encode_without_offsets(backend: Any) -> Any:
    return getattr(backend, "encode_batch_fast", backend.encode_batch)


def _strings_from_ids(
    tokenizer: Any, ids: IntArray, bounds: IntArray, texts: Sequence[str]
) -> list[str]:
    """The pieces' strings, looked up by id: what each encoding's ``tokens`` gives, at a
    twentieth of the cost. Except for the unknown token: a Unigram model (XLNet's) names an
    unknown piece by its text, so the sentences holding one are encoded again for their
    strings (rare; the batch's own encodings may not have kept them)."""
    copy = rust_tokenizer(tokenizer)
    assert copy is not None  # only called for a tokenizer with a Rust one
    cached = _VOCABULARIES.get(id(copy))
    if cached is None or cached[0] is not copy:
        vocab = copy.get_vocab(with_added_tokens=True)
        table = np.empty(max(vocab.values(), default=-1) + 1, dtype=object)
        for piece, i in vocab.items():
            table[i] = piece
        if len(_VOCABULARIES) >= _KEEP_VOCABULARIES:  # the oldest goes
            del _VOCABULARIES[next(iter(_VOCABULARIES))]
        cached = _VOCABULARIES[id(copy)] = (copy, table)
    strings: list[str] = cached[1][ids].tolist()
    unk = getattr(tokenizer, "unk_token_id", None)
    if isinstance(unk, int) and len(ids):
        holding = np.unique(np.searchsorted(bounds, np.flatnonzero(ids == unk), side="right") - 1)
        if len(holding):
            again = copy.encode_batch([texts[k] for k in holding.tolist()], add_special_tokens=True)
            for k, encoding in zip(holding.tolist(), again):
                a, b = int(bounds[k]), int(bounds[k + 1])
                strings[a:b] = encoding.tokens
    return strings


def rust_tokenizer(tokenizer: Any) -> Any | None:
    """A fast tokenizer's Rust tokenizer, copied, with truncation and padding off; ``None`` for
    a tokenizer without one.

    Calling it directly skips what ``transformers`` does around it per sentence (building a dict
    of lists per encoding, then regrouping them): 0.4 s of 0.9 per 2,048 docs, serial work in
    front of the model. A copy, because ``transformers`` sets truncation and padding on the
    shared one at every call; its ``split_special_tokens`` (literal "[SEP]" in text stays text)
    is mirrored at each call, and a vocabulary that grew (added tokens) makes a new copy."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    size = backend.get_vocab_size(with_added_tokens=True)
    try:
        cached = _RUST_COPIES.get(tokenizer)
    except TypeError:  # not weakly referenceable: no cache
        cached = None
    if cached is None or cached[0] is not backend or cached[1] != size:
        from tokenizers import Tokenizer

        copy = Tokenizer.from_str(backend.to_str())
        copy.no_truncation()
        copy.no_padding()
        cached = (backend, size, copy)
        with contextlib.suppress(TypeError):
            _RUST_COPIES[tokenizer] = cached
    copy = cached[2]
    split = bool(getattr(tokenizer, "split_special_tokens", False))
    if copy.encode_special_tokens != split:
        copy.encode_special_tokens = split
    return copy


def _injectable_ids(tokenizer: Any) -> IntArray:
    """Special ids that text must never produce (all but the unknown token's)."""
    if getattr(tokenizer, "unk_token_id", None) is None:
        return np.zeros(0, dtype=np.int64)
    ids = set(getattr(tokenizer, "all_special_ids", ())) - {tokenizer.unk_token_id}
    return np.array(sorted(ids), dtype=np.int64)


def class_token_position(tokenizer: Any, summary_type: str | None = None) -> int | None:
    """Where the model's class token sits in a sentence: ``0`` first (BERT, RoBERTa, XLM),
    ``-1`` last (XLNet), ``None`` when the tokenizer adds no boundary tokens (GPT-2).

    The model's own config says so where it has a ``summary_type`` of ``"first"`` or
    ``"last"`` (how its sequence-classification head reads a sentence: XLM's tokenizer names
    the final ``</s>`` its cls_token, yet XLM classifies from the first row); otherwise it is
    probed from the tokenizer on a short text.
    """
    if summary_type in ("first", "last"):
        return 0 if summary_type == "first" else -1
    enc = tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
    ids = list(enc["input_ids"])
    special = list(enc["special_tokens_mask"])
    n = len(ids)
    cls_id = getattr(tokenizer, "cls_token_id", None)
    content = [i for i, m in enumerate(special) if not m]
    first_content = content[0] if content else n
    positions = [i for i, m in enumerate(special) if m and (cls_id is None or ids[i] == cls_id)]
    if not positions:
        positions = [i for i, m in enumerate(special) if m]
    if not positions:
        return None
    pos = positions[0] if positions[0] < first_content else positions[-1]
    return pos if pos < first_content else pos - n


# Markers tokenizers add to a piece's string that are not characters of the text: XLM's and
# FlauBERT's word ends, subword-nmt continuations, WordPiece continuations, SentencePiece spaces.
_PIECE_MARKERS = ("</w>", "@@")
_PIECE_PREFIXES = ("##", "\u2581")


def piece_text(piece: str) -> str:
    """What of the text a piece's string stands for, its markers removed."""
    for marker in _PIECE_MARKERS:
        if piece.endswith(marker):
            piece = piece[: -len(marker)]
    for prefix in _PIECE_PREFIXES:
        if piece.startswith(prefix):
            piece = piece[len(prefix) :]
    return piece


def string_offsets(pieces: Sequence[str], text: str) -> list[tuple[int, int]]:
    """Character spans of ``pieces`` in ``text``, from their strings alone.

    ``spacy_alignments`` aligns the pieces' characters to the text's after Unicode
    normalization and case folding (so ``cafe`` finds ``Café``). A piece that matches nothing
    (``<unk>``, a normalized quote) gets an empty span where the previous piece ended, which the
    alignment sends to the nearest token (text/alignment.py)."""
    import spacy_alignments

    piece_to_chars, _ = spacy_alignments.get_alignments([piece_text(p) for p in pieces], list(text))
    spans: list[tuple[int, int]] = []
    end = 0
    for chars in piece_to_chars:
        if chars:
            start, end = min(chars), max(chars) + 1
            spans.append((start, end))
        else:
            spans.append((end, end))
    return spans


def _encode_by_strings(
    tokenizer: Any, texts: Sequence[str], with_types: bool, offsets: bool = True
) -> tuple[
    list[list[int]], list[list[int]], list[list[tuple[int, int]]], list[list[str]], list[list[int]]
]:
    """What a fast tokenizer's batch encoding gives, from a slow tokenizer: per text its ids,
    special-tokens mask, character offsets (boundary tokens: (0, 0); none at all without
    ``offsets``), strings and type ids."""
    id_lists, special_lists, offset_lists, string_lists, type_lists = [], [], [], [], []
    for text in texts:
        enc = tokenizer(
            text,
            add_special_tokens=True,
            return_special_tokens_mask=True,
            return_token_type_ids=with_types,
            return_attention_mask=False,
            truncation=False,
            verbose=False,
        )
        ids, special = list(enc["input_ids"]), list(enc["special_tokens_mask"])
        strings = tokenizer.convert_ids_to_tokens(ids)
        if offsets:
            content = [s for s, m in zip(strings, special) if not m]
            # The pieces before the vocabulary lookup align better ('"</w>', not '<unk>').
            pieces = tokenizer.tokenize(text)
            spans = iter(string_offsets(pieces if len(pieces) == len(content) else content, text))
            offset_lists.append([(0, 0) if m else next(spans) for m in special])
        id_lists.append(ids)
        special_lists.append(special)
        string_lists.append(strings)
        if with_types:
            type_lists.append(list(enc["token_type_ids"]))
    return id_lists, special_lists, offset_lists, string_lists, type_lists


def content_offsets(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character spans of ``text``'s wordpieces, boundary tokens left out: the tokenizer's own
    offsets, or for a slow tokenizer the pieces aligned by their strings."""
    if getattr(tokenizer, "is_fast", True):
        enc = tokenizer(
            text,
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=False,
            verbose=False,  # no "longer than the maximum sequence length" warning: we only count
        )
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    return string_offsets(tokenizer.tokenize(text), text)
