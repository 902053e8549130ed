"""The host-side system (issue 29): its report and chart from figures given by hand, and its
floor and near-zero model on real text. The worker end to end runs in ``stream-trf bench``."""

from __future__ import annotations

import json
from pathlib import Path

from bench.harness.chart import chart
from bench.harness.host import WIDTH, floor, near_zero_model
from bench.harness.report import summarize, table


def _host(worker_ms: float) -> dict:
    return {
        "name": "host-side cost (near-zero model)",
        "floor": {
            "cpu_ms_per_doc": 0.4,
            "parts_cpu_ms_per_doc": {
                "spacy_tokenizer_and_sentencizer": 0.2,
                "wordpiece_tokenizer": 0.19,
                "orjson_record": 0.01,
            },
        },
        "processor": {"cpu_ms_per_doc": 0.5},
        "worker": {"cpu_ms_per_doc": worker_ms},
        "ratios": {"processor_over_floor": 1.25, "worker_over_floor": worker_ms / 0.4},
    }


def test_the_host_ratio_is_met_by_staying_at_or_below_it(tmp_path: Path) -> None:
    for worker_ms, met in ((0.6, True), (0.64, False)):
        result = {
            "model": "m",
            "docs": 10,
            "words": 100,
            "machine": {"device": "CPU: test"},
            "systems": {"host": _host(worker_ms)},
        }
        summarize(result)
        assert result["ratios"]["host_worker_over_floor"] == worker_ms / 0.4
        assert result["met"]["host_worker_over_floor"] is met
        text = table(result)
        assert ("✓" in text.split("host_worker_over_floor")[1].splitlines()[0]) is met
        chart(result, tmp_path / "host.png")
        assert (tmp_path / "host.png").stat().st_size > 10_000


def test_the_near_zero_model_and_the_floor_on_real_text(tmp_path: Path) -> None:
    from stream_trf.model.source import DEFAULT_MODEL, resolve_model_dir

    model = near_zero_model(tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"]) == (WIDTH, 1)
    default = resolve_model_dir(DEFAULT_MODEL)
    assert (model / "vocab.txt").read_text() == (default / "vocab.txt").read_text()
    texts = ["A first sentence. And a second one!", "Another document, one sentence."] * 20
    warm = tmp_path / "warm.jsonl"
    warm.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:10]))
    result = floor(texts, str(model), str(warm), warmup_chars=100)
    parts = result["parts_cpu_ms_per_doc"]
    assert result["docs"] == len(texts)
    assert abs(sum(parts.values()) - result["cpu_ms_per_doc"]) < 1e-3
    assert all(v > 0 for v in parts.values())
    # spaCy as it ships, timed beside: the floor with it instead of the worker's lean zones
    shipped = result["as_spacy_ships_cpu_ms_per_doc"]
    assert shipped > result["cpu_ms_per_doc"] - parts["spacy_tokenizer_and_sentencizer"]


def test_the_processor_run_times_the_forward_passes_apart(tmp_path: Path) -> None:
    """The forward passes' own CPU is counted (a part of the processor's, not all of it), so the
    ratios without the model can be given."""
    from bench.harness.host import processor

    model = near_zero_model(tmp_path / "model")
    texts = ["A first sentence. And a second one!", "Another document, one sentence."] * 30
    warm = tmp_path / "warm.jsonl"
    warm.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:10]))
    result = processor(texts, str(model), str(warm))
    assert result["docs"] == len(texts)
    assert 0 < result["forward_cpu_ms_per_doc"] < result["cpu_ms_per_doc"]


def test_the_ratios_divide_by_the_floor_of_the_same_slices() -> None:
    from bench.harness.host import host_ratios

    ratios = host_ratios(0.5, processor_ms=0.6, forward_ms=0.1, worker_ms=0.75)
    assert ratios == {
        "processor_over_floor": 1.2,
        "processor_less_forward_over_floor": 1.0,
        "worker_over_floor": 1.5,
        "worker_less_forward_over_floor": 1.3,
    }
    assert "worker_over_floor" not in host_ratios(0.5, 0.6, 0.1, None)


def test_slices_cover_the_documents_and_each_system_takes_each_place() -> None:
    from bench.harness.host import rotated, slices

    assert slices(1100, 512) == [(0, 512), (512, 1024), (1024, 1100)]
    assert slices(1024, 512) == [(0, 512), (512, 1024)]
    systems = ("floor", "processor", "worker", "worker (b)")
    orders = [rotated(systems, k) for k in range(len(systems))]
    assert all(sorted(o) == sorted(systems) for o in orders)
    for place in range(len(systems)):
        assert sorted(o[place] for o in orders) == sorted(systems)
    assert rotated(systems, len(systems)) == list(systems)


def test_a_slice_server_measures_the_slices_it_is_asked_for(tmp_path: Path) -> None:
    """The floor kept set up in a process of its own (``measure --serve``), asked for two
    slices; a server that cannot start says why."""
    import pytest

    from bench.harness.measure import MeasurementFailed, SliceServer

    model = near_zero_model(tmp_path / "model")
    texts = ["A first sentence. And a second one!", "Another document, one sentence."] * 20
    texts_file = tmp_path / "texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    warm = tmp_path / "warm.jsonl"
    warm.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:10]))
    options = {"warmup_file": str(warm), "warmup_chars": 100}
    with SliceServer("floor", texts_file, str(model), options, tmp_path / "floor.log") as server:
        first, second = server.measure(0, 30), server.measure(30, 40)
    assert (first["docs"], second["docs"]) == (30, 10)
    for answer in (first, second):
        assert answer["cpu_s"] > 0
        assert abs(sum(answer["parts_s"].values()) - answer["cpu_s"]) < 1e-9
    assert server.proc.returncode == 0  # it ended when its requests did
    with pytest.raises(MeasurementFailed, match="FileNotFoundError"):
        SliceServer(
            "floor",
            texts_file,
            str(model),
            {"warmup_file": str(tmp_path / "missing.jsonl"), "warmup_chars": 100},
            tmp_path / "broken.log",
        )


def test_the_chart_labels_each_bar_with_the_runs_own_ratio() -> None:
    """The floor by part, the processor's and the worker's own ratios (the worker's with its
    slices' range), and the target at 1.5 × the floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.harness.chart import _host_panel

    host = _host(0.6)
    host["worker_over_floor_by_slice"] = {"min": 1.31, "median": 1.5, "max": 1.72}
    fig, ax = plt.subplots()
    try:
        _host_panel(ax, host)
        labels = sorted(t.get_text().strip() for t in ax.texts)
        assert labels == ["1.25× floor", "1.50× floor (slices 1.31–1.72)"]
        assert [tick.get_text() for tick in ax.get_yticklabels()] == [
            "floor",
            "processor alone",
            "worker",
        ]
        (target,) = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert abs(target.get_xdata()[0] - 0.6) < 1e-9
    finally:
        plt.close(fig)
