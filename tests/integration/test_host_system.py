"""The host system end to end (issue 29's figure): the floor, the batch processor, the worker and
a variant worker take turns on the same slices of real text, through the embedded broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_descriptions

from stream_trf.model.lanes import cpu_cores


@pytest.mark.slow
def test_every_system_takes_every_slice_in_turn(tmp_path: Path) -> None:
    from bench.harness.host import run_host

    texts = [r["text"] for r in shared_descriptions(700)]
    result = run_host(
        texts[:600],
        texts[600:],
        log_dir=tmp_path,
        slice_docs=256,
        variants={"one lane": {"OMP_NUM_THREADS": "1"}},
    )
    systems = ["floor", "processor", "worker", "worker (one lane)"]
    slices = result["slices"]
    assert [s["docs"] for s in slices] == [256, 256, 88]
    assert [s["order"] for s in slices] == [
        systems,
        systems[1:] + systems[:1],
        systems[2:] + systems[:2],
    ]
    variant = result["variants"]["one lane"]
    assert result["worker"]["enriched"] == variant["enriched"] == 600
    assert result["floor"]["docs"] == result["processor"]["docs"] == 600
    # the pooled ratio is CPU summed over the slices: a mean of the slices' ratios, weighted
    # by the floor's CPU, so within their range
    floor_s = sum(s["floor_cpu_ms_per_doc"] * s["docs"] for s in slices)
    worker_s = sum(s["worker_cpu_ms_per_doc"] * s["docs"] for s in slices)
    ratio = result["ratios"]["worker_over_floor"]
    assert ratio == pytest.approx(worker_s / floor_s, abs=2e-3)
    spread = result["worker_over_floor_by_slice"]
    assert spread["min"] - 1e-3 <= ratio <= spread["max"] + 1e-3
    assert spread["min"] <= spread["median"] <= spread["max"]
    assert 0 < result["processor"]["forward_cpu_ms_per_doc"] < result["processor"]["cpu_ms_per_doc"]
    # against the floor with spaCy as it ships (not the worker's lean zones): the same worker
    shipped = result["floor"]["as_spacy_ships_cpu_ms_per_doc"]
    assert result["ratios"]["worker_over_floor_as_spacy_ships"] == pytest.approx(
        result["worker"]["cpu_ms_per_doc"] / shipped, abs=2e-3
    )
    assert variant["over_floor"] > 0 and variant["env"] == {"OMP_NUM_THREADS": "1"}
    # the variant's environment reached its process: one intra-op thread, so one lane, inline
    assert "trf-lane" not in variant["threads_cpu_ms_per_doc"]
    if cpu_cores() > 1:
        assert result["worker"]["threads_cpu_ms_per_doc"]["trf-lane"] > 0
