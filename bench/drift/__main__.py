"""Quality of drift detection: false alarms on a stationary stream, detection delays on drifting
ones, with the worker's own monitor and its default thresholds (issue 6).

    python -m bench.drift                  # enrich (cached), replay, live check
    python -m bench.drift --no-live --seeds 3 --stationary-windows 50   # quicker

1. The labelled Debian descriptions (shared/data/debian-sections, train + dev) go through a real
   `stream-trf worker` on the embedded broker, each with a production prediction from a naive
   Bayes model trained on the train split (bench/drift/classifier.py); the enriched records are
   cached under ~/.cache/stream-trf/drift/ (a rerun skips this step; bench/drift/enrich.py).
2. The enriched records are replayed through the monitor with a synthetic clock, window after
   window of --window-docs documents: a stationary stream, switches to sections the reference
   never saw, corrupted production labels; several seeds each (scenarios.py, replay.py,
   evaluation.py, summary.py).
3. A live check: a worker with short windows, a stream that switches sections half-way; the
   delay until the alert shows on /metrics and in a window record on the metrics topic
   (live.py).

Results: bench/results/drift-detection.json and .png (chart.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.machine import describe
from stream_trf.model.source import DEFAULT_MODEL
from stream_trf.settings import ENV_PREFIX, Settings

from .chart import chart
from .classifier import PRODUCTION_RECIPE, production_predictions
from .enrich import (
    cache_key,
    default_cache_dir,
    enrich_through_worker,
    load_cache,
    save_cache,
    tmp_log_dir,
)
from .evaluation import run_replays
from .figures import GROUPS
from .labelled import LabelledDoc, default_sections_dir, input_records, read_labelled
from .live import live_check
from .replay import monitor_config, slim
from .report import table, verdicts
from .scenarios import default_scenarios, make_pools


def _shares(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.drift",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = default_sections_dir()
    p.add_argument("--train", type=Path, default=data / "train.jsonl" if data else None)
    p.add_argument("--dev", type=Path, default=data / "dev.jsonl" if data else None)
    p.add_argument("--model", default=DEFAULT_MODEL, help="the worker's model")
    p.add_argument("--seeds", type=int, default=10, help="seeds per scenario (0, 1, …)")
    p.add_argument("--window-docs", type=int, default=150, help="documents per replayed window")
    p.add_argument(
        "--home-sections",
        type=int,
        default=7,
        help="sections of the reference (picked at random per seed); the rest are 'other'",
    )
    p.add_argument(
        "--stationary-windows", type=int, default=500, help="windows of the stationary stream"
    )
    p.add_argument("--before", type=int, default=10, help="windows before a change")
    p.add_argument("--after", type=int, default=30, help="windows from a change on (horizon)")
    p.add_argument("--switch-shares", type=_shares, default=[1.0, 0.3, 0.1])
    p.add_argument("--corrupt-shares", type=_shares, default=[0.1, 0.2, 0.4])
    p.add_argument(
        "--stationary-window-docs",
        type=lambda t: [int(x) for x in t.split(",") if x.strip()],
        default=[100],
        help="also run the stationary stream with these window sizes (100: the smallest "
        "window alert_min_documents lets the thresholds judge)",
    )
    p.add_argument(
        "--within",
        type=int,
        default=5,
        help="the stated detection bound: an expected alert must be active within this many "
        "windows of the change (the earliest possible is --alert-windows, default 2)",
    )
    p.add_argument(
        "--promise-min-share",
        type=float,
        default=0.2,
        help="changes of at least this share of a window's documents are promised to be "
        "detected within --within windows; smaller ones are measured as the limit of "
        "detection, not promised",
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting for the replay instead of its default, e.g. label_js_max=0.3 "
        "(to try other thresholds; the live check keeps the defaults)",
    )
    p.add_argument(
        "--mmd-max-per-side",
        type=int,
        default=None,
        help="vectors per side of the MMD test instead of the monitor's default "
        "(drift_sample_size, 500), to try another value",
    )
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    p.add_argument("--refresh", action="store_true", help="enrich again even when cached")
    p.add_argument("--no-live", action="store_true", help="skip the live check")
    p.add_argument(
        "--live-window-seconds",
        type=float,
        default=6.0,
        help="window_seconds of the live worker (at ~25 docs/s on 2 cores, ~150 docs a window, "
        "so that windows hold alert_min_documents)",
    )
    p.add_argument(
        "--live-min-documents",
        type=int,
        default=Settings().alert_min_documents,
        help="alert_min_documents of the live worker (lower it for shorter windows)",
    )
    p.add_argument(
        "--live-max-batch",
        type=int,
        default=64,
        help="max_batch of the live worker: smaller than the default 256, so that a batch "
        "takes less than a window",
    )
    p.add_argument("--live-reference", type=int, default=300, help="reference_size, live")
    p.add_argument("--live-stationary", type=int, default=600, help="home docs after it")
    p.add_argument("--live-switched", type=int, default=450, help="other-section docs at the end")
    p.add_argument("--output", type=Path, default=Path("bench/results/drift-detection.json"))
    p.add_argument("--chart", type=Path, default=Path("bench/results/drift-detection.png"))
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.train is None or args.dev is None:
        p.error("shared/data/debian-sections not found: pass --train and --dev")
    return args


def replay_settings(pairs: list[str]) -> tuple[Settings, dict[str, str]]:
    """Settings for the replay: the defaults, with ``NAME=VALUE`` overrides validated the way
    the worker validates its environment."""
    env = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        env[ENV_PREFIX + name.strip().upper()] = value.strip()
    return Settings.from_sources(None, env), {
        k[len(ENV_PREFIX) :].lower(): v for k, v in env.items()
    }


def enriched_records(
    args: argparse.Namespace, docs: list[LabelledDoc], log_dir: Path
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, tuple[str, float]]]:
    """The enriched records, from the cache or through the worker; the cache header; the
    production predictions."""
    train = [d for d in docs if d.split == "train"]
    dev = [d for d in docs if d.split == "dev"]
    predictions, accuracy = production_predictions(train, dev)
    key = cache_key([args.train, args.dev], args.model)
    path = args.cache_dir / f"enriched-{key}.jsonl.gz"
    if path.exists() and not args.refresh:
        header, records = load_cache(path)
        header["cached"] = True
    else:
        inputs = input_records(docs, predictions)
        records, info = enrich_through_worker(
            inputs, model=args.model, log_dir=log_dir, progress=not args.quiet
        )
        header = {
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model": args.model,
            "production_model": PRODUCTION_RECIPE,
            "production_accuracy": accuracy,
            "enrichment": info,
        }
        save_cache(path, header, records)
        header["cached"] = False
    header["cache_file"] = str(path)
    return records, header, predictions


def live_inputs(
    docs: list[LabelledDoc],
    predictions: dict[str, tuple[str, float]],
    home: list[str],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng(12345)
    home_docs = [d for d in docs if d.label in home]
    other_docs = [d for d in docs if d.label not in home]
    home_docs = [home_docs[i] for i in rng.permutation(len(home_docs))]
    other_docs = [other_docs[i] for i in rng.permutation(len(other_docs))]
    n_ref, n_home = args.live_reference, args.live_stationary
    return (
        input_records(home_docs[:n_ref], predictions, "live-ref-"),
        input_records(home_docs[n_ref : n_ref + n_home], predictions, "live-home-"),
        input_records(other_docs[: args.live_switched], predictions, "live-switch-"),
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    t_total = time.monotonic()
    settings, overrides = replay_settings(args.setting)
    config = monitor_config(settings)
    if args.mmd_max_per_side is not None:
        config = replace(config, max_per_side=args.mmd_max_per_side)
        overrides["mmd_max_per_side (MonitorConfig.max_per_side)"] = str(args.mmd_max_per_side)
    log_dir = tmp_log_dir()
    docs = read_labelled(args.train, "train") + read_labelled(args.dev, "dev")

    t0 = time.monotonic()
    raw, header, predictions = enriched_records(args, docs, log_dir)
    t_enrich = time.monotonic() - t0
    # In id order: the consumer's arrival order differs from run to run, and the seeds' pools
    # must not depend on it.
    records = sorted((slim(r) for r in raw), key=lambda r: str(r["id"]))
    del raw
    agree = [r["production"]["agrees"] for r in records if r.get("production")]
    transformer_correct = [r["label"] == r["section"] for r in records]
    prod_correct = [predictions[r["id"]][0] == r["section"] for r in records]

    scenarios = default_scenarios(
        stationary_windows=args.stationary_windows,
        before=args.before,
        after=args.after,
        switch_shares=args.switch_shares,
        corrupt_shares=args.corrupt_shares,
        stationary_window_docs=args.stationary_window_docs,
    )
    seeds = list(range(args.seeds))
    from tqdm import tqdm

    t0 = time.monotonic()
    with tqdm(
        total=sum(s.windows for s in scenarios) * len(seeds),
        unit="window",
        desc="replay (monitor)",
        disable=args.quiet,
    ) as bar:
        summaries, series, distributions = run_replays(
            records,
            scenarios,
            seeds,
            config,
            window_docs=args.window_docs,
            home_sections=args.home_sections,
            on_window=lambda: bar.update(1),
        )
    t_replay = time.monotonic() - t0

    live: dict[str, Any] | None = None
    t_live = 0.0
    if not args.no_live:
        home = make_pools(records, 0, args.home_sections, config.reference_size)
        ref, stationary, switched = live_inputs(docs, predictions, home.home_sections, args)
        t0 = time.monotonic()
        try:
            live = live_check(
                ref,
                stationary,
                switched,
                model=args.model,
                window_seconds=args.live_window_seconds,
                min_documents=args.live_min_documents,
                max_batch=args.live_max_batch,
                log_dir=log_dir,
            )
            live["home_sections"] = home.home_sections
            live["other_sections"] = home.other_sections
        except Exception as err:  # the replay's figures stand on their own
            live = {"error": f"{type(err).__name__}: {err}", "log_dir": str(log_dir)}
        t_live = time.monotonic() - t0

    sections = Counter(d.label for d in docs)
    result: dict[str, Any] = {
        "name": "drift detection quality",
        "command": "python -m bench.drift " + " ".join(argv),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe(),
        "model": records[0]["model"] if records else {"name": args.model},
        "data": {
            "files": [str(args.train), str(args.dev)],
            "documents": len(docs),
            "by_split": dict(Counter(d.split for d in docs)),
            "sections": dict(sorted(sections.items())),
        },
        "production_model": {
            "recipe": PRODUCTION_RECIPE,
            "note": "train docs get out-of-fold predictions, dev docs the model trained on train",
            **header.get("production_accuracy", {}),
            "accuracy_all": round(float(np.mean(prod_correct)), 4),
        },
        "transformer": {
            "classifier": "the shipped Debian-sections head (trained on the train split)",
            "accuracy_all": round(float(np.mean(transformer_correct)), 4),
            "agreement_with_production_all": round(float(np.mean(agree)), 4) if agree else None,
        },
        "enrichment": {
            "cached": header.get("cached"),
            "cache_file": header.get("cache_file"),
            **header.get("enrichment", {}),
        },
        "settings": {
            "overrides": overrides,
            "thresholds": asdict(config.thresholds),
            "alert_windows": config.alert_windows,
            "reference_size": config.reference_size,
            "reference_sample": config.reference_sample,
            "max_per_side": config.max_per_side,
            "permutations": config.permutations,
        },
        "design": {
            "window_docs": args.window_docs,
            "home_sections": args.home_sections,
            "stationary_windows": args.stationary_windows,
            "stationary_window_docs_also": args.stationary_window_docs,
            "windows_before_change": args.before,
            "windows_after_change": args.after,
            "within": args.within,
            "promise_min_share": args.promise_min_share,
            "clock": "synthetic: every window holds exactly window_docs records",
            "reference": (
                "the monitor's own: the stream's first reference_size records, drawn at random "
                "from the home sections; fed as the first windows, which are not reported"
            ),
            "sampling": (
                "per seed, home_sections of the 10 sections are picked at random; windows draw "
                "from the home records not in the reference (and from the other sections' "
                "records) in shuffled passes: without replacement within a pass, with "
                "replacement across passes, each draw a new record to the monitor"
            ),
            "switch": "each changed window holds exactly round(share × window_docs) records "
            "of the other sections, in random positions",
            "corrupt": "each changed window has round(share × window_docs) records whose "
            "production label is replaced by a uniformly random other label of the 10; "
            "'agrees' is recomputed with the worker's rule (done at replay, not in the worker)",
            "delay": "windows from the change until the alert is active at a window's close: "
            "1 = at the close of the first changed window; the earliest possible is "
            "alert_windows",
            "alert groups": {g: list(f) for g, f in GROUPS.items()},
        },
        "seeds": len(seeds),
        "scenarios": summaries,
        "live": live,
        "runtime_seconds": {
            "enrichment_or_cache": round(t_enrich, 1),
            "replay": round(t_replay, 1),
            "live_check": round(t_live, 1),
            "total": round(time.monotonic() - t_total, 1),
        },
    }
    result["verdicts"] = verdicts(summaries, args.within, args.promise_min_share)
    if live and "error" not in live:
        result["verdicts"]["live: drift alert on /metrics and in a window record"] = bool(
            live["detected_on_metrics"] and live["detected_in_window_record"]
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    chart(result, series, distributions, args.chart)
    print(table(result))
    print(f"wrote {args.output} and {args.chart} in {result['runtime_seconds']['total']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
