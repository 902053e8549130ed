"""Sentences → the model's own wordpieces, boundary tokens placed as the model was pretrained.

Nothing here knows model names. The tokenizer's post-processor puts the boundary tokens where
its family expects them (BERT ``[CLS] … [SEP]``, RoBERTa ``<s> … </s>``, XLNet ``… <sep> <cls>``,
GPT-2 none at all); we read them back from the special-tokens mask and remember, per sentence,
how many sit before and after the content, so that long sentences can be cut into windows that
each carry the same boundary tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SentencePieces:
    """One sentence as the model sees it, offsets already shifted into the doc's text."""

    ids: IntArray  # the full sequence, boundary tokens included
    type_ids: IntArray | None  # token type ids, when the tokenizer produces them
    starts: IntArray  # character offsets in the doc; boundary tokens: -1
    ends: IntArray
    n_prefix: int  # boundary tokens before the content
    n_suffix: int  # boundary tokens after the content
    strings: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def uses_token_types(tokenizer: Any) -> bool:
    """Whether the model expects token type ids (decided by the tokenizer, not by a name)."""
    return "token_type_ids" in getattr(tokenizer, "model_input_names", ())


def tokenize_sentences(
    tokenizer: Any, texts: Sequence[str], char_offsets: Sequence[int]
) -> list[SentencePieces]:
    """Tokenize many sentences in one call to the (Rust) tokenizer.

    ``char_offsets[i]`` is where ``texts[i]`` starts in its doc.
    """
    if not texts:
        return []
    with_types = uses_token_types(tokenizer)
    enc = tokenizer(
        list(texts),
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_token_type_ids=with_types,
        return_attention_mask=False,
        truncation=False,
        verbose=False,
    )
    guarded = _injectable_ids(tokenizer)
    unk_id, unk = tokenizer.unk_token_id, tokenizer.unk_token
    out: list[SentencePieces] = []
    for i, base in enumerate(char_offsets):
        ids = np.asarray(enc["input_ids"][i], dtype=np.int64)
        special = np.asarray(enc["special_tokens_mask"][i], dtype=bool)
        strings = enc.tokens(i)
        if len(guarded):
            # A vocabulary that holds its special tokens as ordinary pieces (a Unigram model
            # trained with them) can still match "<cls>" typed in a document: such a piece
            # would act as a real boundary token. It becomes the unknown token instead.
            injected = ~special & np.isin(ids, guarded)
            if injected.any():
                ids = np.where(injected, unk_id, ids)
                strings = [unk if bad else t for t, bad in zip(strings, injected.tolist())]
        offsets = np.asarray(enc["offset_mapping"][i], dtype=np.int64).reshape(-1, 2)
        content = np.flatnonzero(~special)
        if len(content):
            n_prefix = int(content[0])
            n_suffix = len(ids) - int(content[-1]) - 1
        else:
            n_prefix, n_suffix = len(ids), 0
        starts = np.where(special, -1, offsets[:, 0] + base)
        ends = np.where(special, -1, offsets[:, 1] + base)
        types = np.asarray(enc["token_type_ids"][i], dtype=np.int64) if with_types else None
        out.append(
            SentencePieces(
                ids=ids,
                type_ids=types,
                starts=starts,
                ends=ends,
                n_prefix=n_prefix,
                n_suffix=n_suffix,
                strings=strings,
            )
        )
    return out


def _injectable_ids(tokenizer: Any) -> IntArray:
    """Special ids that text must never produce (all but the unknown token's)."""
    if getattr(tokenizer, "unk_token_id", None) is None:
        return np.zeros(0, dtype=np.int64)
    ids = set(getattr(tokenizer, "all_special_ids", ())) - {tokenizer.unk_token_id}
    return np.array(sorted(ids), dtype=np.int64)


def class_token_position(tokenizer: Any) -> int | None:
    """Where the model's class token sits in a sentence: ``0`` first (BERT, RoBERTa),
    ``-1`` last (XLNet), ``None`` when the tokenizer adds no boundary tokens (GPT-2).

    Probed from the tokenizer itself on a short text.
    """
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
