"""The host system (`stream-trf bench --systems host`) for this checkout against an earlier commit,
rounds alternating (issue 29).

Each run measures, on the near-zero-compute model and the same documents, the floor, the batch
processor alone and the worker end to end through the embedded broker (bench/harness/host.py),
and reports CPU-ms per document and the ratios to the floor. The baseline's stream_trf runs from
a git worktree of ``--baseline``, measured by this checkout's harness (``bench/harness`` is laid
over the worktree's), with PYTHONSAFEPATH=1 so that this checkout does not shadow it. Give
``--baseline-python`` when the baseline needs its own environment (its package's entry points).
The ratios, measured within one run, are the figure; this host drifts by tens of percent.

    python -m bench.experiments.host_ab --baseline 5e4a302 --rounds 2 --docs 6000 \\
        --out bench/results/host-ab-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.machine import describe, source_revision, worktree

REPO = Path(__file__).resolve().parents[2]

# One variant's run, in a process of its own whose path starts at the code under test.
_ONE_RUN = """
import json, sys
from pathlib import Path
import stream_trf
from bench.harness.host import run_host
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
n = int(sys.argv[2])
result = run_host(texts[:n], texts[n:], log_dir=Path(sys.argv[3]))
result["stream_trf"] = stream_trf.__file__
print("RESULT " + json.dumps(result), flush=True)
"""


def one_run(python: str, code: Path, texts_file: Path, n: int, logs: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(code), PYTHONSAFEPATH="1")
    proc = subprocess.run(
        [python, "-c", _ONE_RUN, str(texts_file), str(n), str(logs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=logs,
        check=False,
        timeout=3600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        hint = ""
        if "ModuleNotFoundError: No module named 'stream_trf." in proc.stderr:
            hint = (
                "\n(this environment's stream_trf entry points name modules the baseline does "
                "not have: pass --baseline-python of an environment installed from it)"
            )
        raise RuntimeError(f"the run in {code} failed:\n{proc.stderr[-3000:]}{hint}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--baseline", required=True, help="git revision to compare this checkout with")
    ap.add_argument("--baseline-python", default=sys.executable)
    ap.add_argument("--docs", type=int, default=6000)
    ap.add_argument("--warmup-docs", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    texts = read_texts(args.data or default_data_path(), args.docs + args.warmup_docs)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stream-trf-host-ab-") as tmp:
        texts_file = Path(tmp) / "texts.jsonl"
        texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        with worktree(args.baseline, Path(tmp) / "baseline") as base:
            shutil.rmtree(base / "bench" / "harness", ignore_errors=True)
            shutil.copytree(REPO / "bench" / "harness", base / "bench" / "harness")
            for r in range(args.rounds):
                order = ["baseline", "this"] if r % 2 == 0 else ["this", "baseline"]
                for variant in order:
                    logs = Path(tmp) / f"{variant}-{r}"
                    logs.mkdir()
                    code, python = (
                        (base, args.baseline_python)
                        if variant == "baseline"
                        else (REPO, sys.executable)
                    )
                    run = {"variant": variant, "round": r}
                    run.update(one_run(python, code, texts_file, args.docs, logs))
                    print(
                        json.dumps({k: run[k] for k in ("variant", "round", "ratios")}), flush=True
                    )
                    runs.append(run)

    def median(variant: str, key: str) -> float | None:
        values = [r["ratios"][key] for r in runs if r["variant"] == variant and key in r["ratios"]]
        return round(statistics.median(values), 3) if values else None

    summary = {
        variant: {
            key: median(variant, key)
            for key in (
                "processor_over_floor",
                "worker_over_floor",
                "processor_less_forward_over_floor",
                "worker_less_forward_over_floor",
            )
        }
        for variant in ("baseline", "this")
    }
    result = {
        "benchmark": "host-side cost, this checkout against a baseline commit",
        "command": "python -m bench.experiments.host_ab " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "note": args.note,
        "baseline": args.baseline,
        "this": source_revision(),
        "target": "worker_over_floor <= 1.5",
        "median_ratios": summary,
        "runs": runs,
    }
    print(json.dumps({"median_ratios": summary}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
