"""The worker's processor: its sub-batch size where the setting is auto, and where it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_trf import auto
from stream_trf.settings import Settings
from stream_trf.stream.worker import build_processor, model_overrides


@pytest.mark.parametrize(("setting", "expected"), [(0, None), (640, 640)])
def test_auto_words_per_batch_is_the_workers_own_and_a_setting_wins(
    tiny_models: dict[str, Path], setting: int, expected: int | None
) -> None:
    settings = Settings(model=str(tiny_models["bert"]), words_per_batch=setting)
    processor = build_processor(settings)
    tok2vec = processor.nlp.get_pipe("trf_tok2vec")
    device = tok2vec.runner.device.type
    width = tok2vec.runner.width  # the autos scale with it (a tiny model: 32)
    want = expected if expected is not None else auto.words_per_batch(device, "worker", width)
    assert tok2vec.words_per_batch == tok2vec.cfg["words_per_batch"] == want
    assert want != auto.words_per_batch(device, width=width)  # not the library's own auto
    # the cost of a pass in the sub-batch cuts: the worker's own, scaled by the width on a CPU
    assert tok2vec.cfg["batch_cost"] == auto.batch_cost(device, "worker", width)
    if device == "cpu":
        assert tok2vec.cfg["batch_cost"] == auto.BATCH_COST * 384 / width > auto.BATCH_COST


@pytest.mark.parametrize("emit_wordpieces", [False, True])
@pytest.mark.parametrize("emit_tokens", [False, True])
def test_the_worker_asks_load_for_what_it_needs(emit_tokens: bool, emit_wordpieces: bool) -> None:
    settings = Settings(
        emit_tokens=emit_tokens, emit_wordpieces=emit_wordpieces, precision="int8", trace="off"
    )
    for device in ("cpu", "cuda"):
        assert model_overrides(settings, device) == {
            "alignment": emit_tokens or emit_wordpieces,
            "words_per_batch": auto.words_per_batch(device, "worker"),
            "batch_cost": auto.BATCH_COST,  # the default model's width: the measured figure
            "precision": "int8",
            "packing": "auto",
            "trace": "off",
            "doc_tensor": emit_tokens,
            "outputs": "rows" if emit_tokens else "pooled",
        }
    assert model_overrides(settings.with_(words_per_batch=640), "cuda")["words_per_batch"] == 640


@pytest.mark.parametrize(
    ("emit_tokens", "emit_wordpieces"), [(False, False), (True, False), (False, True)]
)
def test_token_rows_are_built_only_when_records_carry_them(
    tiny_models: dict[str, Path], emit_tokens: bool, emit_wordpieces: bool
) -> None:
    import numpy as np
    import orjson

    from stream_trf.stream.processor import RawMessage
    from stream_trf.stream.records import Source

    settings = Settings(
        model=str(tiny_models["bert"]), emit_tokens=emit_tokens, emit_wordpieces=emit_wordpieces
    )
    processor = build_processor(settings)
    import stream_trf

    cfg = processor.nlp.get_pipe("trf_tok2vec").cfg
    assert cfg["doc_tensor"] is emit_tokens
    # the wordpieces' character offsets are read only when an alignment can be asked for
    assert processor.nlp.get_pipe("trf_wordpiecer").cfg["alignment"] is (
        emit_tokens or emit_wordpieces
    )
    # without token vectors the lanes keep only per-sentence reductions, never a buffer's rows
    assert cfg["outputs"] == ("rows" if emit_tokens else "pooled")
    text = "Tools for the stream. They enrich records."
    msg = RawMessage(orjson.dumps({"id": "a", "text": text}), Source("in", 0, 0))
    (out,) = processor.process([msg])
    record = orjson.loads(out.value)
    # a library pipeline that keeps every row: the doc vector is the same either way
    reference = stream_trf.load(str(tiny_models["bert"]))(text)
    np.testing.assert_allclose(record["doc_vector"], reference.vector, atol=1e-5)
    if emit_tokens:
        from stream_trf.pipeline.extensions import token_rows

        assert len(record["token_vectors"]) == len(reference)
        np.testing.assert_allclose(record["token_vectors"], token_rows(reference), atol=1e-5)
    else:
        assert "token_vectors" not in record
    if emit_wordpieces:
        assert record["wordpieces"] == list(reference._.trf_word_pieces_)
        assert record["alignment"] == reference._.trf_alignment
    else:
        assert "alignment" not in record


@pytest.mark.parametrize(("setting", "expected"), [(0, "auto"), (-1, None), (1234, 1234)])
def test_freed_heap_goes_back_every_n_wordpieces_on_the_lanes(
    tiny_models: dict[str, Path], setting: int, expected: int | str | None
) -> None:
    import orjson

    from stream_trf.stream.processor import RawMessage
    from stream_trf.stream.records import Source

    settings = Settings(model=str(tiny_models["bert"]), release_every=setting)
    processor = build_processor(settings)
    tok2vec = processor.nlp.get_pipe("trf_tok2vec")
    hook = tok2vec.after_sub_batch
    if expected is None:
        assert hook is None
        return
    want = 8 * auto.words_per_batch(tok2vec.runner.device.type, "worker", tok2vec.runner.width)
    assert hook.wordpieces == (want if expected == "auto" else expected)
    import threading

    seen: list[int] = []
    order = threading.Lock()  # lanes call from their threads: record in the order the hook sees

    def recording(n: int) -> None:
        with order:
            seen.append(n)
            hook(n)

    tok2vec.after_sub_batch = recording
    hook.wordpieces = 50  # small enough for a few releases on these few docs
    texts = ["Tools for the stream. They enrich records."] * 20
    msgs = [
        RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, i))
        for i, t in enumerate(texts)
    ]
    processor.process(msgs)
    # called after every sub-batch, with its real wordpieces; released once per 50 or more
    assert sum(seen) == tok2vec.runner.stats.real_wordpieces >= 100
    assert len(seen) == tok2vec.runner.stats.batches
    expected, since = 0, 0
    for n in seen:  # a release each time 50 or more have accumulated since the last one
        since += n
        if since >= 50:
            expected, since = expected + 1, 0
    assert hook.releases == expected >= 1


def test_the_lanes_and_each_buffer_hand_back_heap_above_keep_free_mb(
    tiny_models: dict[str, Path],
) -> None:
    from stream_trf.stream.memory import FreedHeap

    processor = build_processor(Settings(model=str(tiny_models["bert"]), keep_free_mb=7))
    hook = processor.nlp.get_pipe("trf_tok2vec").after_sub_batch
    heap = processor.release.__self__
    assert isinstance(heap, FreedHeap) and heap.keep == 7 * 2**20
    # after a buffer and on the lanes alike, glibc is asked only after growth
    assert processor.release == heap.if_grown
    assert hook._release == heap.if_grown


@pytest.mark.parametrize("chars", [0, 12_345])
def test_the_worker_warms_its_vocabulary_as_set(tiny_models: dict[str, Path], chars: int) -> None:
    processor = build_processor(Settings(model=str(tiny_models["bert"]), vocab_warmup_chars=chars))
    assert processor.zones.warmup_left == chars
    assert processor.zones.warming_up == (chars > 0)
