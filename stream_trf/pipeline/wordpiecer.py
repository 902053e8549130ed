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
import srsly
from spacy.attrs import IDX, IS_SPACE, LENGTH, ORTH, SENT_START, SPACY
from spacy.language import Language
from spacy.tokens import Doc

from ..errors import MissingSentenceBoundaries
from ..model.source import DEFAULT_MODEL, load_tokenizer, resolve_model_dir
from ..text.alignment import align_pieces, invert, rebuild_matrix
from ..text.wordpieces import class_token_position, tokenize_sentences
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
    """spaCy component: sentences → wordpieces + alignment (``doc._.trf_pieces``)."""

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
        self._class_token = class_token_position(self._tokenizer, _summary_type(Path(model_dir)))
        unk = getattr(self._tokenizer, "unk_token_id", None)
        self._unk_id = unk if isinstance(unk, int) else None

    def initialize(self, get_examples: Any = None, *, nlp: Any = None) -> None:
        if self._tokenizer is None:
            self.load(resolve_model_dir(self.cfg["model"]))

    # --- processing ----------------------------------------------------------------------

    def set_annotations(self, docs: list[Doc]) -> None:
        """Tokenize every sentence of ``docs`` in one tokenizer call and align them all at once.

        The alignment runs over the batch's texts end to end, with token and character indices
        shifted per doc (nothing aligns across docs: every piece is held inside its sentence),
        then each doc takes its block. Per-doc array calls were a third of this component's
        time, and it runs beside the model."""
        tokenizer = self.tokenizer
        texts: list[str] = []
        offsets: list[int] = []
        per_doc: list[list[tuple[int, int, int, int]]] = []
        doc_texts: list[str] = []
        token_arrays = []
        char_start = 0
        for doc in docs:
            sents = _encodable_sentences(doc, self.name)
            per_doc.append(sents)
            text = doc_text(doc)
            doc_texts.append(text)
            token_arrays.append(doc.to_array([IDX, LENGTH, IS_SPACE]).reshape(len(doc), 3))
            for _first, _last, start_char, end_char in sents:
                texts.append(text[start_char:end_char])
                offsets.append(char_start + start_char)
            char_start += len(text)
        batch = tokenize_sentences(tokenizer, texts, offsets)

        n_docs = len(docs)
        n_tok = np.fromiter(map(len, token_arrays), dtype=np.int64, count=n_docs)
        n_sent = np.fromiter(map(len, per_doc), dtype=np.int64, count=n_docs)
        tok_starts = _starts(n_tok)
        sent_starts = _starts(n_sent)
        char_starts = _starts(np.fromiter(map(len, doc_texts), dtype=np.int64, count=n_docs))
        tokens = (
            np.concatenate(token_arrays).astype(np.int64)
            if n_docs
            else np.zeros((0, 3), dtype=np.int64)
        )
        sent_arr = np.array([s for sents in per_doc for s in sents], dtype=np.int64).reshape(-1, 4)
        sent_tokens = sent_arr[:, :2] + np.repeat(tok_starts[:-1], n_sent)[:, None]
        lengths = np.diff(batch.bounds)
        is_boundary = batch.starts < 0
        piece_to_tokens = align_pieces(
            "".join(doc_texts),
            tokens[:, 0] + np.repeat(char_starts[:-1], n_tok),
            tokens[:, 1],
            tokens[:, 2].astype(bool),
            batch.starts,
            batch.ends,
            is_boundary,
            np.repeat(sent_tokens[:, 0], lengths),
            np.repeat(sent_tokens[:, 1], lengths),
        )
        total_tok = int(tok_starts[-1])
        alignment = invert(piece_to_tokens, total_tok, ~is_boundary)
        rebuild = rebuild_matrix(piece_to_tokens, total_tok)
        piece_starts = batch.bounds[sent_starts].tolist()
        t_bounds, s_bounds = tok_starts.tolist(), sent_starts.tolist()
        for d, doc in enumerate(docs):
            t0, t1 = t_bounds[d], t_bounds[d + 1]
            s0, s1 = s_bounds[d], s_bounds[d + 1]
            p0, p1 = piece_starts[d], piece_starts[d + 1]
            doc._.trf_pieces = DocWordpieces(
                # A doc owns its arrays, not views of the whole batch.
                ids=batch.ids[p0:p1].copy(),
                strings=batch.strings[p0:p1],
                type_ids=None if batch.type_ids is None else batch.type_ids[p0:p1].copy(),
                is_boundary=is_boundary[p0:p1].copy(),
                sentence_starts=batch.bounds[s0 : s1 + 1] - p0,
                sentence_prefix=batch.n_prefix[s0:s1].copy(),
                sentence_suffix=batch.n_suffix[s0:s1].copy(),
                sentence_chars=sent_arr[s0:s1, 2:4].copy(),
                alignment=alignment.block(t0, t1, p0),
                rebuild=rebuild.block(t0, t1, p0, p1),
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


def _summary_type(model_dir: Path) -> str | None:
    """The model config's ``summary_type`` (how its classification head reads a sentence)."""
    config = model_dir / "config.json"
    if not config.exists():
        return None
    value = srsly.read_json(config).get("summary_type")
    return value if isinstance(value, str) else None


def _starts(counts: np.ndarray) -> np.ndarray:
    """Where each of consecutive blocks of ``counts`` items starts, and the total at the end."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


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
