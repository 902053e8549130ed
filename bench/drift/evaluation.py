"""Every scenario replayed with every seed: the summaries, one seed's windows for the chart and
each figure's per-window values for the histograms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stream_trf.monitor.monitor import MonitorConfig

from .labelled import Record
from .replay import ScenarioRun, WindowRow, run_scenario
from .scenarios import Scenario, make_pools
from .summary import summarize_change, summarize_stationary


def run_replays(
    records: Sequence[Record],
    scenarios: Sequence[Scenario],
    seeds: Sequence[int],
    config: MonitorConfig,
    *,
    window_docs: int,
    home_sections: int,
    on_window: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], dict[str, list[WindowRow]], dict[str, dict[str, list[float | None]]]]:
    """Every scenario with every seed. Returns the summaries by scenario name, the first
    seed's window rows by scenario (for the chart), and the per-window figures by figure and
    scenario (stationary windows, and changed windows after the change) for the histograms."""
    runs: dict[str, list[ScenarioRun]] = {s.name: [] for s in scenarios}
    for seed in seeds:
        pools = make_pools(records, seed, home_sections, config.reference_size)
        for i, scenario in enumerate(scenarios):
            runs[scenario.name].append(
                run_scenario(
                    scenario,
                    pools,
                    config,
                    window_docs,
                    seed,
                    scenario_index=i,
                    on_window=on_window,
                )
            )
    summaries: dict[str, Any] = {}
    for scenario in scenarios:
        done = runs[scenario.name]
        if scenario.kind == "stationary":
            summaries[scenario.name] = {
                "kind": "stationary",
                "window_docs": scenario.window_docs,
                **summarize_stationary(done, config),
            }
        else:
            summaries[scenario.name] = summarize_change(done)
    series = {name: done[0].rows for name, done in runs.items() if done}
    dist: dict[str, dict[str, list[float | None]]] = {"cosine": {}, "js": {}, "p_value": {}}
    for scenario in scenarios:
        if scenario.kind == "corrupt" or scenario.window_docs is not None:
            continue
        start = 0 if scenario.kind == "stationary" else scenario.before
        rows = [r for run in runs[scenario.name] for r in run.rows[start:] if r["evaluated"]]
        for key in dist:
            dist[key][scenario.name] = [r[key] for r in rows]  # type: ignore[literal-required]
    return summaries, series, dist
