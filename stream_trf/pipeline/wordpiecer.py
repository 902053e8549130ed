"""``trf_wordpiecer``: each sentence → the model's own wordpieces, aligned to spaCy's tokens.

Runs the tokenizer on all sentences of a batch of docs in one call, and stores on each doc a
:class:`DocWordpieces` — ids, strings, boundary tokens, and (computed on first use) the token ↔
wordpiece alignment and the rebuild matrix that ``trf_tok2vec`` uses for ``doc.tensor``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import srsly
from spacy.attrs import ORTH, SPACY
from spacy.language import Language
from spacy.tokens import Doc

from ..errors import MissingSentenceBoundaries
from ..model.source import DEFAULT_MODEL, load_tokenizer, resolve_model_dir
from ..text.wordpieces import class_token_position, tokenize_sentences
from .base import BatchPipe
from .extensions import (
    T_IDX,
    T_IS_SPACE,
    T_LENGTH,
    T_SENT_START,
    TOKEN_ATTRS,
    DocWordpieces,
    _starts,
    install_extensions,
    kept_text,
    set_doc_pieces,
)

install_extensions()


@Language.factory(
    "trf_wordpiecer",
    default_config={"model": DEFAULT_MODEL, "alignment": True},
)
def make_wordpiecer(
    nlp: Language, name: str, model: str, alignment: bool = True
) -> TransformerWordpiecer:
    """Tokenize each sentence with the model's own tokenizer and align it to spaCy's tokens.

    model: a model name or directory (resolved locally; nothing is downloaded).
    alignment: keep what the token ↔ wordpiece alignment is computed from (the pieces'
        character offsets). False skips reading them, for a pipeline that needs no
        ``doc.tensor``, token vectors or alignment (``trf_tok2vec`` with ``outputs="pooled"``
        and ``doc_tensor=False``: the worker's, unless its records carry tokens or wordpieces);
        asking such a doc for its alignment raises :class:`~stream_trf.errors.AlignmentNotKept`.
    """
    return TransformerWordpiecer(nlp.vocab, model=model, name=name, alignment=alignment)


class TransformerWordpiecer(BatchPipe):
    """spaCy component: sentences → wordpieces + alignment (``doc._.trf_pieces``)."""

    hf_dir_name = "tokenizer"

    def __init__(
        self,
        vocab: Any,
        model: str = DEFAULT_MODEL,
        name: str = "trf_wordpiecer",
        alignment: bool = True,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.cfg: dict[str, Any] = {"model": model, "alignment": alignment}
        self._tokenizer: Any = None
        self._class_token: int | None = None
        self._unk_id: int | None = None
        self._model_dir: Path | None = None

    # --- model loading -------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self.load(resolve_model_dir(self.cfg["model"]))
        return self._tokenizer

    def load(self, model_dir: Path) -> None:
        self._tokenizer = load_tokenizer(Path(model_dir))
        self._model_dir = Path(model_dir)
        self._class_token = class_token_position(self._tokenizer, _summary_type(Path(model_dir)))
        unk = getattr(self._tokenizer, "unk_token_id", None)
        self._unk_id = unk if isinstance(unk, int) else None

    def initialize(self, get_examples: Any = None, *, nlp: Any = None) -> None:
        if self._tokenizer is None:
            self.load(resolve_model_dir(self.cfg["model"]))

    # --- processing ----------------------------------------------------------------------

    def set_annotations(self, docs: list[Doc]) -> None:
        """Tokenize every sentence of ``docs`` in one tokenizer call.

        Sentences are found for the whole batch at once, over the docs' token arrays end to end
        (per-doc array calls were a third of this component's time, and it runs beside the
        model). The alignment to spaCy's tokens is left for first use (``DocWordpieces``): each
        doc keeps the character spans it is computed from, unless ``alignment`` is off."""
        tokenizer = self.tokenizer
        keep = bool(self.cfg.get("alignment", True))
        n_docs = len(docs)
        arrays = [_token_array(doc, self.name) for doc in docs]
        n_tok = np.fromiter(map(len, arrays), dtype=np.int64, count=n_docs)
        tok_starts = _starts(n_tok)
        columns = (
            np.concatenate(arrays).astype(np.int64)  # ORTH's hash wraps: nothing here reads it
            if n_docs
            else np.zeros((0, _COLUMNS), dtype=np.int64)
        )
        tokens = columns[:, :_ORTH]
        doc_texts = _texts(docs, arrays, columns, tok_starts)
        char_starts = _starts(np.fromiter(map(len, doc_texts), dtype=np.int64, count=n_docs))
        sentences = encodable_sentences(tokens, tok_starts)  # (n_sent, 5): doc, first, last, chars
        n_sent = np.bincount(sentences[:, 0], minlength=n_docs)
        sent_starts = _starts(n_sent)
        whole = "".join(doc_texts)
        global_chars = sentences[:, 3:5] + char_starts[sentences[:, 0], None]
        texts = [whole[a:b] for a, b in global_chars.tolist()]
        # offsets relative to each sentence's doc
        batch = tokenize_sentences(tokenizer, texts, sentences[:, 3].tolist(), offsets=keep)
        sent_tokens = sentences[:, 1:3] - tok_starts[sentences[:, 0], None]  # doc-relative
        sent_chars = sentences[:, 3:5]  # doc-relative character spans
        is_boundary = batch.is_boundary
        piece_chars = (
            np.stack([batch.starts, batch.ends], axis=1)
            if batch.starts is not None and batch.ends is not None
            else None
        )
        piece_starts = batch.bounds[sent_starts].tolist()
        t_bounds, s_bounds = tok_starts.tolist(), sent_starts.tolist()
        for d, doc in enumerate(docs):
            t0, t1 = t_bounds[d], t_bounds[d + 1]
            s0, s1 = s_bounds[d], s_bounds[d + 1]
            p0, p1 = piece_starts[d], piece_starts[d + 1]
            set_doc_pieces(
                doc,
                DocWordpieces(
                    # A doc owns its arrays, not views of the whole batch.
                    ids=batch.ids[p0:p1].copy(),
                    strings=batch.strings[p0:p1],
                    type_ids=None if batch.type_ids is None else batch.type_ids[p0:p1].copy(),
                    is_boundary=is_boundary[p0:p1].copy(),
                    sentence_starts=batch.bounds[s0 : s1 + 1] - p0,
                    sentence_prefix=batch.n_prefix[s0:s1].copy(),
                    sentence_suffix=batch.n_suffix[s0:s1].copy(),
                    sentence_chars=sent_chars[s0:s1].copy(),
                    class_token=self._class_token,
                    unk_id=self._unk_id,
                    text=doc_texts[d],
                    tokens=tokens[t0:t1].copy(),
                    piece_chars=None if piece_chars is None else piece_chars[p0:p1].copy(),
                    sentence_tokens=sent_tokens[s0:s1].copy(),
                ),
            )

    # --- serialization -------------------------------------------------------------------

    def save_hf(self, hf_dir: Path) -> None:
        tokenizer = self.tokenizer
        assert self._model_dir is not None
        tokenizer.save_pretrained(str(hf_dir))
        # The model's config names its family; the tokenizer directory stays self-describing.
        shutil.copy(self._model_dir / "config.json", hf_dir / "config.json")


def _summary_type(model_dir: Path) -> str | None:
    """The model config's ``summary_type`` (how its classification head reads a sentence)."""
    config = model_dir / "config.json"
    if not config.exists():
        return None
    value = srsly.read_json(config).get("summary_type")
    return value if isinstance(value, str) else None


# The columns of a doc's token array (one ``to_array`` call per doc): what ``DocWordpieces``
# keeps (``TOKEN_ATTRS``), then ORTH and SPACY, which only rebuild a text.
_ATTRS = [*TOKEN_ATTRS, ORTH, SPACY]
_ORTH, _SPACY = len(TOKEN_ATTRS), len(TOKEN_ATTRS) + 1
_COLUMNS = len(_ATTRS)


def _token_array(doc: Doc, component: str) -> np.ndarray:
    """Everything this component reads of a doc's tokens, in one ``to_array`` call."""
    if len(doc) and not doc.has_annotation("SENT_START"):
        raise MissingSentenceBoundaries(
            f"{component} needs sentence boundaries, and this doc has none. Add a sentence "
            f"component before it: nlp.add_pipe('sentencizer', before='{component}') "
            "(or a parser / senter). stream_trf.load() does this for you."
        )
    return doc.to_array(_ATTRS).reshape(len(doc), _COLUMNS)  # uint64: ORTH is a hash


def _texts(
    docs: list[Doc], arrays: list[np.ndarray], columns: np.ndarray, tok_starts: np.ndarray
) -> list[str]:
    """Each doc's text: the one its maker kept (``kept_text``) where its length is what the
    doc's tokens span, else rebuilt from the tokens."""
    spanned = np.zeros(len(columns) + 1, dtype=np.int64)
    np.cumsum(columns[:, T_LENGTH] + columns[:, _SPACY], out=spanned[1:])
    lengths = (spanned[tok_starts[1:]] - spanned[tok_starts[:-1]]).tolist()
    texts = []
    for doc, arr, n_chars in zip(docs, arrays, lengths):
        kept = kept_text(doc)
        texts.append(kept if kept is not None and len(kept) == n_chars else _text(doc, arr))
    return texts


def _text(doc: Doc, arr: np.ndarray) -> str:
    """``doc.text`` from its token array: spaCy's property builds a Token object per token."""
    strings = doc.vocab.strings
    return "".join(
        [
            strings[orth] + " " if space else strings[orth]
            for orth, space in arr[:, _ORTH : _SPACY + 1].tolist()
        ]
    )


def doc_text(doc: Doc) -> str:
    """``doc.text``, without building a Token object per token as spaCy's property does."""
    return _text(doc, doc.to_array(_ATTRS).reshape(len(doc), _COLUMNS))


def encodable_sentences(tokens: np.ndarray, doc_starts: np.ndarray) -> np.ndarray:
    """The sentences of a batch of docs that hold a non-whitespace token, for the whole batch
    at once: rows of (doc, first, last, start_char, end_char) — the first and last
    non-whitespace token (batch-wide indices) and the doc-relative character span between them.
    Whitespace-only sentences are not encoded. ``tokens`` are the docs' token arrays (the
    ``TOKEN_ATTRS`` columns, as int64) end to end, ``doc_starts`` where each doc's
    tokens start."""
    n = len(tokens)
    if n == 0:
        return np.zeros((0, 5), dtype=np.int64)
    is_start = tokens[:, T_SENT_START] == 1
    is_start[doc_starts[:-1][doc_starts[:-1] < n]] = True  # each doc starts a sentence
    sentence = np.cumsum(is_start) - 1
    solid = np.flatnonzero(tokens[:, T_IS_SPACE] == 0)
    if len(solid) == 0:
        return np.zeros((0, 5), dtype=np.int64)
    owner = sentence[solid]
    first_of = np.flatnonzero(np.diff(owner, prepend=-1) != 0)
    first = solid[first_of]
    last = solid[np.append(first_of[1:], len(solid)) - 1]
    doc = np.searchsorted(doc_starts, first, side="right") - 1
    start_char = tokens[first, T_IDX]
    end_char = tokens[last, T_IDX] + tokens[last, T_LENGTH]
    return np.stack([doc, first, last, start_char, end_char], axis=1)


__all__ = ["TransformerWordpiecer", "make_wordpiecer"]
