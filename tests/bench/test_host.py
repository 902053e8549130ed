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


def test_the_worker_is_set_against_the_floors_either_side_of_it() -> None:
    from bench.harness.host import host_ratios

    ratios = host_ratios(0.4, 0.6, processor_ms=0.6, forward_ms=0.1, worker_ms=0.75)
    assert ratios == {
        "processor_over_floor": 1.5,  # the floor just before it
        "processor_less_forward_over_floor": 1.25,
        "worker_over_floor": 1.5,  # the mean of 0.4 and 0.6
        "worker_less_forward_over_floor": 1.3,
    }
    assert "worker_over_floor" not in host_ratios(0.4, 0.6, 0.6, 0.1, None)


def test_the_chart_labels_each_bar_with_the_runs_own_ratio() -> None:
    """Two floors (before the processor, after the worker): the worker's label and target line
    use their mean, as its ratio does; the processor's label is its own ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.harness.chart import _host_panel

    host = _host(0.75)
    host["floor_after_worker"] = {
        "cpu_ms_per_doc": 0.6,
        "parts_cpu_ms_per_doc": {
            "spacy_tokenizer_and_sentencizer": 0.3,
            "wordpiece_tokenizer": 0.29,
            "orjson_record": 0.01,
        },
    }
    host["ratios"]["worker_over_floor"] = 1.5  # 0.75 / mean(0.4, 0.6)
    fig, ax = plt.subplots()
    try:
        _host_panel(ax, host)
        labels = sorted(t.get_text().strip() for t in ax.texts)
        assert labels == ["1.25× floor", "1.50× floor"]
        assert [tick.get_text() for tick in ax.get_yticklabels()] == [
            "floor",
            "floor after worker",
            "processor alone",
            "worker",
        ]
        (target,) = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert target.get_xdata()[0] == 0.75
    finally:
        plt.close(fig)
