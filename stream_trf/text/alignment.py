"""Wordpieces ↔ spaCy tokens, from character offsets, as flat index arrays.

The alignment is data, not nested lists: CSR arrays (``indptr``, ``indices``) in both
directions, and the rebuild of ``doc.tensor`` is one sparse × dense product ``W @ H`` that
runs unchanged on a GPU.

Rules (docs/library.md, "What the numbers mean"):

* a wordpiece is aligned to every spaCy token with which it shares a non-whitespace character
  (many-to-many both ways);
* whitespace tokens (``token.is_space``) are aligned to nothing;
* a wordpiece that shares no such character with any token (a byte-level ``Ġ`` or SentencePiece
  ``▁`` standing alone, a zero-width piece) goes to the nearest non-whitespace token of its
  sentence — the next one, or the previous one at the sentence's end — so no row is lost;
* boundary tokens ([CLS], [SEP], <s>, <cls>, ...) count as aligned to every non-whitespace token
  of their sentence.

Each wordpiece row is split evenly between the tokens aligned to it, hence
``W.sum(0) == 1`` for every wordpiece and ``doc.tensor.sum(0) == H.sum(0)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

# Per code point up to U+3000 (the last one): is str.isspace() true (Unicode White_Space plus a
# few controls)? A lookup table: np.isin against the list cost 8x more.
_LAST_SPACE = 0x3000
_IS_SPACE = np.array([chr(c).isspace() for c in range(_LAST_SPACE + 1)], dtype=bool)


@dataclass(frozen=True)
class Ragged:
    """A CSR list of lists: row ``i`` is ``indices[indptr[i]:indptr[i + 1]]``."""

    indptr: IntArray
    indices: IntArray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, i: int) -> IntArray:
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def lengths(self) -> IntArray:
        return np.diff(self.indptr)

    def to_lists(self) -> list[list[int]]:
        idx = self.indices.tolist()
        ptr = self.indptr.tolist()
        return [idx[ptr[i] : ptr[i + 1]] for i in range(len(ptr) - 1)]

    def block(self, start: int, stop: int, col_start: int) -> Ragged:
        """Rows ``[start, stop)`` with ``col_start`` subtracted from their entries: one doc's
        share of a batch-wide alignment (new arrays, not views)."""
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        return Ragged(self.indptr[start : stop + 1] - a, self.indices[a:b] - col_start)

    @classmethod
    def from_pairs(cls, rows: IntArray, cols: IntArray, n_rows: int) -> Ragged:
        """Group (row, col) pairs by row, cols ascending within a row."""
        order = np.lexsort((cols, rows))
        counts = np.bincount(rows, minlength=n_rows) if len(rows) else np.zeros(n_rows, np.int64)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr=indptr, indices=cols[order].astype(np.int64))


@dataclass(frozen=True)
class RebuildMatrix:
    """``W`` in CSR form, shape (n_tokens, n_wordpieces): ``doc.tensor = W @ H``."""

    indptr: IntArray
    indices: IntArray
    weights: FloatArray
    shape: tuple[int, int]

    def block(self, start: int, stop: int, col_start: int, col_stop: int) -> RebuildMatrix:
        """Tokens ``[start, stop)`` × wordpieces ``[col_start, col_stop)``, for a matrix whose
        rows in that range have no entry outside those columns (one doc of a batch)."""
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        return RebuildMatrix(
            indptr=self.indptr[start : stop + 1] - a,
            indices=self.indices[a:b] - col_start,
            weights=self.weights[a:b].copy(),
            shape=(stop - start, col_stop - col_start),
        )

    def dense(self) -> FloatArray:
        out = np.zeros(self.shape, dtype=np.float32)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, self.indices), self.weights)
        return out


def whitespace_mask(text: str) -> npt.NDArray[np.bool_]:
    """Per character of ``text``: is it whitespace (``str.isspace``)? Vectorised."""
    if not text:
        return np.zeros(0, dtype=bool)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return _IS_SPACE[np.minimum(codes, _LAST_SPACE)] & (codes <= _LAST_SPACE)


def char_to_token(
    n_chars: int,
    token_starts: IntArray,
    token_lengths: IntArray,
    token_is_space: npt.NDArray[np.bool_],
) -> IntArray:
    """Per character: the index of the non-whitespace token it lies in, or -1."""
    out = np.full(n_chars, -1, dtype=np.int64)
    keep = ~token_is_space & (token_lengths > 0)
    tok = np.flatnonzero(keep)
    if len(tok):
        lens = token_lengths[tok]
        pos = np.repeat(token_starts[tok] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        out[pos] = np.repeat(tok, lens)
    return out


def align_pieces(
    text: str,
    token_starts: IntArray,
    token_lengths: IntArray,
    token_is_space: npt.NDArray[np.bool_],
    piece_starts: IntArray,
    piece_ends: IntArray,
    piece_is_boundary: npt.NDArray[np.bool_],
    piece_first_token: IntArray,
    piece_last_token: IntArray,
) -> Ragged:
    """Wordpiece → tokens (CSR over pieces), from the pieces' character offsets in ``text``.

    ``piece_first_token`` / ``piece_last_token`` give, per piece, the first and last
    non-whitespace token of its sentence: boundary pieces are aligned to that whole range, and
    no other piece is aligned outside it. Every piece gets at least one token, as long as its
    sentence has a non-whitespace token (the caller encodes only such sentences).
    """
    n_chars = len(text)
    n_pieces = len(piece_starts)
    c2t = char_to_token(n_chars, token_starts, token_lengths, token_is_space)
    solid = (c2t >= 0) & ~whitespace_mask(text)
    solid_pos = np.flatnonzero(solid)
    if n_pieces == 0 or len(solid_pos) == 0:
        return Ragged(np.zeros(n_pieces + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    s = np.clip(piece_starts, 0, n_chars).astype(np.int64)
    e = np.clip(piece_ends, 0, n_chars).astype(np.int64)
    last = len(solid_pos) - 1
    # First solid character at or after s, last solid character before e.
    i_first = np.searchsorted(solid_pos, s, side="left")
    i_last = np.searchsorted(solid_pos, e, side="left") - 1
    overlaps = (i_first <= i_last) & (e > s)
    first_tok = c2t[solid_pos[np.clip(i_first, 0, last)]]
    last_tok = c2t[solid_pos[np.clip(i_last, 0, last)]]
    # No solid character in the piece: the next token (or the previous one at the end).
    nearest = np.where(i_first <= last, first_tok, c2t[solid_pos[last]])
    lo = np.where(overlaps, first_tok, nearest)
    hi = np.where(overlaps, last_tok, nearest)
    lo = np.clip(lo, piece_first_token, piece_last_token)
    hi = np.clip(hi, piece_first_token, piece_last_token)
    lo = np.where(piece_is_boundary, piece_first_token, lo)
    hi = np.where(piece_is_boundary, piece_last_token, hi)

    counts = np.maximum(hi - lo + 1, 0)
    piece_ids = np.repeat(np.arange(n_pieces, dtype=np.int64), counts)
    offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    tokens = np.repeat(lo, counts) + offsets
    # A piece spanning "a  b" covers the whitespace token between a and b: drop it.
    keep = ~token_is_space[tokens]
    return Ragged.from_pairs(piece_ids[keep], tokens[keep], n_pieces)


def invert(piece_to_tokens: Ragged, n_tokens: int, keep_pieces: npt.NDArray[np.bool_]) -> Ragged:
    """Token → wordpieces from wordpiece → tokens, keeping only the pieces marked in ``keep_pieces``."""
    pieces = np.repeat(np.arange(len(piece_to_tokens), dtype=np.int64), piece_to_tokens.lengths())
    keep = keep_pieces[pieces]
    return Ragged.from_pairs(piece_to_tokens.indices[keep], pieces[keep], n_tokens)


def rebuild_matrix(piece_to_tokens: Ragged, n_tokens: int) -> RebuildMatrix:
    """The weights ``W`` (tokens × wordpieces) that rebuild ``doc.tensor`` from wordpiece rows:
    each wordpiece row is split evenly between the tokens aligned to it."""
    n_pieces = len(piece_to_tokens)
    lengths = piece_to_tokens.lengths()
    pieces = np.repeat(np.arange(n_pieces, dtype=np.int64), lengths)
    tokens = piece_to_tokens.indices
    order = np.lexsort((pieces, tokens))
    weights = (1.0 / np.maximum(lengths, 1)).astype(np.float32)[pieces[order]]
    indptr = np.zeros(n_tokens + 1, dtype=np.int64)
    if len(tokens):
        np.cumsum(np.bincount(tokens, minlength=n_tokens), out=indptr[1:])
    return RebuildMatrix(
        indptr=indptr, indices=pieces[order], weights=weights, shape=(n_tokens, n_pieces)
    )


def rebuild(matrix: RebuildMatrix, rows: FloatArray) -> FloatArray:
    """``W @ H`` on the host: one row per spaCy token from one row per wordpiece."""
    return rebuild_batch([matrix], rows)[0][0]


def rebuild_batch(
    matrices: Sequence[RebuildMatrix], rows: FloatArray
) -> tuple[list[FloatArray], IntArray]:
    """``W @ H`` for many docs in one pass: ``rows`` holds the docs' wordpiece rows end to end
    (doc ``i`` owns ``matrices[i].shape[1]`` of them, in order). Returns each doc's token rows
    (views of one array) and where each doc's tokens start in it.

    One block-diagonal sparse product (SciPy's CSR kernel: a loop in C++ that needs no
    temporary), 4-5x faster than a PyTorch gather and scatter-add per doc, and than one over the
    whole batch, whose (nnz × width) temporary costs more than the arithmetic."""
    from scipy import sparse

    count = len(matrices)
    n_tok = np.fromiter((m.shape[0] for m in matrices), dtype=np.int64, count=count)
    n_wp = np.fromiter((m.shape[1] for m in matrices), dtype=np.int64, count=count)
    nnz = np.fromiter((len(m.indices) for m in matrices), dtype=np.int64, count=count)
    if int(n_wp.sum()) != rows.shape[0]:
        raise ValueError(f"{rows.shape[0]} rows for matrices over {int(n_wp.sum())} wordpieces")
    tok_starts = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(n_tok, out=tok_starts[1:])
    bounds = tok_starts.tolist()
    if not nnz.sum():
        out = np.zeros((bounds[-1], rows.shape[1]), dtype=rows.dtype)
    else:
        nnz_starts = np.cumsum(nnz) - nnz
        indptr = np.concatenate(
            [m.indptr[:-1] + start for m, start in zip(matrices, nnz_starts.tolist())]
            + [nnz[-1:] + nnz_starts[-1:]]
        )
        pieces = np.concatenate([m.indices for m in matrices]) + np.repeat(
            np.cumsum(n_wp) - n_wp, nnz
        )
        weights = np.concatenate([m.weights for m in matrices]).astype(rows.dtype, copy=False)
        w = sparse.csr_matrix((weights, pieces, indptr), shape=(bounds[-1], rows.shape[0]))
        out = np.asarray(w @ rows, dtype=rows.dtype)
    return [out[a:b] for a, b in itertools.pairwise(bounds)], tok_starts
