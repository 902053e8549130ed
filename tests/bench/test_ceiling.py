"""The packed ceiling: every wordpiece in full rows, no padding, and real timings."""

from __future__ import annotations

import threading

import numpy as np
import torch

from bench.harness.ceiling import measure_packed, packed_ceiling, packed_rows


def test_packed_rows_keep_every_id_in_order_without_padding() -> None:
    seqs = [np.arange(5), np.arange(100, 103), np.arange(200, 209)]
    rows = packed_rows(seqs, 4)
    stream = np.concatenate(seqs)
    assert rows.shape == (len(stream) // 4, 4)
    assert np.array_equal(rows.ravel(), stream[: rows.size])


def test_packed_ceiling_measures_every_shape_and_engine_then_the_best_again(tiny_models) -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(5, 200, size=int(n)) for n in rng.integers(4, 40, size=60)]
    result = packed_ceiling(
        tiny_models["bert"],
        seqs,
        row_lengths=(8, 32),
        tokens_per_batch=(64, 256),
        max_tokens=512,
        engines=(1, 2),
    )
    shapes = result["shapes"]
    assert {s["graph"] for s in shapes} == {"traced"}  # the sweep runs the first graph
    for lanes in (1, 2):
        assert {(s["row_length"], s["rows_per_batch"]) for s in shapes if s["lanes"] == lanes} == {
            (8, 8),
            (8, 32),
            (32, 2),
            (32, 8),
        }
    assert all(s["wordpieces"] % s["row_length"] == 0 and s["seconds"] > 0 for s in shapes)
    # each engine's best sample shape is run again on every wordpiece (full rows)
    total = sum(len(s) for s in seqs)
    # and each engine's best shape runs on every wordpiece with each graph
    assert [(e["lanes"], e["graph"]) for e in result["engines"]] == [
        (1, "traced"),
        (1, "eager"),
        (2, "traced"),
        (2, "eager"),
    ]
    for engine in result["engines"]:
        mine = [s for s in shapes if s["lanes"] == engine["lanes"]]
        best = max(mine, key=lambda s: s["wordpieces_per_s"])
        assert (engine["row_length"], engine["rows_per_batch"]) == (
            best["row_length"],
            best["rows_per_batch"],
        )
        assert engine["wordpieces"] == total // engine["row_length"] * engine["row_length"]
    top = max(result["engines"], key=lambda e: e["wordpieces_per_s"])
    assert result["wordpieces_per_s"] == top["wordpieces_per_s"]
    assert result["best_shape"] == {
        k: top[k] for k in ("graph", "lanes", "row_length", "rows_per_batch")
    }


class _CountingModel:
    """Stands in for the model in the timing loop only: records what each call got."""

    def __init__(self) -> None:
        # Per call: the calling Thread object's id (the pool keeps them alive, so ids stay
        # distinct; OS thread idents are reused when one lane ends before the next starts).
        self.calls: list[tuple[int, list[int], int]] = []
        self.lock = threading.Lock()

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        assert bool(attention_mask.all())  # packed rows: nothing is padding
        with self.lock:
            self.calls.append(
                (id(threading.current_thread()), input_ids[:, 0].tolist(), torch.get_num_threads())
            )


def test_lanes_share_the_rows_and_run_single_threaded() -> None:
    rows = np.arange(40 * 4).reshape(40, 4)
    model = _CountingModel()
    main_threads = torch.get_num_threads()
    measure_packed(model, torch.device("cpu"), rows, rows_per_batch=4, lanes=2)
    warmup, timed = model.calls[0], model.calls[1:]
    assert warmup[1] == rows[:4, 0].tolist()
    # every batch once, split over two threads other than this one
    firsts = sorted(v for _t, batch, _n in timed for v in batch)
    assert firsts == rows[:, 0].tolist()
    assert len({t for t, _b, _n in timed}) == 2
    assert id(threading.current_thread()) not in {t for t, _b, _n in timed}
    assert {n for _t, _b, n in timed} == {max(1, main_threads // 2)}
    assert torch.get_num_threads() == main_threads  # the caller's setting is untouched


def test_the_traced_ceiling_runs_the_same_model(tiny_models) -> None:
    import pytest

    from bench.harness.ceiling import ceiling_model
    from stream_trf.model.runner import TransformerRunner

    runner = TransformerRunner(tiny_models["bert"], trace="on")
    ids = torch.from_numpy(packed_rows([np.arange(5, 105)], 25))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        eager = ceiling_model(runner, "eager")(input_ids=ids, attention_mask=mask)
        traced = ceiling_model(runner, "traced")(input_ids=ids, attention_mask=mask)
    np.testing.assert_allclose(traced.numpy(), eager.last_hidden_state.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="no 'traced' graph"):
        ceiling_model(TransformerRunner(tiny_models["bert"], trace="off"), "traced")
