"""``trf_wordpiecer``: each sentence → the model's own wordpieces, aligned to spaCy's tokens.

Runs the tokenizer on all sentences of a batch of docs in one call, and stores on each doc a
:class:`DocWordpieces` — ids, strings, boundary tokens, the token ↔ wordpiece alignment and the
rebuild matrix that ``trf_tok2vec`` uses for ``doc.tensor``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from spacy.attrs import IDX, IS_SPACE, LENGTH, ORTH, SENT_START, SPACY
from spacy.language import Language
from spacy.tokens import Doc

from ..errors import MissingSentenceBoundaries
from ..model.source import DEFAULT_MODEL, load_tokenizer, resolve_model_dir
from ..text.alignment import align_pieces, invert, rebuild_matrix
from ..text.wordpieces import PieceBatch, class_token_position, tokenize_sentences
from .base import BatchPipe
from .extensions import DocWordpieces, install_extensions

install_extensions()


@Language.factory(
    "trf_wordpiecer",
    default_config={"model": DEFAULT_MODEL},
)
def make_wordpiecer(nlp: Language, name: str, model: str) -> TransformerWordpiecer:
    """Tokenize each sentence with the model's own tokenizer and align it to spaCy's tokens.

    model: a model name or directory (resolved locally; nothing is downloaded).
    """
    return TransformerWordpiecer(nlp.vocab, model=model, name=name)


class TransformerWordpiecer(BatchPipe):
    """spaCy component: sentences → wordpieces + alignment (``doc._.trf_data``)."""

    hf_dir_name = "tokenizer"

    def __init__(
        self, vocab: Any, model: str = DEFAULT_MODEL, name: str = "trf_wordpiecer"
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.cfg: dict[str, Any] = {"model": model}
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
        self._class_token = class_token_position(self._tokenizer)
        unk = getattr(self._tokenizer, "unk_token_id", None)
        self._unk_id = unk if isinstance(unk, int) else None

    def initialize(self, get_examples: Any = None, *, nlp: Any = None) -> None:
        if self._tokenizer is None:
            self.load(resolve_model_dir(self.cfg["model"]))

    # --- processing ----------------------------------------------------------------------

    def set_annotations(self, docs: list[Doc]) -> None:
        """Tokenize every sentence of ``docs`` in one tokenizer call, then align per doc."""
        tokenizer = self.tokenizer
        texts: list[str] = []
        offsets: list[int] = []
        per_doc: list[list[tuple[int, int, int, int]]] = []
        doc_texts = []
        for doc in docs:
            sents = _encodable_sentences(doc, self.name)
            per_doc.append(sents)
            text = doc_text(doc)
            doc_texts.append(text)
            for _first, _last, start_char, end_char in sents:
                texts.append(text[start_char:end_char])
                offsets.append(start_char)
        batch = tokenize_sentences(tokenizer, texts, offsets)
        k = 0
        for doc, text, sents in zip(docs, doc_texts, per_doc):
            doc._.trf_data = self._doc_wordpieces(doc, text, sents, batch, k)
            k += len(sents)

    def _doc_wordpieces(
        self,
        doc: Doc,
        text: str,
        sents: list[tuple[int, int, int, int]],
        batch: PieceBatch,
        first_sentence: int,
    ) -> DocWordpieces:
        """The doc's slice of ``batch`` (its sentences are ``first_sentence`` onwards)."""
        n_tok = len(doc)
        n_sents = len(sents)
        sentence_bounds = batch.bounds[first_sentence : first_sentence + n_sents + 1]
        a, b = int(sentence_bounds[0]), int(sentence_bounds[-1])
        lengths = np.diff(sentence_bounds)
        ids = batch.ids[a:b].copy()  # a doc owns its arrays, not a view of the whole batch
        p_starts = batch.starts[a:b]
        p_ends = batch.ends[a:b]
        type_ids = None if batch.type_ids is None else batch.type_ids[a:b].copy()
        is_boundary = p_starts < 0
        sent_arr = np.array(sents, dtype=np.int64).reshape(-1, 4)
        first_tok = np.repeat(sent_arr[:, 0], lengths)
        last_tok = np.repeat(sent_arr[:, 1], lengths)

        arr = doc.to_array([IDX, LENGTH, IS_SPACE]).reshape(n_tok, 3).astype(np.int64)
        piece_to_tokens = align_pieces(
            text,
            arr[:, 0],
            arr[:, 1],
            arr[:, 2].astype(bool),
            p_starts,
            p_ends,
            is_boundary,
            first_tok,
            last_tok,
        )
        return DocWordpieces(
            ids=ids,
            strings=batch.strings[a:b],
            type_ids=type_ids,
            is_boundary=is_boundary,
            sentence_starts=sentence_bounds - a,
            sentence_prefix=batch.n_prefix[first_sentence : first_sentence + n_sents].copy(),
            sentence_suffix=batch.n_suffix[first_sentence : first_sentence + n_sents].copy(),
            sentence_chars=sent_arr[:, 2:4],
            alignment=invert(piece_to_tokens, n_tok, ~is_boundary),
            rebuild=rebuild_matrix(piece_to_tokens, n_tok),
            class_token=self._class_token,
            unk_id=self._unk_id,
        )

    # --- serialization -------------------------------------------------------------------

    def save_hf(self, hf_dir: Path) -> None:
        tokenizer = self.tokenizer
        assert self._model_dir is not None
        tokenizer.save_pretrained(str(hf_dir))
        # The model's config names its family; the tokenizer directory stays self-describing.
        shutil.copy(self._model_dir / "config.json", hf_dir / "config.json")


def doc_text(doc: Doc) -> str:
    """``doc.text``, without building a Token object per token as spaCy's property does (that
    was a third of this component's time): each token's string, and a space where it has one."""
    strings = doc.vocab.strings
    arr = doc.to_array([ORTH, SPACY]).tolist()
    return "".join([strings[orth] + " " if space else strings[orth] for orth, space in arr])


def _encodable_sentences(doc: Doc, component: str) -> list[tuple[int, int, int, int]]:
    """Per sentence with at least one non-whitespace token: (first, last) non-whitespace token
    and the character span between them. Whitespace-only sentences are not encoded."""
    if len(doc) == 0:
        return []
    if not doc.has_annotation("SENT_START"):
        raise MissingSentenceBoundaries(
            f"{component} needs sentence boundaries, and this doc has none. Add a sentence "
            f"component before it: nlp.add_pipe('sentencizer', before='{component}') "
            "(or a parser / senter). stream_trf.load() does this for you."
        )
    # One to_array call instead of Python-level iteration over doc.sents and its tokens.
    arr = doc.to_array([SENT_START, IS_SPACE, IDX, LENGTH]).reshape(len(doc), 4)
    is_space = arr[:, 1].astype(bool)
    starts = np.flatnonzero(arr[:, 0] == 1)
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    ends = np.append(starts[1:], len(doc))
    out = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        solid = np.flatnonzero(~is_space[start:end])
        if len(solid) == 0:
            continue
        first = start + int(solid[0])
        last = start + int(solid[-1])
        out.append((first, last, int(arr[first, 2]), int(arr[last, 2] + arr[last, 3])))
    return out


__all__ = ["TransformerWordpiecer", "make_wordpiecer"]
