"""The worker at one fixed rate, two variants, rounds alternating: this checkout against an
earlier commit (``--baseline``), or against other settings (``--baseline-settings``), or both.

A change to how the worker batches shows at a steady offered load, not at saturation: there
every batch is full either way. Each run starts the embedded broker and one worker (the
baseline's code from a git worktree, through PYTHONPATH with PYTHONSAFEPATH=1 so that the
checkout the script runs from does not shadow it), warms it on 100 docs, then offers
``--rate`` docs/s for ``--seconds`` and reports what ``stream-trf bench`` reports for a paced
run: whether it kept pace, latency p50/p99, the buffer times, and RSS growth. This host drifts
by ±20 %: compare variants within a round, and look at every round.

    python -m bench.experiments.worker_paced_ab --baseline dda9c22 --rate 38 --seconds 200 \\
        --rounds 2 --out bench/results/worker-paced-ab-cpu.json
    python -m bench.experiments.worker_paced_ab \\
        --baseline-settings mmap_threshold_mb=4,huge_pages=true --rate 100 --seconds 40 --rounds 3

Each run also reports the worker's CPU (user and kernel seconds, minor page faults per doc):
figures this host's drift does not move, unlike docs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.machine import describe, source_revision, worktree
from bench.harness.worker import bench_settings, paced_run, run_round
from stream_trf.settings import ENV_PREFIX, Settings
from stream_trf.stream import clients
from stream_trf.stream.broker import EmbeddedBroker
from stream_trf.stream.local import WorkerProcess


def parse_settings(text: str) -> dict[str, Any]:
    """``name=value,...`` → worker settings, read as the worker reads its ``STREAM_TRF_*``
    environment (so typed and validated the same way)."""
    pairs = [x.strip().partition("=") for x in text.split(",") if x.strip()]
    env = {ENV_PREFIX + name.strip().upper(): value.strip() for name, _, value in pairs}
    try:
        settings = Settings.from_sources(None, env)
    except ValueError as err:
        raise SystemExit(f"worker settings {text!r}: {err}") from None
    out: dict[str, Any] = {}
    for name, _, _ in pairs:
        if not hasattr(settings, name.strip()):
            raise SystemExit(f"no worker setting {name.strip()!r}")
        out[name.strip()] = getattr(settings, name.strip())
    return out


def one_run(
    code: Path | None,
    texts: list[str],
    rate: float,
    seconds: float,
    logs: Path,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    # The baseline's stream_trf comes first on the worker's path, and -m must not put this
    # checkout (the working directory) before it.
    code_env = {} if code is None else {"PYTHONPATH": str(code), "PYTHONSAFEPATH": "1"}
    with EmbeddedBroker(log_file=logs / "broker.log") as broker:
        settings = bench_settings(broker.url, "all-MiniLM-L6-v2", **(overrides or {}))
        asyncio.run(clients.ensure_worker_topics(settings))
        worker = WorkerProcess(settings, logs / "worker.log", extra_env=code_env)
        try:
            worker.wait_ready(timeout=600)
            warm = [{"id": f"warm-{i}", "text": t} for i, t in enumerate(texts[:100])]
            asyncio.run(run_round(settings, warm, None, timeout=600))
            result = paced_run(settings, texts, rate, seconds, "paced", worker.pid)
        finally:
            worker.terminate()
    result.pop("rss_samples", None)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--baseline", default=None, help="git revision to compare this checkout with")
    ap.add_argument(
        "--baseline-settings", default="", help="worker settings of the baseline, name=value,..."
    )
    ap.add_argument(
        "--this-settings", default="", help="worker settings of this checkout, name=value,..."
    )
    ap.add_argument("--rate", type=float, required=True, help="offered docs/s")
    ap.add_argument("--seconds", type=float, default=200.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", type=Path, default=default_data_path())
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.baseline is None and not (args.baseline_settings or args.this_settings):
        ap.error("give --baseline, --baseline-settings or --this-settings: two variants to compare")
    if args.baseline and sys.version_info < (3, 11):
        ap.error("--baseline needs Python 3.11+ (PYTHONSAFEPATH keeps this checkout off its path)")
    settings = {
        "baseline": parse_settings(args.baseline_settings),
        "this": parse_settings(args.this_settings),
    }
    texts = read_texts(args.data, 2000)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="stream-trf-ab-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        base = Path(tmp) / "baseline"
        if args.baseline:
            stack.enter_context(worktree(args.baseline, base))
        for r in range(args.rounds):
            order = ["baseline", "this"] if r % 2 == 0 else ["this", "baseline"]
            for variant in order:
                logs = Path(tmp) / f"{variant}-{r}"
                logs.mkdir()
                code = base if variant == "baseline" and args.baseline else None
                run = {
                    "variant": variant,
                    "round": r,
                    "settings": settings[variant],
                    **one_run(code, texts, args.rate, args.seconds, logs, settings[variant]),
                }
                print(json.dumps(run), flush=True)
                runs.append(run)
    head = source_revision()
    result = {
        "benchmark": "worker at a fixed paced rate, this checkout against a baseline commit",
        "machine": describe(),
        "command": " ".join(["python", "-m", "bench.experiments.worker_paced_ab", *sys.argv[1:]]),
        "baseline": args.baseline or head,
        "baseline_settings": settings["baseline"],
        "this": head,
        "this_settings": settings["this"],
        "rate_docs_per_s": args.rate,
        "seconds": args.seconds,
        "runs": runs,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
