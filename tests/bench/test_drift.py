"""The drift benchmark's replay on synthetic enriched records: no model, no broker.

A planted switch (other labels, shifted doc vectors) must be found within the earliest possible
number of windows, a stationary stream must stay quiet, corrupted production labels must raise
the agreement alert only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from monitor_helpers import SHIFTED, STATIONARY, RecordStream

from bench.drift.chart import chart
from bench.drift.evaluation import run_replays
from bench.drift.figures import DRIFT_GROUPS
from bench.drift.replay import ScenarioRun, replay, run_scenario, slim
from bench.drift.scenarios import (
    Cycle,
    Pools,
    Scenario,
    corrupt,
    default_scenarios,
    make_pools,
    scenario_windows,
)
from bench.drift.summary import detection, summarize_change, summarize_stationary
from stream_trf.monitor.alerts import Thresholds
from stream_trf.monitor.monitor import MonitorConfig

WINDOW = 100
CONFIG = MonitorConfig(
    window_seconds=60.0,
    reference_size=200,
    reference_sample=200,
    alert_windows=2,
    permutations=100,
    thresholds=Thresholds(min_documents=WINDOW),
)


def _pools(seed: int = 0) -> Pools:
    stream = RecordStream(seed=seed)
    home = [slim(r) for r in stream.records(800, agrees=True)]
    other = [slim(r) for r in stream.records(400, label_p=SHIFTED, shift=1.0, agrees=True)]
    for r in home:
        r["section"] = "home"
    for r in other:
        r["section"] = "other"
    return Pools(reference=home[:200], home=home[200:], other=other)


def _run(scenario: Scenario, seed: int = 0) -> ScenarioRun:
    return run_scenario(scenario, _pools(seed), CONFIG, WINDOW, seed)


def test_a_stationary_synthetic_stream_raises_no_drift_alert() -> None:
    runs = [_run(Scenario("stationary", "stationary", 0.0, 20, 0), seed) for seed in (0, 1)]
    assert all(len(run.rows) == 20 and all(r["evaluated"] for r in run.rows) for run in runs)
    summary = summarize_stationary(runs, CONFIG)
    assert summary["windows"] == 40
    for group in DRIFT_GROUPS:
        assert summary["groups"][group]["alerts_raised"] == 0, summary["groups"][group]
    assert summary["figures"]["cosine_distance"]["p100"] < CONFIG.thresholds.embedding_cosine_max
    assert runs[0].home_passes >= 4  # 20 × 100 draws from 600 records: repeated passes


def test_a_planted_switch_is_detected_at_the_earliest_window() -> None:
    run = _run(Scenario("switch", "switch", 1.0, 4, 4))
    for group in DRIFT_GROUPS:
        delay, pre = detection(run, group)
        assert (delay, pre) == (CONFIG.alert_windows, 0), group
    summary = summarize_change([run])
    assert summary["groups"]["embedding"]["delay_windows_max"] == 2
    assert summary["groups"]["embedding"]["misses"] == 0


def test_a_partial_switch_holds_the_stated_share() -> None:
    pools = _pools()
    rng = np.random.default_rng(0)
    windows = list(scenario_windows(Scenario("s", "switch", 0.3, 2, 2), pools, WINDOW, rng))
    others = [sum(r["section"] == "other" for r in w) for w in windows]
    assert others == [0, 0, 30, 30]


def test_corrupted_production_labels_raise_the_agreement_alert_only() -> None:
    run = _run(Scenario("corrupt", "corrupt", 0.5, 4, 5))
    delay, pre = detection(run, "agreement")
    assert delay == CONFIG.alert_windows and pre == 0
    for group in DRIFT_GROUPS:
        assert detection(run, group) == (None, 0), group
    after = [r["agreement"] for r in run.rows[4:]]
    assert all(a is not None and a < 0.6 for a in after)
    summary = summarize_change([run])
    assert summary["groups"]["embedding"]["must_stay_quiet"]
    assert summary["groups"]["agreement"]["expected"]


def test_corruption_recomputes_agreement_the_workers_way() -> None:
    rec = slim(RecordStream().record(agrees=True))
    rng = np.random.default_rng(0)
    for _ in range(20):
        bad = corrupt(rec, rec["labels"], rng)
        assert bad["production"]["label"] != rec["production"]["label"]
        assert bad["production"]["agrees"] is (bad["production"]["label"] == rec["label"])
    assert rec["production"]["agrees"] is True  # the original is left alone


def test_cycle_draws_every_record_once_per_pass() -> None:
    pool = [{"i": i} for i in range(7)]
    cycle = Cycle(pool, np.random.default_rng(0))
    first, second = cycle.take(7), cycle.take(7)
    assert sorted(r["i"] for r in first) == sorted(r["i"] for r in second) == list(range(7))
    assert cycle.passes == 2


def test_replay_needs_exactly_the_reference_size() -> None:
    pools = _pools()
    with pytest.raises(ValueError, match="reference"):
        replay(pools.reference[:10], [], CONFIG, window_docs=WINDOW)


def test_pools_split_sections_and_keep_the_reference_apart() -> None:
    stream = RecordStream(seed=3)
    records = []
    for i, label_p in enumerate((STATIONARY, SHIFTED, STATIONARY)):
        for r in stream.records(300, label_p=label_p, agrees=True):
            s = slim(r)
            s["section"] = f"s{i}"
            records.append(s)
    pools = make_pools(records, seed=0, home_sections=2, reference_size=200)
    assert len(pools.home_sections) == 2 and len(pools.other_sections) == 1
    assert {r["section"] for r in pools.reference + pools.home} == set(pools.home_sections)
    assert {r["section"] for r in pools.other} == set(pools.other_sections)
    assert not {r["id"] for r in pools.reference} & {r["id"] for r in pools.home}


def test_replays_summaries_verdict_inputs_and_chart(tmp_path: Path) -> None:
    stream = RecordStream(seed=5)
    records = []
    for i in range(3):
        for r in stream.records(400, shift=0.6 * i, agrees=True):
            s = slim(r)
            s["section"] = f"s{i}"
            records.append(s)
    scenarios = default_scenarios(
        stationary_windows=4, before=2, after=2, switch_shares=[1.0], corrupt_shares=[0.5]
    )
    config = replace(CONFIG, reference_size=200)
    summaries, series, dist = run_replays(
        records, scenarios, [0], config, window_docs=WINDOW, home_sections=2
    )
    assert set(summaries) == {"stationary", "switch-100%", "corrupt-50%"}
    assert summaries["switch-100%"]["groups"]["embedding"]["detected"] == 1
    assert summaries["corrupt-50%"]["groups"]["agreement"]["detected"] == 1
    assert len(series["stationary"]) == 4 and len(dist["cosine"]["stationary"]) == 4
    result = {
        "model": {"name": "m"},
        "machine": {"device": "CPU: test"},
        "seeds": 1,
        "settings": {
            "thresholds": {
                k: getattr(config.thresholds, k)
                for k in ("embedding_cosine_max", "label_js_max", "embedding_p_value_min")
            }
        },
        "design": {"window_docs": WINDOW, "windows_before_change": 2},
        "scenarios": summaries,
    }
    chart(result, series, dist, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000
