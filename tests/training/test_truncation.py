"""Training on the head of long docs: ``truncate_to_wordpieces`` against the tokenizer itself."""

from __future__ import annotations

import pytest
from conftest import shared_descriptions

from stream_trf.model.source import DEFAULT_MODEL, load_tokenizer, resolve_model_dir
from stream_trf.training.data import truncate_to_wordpieces


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model_dir(DEFAULT_MODEL))


def _count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


@pytest.mark.parametrize("budget", [1, 7, 32, 128])
def test_prefix_within_budget_on_a_word_boundary_and_maximal(tokenizer, budget: int) -> None:
    texts = [r["text"] for r in shared_descriptions(300)]
    long = [t for t in texts if _count(tokenizer, t) > budget]
    assert len(long) > 20
    for text in long:
        cut = truncate_to_wordpieces(text, tokenizer, budget)
        assert text.startswith(cut)
        assert _count(tokenizer, cut) <= budget
        rest = text[len(cut) :]
        # No word is split: what follows the cut starts with whitespace, unless the first
        # whitespace-delimited word alone is over the budget.
        first_word_over = _count(tokenizer, text.split(maxsplit=1)[0]) > budget
        assert rest[:1].isspace() or first_word_over
        if first_word_over:
            continue
        # Maximal up to a word: adding the next whitespace-delimited word breaks the budget.
        nxt = rest.lstrip()
        end = len(text) - len(nxt) + (len(nxt.split(maxsplit=1)[0]) if nxt.strip() else 0)
        assert _count(tokenizer, text[:end]) > budget


def test_short_texts_and_no_cap_are_left_alone(tokenizer) -> None:
    text = "A small text."
    assert truncate_to_wordpieces(text, tokenizer, 128) == text
    long = "word " * 500
    assert truncate_to_wordpieces(long, tokenizer, 0) == long
