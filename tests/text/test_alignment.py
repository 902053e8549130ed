"""Wordpiece ↔ token alignment: hand-made cases, brute-force references, and a property test
through a real spaCy pipeline for every tokenizer family and the real MiniLM.

Every expected value here is computed independently of ``stream_trf``: by hand, by a slow
brute-force reading of the alignment rules, or by calling the Hugging Face tokenizer directly.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import spacy
from conftest import guard_injected
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stream_trf.pipeline.wordpiecer  # noqa: F401  (registers the factory)
from stream_trf.pipeline.extensions import align_docs
from stream_trf.text.alignment import (
    Ragged,
    align_pieces,
    char_to_token,
    invert,
    rebuild,
    rebuild_batch,
    rebuild_matrix,
    whitespace_mask,
)

# --------------------------------------------------------------------------------------------
# Brute-force references (slow, obvious, written from the documented rules)
# --------------------------------------------------------------------------------------------


def ref_piece_tokens(
    text: str,
    tokens: list[tuple[int, int, bool]],
    start: int,
    end: int,
    boundary: bool,
    first: int,
    last: int,
) -> list[int]:
    """The tokens one piece is aligned to.

    ``tokens``: (start, end, is_space) per token; ``first``/``last``: the first and last
    non-whitespace token of the piece's sentence.
    """
    candidates = [t for t in range(first, last + 1) if not tokens[t][2]]
    if boundary:
        return candidates

    def solid_chars(t: int, lo: int, hi: int) -> list[int]:
        ts, te, _ = tokens[t]
        return [c for c in range(max(lo, ts), min(hi, te)) if not text[c].isspace()]

    shared = [t for t in candidates if solid_chars(t, start, end)]
    if shared:
        return shared
    # No shared non-whitespace character: the next token of the sentence holding a
    # non-whitespace character at or after the piece's start, else the sentence's last one.
    following = [t for t in candidates if solid_chars(t, start, len(text))]
    if following:
        return [following[0]]
    return candidates[-1:]


def ref_invert(piece_tokens: list[list[int]], n_tokens: int, keep: list[bool]) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n_tokens)]
    for p, toks in enumerate(piece_tokens):
        if keep[p]:
            for t in toks:
                out[t].append(p)
    return [sorted(x) for x in out]


def ref_dense_w(piece_tokens: list[list[int]], n_tokens: int) -> np.ndarray:
    w = np.zeros((n_tokens, len(piece_tokens)), dtype=np.float64)
    for p, toks in enumerate(piece_tokens):
        for t in toks:
            w[t, p] += 1.0 / len(toks)
    return w


def ragged(lists: list[list[int]]) -> Ragged:
    """Build a Ragged by hand (not through from_pairs)."""
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(x) for x in lists])
    flat = [i for x in lists for i in x]
    return Ragged(indptr=indptr, indices=np.asarray(flat, dtype=np.int64))


def run_align(
    text: str,
    tokens: list[tuple[int, int, bool]],
    pieces: list[tuple[int, int, bool, int, int]],
) -> list[list[int]]:
    """align_pieces on plain-Python inputs. pieces: (start, end, boundary, first, last)."""
    arr = np.asarray([[s, e - s, sp] for s, e, sp in tokens], dtype=np.int64).reshape(-1, 3)
    parr = np.asarray(pieces, dtype=np.int64).reshape(-1, 5)
    out = align_pieces(
        text,
        arr[:, 0],
        arr[:, 1],
        arr[:, 2].astype(bool),
        parr[:, 0],
        parr[:, 1],
        parr[:, 2].astype(bool),
        parr[:, 3],
        parr[:, 4],
    )
    assert len(out) == len(pieces)
    return out.to_lists()


# --------------------------------------------------------------------------------------------
# whitespace_mask, char_to_token, Ragged
# --------------------------------------------------------------------------------------------


def test_whitespace_mask_every_code_point() -> None:
    # Exhaustive over the whole code space, lone surrogates included.
    text = "".join(chr(c) for c in range(0x110000))
    got = whitespace_mask(text)
    expected = np.array([c.isspace() for c in text])
    assert got.shape == (len(text),)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, expected)


def test_whitespace_mask_small() -> None:
    assert whitespace_mask("").shape == (0,)
    np.testing.assert_array_equal(
        whitespace_mask("a \t\nb\u3000\u00a0\x1c\u200b\x00"),
        [False, True, True, True, False, True, True, True, False, False],
    )


@given(st.text(max_size=60))
@settings(max_examples=100, deadline=None)
def test_whitespace_mask_matches_isspace(text: str) -> None:
    np.testing.assert_array_equal(whitespace_mask(text), [c.isspace() for c in text])


def test_char_to_token_hand_made() -> None:
    # "ab  cd e": tokens ab(0,2) '  '(2,2, space) cd(4,2) e(7,1); char 6 is trailing whitespace.
    got = char_to_token(
        8,
        np.array([0, 2, 4, 7]),
        np.array([2, 2, 2, 1]),
        np.array([False, True, False, False]),
    )
    np.testing.assert_array_equal(got, [0, 0, -1, -1, 2, 2, -1, 3])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.booleans()), max_size=12))
@settings(max_examples=100, deadline=None)
def test_char_to_token_brute_force(layout: list[tuple[int, int, bool]]) -> None:
    # layout: per token (gap before it, its length, is_space)
    starts, lengths, spaces = [], [], []
    pos = 0
    for gap, length, space in layout:
        pos += gap
        starts.append(pos)
        lengths.append(length)
        spaces.append(space)
        pos += length
    n_chars = pos + 2
    expected = [-1] * n_chars
    for t, (s, n, sp) in enumerate(zip(starts, lengths, spaces)):
        if not sp:
            for c in range(s, s + n):
                expected[c] = t
    got = char_to_token(
        n_chars,
        np.asarray(starts, dtype=np.int64),
        np.asarray(lengths, dtype=np.int64),
        np.asarray(spaces, dtype=bool),
    )
    assert got.tolist() == expected


def test_ragged_from_pairs_hand_made() -> None:
    r = Ragged.from_pairs(np.array([2, 0, 2, 0, 3]), np.array([5, 9, 1, 4, 7]), 5)
    assert r.to_lists() == [[4, 9], [], [1, 5], [7], []]
    assert len(r) == 5
    assert r.lengths().tolist() == [2, 0, 2, 1, 0]
    assert r[2].tolist() == [1, 5]
    empty = Ragged.from_pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), 3)
    assert empty.to_lists() == [[], [], []]


@given(
    st.integers(0, 8).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, 20)), max_size=30)
            if n
            else st.just([]),
        )
    )
)
@settings(max_examples=100, deadline=None)
def test_ragged_from_pairs_brute_force(case: tuple[int, list[tuple[int, int]]]) -> None:
    n_rows, pairs = case
    rows = np.asarray([r for r, _ in pairs], dtype=np.int64)
    cols = np.asarray([c for _, c in pairs], dtype=np.int64)
    expected = [sorted(c for r, c in pairs if r == i) for i in range(n_rows)]
    got = Ragged.from_pairs(rows, cols, n_rows)
    assert got.to_lists() == expected
    assert got.indptr[0] == 0 and got.indptr[-1] == len(pairs)


def test_invert_hand_made() -> None:
    # piece 0 -> token 0; piece 1 (boundary) -> 0,1,2; piece 2 -> tokens 0 and 2; piece 3 -> 2
    p2t = ragged([[0], [0, 1, 2], [0, 2], [2]])
    keep = np.array([True, False, True, True])
    assert invert(p2t, 4, keep).to_lists() == [[0, 2], [], [2, 3], []]
    assert invert(p2t, 4, np.ones(4, bool)).to_lists() == [[0, 1, 2], [1], [1, 2, 3], []]


@given(
    st.integers(1, 6).flatmap(
        lambda n_tok: st.tuples(
            st.just(n_tok),
            st.lists(
                st.tuples(st.sets(st.integers(0, n_tok - 1), max_size=n_tok), st.booleans()),
                max_size=10,
            ),
        )
    )
)
@settings(max_examples=100, deadline=None)
def test_invert_and_rebuild_matrix_brute_force(
    case: tuple[int, list[tuple[set[int], bool]]],
) -> None:
    n_tok, spec = case
    lists = [sorted(s) for s, _ in spec]
    keep = [k for _, k in spec]
    p2t = ragged(lists)
    got = invert(p2t, n_tok, np.asarray(keep, dtype=bool).reshape(-1))
    assert got.to_lists() == ref_invert(lists, n_tok, keep)

    w = rebuild_matrix(p2t, n_tok)
    assert w.shape == (n_tok, len(lists))
    np.testing.assert_allclose(w.dense(), ref_dense_w(lists, n_tok), rtol=1e-6, atol=1e-7)
    h = np.random.default_rng(len(lists)).normal(size=(len(lists), 5)).astype(np.float32)
    expected = ref_dense_w(lists, n_tok) @ h.astype(np.float64)
    np.testing.assert_allclose(rebuild(w, h), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# rebuild_matrix / rebuild
# --------------------------------------------------------------------------------------------


def test_rebuild_matrix_hand_made() -> None:
    # piece 0 -> t0; piece 1 -> t0,t1 (split in halves); piece 2 -> t1; piece 3 -> t0,t1,t3
    w = rebuild_matrix(ragged([[0], [0, 1], [1], [0, 1, 3]]), 4)
    third = 1.0 / 3.0
    expected = np.array(
        [
            [1.0, 0.5, 0.0, third],
            [0.0, 0.5, 1.0, third],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, third],
        ]
    )
    np.testing.assert_allclose(w.dense(), expected, rtol=1e-6)
    h = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0], [3.0, 30.0]], dtype=np.float32)
    np.testing.assert_allclose(
        rebuild(w, h),
        [[1 + 1 + 1, 10 + 10 + 10], [1 + 4 + 1, 10 + 40 + 10], [0, 0], [1, 10]],
        rtol=1e-6,
    )


def test_rebuild_empty() -> None:
    w = rebuild_matrix(ragged([[], []]), 3)
    out = rebuild(w, np.ones((2, 4), dtype=np.float32))
    assert out.shape == (3, 4)
    assert not out.any()
    w0 = rebuild_matrix(ragged([]), 2)
    assert rebuild(w0, np.zeros((0, 3), dtype=np.float32)).shape == (2, 3)


@pytest.mark.parametrize("seed", range(5))
def test_rebuild_equals_dense_product_and_preserves_column_sums(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_tok, n_wp = int(rng.integers(1, 30)), int(rng.integers(1, 40))
    lists = [
        sorted(rng.choice(n_tok, size=int(rng.integers(1, min(n_tok, 4) + 1)), replace=False))
        for _ in range(n_wp)
    ]
    lists = [[int(x) for x in row] for row in lists]
    w = rebuild_matrix(ragged(lists), n_tok)
    dense = w.dense()
    h = rng.normal(size=(n_wp, 8)).astype(np.float32)
    np.testing.assert_allclose(rebuild(w, h), dense.astype(np.float64) @ h, rtol=1e-5, atol=1e-5)
    # every piece has >= 1 token: every column sums to 1, so nothing is lost or duplicated.
    np.testing.assert_allclose(dense.sum(0), 1.0, atol=1e-6)
    np.testing.assert_allclose(rebuild(w, h).sum(0), h.sum(0), rtol=1e-4, atol=1e-4)
    # the weights of a row of W are exactly those of the brute-force reference
    np.testing.assert_allclose(dense, ref_dense_w(lists, n_tok), rtol=1e-6, atol=1e-7)


def test_rebuild_batch_equals_each_docs_dense_product() -> None:
    """Many docs in one block-diagonal product: each doc gets exactly its own ``W @ H``, an
    empty doc and a doc with tokens but no wordpieces included, and nothing leaks between."""
    rng = np.random.default_rng(7)
    matrices = []
    for n_tok, n_wp in [(3, 5), (0, 0), (4, 0), (1, 1), (6, 9)]:
        lists = [[int(t) for t in sorted(rng.choice(n_tok, 2 if n_tok > 1 else 1, replace=False))]
                 for _ in range(n_wp)]  # fmt: skip
        matrices.append(rebuild_matrix(ragged(lists), n_tok))
    h = rng.normal(size=(sum(m.shape[1] for m in matrices), 6)).astype(np.float32)
    got, starts = rebuild_batch(matrices, h)
    assert starts.tolist() == [0, 3, 3, 7, 8, 14]
    offset = 0
    for m, rows in zip(matrices, got):
        expected = m.dense().astype(np.float64) @ h[offset : offset + m.shape[1]]
        assert rows.shape == (m.shape[0], 6) and rows.dtype == np.float32
        np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-6)
        offset += m.shape[1]
    with pytest.raises(ValueError, match="14 rows for matrices over 15 wordpieces"):
        rebuild_batch(matrices, np.zeros((14, 6), dtype=np.float32))


# --------------------------------------------------------------------------------------------
# align_pieces on hand-made layouts
# --------------------------------------------------------------------------------------------


def test_align_piece_spanning_two_tokens_and_token_spanning_pieces() -> None:
    text = "ab cd"
    tokens = [(0, 2, False), (3, 5, False)]
    pieces = [
        (0, 1, False, 0, 1),  # "a"
        (1, 4, False, 0, 1),  # "b c": one piece, two tokens
        (4, 5, False, 0, 1),  # "d"
    ]
    p2t = run_align(text, tokens, pieces)
    assert p2t == [[0], [0, 1], [1]]
    # token "ab" spans pieces 0 and 1; "cd" spans 1 and 2: many-to-many both ways
    assert invert(ragged(p2t), 2, np.ones(3, bool)).to_lists() == [[0, 1], [1, 2]]


def test_align_whitespace_token_gets_nothing() -> None:
    # "a  b": tokens a, ' ' (is_space), b — the piece covering all of it skips the space token
    text = "a  b"
    tokens = [(0, 1, False), (2, 3, True), (3, 4, False)]
    pieces = [(0, 4, False, 0, 2), (2, 3, False, 0, 2), (3, 4, False, 0, 2)]
    p2t = run_align(text, tokens, pieces)
    assert p2t == [[0, 2], [2], [2]]
    assert invert(ragged(p2t), 3, np.ones(3, bool)).to_lists() == [[0], [], [0, 1, 2]]


def test_align_whitespace_only_pieces_go_to_next_token() -> None:
    text = "ab  cd"
    tokens = [(0, 2, False), (2, 3, True), (4, 6, False)]
    pieces = [
        (2, 3, False, 0, 2),  # a lone 'Ġ' covering a space
        (3, 3, False, 0, 2),  # zero-width piece before "cd"
        (0, 0, False, 0, 2),  # zero-width at the very start: the next token is "ab"
        (1, 1, False, 0, 2),  # zero-width inside "ab": next solid character is in "ab"
    ]
    assert run_align(text, tokens, pieces) == [[2], [2], [0], [0]]


def test_align_whitespace_piece_at_sentence_end_goes_to_previous_token() -> None:
    # Two sentences "a." and "b."; the space between belongs to neither sentence's tokens.
    text = "a. b."
    tokens = [(0, 1, False), (1, 2, False), (3, 4, False), (4, 5, False)]
    pieces = [
        (2, 3, False, 0, 1),  # whitespace at the end of sentence 1: previous token "."
        (2, 2, False, 0, 1),  # zero-width at the end of sentence 1
        (5, 5, False, 2, 3),  # zero-width at the very end of the doc
        (3, 3, False, 2, 3),  # zero-width at the start of sentence 2: next token "b"
    ]
    assert run_align(text, tokens, pieces) == [[1], [1], [3], [2]]


def test_align_boundary_pieces_cover_their_sentence_only() -> None:
    text = "x. a \t b c. y"
    tokens = [
        (0, 1, False),  # x
        (1, 2, False),  # .
        (3, 4, False),  # a
        (5, 6, True),  # \t
        (7, 8, False),  # b
        (9, 10, False),  # c
        (10, 11, False),  # .
        (12, 13, False),  # y
    ]
    pieces = [
        (-1, -1, True, 2, 6),  # [CLS] of the middle sentence
        (3, 4, False, 2, 6),
        (-1, -1, True, 2, 6),  # [SEP]
        (-1, -1, True, 7, 7),  # a boundary of a one-token sentence
    ]
    assert run_align(text, tokens, pieces) == [[2, 4, 5, 6], [2], [2, 4, 5, 6], [7]]


def test_align_no_pieces_and_no_solid_text() -> None:
    assert run_align("ab", [(0, 2, False)], []) == []
    assert run_align("  ", [(0, 2, True)], [(0, 1, False, 0, 0)]) == [[]]


# --------------------------------------------------------------------------------------------
# align_pieces vs the brute force on random synthetic layouts
# --------------------------------------------------------------------------------------------

_CHUNK = st.sampled_from(["a", "bc", "déf", "東京", "😀", "e\u0301", "\x00", "\u200b", "x!"])
_SPACE = st.sampled_from([" ", "  ", "\t", "\n", "\u3000", " \u00a0 ", "\x1c"])


@st.composite
def synthetic_layout(draw: st.DrawFn) -> tuple[str, list[tuple[int, int, bool]], list]:
    """Random text, its tokens, sentences, and random pieces (any offsets within a sentence)."""
    n_tok = draw(st.integers(1, 12))
    text = ""
    tokens: list[tuple[int, int, bool]] = []
    for _ in range(n_tok):
        if draw(st.booleans()):
            text += " "  # trailing whitespace, no token
        chunk = draw(_SPACE if draw(st.integers(0, 3)) == 0 else _CHUNK)
        tokens.append((len(text), len(text) + len(chunk), chunk.isspace()))
        text += chunk
    # sentence boundaries: a partition of the tokens
    cuts = sorted(draw(st.sets(st.integers(1, n_tok - 1), max_size=3)) if n_tok > 1 else set())
    bounds = [0, *cuts, n_tok]
    pieces = []
    for a, b in itertools.pairwise(bounds):
        solid = [t for t in range(a, b) if not tokens[t][2]]
        if not solid:
            continue
        first, last = solid[0], solid[-1]
        lo, hi = tokens[first][0], tokens[last][1]
        n_pieces = draw(st.integers(0, 6))
        if draw(st.booleans()):
            pieces.append((-1, -1, True, first, last))
        for _ in range(n_pieces):
            s = draw(st.integers(lo, hi))
            e = draw(st.integers(s, min(hi, s + 4)))
            pieces.append((s, e, False, first, last))
        if draw(st.booleans()):
            pieces.append((-1, -1, True, first, last))
    return text, tokens, pieces


@given(synthetic_layout())
@settings(max_examples=400, deadline=None)
def test_align_pieces_brute_force_synthetic(layout) -> None:
    text, tokens, pieces = layout
    got = run_align(text, tokens, pieces)
    for (s, e, boundary, first, last), toks in zip(pieces, got):
        assert toks == ref_piece_tokens(text, tokens, s, e, boundary, first, last)
        assert all(first <= t <= last for t in toks)
        assert all(not tokens[t][2] for t in toks)
        assert toks, "every piece of a sentence with a non-space token gets a token"


# --------------------------------------------------------------------------------------------
# Through a real spaCy pipeline, against the Hugging Face tokenizer called directly
# --------------------------------------------------------------------------------------------

_ALPHABET = list(
    "abcdefxyzABCXYZ0123456789"
    "éüñçßøåÉÖ"
    "東京日本中国は首都"
    "😀🎉👍🇫🇷"
    "\u0300\u0301\u0308\u0327"
    "\x00\x07\x1f\x1c"
    "    \t\n\u00a0\u3000\u2028\u200b"
    ".!?,;:'-()[]<>/"
    "Ωдж"
)
_WORDS = [
    "Here", "is", "some", "text", "to", "encode", "Apple", "shares", "the", "quick", "fox",
    "Über", "café", "naïve", "東京は", "[SEP]", "<s>", "</s>", "<cls>", "<sep>", "[CLS]",
    "don't", "https://example.org/a?b=c", "3.14159", "e\u0301", "  ", "\t", "\n\n", ". ", "! ",
]  # fmt: skip
_PIECE = st.one_of(
    st.sampled_from(_WORDS),
    st.text(alphabet=st.sampled_from(_ALPHABET), min_size=1, max_size=5),
)
_TEXT = st.lists(st.one_of(_PIECE, st.just(" ")), max_size=24).map("".join)

_NLP: dict[str, spacy.language.Language] = {}
_TOK: dict[str, object] = {}


def _pipeline(model_dir: Path):
    key = str(model_dir)
    if key not in _NLP:
        from transformers import AutoTokenizer

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("trf_wordpiecer", config={"model": key})
        nlp.initialize()
        _NLP[key] = nlp
        _TOK[key] = AutoTokenizer.from_pretrained(key, split_special_tokens=True)
    return _NLP[key], _TOK[key]


def _ref_sentences(doc) -> list[tuple[int, int, int, int]]:
    out = []
    for sent in doc.sents:
        solid = [t for t in sent if not t.is_space]
        if solid:
            a, b = solid[0], solid[-1]
            out.append((a.i, b.i, a.idx, b.idx + len(b.text)))
    return out


def check_doc(doc, tok) -> None:
    """The whole of doc._.trf_pieces against references built from ``tok`` and the doc."""
    text = doc.text
    tokens = [(t.idx, t.idx + len(t.text), t.text.isspace()) for t in doc]
    assert [t.is_space for t in doc] == [sp for _, _, sp in tokens]
    wp = doc._.trf_pieces
    sents = _ref_sentences(doc)
    np.testing.assert_array_equal(
        wp.sentence_chars.reshape(-1, 2), np.asarray([s[2:] for s in sents]).reshape(-1, 2)
    )
    ids: list[int] = []
    strings: list[str] = []
    piece_tokens: list[list[int]] = []
    is_boundary: list[bool] = []
    sent_starts = [0]
    for first, last, a, b in sents:
        enc = tok(text[a:b], return_offsets_mapping=True, return_special_tokens_mask=True)
        guarded_ids, guarded_strings = guard_injected(
            tok, enc["input_ids"], enc.tokens(), enc["special_tokens_mask"]
        )
        ids.extend(guarded_ids)
        strings.extend(guarded_strings)
        for (s, e), special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
            is_boundary.append(bool(special))
            piece_tokens.append(
                ref_piece_tokens(text, tokens, s + a, e + a, bool(special), first, last)
            )
        sent_starts.append(len(ids))

    # (e) the ids are the tokenizer's own, sentence by sentence, boundary tokens included
    assert np.asarray(doc._.trf_word_pieces).tolist() == ids
    assert list(doc._.trf_word_pieces_) == strings
    assert wp.sentence_starts.tolist() == sent_starts
    assert wp.is_boundary.tolist() == is_boundary
    # (a) token -> content pieces
    n_tok = len(doc)
    assert doc._.trf_alignment == ref_invert(piece_tokens, n_tok, [not b for b in is_boundary])
    # (b) whitespace tokens: nothing
    for t in doc:
        if t.is_space:
            assert doc._.trf_alignment[t.i] == []
    # the rebuild matrix is the brute-force one
    dense = wp.rebuild.dense()
    assert dense.shape == (n_tok, len(ids))
    np.testing.assert_allclose(dense, ref_dense_w(piece_tokens, n_tok), rtol=1e-6, atol=1e-7)
    # (c) every wordpiece lands somewhere, exactly once in total
    if ids:
        assert all(piece_tokens), "a piece with no token in the reference"
        np.testing.assert_allclose(dense.sum(0), 1.0, atol=1e-6)
        # (d) W @ H keeps the column sums of H
        h = np.random.default_rng(len(ids)).normal(size=(len(ids), 8)).astype(np.float32)
        np.testing.assert_allclose(rebuild(wp.rebuild, h).sum(0), h.sum(0), rtol=1e-4, atol=1e-4)


_FIXED_TEXTS = [
    "Here is some text to encode.",
    "Hello  world. \t  Next one!\x00 \u3000 x",
    "  leading and trailing spaces  ",
    "a [SEP] b <s> c </s> d <cls> e <sep>. [CLS]",
    "東京は日本の首都です。北京是中国的首都。",
    "Emoji 😀🎉 and flags 🇫🇷; e\u0301 e\u0300\u0308.",
    "\n\n\n",
    "",
    "x",
    "Tabs\tand\nnewlines\u2028and\u00a0nbsp.",
    "\x00\x07",  # BERT's normalizer drops control characters: a sentence with no content piece
    "x. \x07\x00. y",
]


@pytest.mark.parametrize("text", _FIXED_TEXTS)
def test_pipeline_alignment_fixed_texts(tiny_dir: Path, text: str) -> None:
    nlp, tok = _pipeline(tiny_dir)
    check_doc(nlp(text), tok)


def test_pipeline_alignment_fixed_texts_batched(tiny_dir: Path) -> None:
    nlp, tok = _pipeline(tiny_dir)
    docs = list(nlp.pipe(_FIXED_TEXTS, batch_size=4))
    assert [d.text for d in docs] == _FIXED_TEXTS
    # all docs aligned in one pass (as trf_tok2vec does), not each on first use
    align_docs([doc._.trf_pieces for doc in docs])
    for doc in docs:
        check_doc(doc, tok)


@given(texts=st.lists(_TEXT, min_size=1, max_size=3))
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_pipeline_alignment_property(tiny_dir: Path, texts: list[str]) -> None:
    nlp, tok = _pipeline(tiny_dir)
    docs = list(nlp.pipe(texts))
    align_docs([doc._.trf_pieces for doc in docs])
    for doc in docs:
        check_doc(doc, tok)


@given(texts=st.lists(_TEXT, min_size=1, max_size=3))
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_pipeline_alignment_property_minilm(minilm_dir: Path, texts: list[str]) -> None:
    nlp, tok = _pipeline(minilm_dir)
    for doc in nlp.pipe(texts):
        check_doc(doc, tok)
