"""Sentences → the model's own wordpieces, boundary tokens where each family puts them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import spacy
from transformers import AutoTokenizer

import stream_trf.pipeline.wordpiecer  # noqa: F401  (registers the factory)
from stream_trf.model.source import load_tokenizer
from stream_trf.text.wordpieces import (
    class_token_position,
    rust_tokenizer,
    tokenize_sentences,
    uses_token_types,
)

# Where each family of tests/conftest.py puts its boundary tokens (its post-processor template).
BOUNDARY = {
    "bert": (["[CLS]"], ["[SEP]"]),
    "roberta": (["<s>"], ["</s>"]),
    "xlnet": ([], ["<sep>", "<cls>"]),
    "gpt2": ([], []),
}
CLASS_TOKEN = {"bert": 0, "roberta": 0, "xlnet": -1, "gpt2": None}

TEXTS = [
    "Here is some text to encode.",
    "Über café naïve résumé.",
    "東京は日本の首都です。",
    "a",
    "Emoji 😀🎉 and e\u0301 too!",
    "spaces   inside\tand\ttabs",
]
BASES = [0, 29, 120, 7, 3, 1000]


def _reference(model_dir: Path) -> AutoTokenizer:
    return AutoTokenizer.from_pretrained(str(model_dir), split_special_tokens=True)


def test_tokenize_sentences_matches_the_tokenizer(family: str, tiny_dir: Path) -> None:
    ref = _reference(tiny_dir)
    out = tokenize_sentences(load_tokenizer(tiny_dir), TEXTS, BASES)
    assert len(out) == len(TEXTS)
    prefix, suffix = BOUNDARY[family]
    with_types = "token_type_ids" in ref.model_input_names
    for sp, text, base in zip(out, TEXTS, BASES):
        enc = ref(
            text,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_token_type_ids=True,
        )
        ids = enc["input_ids"]
        assert sp.ids.tolist() == ids
        assert sp.strings == enc.tokens()
        assert len(sp) == len(ids)
        # boundary tokens where the family puts them, and only there
        assert (sp.n_prefix, sp.n_suffix) == (len(prefix), len(suffix))
        assert sp.strings[: sp.n_prefix] == prefix
        assert sp.strings[len(sp) - sp.n_suffix :] == suffix
        special = np.asarray(enc["special_tokens_mask"], dtype=bool)
        assert special.sum() == len(prefix) + len(suffix)
        np.testing.assert_array_equal(sp.is_boundary, special)
        # offsets shifted into the doc; boundary tokens -1
        offsets = np.asarray(enc["offset_mapping"]).reshape(-1, 2)
        np.testing.assert_array_equal(sp.starts, np.where(special, -1, offsets[:, 0] + base))
        np.testing.assert_array_equal(sp.ends, np.where(special, -1, offsets[:, 1] + base))
        content = ~special
        assert (sp.starts[content] >= base).all()
        assert (sp.ends[content] <= base + len(text)).all()
        # the shifted offsets point at the same characters in a doc built around the text
        doc_text = "#" * base + text
        for s, e, o in zip(sp.starts[content], sp.ends[content], offsets[content]):
            assert doc_text[s:e] == text[o[0] : o[1]]
        if with_types:
            assert sp.type_ids is not None
            assert sp.type_ids.tolist() == enc["token_type_ids"]
        else:
            assert sp.type_ids is None


def test_tokenize_sentences_empty(tiny_dir: Path) -> None:
    assert len(tokenize_sentences(load_tokenizer(tiny_dir), [], [])) == 0
    assert len(tokenize_sentences(load_tokenizer(tiny_dir), [], [], offsets=False)) == 0


def test_without_offsets_everything_else_is_the_same(tiny_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_dir)
    full = tokenize_sentences(tokenizer, TEXTS, BASES)
    lean = tokenize_sentences(tokenizer, TEXTS, BASES, offsets=False)
    assert lean.starts is None and lean.ends is None
    assert lean.strings == full.strings
    for name in ("ids", "is_boundary", "bounds", "n_prefix", "n_suffix"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name))
    if full.type_ids is None:
        assert lean.type_ids is None
    else:
        np.testing.assert_array_equal(lean.type_ids, full.type_ids)


def test_boundary_tokens_are_the_tokenizers_special_ids(family: str, tiny_dir: Path) -> None:
    ref = _reference(tiny_dir)
    (sp,) = tokenize_sentences(load_tokenizer(tiny_dir), ["Here is some text."], [0])
    prefix, suffix = BOUNDARY[family]
    assert sp.ids[: sp.n_prefix].tolist() == ref.convert_tokens_to_ids(prefix)
    assert sp.ids[len(sp) - sp.n_suffix :].tolist() == ref.convert_tokens_to_ids(suffix)


def test_class_token_position(family: str, tiny_dir: Path) -> None:
    tok = load_tokenizer(tiny_dir)
    pos = class_token_position(tok)
    assert pos == CLASS_TOKEN[family]
    (sp,) = tokenize_sentences(tok, ["Here is some text."], [0])
    if pos is None:
        assert sp.n_prefix == sp.n_suffix == 0
    else:
        # the position indexes the family's class token in an encoded sentence
        assert sp.ids[pos] == _reference(tiny_dir).cls_token_id
        assert sp.strings[pos] == _reference(tiny_dir).cls_token


def test_uses_token_types(family: str, tiny_dir: Path) -> None:
    ref = _reference(tiny_dir)
    assert uses_token_types(load_tokenizer(tiny_dir)) == ("token_type_ids" in ref.model_input_names)
    if family == "bert":
        assert uses_token_types(load_tokenizer(tiny_dir))
    if family == "gpt2":
        assert not uses_token_types(load_tokenizer(tiny_dir))


def test_uses_token_types_reads_model_input_names() -> None:
    yes = SimpleNamespace(model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    no = SimpleNamespace(model_input_names=["input_ids", "attention_mask"])
    assert uses_token_types(yes)
    assert not uses_token_types(no)
    assert not uses_token_types(object())


# Literal special-token strings of every family, written into ordinary text.
LITERALS = [
    "a [SEP] b [CLS] c",
    "x <s> y </s> z",
    "p <cls> q <sep> r",
    "[SEP]",
    "<|endoftext|> and [MASK] and <pad>",
    "no specials here",
]


def test_literal_special_strings_add_no_boundary_tokens(family: str, tiny_dir: Path) -> None:
    ref = _reference(tiny_dir)
    template = len(ref("a")["input_ids"]) - len(ref("a", add_special_tokens=False)["input_ids"])
    prefix, suffix = BOUNDARY[family]
    assert template == len(prefix) + len(suffix)
    out = tokenize_sentences(load_tokenizer(tiny_dir), LITERALS, [0] * len(LITERALS))
    for sp, text in zip(out, LITERALS):
        assert sp.n_prefix + sp.n_suffix == template, text
        assert int((sp.starts < 0).sum()) == template, text
        # content pieces all carry offsets, and the boundary ones are at the ends only
        assert (sp.starts[sp.n_prefix : len(sp) - sp.n_suffix] >= 0).all(), text
        assert sp.strings[: sp.n_prefix] == prefix
        assert sp.strings[len(sp) - sp.n_suffix :] == suffix


# Boundary-type special ids must not appear among the content ids. The tiny XLNet-style Unigram
# vocabulary holds "<s>", "<sep>", "<cls>" as ordinary pieces and matches them in plain text even
# with split_special_tokens: the library maps such pieces to the unknown token.
@pytest.mark.parametrize(
    ("fam", "literal"),
    [
        ("bert", "a [SEP] b [CLS] c [MASK] d"),
        ("roberta", "a <s> b </s> c <mask> d"),
        ("gpt2", "a <|endoftext|> b"),
        ("xlnet", "p <cls> q <sep> r"),
    ],
)
def test_literal_special_strings_are_not_special_ids(
    tiny_models: dict[str, Path], fam: str, literal: str
) -> None:
    model_dir = tiny_models[fam]
    ref = _reference(model_dir)
    boundary_ids = {
        i
        for i in (
            ref.cls_token_id,
            ref.sep_token_id,
            ref.bos_token_id,
            ref.eos_token_id,
            ref.mask_token_id,
            ref.pad_token_id,
        )
        if i is not None
    }
    # the premise: a tokenizer that does not split special tokens turns these into special ids
    plain = AutoTokenizer.from_pretrained(str(model_dir))
    assert set(plain(literal, add_special_tokens=False)["input_ids"]) & boundary_ids
    (sp,) = tokenize_sentences(load_tokenizer(model_dir), [literal], [0])
    content = sp.ids[sp.n_prefix : len(sp) - sp.n_suffix].tolist()
    assert not set(content) & boundary_ids


def test_minilm_published_example(minilm_dir: Path) -> None:
    expected = ["[CLS]", "here", "is", "some", "text", "to", "en", "##code", ".", "[SEP]"]
    tok = load_tokenizer(minilm_dir)
    (sp,) = tokenize_sentences(tok, ["Here is some text to encode."], [0])
    assert sp.strings == expected
    assert (sp.n_prefix, sp.n_suffix) == (1, 1)
    assert sp.ids.tolist() == _reference(minilm_dir).convert_tokens_to_ids(expected)
    assert sp.type_ids is not None and not sp.type_ids.any()
    assert class_token_position(tok) == 0
    # and through the spaCy component, on a doc of one sentence
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("trf_wordpiecer", config={"model": str(minilm_dir)})
    doc = nlp("Here is some text to encode.")
    assert doc._.trf_word_pieces_ == expected
    # spaCy tokens: Here is some text to encode .  ("encode" holds two pieces)
    assert doc._.trf_alignment == [[1], [2], [3], [4], [5], [6, 7], [8]]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "  leading and trailing  ",
        "tabs\tand\nnewlines\n\n  mixed   spaces",
        "Über café 😀 東京は日本の首都です。e\u0301",
        "end with space ",
    ],
)
def test_doc_text_is_spacys_doc_text(text: str) -> None:
    from stream_trf.pipeline.wordpiecer import doc_text

    doc = spacy.blank("en")(text)
    assert doc_text(doc) == doc.text == text


def test_a_batch_slices_into_the_sentences_the_tokenizer_gives(tiny_dir: Path) -> None:
    batch = tokenize_sentences(load_tokenizer(tiny_dir), TEXTS, BASES)
    assert len(batch) == len(TEXTS) and batch.bounds[-1] == len(batch.ids)
    one_by_one = [
        tokenize_sentences(load_tokenizer(tiny_dir), [t], [b])[0] for t, b in zip(TEXTS, BASES)
    ]
    for got, ref in zip(batch, one_by_one):
        assert got.ids.tolist() == ref.ids.tolist() and got.strings == ref.strings
        assert (got.n_prefix, got.n_suffix) == (ref.n_prefix, ref.n_suffix)
        np.testing.assert_array_equal(got.starts, ref.starts)


class _WithoutRust:
    """A tokenizer as ``tokenize_sentences`` sees one without a Rust tokenizer: everything but
    ``backend_tokenizer`` is the wrapped one's (the path through ``transformers``' call)."""

    def __init__(self, tokenizer: object) -> None:
        self._tokenizer = tokenizer

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._tokenizer(*args, **kwargs)  # type: ignore[operator]

    def __getattr__(self, name: str) -> object:
        if name == "backend_tokenizer":
            raise AttributeError(name)
        return getattr(self._tokenizer, name)


@pytest.mark.parametrize("split", [True, False])
def test_the_rust_path_equals_the_transformers_call(
    family: str, tiny_dir: Path, split: bool
) -> None:
    """The Rust tokenizer called directly gives what the ``transformers`` call gives, with the
    tokenizer's own ``split_special_tokens`` either way."""
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir), split_special_tokens=split)
    texts = TEXTS + LITERALS + ["a <s> b [SEP] c <cls> d </s> <|endoftext|>"]
    bases = list(range(0, 7 * len(texts), 7))
    fast = tokenize_sentences(tokenizer, texts, bases)
    slow = tokenize_sentences(_WithoutRust(tokenizer), texts, bases)
    for field in ("ids", "starts", "ends", "bounds", "n_prefix", "n_suffix"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field), err_msg=field)
    assert fast.strings == slow.strings
    if fast.type_ids is None:
        assert slow.type_ids is None
    else:
        np.testing.assert_array_equal(fast.type_ids, slow.type_ids)


def test_truncation_set_on_the_tokenizer_does_not_reach_the_sentences(tiny_dir: Path) -> None:
    """``transformers`` sets truncation on its Rust tokenizer at each call; the library's copy
    keeps none, so a sentence longer than some earlier call's max_length stays whole."""
    tokenizer = load_tokenizer(tiny_dir)
    text = "one two three four five six seven eight nine ten eleven twelve"
    (before,) = tokenize_sentences(tokenizer, [text], [0])
    assert len(tokenizer([text], truncation=True, max_length=4)["input_ids"][0]) == 4
    assert tokenizer.backend_tokenizer.truncation is not None  # the premise
    (after,) = tokenize_sentences(tokenizer, [text], [0])
    assert len(after) == len(before) > 4
    assert after.ids.tolist() == before.ids.tolist()


def test_the_rust_copy_is_made_once_per_tokenizer(tiny_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_dir)
    first = rust_tokenizer(tokenizer)
    assert first is not None
    assert first is not tokenizer.backend_tokenizer
    assert rust_tokenizer(tokenizer) is first
    assert rust_tokenizer(load_tokenizer(tiny_dir)) is not first


def test_tokens_added_to_the_vocabulary_reach_the_sentences(tiny_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_dir)
    text = "zqxjv appears here"
    (before,) = tokenize_sentences(tokenizer, [text], [0])
    tokenizer.add_tokens(["zqxjv"])
    (after,) = tokenize_sentences(tokenizer, [text], [0])
    new_id = tokenizer.convert_tokens_to_ids("zqxjv")
    assert new_id not in before.ids.tolist()
    assert new_id in after.ids.tolist()


@pytest.mark.parametrize("offsets", [True, False])
def test_strings_name_unknown_pieces_as_the_tokenizer_does(
    family: str, tiny_dir: Path, offsets: bool
) -> None:
    """Piece strings are looked up by id, except in sentences holding the unknown token: a
    Unigram model (XLNet) names an unknown piece by its text, not by "<unk>". Without offsets
    the batch is encoded by the encoder that keeps no strings; those sentences are named all
    the same."""
    ref = _reference(tiny_dir)
    tokenizer = load_tokenizer(tiny_dir)
    texts = ["Runes ᚠᛇᚻ and a snowman ☃ here.", "plain words", "ᚠ"]
    out = tokenize_sentences(tokenizer, texts, [0, 40, 60], offsets=offsets)
    unknown = 0
    for sp, text in zip(out, texts):
        enc = ref(text)
        assert sp.strings == enc.tokens()
        if tokenizer.unk_token_id is not None:
            unknown += int((sp.ids == tokenizer.unk_token_id).sum())
    if family in ("bert", "xlnet"):  # their tiny vocabularies have no runes: the patch runs
        assert unknown > 0
