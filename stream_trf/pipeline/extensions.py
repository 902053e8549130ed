"""The ``doc._.trf_*`` attributes, and hooks that make ``.vector`` / ``.similarity`` use the
transformer instead of a static vectors table.

Each doc carries two objects: :class:`DocWordpieces` in ``doc._.trf_pieces`` (set by
``trf_wordpiecer``) and :class:`TransformerOutputs` in ``doc._.trf_outputs`` (set by
``trf_tok2vec``); the other public attributes are views of them.

spacy-transformers owns ``doc._.trf_data``: nothing here reads or writes it, so both libraries
run in one process in either order. Each attribute is registered on its own, and registering
again is a no-op; a name that another library registered with its own getter is an
:class:`~stream_trf.errors.ExtensionConflict`, never silently taken over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from spacy.attrs import IDX, IS_PUNCT, IS_SPACE, LENGTH, SENT_START
from spacy.tokens import Doc, Span, Token

from ..errors import AlignmentNotKept, ExtensionConflict, RowsNotKept
from ..text.alignment import Ragged, RebuildMatrix, align_pieces, invert, rebuild, rebuild_matrix

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

# What the wordpiecer reads of each token (one ``to_array`` call per doc) and keeps in
# ``DocWordpieces.tokens``: the alignment and the enriched record's figures read it from there
# instead of asking spaCy again.
TOKEN_ATTRS = (SENT_START, IS_SPACE, IDX, LENGTH, IS_PUNCT)
T_SENT_START, T_IS_SPACE, T_IDX, T_LENGTH, T_IS_PUNCT = range(len(TOKEN_ATTRS))


@dataclass
class DocWordpieces:
    """Every sentence of a doc as the model sees it, concatenated, and how it aligns.

    The alignment and the rebuild matrix are computed on first use, from the character spans
    kept here: a pipeline that keeps only pooled outputs (the worker's, unless its records
    carry tokens or wordpieces) never needs them. :func:`align_docs` computes them for a whole
    batch of docs in one pass, as ``trf_tok2vec`` does before it rebuilds ``doc.tensor``."""

    ids: IntArray  # (n_wp,) ids in the model's vocabulary, boundary tokens included
    strings: list[str]  # (n_wp,) the wordpiece strings
    type_ids: IntArray | None  # (n_wp,) token type ids, when the model uses them
    is_boundary: npt.NDArray[np.bool_]  # (n_wp,) boundary tokens ([CLS], [SEP], <cls>, ...)
    sentence_starts: IntArray  # (n_sent + 1,) wordpiece offsets of the encoded sentences
    sentence_prefix: IntArray  # (n_sent,) boundary tokens before each sentence's content
    sentence_suffix: IntArray  # (n_sent,) boundary tokens after it
    sentence_chars: IntArray  # (n_sent, 2) character span of each encoded sentence
    class_token: int | None  # position of the class token within a sentence (0, -1 or None)
    unk_id: int | None = None  # the tokenizer's unknown token, when it has one
    # what the alignment is computed from
    text: str = ""  # the doc's text
    tokens: IntArray = field(default_factory=lambda: np.zeros((0, len(TOKEN_ATTRS)), np.int64))
    # (n_tok, 5): each token's ``TOKEN_ATTRS`` as int64 (SENT_START: 1, 0 or -1)
    piece_chars: IntArray | None = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    # (n_wp, 2): each wordpiece's character span in the text (boundary tokens: -1); None when
    # the wordpiecer ran with alignment=False
    sentence_tokens: IntArray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    # (n_sent, 2): each encoded sentence's first and last non-whitespace token
    _aligned: tuple[Ragged, RebuildMatrix] | None = field(default=None, repr=False)

    @property
    def n_sentences(self) -> int:
        return len(self.sentence_prefix)

    @property
    def alignment(self) -> Ragged:
        """Token → content wordpieces (boundary tokens excluded)."""
        return self._align()[0]

    @property
    def rebuild(self) -> RebuildMatrix:
        """``W``, tokens × wordpieces: ``doc.tensor = W @ rows``."""
        return self._align()[1]

    def _align(self) -> tuple[Ragged, RebuildMatrix]:
        if self._aligned is None:
            align_docs([self])
        assert self._aligned is not None
        return self._aligned

    def sentence(self, i: int) -> slice:
        return slice(int(self.sentence_starts[i]), int(self.sentence_starts[i + 1]))

    def class_token_rows(self) -> IntArray:
        """Per sentence: the wordpiece index of its class token (first row when there is none)."""
        starts = self.sentence_starts[:-1]
        if self.class_token is None or self.class_token >= 0:
            return starts + (self.class_token or 0)
        return self.sentence_starts[1:] + self.class_token


def _starts(counts: IntArray) -> IntArray:
    """Where each of consecutive blocks of ``counts`` items starts, and the total at the end."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def align_docs(wps: Sequence[DocWordpieces]) -> None:
    """Compute the alignment and rebuild matrix of every doc in ``wps`` that lacks them, in one
    pass over the docs' texts end to end (token and character indices shifted per doc; nothing
    aligns across docs, every piece is held inside its sentence), then give each doc its block.
    Per-doc array calls cost more than the alignment itself."""
    todo = [wp for wp in wps if wp._aligned is None]
    if not todo:
        return
    if any(wp.piece_chars is None for wp in todo):
        raise AlignmentNotKept(
            "This needs the token <-> wordpiece alignment (doc.tensor, token or span vectors, "
            "doc._.trf_alignment), but trf_wordpiecer ran with alignment=False and did not "
            "keep the wordpieces' character offsets. Load the pipeline with alignment=True "
            "(stream_trf.load(..., alignment=True)); the worker does so when records carry "
            "tokens or wordpieces (--emit-tokens, --emit-wordpieces)."
        )
    n = len(todo)
    n_tok = np.fromiter((len(wp.tokens) for wp in todo), dtype=np.int64, count=n)
    n_wp = np.fromiter((len(wp.ids) for wp in todo), dtype=np.int64, count=n)
    n_chars = np.fromiter((len(wp.text) for wp in todo), dtype=np.int64, count=n)
    tok_starts, wp_starts, char_starts = _starts(n_tok), _starts(n_wp), _starts(n_chars)
    tokens = np.concatenate([wp.tokens for wp in todo])
    pieces = (
        np.concatenate([cast(IntArray, wp.piece_chars) for wp in todo])
        + np.repeat(char_starts[:-1], n_wp)[:, None]
    )
    # per piece: the first and last token of its sentence, batch-wide
    sentence_tokens = (
        np.concatenate(
            [np.repeat(wp.sentence_tokens, np.diff(wp.sentence_starts), axis=0) for wp in todo]
        ).reshape(-1, 2)
        + np.repeat(tok_starts[:-1], n_wp)[:, None]
    )
    is_boundary = np.concatenate([wp.is_boundary for wp in todo])
    piece_to_tokens = align_pieces(
        "".join(wp.text for wp in todo),
        tokens[:, T_IDX] + np.repeat(char_starts[:-1], n_tok),
        tokens[:, T_LENGTH],
        tokens[:, T_IS_SPACE].astype(bool),
        pieces[:, 0],
        pieces[:, 1],
        is_boundary,
        sentence_tokens[:, 0],
        sentence_tokens[:, 1],
    )
    total_tok = int(tok_starts[-1])
    alignment = invert(piece_to_tokens, total_tok, ~is_boundary)
    matrix = rebuild_matrix(piece_to_tokens, total_tok)
    t_bounds, p_bounds = tok_starts.tolist(), wp_starts.tolist()
    for d, wp in enumerate(todo):
        t0, t1, p0, p1 = t_bounds[d], t_bounds[d + 1], p_bounds[d], p_bounds[d + 1]
        wp._aligned = (alignment.block(t0, t1, p0), matrix.block(t0, t1, p0, p1))


@dataclass
class PooledOutputs:
    """A doc's transformer rows reduced per sentence: what a pipeline that keeps no rows
    (``trf_tok2vec`` with ``outputs="pooled"``) still knows. Enough for ``doc.vector`` and the
    text classifier; a full batch of docs' rows (~38 MB for a worker's 256-doc buffer) is
    never held."""

    sentence_sums: FloatArray  # (n_sent, width): the sum of each sentence's rows
    class_rows: FloatArray  # (n_sent, width): each sentence's class-token row
    sentence_lengths: IntArray  # (n_sent,): wordpieces per sentence, boundary tokens included

    def mean(self) -> FloatArray:
        """The mean of all the doc's rows (zeros for an empty doc)."""
        n = int(self.sentence_lengths.sum())
        if n == 0:
            return np.zeros(self.sentence_sums.shape[1:], dtype=np.float32)
        return (self.sentence_sums.sum(axis=0) / n).astype(np.float32, copy=False)

    def sentence_means(self) -> FloatArray:
        means = self.sentence_sums / np.maximum(self.sentence_lengths, 1)[:, None]
        return means.astype(np.float32, copy=False)


@dataclass
class TransformerOutputs:
    """What the transformer computed for one doc: one row per wordpiece of ``DocWordpieces``,
    or with ``outputs="pooled"`` only their per-sentence :class:`PooledOutputs`."""

    last_hidden_state: Any  # (n_wp, width): numpy, or cupy on the device; None when pooled
    hidden_states: list[Any] | None = None  # per layer, same rows, when configured
    attentions: list[list[Any]] | None = None  # per model sequence: per layer (heads, L, L)
    attention_pieces: list[IntArray] | None = None  # per model sequence: its doc wordpiece rows
    windowed_wordpieces: int = 0  # wordpieces of sentences that needed more than one window
    model_name: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    pooled: PooledOutputs | None = None

    def require_rows(self, what: str) -> Any:
        """The rows, or a typed error that says how to get them."""
        if self.last_hidden_state is None:
            raise RowsNotKept(
                f"{what} needs the transformer's wordpiece rows, but trf_tok2vec ran with "
                "outputs='pooled' (the worker's choice when records carry no token vectors), "
                "which keeps only per-sentence sums and class-token rows. Load the pipeline "
                "with outputs='rows' (stream_trf.load(..., outputs='rows'))."
            )
        return self.last_hidden_state


# ``doc._.NAME`` lives in ``doc.user_data[("._.", NAME, None, None)]`` (spaCy's Underscore);
# the per-document paths read and write it there, without the Underscore object every
# ``doc._`` access builds (2.6 µs a read, against 0.1). tests/pipeline/test_extensions.py
# checks that both ways see the same value.
_PIECES_KEY = ("._.", "trf_pieces", None, None)
_OUTPUTS_KEY = ("._.", "trf_outputs", None, None)


def _data(doc: Doc) -> dict[Any, Any]:
    return cast(dict[Any, Any], doc.user_data)  # typed with str keys; Underscore's are tuples


def doc_pieces(doc: Doc) -> DocWordpieces | None:
    """``doc._.trf_pieces``."""
    return _data(doc).get(_PIECES_KEY)


def set_doc_pieces(doc: Doc, pieces: DocWordpieces) -> None:
    """``doc._.trf_pieces = pieces``."""
    _data(doc)[_PIECES_KEY] = pieces


def doc_outputs(doc: Doc) -> TransformerOutputs | None:
    """``doc._.trf_outputs``."""
    return _data(doc).get(_OUTPUTS_KEY)


def set_doc_outputs(doc: Doc, outputs: TransformerOutputs) -> None:
    """``doc._.trf_outputs = outputs``."""
    _data(doc)[_OUTPUTS_KEY] = outputs


_GRADIENT_KEY = ("._.", "trf_d_last_hidden_state", None, None)

# The text a doc was made from, where its maker kept it (the worker's processor does): spaCy
# keeps none, and rebuilding it costs a string lookup per token.
_TEXT_KEY = ("stream_trf", "text")


def keep_text(doc: Doc, text: str) -> None:
    """Keep the text ``doc`` was made from (``nlp.make_doc(text)``), for ``kept_text``."""
    _data(doc)[_TEXT_KEY] = text


def kept_text(doc: Doc) -> str | None:
    """The text kept by ``keep_text``, if any. Readers check it against the doc's tokens."""
    text = _data(doc).get(_TEXT_KEY)
    return text if isinstance(text, str) else None


def clear_doc_gradient(doc: Doc) -> None:
    """``doc._.trf_d_last_hidden_state = None`` (its default)."""
    _data(doc).pop(_GRADIENT_KEY, None)


_wp = doc_pieces
_out = doc_outputs


def _word_pieces(doc: Doc) -> IntArray | None:
    wp = _wp(doc)
    return None if wp is None else wp.ids


def _word_pieces_(doc: Doc) -> list[str] | None:
    wp = _wp(doc)
    return None if wp is None else wp.strings


def _alignment(doc: Doc) -> list[list[int]] | None:
    wp = _wp(doc)
    return None if wp is None else wp.alignment.to_lists()


def _last_hidden_state(doc: Doc) -> Any:
    out = _out(doc)
    return None if out is None else out.last_hidden_state


def _windowed(doc: Doc) -> int:
    out = _out(doc)
    return 0 if out is None else out.windowed_wordpieces


# (class, attribute, how it is registered): ``default`` attributes hold an object the
# components set; ``getter`` attributes are read-only views of those objects.
def _extensions() -> list[tuple[Any, str, dict[str, Any]]]:
    return [
        (Doc, "trf_pieces", {"default": None}),
        (Doc, "trf_outputs", {"default": None}),
        (Doc, "trf_d_last_hidden_state", {"default": None}),
        (Doc, "trf_word_pieces", {"getter": _word_pieces}),
        (Doc, "trf_word_pieces_", {"getter": _word_pieces_}),
        (Doc, "trf_alignment", {"getter": _alignment}),
        (Doc, "trf_last_hidden_state", {"getter": _last_hidden_state}),
        (Doc, "trf_windowed_wordpieces", {"getter": _windowed}),
        (Span, "trf_last_hidden_state", {"getter": _span_rows}),
    ]


def _same_function(a: Any, b: Any) -> bool:
    """The same function, also across a reload of this module (a new object, same name)."""
    return a is b or (
        a is not None
        and b is not None
        and getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


def install_extensions() -> None:
    """Register the ``doc._.trf_*`` attributes, each on its own (idempotent).

    An attribute already registered the same way is left alone, whoever was first; one that
    another library registered with a different getter raises :class:`ExtensionConflict`."""
    for cls, name, how in _extensions():
        if not cls.has_extension(name):
            cls.set_extension(name, **how)
            continue
        _default, method, getter, _setter = cls.get_extension(name)
        want = how.get("getter")
        if want is None and getter is None and method is None:
            continue  # a plain attribute, as ours: nothing to do
        if want is not None and _same_function(getter, want):
            if getter is not want:  # this module was reloaded: point at its new function
                cls.set_extension(name, force=True, **how)
            continue
        owner = getattr(getter or method, "__module__", None) or "another library"
        raise ExtensionConflict(
            f"{cls.__name__}._.{name} is already registered by {owner} with a different "
            "meaning; stream_trf needs that attribute. Load the other library's pipeline in "
            "another process, or remove its extension first "
            f"({cls.__name__}.remove_extension({name!r}))."
        )


def _span_rows(span: Span) -> Any:
    """Wordpiece rows aligned to the span's tokens (boundary tokens excluded)."""
    wp, out = _wp(span.doc), _out(span.doc)
    if wp is None or out is None:
        return None
    hidden = out.require_rows("span._.trf_last_hidden_state")
    rows = np.unique(
        np.concatenate(
            [wp.alignment[i] for i in range(span.start, span.end)] or [np.zeros(0, np.int64)]
        )
    )
    return hidden[rows]


# --- vector / similarity hooks ---------------------------------------------------------------


def _norm(v: Any) -> float:
    return float(np.sqrt((v * v).sum()))


def _cosine(a: Any, b: Any) -> float:
    na, nb = _norm(a), _norm(b)
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float((a * b).sum() / (na * nb))


def doc_vector(doc: Doc) -> Any:
    """The mean of the doc's wordpiece rows (boundary tokens included): for a one-sentence doc
    this is the sentence-transformers mean-pooled embedding. Zeros for an empty doc."""
    out = _out(doc)
    if out is not None and out.last_hidden_state is None and out.pooled is not None:
        return out.pooled.mean()
    if out is None or len(out.last_hidden_state) == 0:
        width = doc.tensor.shape[1] if doc.tensor.ndim == 2 else 0
        return np.zeros((width,), dtype=np.float32)
    return out.last_hidden_state.mean(axis=0)


def token_rows(doc: Doc) -> Any:
    """``doc.tensor``: one row per spaCy token, built here from the wordpiece rows (and kept
    on the doc) when ``trf_tok2vec`` ran with ``doc_tensor=False`` and left it empty."""
    tensor = doc.tensor
    if tensor.ndim == 2 and tensor.shape[0] == len(doc):
        return tensor
    wp, out = _wp(doc), _out(doc)
    if wp is None or out is None:
        return tensor
    hidden = out.require_rows("doc.tensor (token and span vectors)")
    built: Any = rebuild(wp.rebuild, np.asarray(hidden, dtype=np.float32))
    doc.tensor = built
    return built


def span_vector(span: Span) -> Any:
    tensor = token_rows(span.doc)
    if len(span) == 0:
        return np.zeros((tensor.shape[1],), dtype=np.float32)
    return tensor[span.start : span.end].mean(axis=0)


def token_vector(token: Token) -> Any:
    return token_rows(token.doc)[token.i]


def _doc_norm(doc: Doc) -> float:
    return _norm(doc_vector(doc))


def _span_norm(span: Span) -> float:
    return _norm(span_vector(span))


def _token_norm(token: Token) -> float:
    return _norm(token_vector(token))


def _has_vector(obj: Any) -> bool:
    return True


def _similarity(a: Any, b: Any) -> float:
    return _cosine(a.vector, b.vector)


def set_vector_hooks(doc: Doc) -> None:
    """Point ``.vector``, ``.vector_norm``, ``.has_vector`` and ``.similarity`` of the doc, its
    spans and its tokens at the transformer's rows."""
    for hooks, vector, norm in (
        (doc.user_hooks, doc_vector, _doc_norm),
        (doc.user_span_hooks, span_vector, _span_norm),
        (doc.user_token_hooks, token_vector, _token_norm),
    ):
        hooks["vector"] = vector
        hooks["vector_norm"] = norm
        hooks["has_vector"] = _has_vector
        hooks["similarity"] = _similarity


install_extensions()
