"""Replay through :class:`~stream_trf.monitor.monitor.Monitor` with a synthetic clock.

Every window gets exactly ``window_docs`` records, so that a figure's noise depends on the window
size only, not on how fast this machine happens to be. The reference is the monitor's own: the
stream's first ``reference_size`` records. Nothing here changes the monitor: the replay calls the
same ``observe_enriched`` and ``tick`` the worker calls, only with a clock that the replay moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from stream_trf.monitor.monitor import Monitor, MonitorConfig
from stream_trf.settings import Settings

from .labelled import Record
from .scenarios import Pools, Scenario, scenario_windows

# A fixed, window-aligned origin for the synthetic clock (any multiple of the window works).
CLOCK_ORIGIN_WINDOWS = 28_000_000


def slim(record: Record) -> Record:
    """The fields the monitor reads (and the section), with the doc vector as a float32 array:
    a tenth of the memory, and no list-to-array conversion per window. ``timings`` is left out
    on purpose: latencies against a synthetic clock mean nothing."""
    out: Record = {
        k: record[k]
        for k in (
            "id",
            "model",
            "n_words",
            "n_wordpieces",
            "windowed_wordpieces",
            "n_unknown_wordpieces",
            "label",
            "score",
            "production",
        )
        if k in record
    }
    out["sentences"] = [None] * len(record.get("sentences") or ())  # only the count is read
    out["doc_vector"] = np.asarray(record["doc_vector"], dtype=np.float32)
    out["section"] = (record.get("meta") or {}).get("section")
    out["labels"] = sorted(record.get("cats") or ())
    return out


class WindowRow(TypedDict):
    """One replayed window: its figures (None where not computed) and active alerts."""

    window: int  # 0 = the first window after the reference
    documents: int
    evaluated: bool  # enough documents for the thresholds to apply
    cosine: float | None
    p_value: float | None
    js: float | None
    psi: float | None
    agreement: float | None
    agreement_upper: float | None
    agreement_floor: float | None
    confidence: float | None
    text_drift: dict[str, float | None]  # as the monitor computes it against the reference
    alerts: list[str]


def _text_drift(
    window: dict[str, float | None], reference: dict[str, float | None]
) -> dict[str, float | None]:
    """The text figures' drift, the monitor's way: the change of a share, the relative change
    of a mean."""
    out: dict[str, float | None] = {}
    for name, value in window.items():
        base = reference.get(name)
        if value is None or base is None:
            out[name] = None
        elif name.endswith("_share"):
            out[name] = round(value - base, 6)
        else:
            out[name] = round(value / base - 1.0, 6) if base > 0 else None
    return out


def replay(
    reference: Sequence[Record],
    windows: Iterable[Sequence[Record]],
    config: MonitorConfig,
    *,
    window_docs: int,
    on_window: Callable[[], None] | None = None,
) -> list[WindowRow]:
    """Feed the reference records, then each window's records, to a fresh :class:`Monitor`
    with a synthetic clock: window k's records arrive evenly spread inside window k, and
    ``tick`` runs at its end. The reference is built by the monitor itself from the stream's
    first ``config.reference_size`` records, so ``reference`` must hold exactly that many; they
    fill the first windows (``window_docs`` each, the last one maybe fewer), which are not
    reported."""
    if len(reference) != config.reference_size:
        raise ValueError(
            f"{len(reference)} reference records for a reference_size of {config.reference_size}"
        )
    size = config.window_seconds
    clock = CLOCK_ORIGIN_WINDOWS * size
    monitor = Monitor(config, worker="replay", started=clock)
    offset = 0

    def feed(batch: Sequence[Record]) -> dict[str, Any]:
        nonlocal clock, offset
        for i, rec in enumerate(batch):
            source = {"topic": "replay", "partition": 0, "offset": offset}
            offset += 1
            monitor.observe_enriched(
                {**rec, "source": source}, clock + (i + 0.5) * size / len(batch)
            )
        clock += size
        closed = monitor.tick(clock)
        if len(closed) != 1:
            raise RuntimeError(f"expected one closed window, got {len(closed)}")
        return closed[0]

    for start in range(0, len(reference), window_docs):
        feed(reference[start : start + window_docs])
    th = config.thresholds
    rows: list[WindowRow] = []
    for k, batch in enumerate(windows):
        w = feed(batch)
        model = (w["model"]["name"], w["model"]["version"])
        ref = monitor.reference(model)
        floor = None
        if th.agreement_min > 0:
            floor = th.agreement_min
        elif ref is not None and ref.agreement_ratio is not None:
            floor = ref.agreement_ratio - th.agreement_max_drop
        rows.append(
            WindowRow(
                window=k,
                documents=w["volume"]["documents"],
                evaluated=w["volume"]["documents"] >= th.min_documents,
                cosine=w["embedding"]["cosine_distance"],
                p_value=w["embedding"]["p_value"],
                js=w["labels"]["js_distance"],
                psi=w["labels"]["psi"],
                agreement=w["agreement"]["ratio"],
                agreement_upper=w["agreement"]["upper"],
                agreement_floor=None if floor is None else round(floor, 6),
                confidence=w["labels"]["mean_confidence"],
                text_drift=_text_drift(w["text"], ref.text if ref is not None else {}),
                alerts=[a["figure"] for a in w["alerts"]],
            )
        )
        if on_window is not None:
            on_window()
    return rows


@dataclass
class ScenarioRun:
    scenario: Scenario
    seed: int
    rows: list[WindowRow]
    home_sections: list[str]
    other_sections: list[str]
    home_passes: int = 0


def run_scenario(
    scenario: Scenario,
    pools: Pools,
    config: MonitorConfig,
    window_docs: int,
    seed: int,
    *,
    scenario_index: int = 0,
    on_window: Callable[[], None] | None = None,
) -> ScenarioRun:
    rng = np.random.default_rng([seed, 2, scenario_index])
    window_docs = scenario.window_docs or window_docs
    windows = list(scenario_windows(scenario, pools, window_docs, rng))
    rows = replay(pools.reference, windows, config, window_docs=window_docs, on_window=on_window)
    drawn_home = sum(
        len(w)
        - (
            round(scenario.share * window_docs)
            if scenario.kind == "switch" and k >= scenario.before
            else 0
        )
        for k, w in enumerate(windows)
    )
    return ScenarioRun(
        scenario,
        seed,
        rows,
        pools.home_sections,
        pools.other_sections,
        home_passes=math.ceil(drawn_home / max(len(pools.home), 1)),
    )


def monitor_config(settings: Settings, window_seconds: float = 60.0) -> MonitorConfig:
    """The worker's monitor configuration for ``settings`` (thresholds, K, reference size,
    permutations); only the window length differs, and it means nothing on a synthetic clock."""
    from dataclasses import replace

    return replace(settings.monitor, window_seconds=window_seconds)
