"""``stream_trf.first_wordpieces.v1``: spacy train trains on the head of each doc, as
``trf_textcat`` with ``max_wordpieces`` reads it."""

from __future__ import annotations

from spacy.training import Example
from spacy.util import registry

import stream_trf
import stream_trf.training.registered  # registers the augmenter

TEXT = "Here is some text to encode. It has two sentences, and a third one follows here!"


def _example(nlp):
    return Example.from_dict(nlp.make_doc(TEXT), {"cats": {"A": 1.0, "B": 0.0}})


def test_cuts_the_text_on_a_word_and_keeps_the_labels(tiny_models) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]))
    nlp.add_pipe("trf_textcat", config={"max_wordpieces": 7})
    tokenizer = nlp.get_pipe("trf_wordpiecer").tokenizer
    augment = registry.resolve({"a": {"@augmenters": "stream_trf.first_wordpieces.v1"}})["a"]
    (cut,) = list(augment(nlp, _example(nlp)))
    text = cut.reference.text.rstrip()
    assert TEXT.startswith(text) and len(text) < len(TEXT)
    assert TEXT[len(text)] == " "  # on a word boundary
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 7
    assert cut.predicted.text == cut.reference.text
    assert cut.reference.cats == {"A": 1.0, "B": 0.0}
    # an explicit budget wins over the component's; 0 keeps the whole doc
    wider = registry.resolve(
        {"a": {"@augmenters": "stream_trf.first_wordpieces.v1", "max_wordpieces": 12}}
    )["a"]
    assert len(next(iter(wider(nlp, _example(nlp)))).reference.text) > len(text)
    nlp.get_pipe("trf_textcat").cfg["max_wordpieces"] = 0
    (whole,) = list(augment(nlp, _example(nlp)))
    assert whole.reference.text == TEXT
