"""Ratios and targets of the throughput report, from figures given by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness.chart import chart
from bench.harness.report import summarize, table
from bench.harness.worker import rss_growth


def _result() -> dict:
    return {
        "model": "m",
        "docs": 10,
        "words": 1000,
        "machine": {"device": "CPU: test"},
        "systems": {
            "ceiling": {"name": "ceiling", "wordpieces_per_s": 5000.0, "padding_efficiency": 1.0},
            "library": {
                "name": "library",
                "seconds": 0.4,
                "wordpieces": 1500,
                "padding_efficiency": 0.93,
            },
            "worker": {
                "name": "worker",
                "words_per_s": 2000.0,
                "paced": {"rate_docs_per_s": 5, "latency_ms_p50": 300, "latency_ms_p99": 2500},
            },
            "spacy-transformers": {"name": "peer", "seconds": 1.0, "wordpieces": 1400},
        },
        "sweep": [
            {"words_per_batch": 500, "wordpieces_per_s": 3000, "padding_efficiency": 0.97},
            {"words_per_batch": 1000, "wordpieces_per_s": 3750, "padding_efficiency": 0.93},
        ],
    }


def test_ratios_and_targets(tmp_path: Path) -> None:
    r = summarize(_result())
    assert r["wordpieces_per_word"] == pytest.approx(1.5)
    s = r["systems"]
    assert s["library"]["words_per_s"] == pytest.approx(2500)
    assert s["library"]["wordpieces_per_s"] == pytest.approx(3750)
    assert s["worker"]["wordpieces_per_s"] == pytest.approx(3000)
    assert s["ceiling"]["words_per_s"] == pytest.approx(5000 / 1.5, rel=1e-3)
    assert r["ratios"]["library_over_ceiling"] == pytest.approx(0.75)
    assert r["ratios"]["worker_over_ceiling"] == pytest.approx(0.6)
    assert r["ratios"]["worker_over_spacy_transformers"] == pytest.approx(2.0)
    assert r["met"] == {
        "library_over_ceiling": False,
        "worker_over_ceiling": False,
        "worker_over_spacy_transformers": True,
        "library_padding_efficiency": True,
        "paced_latency_p99_ms": False,
    }
    text = table(r)
    assert "library_over_ceiling: 0.75 ✗" in text and "p99 2500 ms" in text
    chart(r, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_the_paired_library_ratio_is_reported_and_checked() -> None:
    result = _result()
    result["systems"]["library"]["paired"] = {"library_over_ceiling": 0.93, "chunks": [{}]}
    r = summarize(result)
    assert r["ratios"]["library_over_ceiling_paired"] == 0.93
    assert r["met"]["library_over_ceiling_paired"] is True
    assert "library_over_ceiling_paired: 0.93 ✓" in table(r)


def test_each_system_is_divided_by_the_ceiling_runs_around_it() -> None:
    result = _result()
    result["systems"]["ceiling"]["runs"] = [
        {"after": "start", "wordpieces_per_s": 4000.0},
        {"after": "library", "wordpieces_per_s": 6000.0},
        {"after": "worker", "wordpieces_per_s": 2000.0},
    ]
    r = summarize(result)
    assert r["ceiling_baselines"] == {"library": 5000.0, "worker": 4000.0}
    assert r["ratios"]["library_over_ceiling"] == pytest.approx(3750 / 5000)
    assert r["ratios"]["worker_over_ceiling"] == pytest.approx(3000 / 4000)
    assert r["systems"]["ceiling"]["wordpieces_per_s"] == pytest.approx(4000)  # mean of all runs


def test_a_soak_run_without_the_library_takes_wordpieces_per_word_from_the_ceiling(
    tmp_path: Path,
) -> None:
    samples = [[float(t), 700.0 + (t % 7) * 20] for t in range(0, 1200, 5)]
    soak = {"rate_docs_per_s": 20.0, "kept_pace": True, "rss_samples": samples}
    soak.update(rss_growth([tuple(s) for s in samples]))
    r = summarize(
        {
            "model": "m",
            "docs": 10,
            "words": 1000,
            "machine": {"device": "CPU: test"},
            "systems": {
                "ceiling": {
                    "name": "ceiling",
                    "wordpieces_per_s": 5000.0,
                    "padding_efficiency": 1.0,
                    "corpus_wordpieces": 1550,
                },
                "worker": {"name": "worker", "words_per_s": 2800.0, "soak": soak},
            },
        }
    )
    assert r["systems"]["worker"]["wordpieces_per_s"] == pytest.approx(2800 * 1.55)
    assert r["ratios"]["worker_over_ceiling"] == pytest.approx(2800 * 1.55 / 5000, abs=1e-3)
    assert r["met"]["soak_rss_growth"] is (soak["rss_growth"] < 0.05)
    assert abs(soak["rss_growth"]) < 0.05
    chart(r, tmp_path / "soak.png")
    assert (tmp_path / "soak.png").read_bytes()[:4] == b"\x89PNG"
