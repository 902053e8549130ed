"""`stream-trf bench` end to end on a tiny model: every in-repo system measured, JSON and PNG."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import shared_descriptions

from stream_trf.cli import main


def test_bench_measures_ceiling_library_naive_and_worker(tiny_models, tmp_path: Path) -> None:
    data = tmp_path / "texts.jsonl.gz"
    rows = shared_descriptions(40)
    with gzip.open(data, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"text": r["text"]}) + "\n")
    out = tmp_path / "results"
    args = [
        "bench",
        "--data",
        str(data),
        "--docs",
        "30",
        "--model",
        str(tiny_models["bert"]),
        "--systems",
        "ceiling,library,naive,worker",
        "--sweep",
        "200",
        "--paced-seconds",
        "3",
        "--soak-minutes",
        "0.2",
        "--out-dir",
        str(out),
        "--name",
        "t",
        "--quiet",
    ]
    assert main(args) == 0
    result = json.loads((out / "t.json").read_text())
    assert (out / "t.png").read_bytes()[:4] == b"\x89PNG"
    s = result["systems"]
    assert set(s) == {"ceiling", "library", "naive", "worker"}
    assert result["docs"] == 30 and result["words"] > 1000
    for name in ("ceiling", "library", "naive"):
        assert s[name]["wordpieces_per_s"] > 0 and s[name]["peak_rss_mb"] > 50
    assert 0 < s["library"]["padding_efficiency"] <= 1
    # The tiny model holds 64 positions: the naive loop truncates every long doc to them.
    assert 0 < s["naive"]["padding_efficiency"] <= 1 and s["naive"]["truncated_docs"] > 0
    # The worker enriched every doc once, its word count is the harness's, latencies exist.
    sat = s["worker"]["saturation"]
    assert sat["enriched"] == 30 and sat["duplicates"] == 0
    assert sat["words"] == result["words"]
    procs = sat["by_process"]
    assert sum(p["records"] for p in procs.values()) == 30
    assert max(p["last_s"] for p in procs.values()) == sat["seconds"]
    assert s["worker"]["paced"]["enriched"] == s["worker"]["paced"]["docs"]
    assert 0 < s["worker"]["paced"]["latency_ms_p50"] <= s["worker"]["paced"]["latency_ms_p99"]
    # The soak runs at 80 % of a longer saturation (3 × the docs), samples RSS and says whether
    # the worker kept pace.
    soak = s["worker"]["soak"]
    assert soak["calibration"]["docs"] == 90 and soak["calibration"]["enriched"] == 90
    assert soak["rate_docs_per_s"] == pytest.approx(
        max(1.0, 0.8 * soak["calibration"]["docs_per_s"]), abs=0.01
    )
    assert soak["enriched"] == soak["docs"] and isinstance(soak["kept_pace"], bool)
    assert soak["rss_mb_max"] >= soak["rss_mb_end"] > 50 and "rss_trend_growth" in soak
    assert "soak_rss_growth" in result["met"]
    # the ceiling ran again after the library and after the worker's saturation and paced runs,
    # before the soak (not 20 minutes later), once each
    assert [r["after"] for r in s["ceiling"]["runs"]] == ["start", "library", "worker"]
    assert soak["ceiling_rechecked_before"] is True
    # the worker ran with its allocator settings (stream/memory.py), and the result says so
    ws = s["worker"]["worker_settings"]
    assert ws["mmap_threshold_mb"] == 4.0 and ws["huge_pages"] is True
    # and what the worker's process used in each run: the model's work is user time, and
    # page faults are counted (the paced run's worker_cpu sits beside its RSS figures)
    for run in (sat, s["worker"]["paced"], soak):
        cpu = run["worker_cpu"]
        assert cpu["user_s"] > 0 and cpu["minor_faults_per_doc"] > 0
        assert 0 <= cpu["kernel_share"] < 1 and cpu["cpu_ms_per_doc"] > 0
    assert [p["words_per_batch"] for p in result["sweep"]] == [200, 1000]
    assert "library_over_ceiling" in result["ratios"]
    # the library was also timed chunk by chunk against the ceiling's best shape
    paired = s["library"]["paired"]
    assert paired["shape"] == s["ceiling"]["best_shape"] and paired["chunks"]
    assert result["ratios"]["library_over_ceiling_paired"] == paired["library_over_ceiling"]
