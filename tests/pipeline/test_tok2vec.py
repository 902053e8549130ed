"""trf_tok2vec against the Hugging Face model run directly, one sentence at a time, unpadded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CORPUS, hf_reference, shared_descriptions
from transformers import AutoModel

import stream_trf

TEXTS = [
    "Here is some text to encode. It has two sentences.",
    "Short.",
    "A much longer sentence that goes on and on, with commas, numbers like 3.14 and 2,718, "
    "and words that the tiny vocabulary has never seen before, so it splits them into pieces.",
    "Über café naïve 😀 東京は日本の首都です。 Another one!",
    "A sentence with   extra   spaces\tand tabs.\n\nAnd newlines [SEP] <s> <cls> in it.",
]


def _assert_matches_reference(model_dir: Path, docs, max_length: int) -> float:
    """Worst difference over every sentence short enough to run unwindowed."""
    worst = 0.0
    n = 0
    for doc in docs:
        wp = doc._.trf_pieces
        for s in range(wp.n_sentences):
            sl = wp.sentence(s)
            if sl.stop - sl.start > max_length:
                continue
            a, b = wp.sentence_chars[s]
            ids, ref = hf_reference(model_dir, doc.text[a:b])
            np.testing.assert_array_equal(ids, wp.ids[sl])
            worst = max(worst, float(np.abs(ref - doc._.trf_last_hidden_state[sl]).max()))
            n += 1
    assert n > 0
    return worst


def test_padding_never_changes_a_result(tiny_dir: Path) -> None:
    # packing="off": on CUDA the default packs (no padding at all), and padding is under test.
    nlp = stream_trf.load(str(tiny_dir), words_per_batch=80, packing="off")
    docs = list(nlp.pipe(TEXTS + CORPUS[:12]))
    stats = nlp.get_pipe("trf_tok2vec").runner.stats
    # The check means something only if sub-batches really were padded and split.
    assert stats.batches > 2
    assert stats.padded_wordpieces > stats.real_wordpieces
    assert _assert_matches_reference(tiny_dir, docs, 64) <= 1e-4


def test_padding_never_changes_a_result_minilm(minilm_nlp, minilm_dir: Path) -> None:
    texts = [r["text"] for r in shared_descriptions(40)]
    docs = list(minilm_nlp.pipe(texts))
    assert _assert_matches_reference(minilm_dir, docs, 512) <= 1e-4


def test_batch_cost_cuts_pad_less_and_change_no_result(tiny_dir: Path) -> None:
    """The default cuts sub-batches where padding plus a per-pass cost is least; greedy filling
    (``batch_cost=None``) pads more. Rows are the same either way."""
    texts = TEXTS + CORPUS[:60]
    kw = {"words_per_batch": 400, "lanes": 1, "packing": "off"}  # padded, on any device
    cut = stream_trf.load(str(tiny_dir), **kw)
    greedy = stream_trf.load(str(tiny_dir), **kw, batch_cost=None)
    got, ref = list(cut.pipe(texts)), list(greedy.pipe(texts))
    a = cut.get_pipe("trf_tok2vec").runner.stats
    b = greedy.get_pipe("trf_tok2vec").runner.stats
    assert a.real_wordpieces == b.real_wordpieces
    assert a.padded_wordpieces < b.padded_wordpieces
    for x, y in zip(got, ref):
        np.testing.assert_allclose(x.tensor, y.tensor, atol=1e-5)
    with pytest.raises(ValueError, match="batch_cost"):
        stream_trf.load(str(tiny_dir), batch_cost=-1.0).get_pipe("trf_tok2vec")


def test_words_per_batch_auto_follows_the_device(tiny_dir: Path) -> None:
    from stream_trf import auto

    t2v = stream_trf.load(str(tiny_dir), device="cpu").get_pipe("trf_tok2vec")
    assert t2v.cfg["words_per_batch"] == 0  # the default is auto
    assert t2v.runner.width == 32  # a tiny model: the CPU figure scaled by 384 / 32
    assert t2v.words_per_batch == auto.words_per_batch("cpu", width=32) == 12 * 1000
    t2v.runner.device = torch.device("cuda")  # only read, never used to compute here
    assert t2v.words_per_batch == auto.words_per_batch("cuda") == 32000
    fixed = stream_trf.load(str(tiny_dir), words_per_batch=300).get_pipe("trf_tok2vec")
    fixed.runner.device = torch.device("cuda")
    assert fixed.words_per_batch == 300  # a set value wins on any device
    with pytest.raises(ValueError, match="words_per_batch"):
        stream_trf.load(str(tiny_dir), words_per_batch=-1).get_pipe("trf_tok2vec")


def test_sub_batches_respect_the_budget(tiny_models) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]), words_per_batch=100)
    seen: list[tuple[int, int]] = []
    runner = nlp.get_pipe("trf_tok2vec").runner
    original = runner.predict

    def spy(ids, types, into=None):
        seen.append((len(ids), max(len(x) for x in ids)))
        return original(ids, types, into)

    runner.predict = spy  # type: ignore[method-assign]
    list(nlp.pipe(CORPUS[:30]))
    assert seen
    for rows, longest in seen:
        assert rows * longest <= 100 or rows == 1


def test_tensor_has_one_row_per_token_and_keeps_the_sum(tiny_dir: Path) -> None:
    nlp = stream_trf.load(str(tiny_dir))
    width = nlp.get_pipe("trf_tok2vec").width
    for doc in nlp.pipe(TEXTS):
        assert doc.tensor.shape == (len(doc), width)
        last = doc._.trf_last_hidden_state
        assert last.shape == (len(doc._.trf_word_pieces), width)
        np.testing.assert_allclose(doc.tensor.sum(0), last.sum(0), rtol=1e-4, atol=1e-4)
        # Every non-whitespace token gets a real vector; whitespace tokens get none of their own
        # but the boundary share is spread over solid tokens only.
        for token in doc:
            norm = float(np.linalg.norm(doc.tensor[token.i]))
            assert (norm > 0) != token.is_space


def test_tensor_rows_follow_the_alignment_rule(tiny_models) -> None:
    """Recompute doc.tensor from trf_alignment and the boundary rule, independently of W."""
    nlp = stream_trf.load(str(tiny_models["xlnet"]))
    for doc in nlp.pipe(TEXTS):
        wp = doc._.trf_pieces
        last = doc._.trf_last_hidden_state
        token_lists = doc._.trf_alignment
        n_tokens_of_piece = np.zeros(len(wp.ids))
        for pieces in token_lists:
            for p in pieces:
                n_tokens_of_piece[p] += 1
        expected = np.zeros_like(doc.tensor)
        for i, pieces in enumerate(token_lists):
            for p in pieces:
                expected[i] += last[p] / n_tokens_of_piece[p]
        for s, sent in enumerate(doc.sents):
            solid = [t.i for t in sent if not t.is_space]
            if not solid:
                continue
            sl = wp.sentence(s)
            for p in range(sl.start, sl.stop):
                if wp.is_boundary[p]:
                    for i in solid:
                        expected[i] += last[p] / len(solid)
        np.testing.assert_allclose(doc.tensor, expected, rtol=1e-5, atol=1e-5)


def test_results_go_back_to_their_docs_in_order(tiny_models) -> None:
    nlp = stream_trf.load(str(tiny_models["roberta"]), words_per_batch=64)
    texts = TEXTS + CORPUS[:10]
    alone = [nlp(t).tensor for t in texts]
    batched = list(nlp.pipe(list(reversed(texts)), batch_size=7))
    for doc, tensor in zip(reversed(batched), alone):
        np.testing.assert_allclose(doc.tensor, tensor, atol=1e-5)


@pytest.mark.parametrize(
    "text",
    ["", " ", "   \n\n\t ", "Hello", "😀", "\x00\x07", "no sentence boundary at all in this text"],
)
def test_edge_cases_give_consistent_shapes(tiny_dir: Path, text: str) -> None:
    nlp = stream_trf.load(str(tiny_dir))
    width = nlp.get_pipe("trf_tok2vec").width
    # Alone and inside a batch with ordinary docs: same shapes, same numbers.
    doc = nlp(text)
    batch = list(nlp.pipe(["A normal sentence.", text, "Another one here."]))
    for d in (doc, batch[1]):
        assert d.tensor.shape == (len(d), width)
        assert d._.trf_last_hidden_state.shape == (len(d._.trf_word_pieces), width)
        assert len(d._.trf_alignment) == len(d)
        assert d.vector.shape == (width,)
        np.testing.assert_allclose(d.tensor.sum(0), d._.trf_last_hidden_state.sum(0), atol=1e-4)
    np.testing.assert_allclose(doc.tensor, batch[1].tensor, atol=1e-5)
    if not text.strip():
        assert len(doc._.trf_word_pieces) == 0
        assert not doc.tensor.any()


def test_long_sentence_is_windowed_not_truncated(tiny_dir: Path) -> None:
    # No sentence punctuation: one sentence of several hundred wordpieces, max_length 64.
    words = re.sub(r"[.!?。]", "", " ".join(CORPUS[:12] * 3))
    nlp = stream_trf.load(str(tiny_dir), window_overlap=16)
    runner = nlp.get_pipe("trf_tok2vec").runner
    assert runner.max_length == 64
    doc = nlp(words)
    wp = doc._.trf_pieces
    assert wp.n_sentences == 1
    n_wp = len(wp.ids)
    assert n_wp > 3 * runner.max_length
    assert doc._.trf_windowed_wordpieces == n_wp
    for token in doc:
        assert (np.linalg.norm(doc.tensor[token.i]) > 0) != token.is_space
    np.testing.assert_allclose(
        doc.tensor.sum(0), doc._.trf_last_hidden_state.sum(0), rtol=1e-4, atol=1e-3
    )

    # The first window's own rows equal the model run on that window alone.
    p, q = int(wp.sentence_prefix[0]), int(wp.sentence_suffix[0])
    capacity = runner.max_length - p - q
    window_ids = np.concatenate([wp.ids[:p], wp.ids[p : p + capacity], wp.ids[n_wp - q :]])
    model = AutoModel.from_pretrained(str(tiny_dir)).eval()
    kwargs = {}
    if wp.type_ids is not None:
        types = np.concatenate(
            [wp.type_ids[:p], wp.type_ids[p : p + capacity], wp.type_ids[n_wp - q :]]
        )
        kwargs["token_type_ids"] = torch.from_numpy(types)[None]
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(window_ids)[None], **kwargs).last_hidden_state[0]
    owned = capacity - 8  # the first window owns its content up to the middle of the overlap
    np.testing.assert_allclose(
        doc._.trf_last_hidden_state[p : p + owned], ref[p : p + owned].numpy(), atol=1e-4
    )


def test_short_docs_are_not_windowed(tiny_dir: Path) -> None:
    nlp = stream_trf.load(str(tiny_dir))
    assert all(d._.trf_windowed_wordpieces == 0 for d in nlp.pipe(TEXTS[:2]))


def test_the_11890_word_description_works(minilm_nlp) -> None:
    record = next(r for r in shared_descriptions() if r["id"] == "texlive-latex-extra")
    assert len(record["text"].split()) == 11890
    doc = minilm_nlp(record["text"])
    assert doc.tensor.shape == (len(doc), 384)
    assert doc._.trf_windowed_wordpieces > 0
    solid = np.array([not t.is_space for t in doc])
    norms = np.linalg.norm(doc.tensor, axis=1)
    assert (norms[solid] > 0).all()
    np.testing.assert_allclose(
        doc.tensor.sum(0), doc._.trf_last_hidden_state.sum(0), rtol=1e-3, atol=1e-2
    )


def test_hidden_states_and_attentions_when_configured(tiny_models) -> None:
    model_dir = tiny_models["bert"]
    nlp = stream_trf.load(
        str(model_dir), output_hidden_states=True, output_attentions=True, words_per_batch=50
    )
    docs = list(nlp.pipe(TEXTS[:3]))
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    for doc in docs:
        out = doc._.trf_outputs
        assert len(out.hidden_states) == model.config.num_hidden_layers + 1
        np.testing.assert_allclose(out.hidden_states[-1], out.last_hidden_state, atol=1e-6)
        assert len(out.attentions) >= doc._.trf_pieces.n_sentences  # one per window
        assert len(out.attentions) == len(out.attention_pieces)
        for rows, layers in zip(out.attention_pieces, out.attentions):
            ids = torch.from_numpy(doc._.trf_pieces.ids[rows])[None]
            with torch.no_grad():
                ref = model(input_ids=ids, output_attentions=True).attentions
            assert len(layers) == len(ref)
            for mine, theirs in zip(layers, ref):
                np.testing.assert_allclose(mine, theirs[0].numpy(), atol=1e-5)


def test_gradient_buffer_exists_only_in_training(tiny_models) -> None:
    """Inference spends no memory on a gradient buffer; ``update`` gives every doc a zeroed one
    with the shape of its rows, for listeners to add into."""
    from types import SimpleNamespace

    from spacy.training import Example

    nlp = stream_trf.load(str(tiny_models["bert"]))
    assert nlp(TEXTS[0])._.trf_d_last_hidden_state is None
    t2v = nlp.get_pipe("trf_tok2vec")
    t2v.listener_components = lambda: [SimpleNamespace(name="head")]  # type: ignore[method-assign]
    examples = [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in TEXTS[:3]]
    t2v.update(examples)
    for eg in examples:
        doc = eg.predicted
        assert doc._.trf_d_last_hidden_state.shape == doc._.trf_last_hidden_state.shape
        assert not doc._.trf_d_last_hidden_state.any()


def test_lanes_change_no_result_and_keep_the_order(tiny_models) -> None:
    """Sub-batches computed on two lanes at once, batches of docs pipelined: every doc gets
    exactly the rows that one lane gives it, in order, whatever finishes first."""
    texts = TEXTS + CORPUS[:40]
    one = stream_trf.load(str(tiny_models["bert"]), words_per_batch=60, lanes=1)
    two = stream_trf.load(str(tiny_models["bert"]), words_per_batch=60, lanes=2)
    ref = list(one.pipe(texts, batch_size=7))
    got = list(two.pipe(texts, batch_size=7))
    runner = two.get_pipe("trf_tok2vec").runner
    assert two.get_pipe("trf_tok2vec").lanes.n == 2
    assert runner.stats.batches > 10  # many sub-batches really were spread over the lanes
    assert [d.text for d in got] == texts
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b.tensor, a.tensor, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            b._.trf_last_hidden_state, a._.trf_last_hidden_state, rtol=1e-5, atol=1e-5
        )
    # the counters add up across threads (two lanes may cut small batches of docs finer)
    single = one.get_pipe("trf_tok2vec").runner.stats
    assert (runner.stats.sequences, runner.stats.real_wordpieces) == (
        single.sequences,
        single.real_wordpieces,
    )
    assert runner.stats.batches >= single.batches


def test_a_batch_too_small_for_every_lane_is_cut_into_a_sub_batch_per_lane(tiny_models) -> None:
    """Light load (a worker's buffer of a few docs): every lane gets a share, not one lane all."""
    texts = CORPUS[:6]
    # Greedy filling (batch_cost=None): the budget alone decides how many sub-batches there are.
    kw = {"words_per_batch": 100_000, "batch_cost": None}
    one = stream_trf.load(str(tiny_models["bert"]), lanes=1, **kw)
    two = stream_trf.load(str(tiny_models["bert"]), lanes=2, **kw)
    ref = list(one.pipe(texts, batch_size=6))
    got = list(two.pipe(texts, batch_size=6))
    assert one.get_pipe("trf_tok2vec").runner.stats.batches == 1
    assert two.get_pipe("trf_tok2vec").runner.stats.batches >= 2  # padding may add one more
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b.tensor, a.tensor, rtol=1e-5, atol=1e-5)
    # a large batch of docs keeps the configured sub-batch size
    three = stream_trf.load(str(tiny_models["bert"]), words_per_batch=60, lanes=2)
    t2v = three.get_pipe("trf_tok2vec")
    assert t2v._budget([20] * 50, 2) == 60
    assert t2v._budget([20] * 5, 2) == 50
    assert t2v._budget([50, 5, 5], 2) == 50  # never below the longest sequence


def test_a_failing_sub_batch_on_a_lane_raises_in_pipe(tiny_models) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]), words_per_batch=60, lanes=2)
    runner = nlp.get_pipe("trf_tok2vec").runner
    original = runner.predict

    def flaky(ids, types, into=None):
        if any(len(x) > 30 for x in ids):
            raise RuntimeError("lane failure")
        return original(ids, types, into)

    runner.predict = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="lane failure"):
        list(nlp.pipe(TEXTS + CORPUS[:20], batch_size=4))


def test_lanes_write_single_window_rows_into_the_batch_array(tiny_dir: Path) -> None:
    """The lanes write each one-window sentence's rows straight into the array that holds the
    whole batch's rows (no copy per sentence); windows of long sentences still come back on
    their own and are stitched. Both kinds in one batch give what the copying path gives."""
    long_one = re.sub(r"[.!?。]", "", " ".join(CORPUS[:12] * 3))
    texts = [*TEXTS[:6], long_one, *CORPUS[:10]]
    nlp = stream_trf.load(str(tiny_dir), window_overlap=16, words_per_batch=200, lanes=2)
    runner = nlp.get_pipe("trf_tok2vec").runner
    original = runner.predict
    targets: list[list[bool]] = []

    def spy(ids, types, into=None):
        targets.append([x is not None for x in into] if into is not None else [])
        return original(ids, types, into)

    runner.predict = spy  # type: ignore[method-assign]
    got = list(nlp.pipe(texts, batch_size=len(texts)))
    flat = [t for sub in targets for t in sub]
    assert any(flat) and not all(flat)  # direct writes, and the long sentence's windows

    def copying(ids, types, into=None):
        return original(ids, types)

    runner.predict = copying  # type: ignore[method-assign]
    ref = list(nlp.pipe(texts, batch_size=len(texts)))
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(b._.trf_last_hidden_state, a._.trf_last_hidden_state)
        np.testing.assert_array_equal(b.tensor, a.tensor)
    # every doc's rows are views of one array for the batch
    first = got[0]._.trf_last_hidden_state.base
    assert first is not None
    assert all(d._.trf_last_hidden_state.base is first for d in got)


def test_doc_tensor_off_leaves_it_empty_until_token_rows_are_asked_for(tiny_dir: Path) -> None:
    eager = stream_trf.load(str(tiny_dir))
    lazy = stream_trf.load(str(tiny_dir), doc_tensor=False)
    from stream_trf.pipeline.extensions import token_rows

    for want, doc in zip(eager.pipe(TEXTS), lazy.pipe(TEXTS)):
        assert doc.tensor.size == 0  # nothing built while the docs went through
        np.testing.assert_allclose(doc.vector, want.vector, atol=1e-5)  # from wordpiece rows
        assert doc.tensor.size == 0
        span = doc[1:3]
        np.testing.assert_allclose(span.vector, want[1:3].vector, atol=1e-5)
        # the first token or span vector built doc.tensor, the same as the eager rebuild
        assert doc.tensor.shape == want.tensor.shape
        np.testing.assert_allclose(doc.tensor, want.tensor, atol=1e-5)
        np.testing.assert_allclose(doc[0].vector, want[0].vector, atol=1e-5)
        assert token_rows(doc) is token_rows(doc)  # kept on the doc, not rebuilt each time
