"""What a fine-tuning step costs through spaCy's optimizer path, against the code before it.

The same batches (16 training descriptions each, cut to their first 64 wordpieces, as the
default recipe trains) through two versions of stream_trf, alternating per round in fresh
processes so that a shared or throttled CPU treats both alike:

* ``base``: a git revision before issue 31 (the transformer steps its own fused torch AdamW
  from ``receive_gradient``; the head its own AdamW): ``nlp.update(batch, sgd=optimizer)``;
* ``new``: this tree, as spaCy's training loop drives it: ``nlp.update(batch, sgd=False)``,
  then every component's ``finish_update(optimizer)`` with ``stream_trf.Adam.v1`` (the
  transformer at 1e-4) and the head's own Adam at 1e-3; and the same with Thinc's own
  ``Adam.v1`` (``thinc``), whose single-threaded kernel is what ``stream_trf.Adam.v1`` avoids.

Prints and records the median seconds per step of each, and their ratios (measured in one run:
the ratio is the figure; absolute seconds depend on the machine and its load).

    python -m bench.experiments.finetune_step_ab --base 7142827 --rounds 3 --steps 12 \\
        --out bench/results/finetune-step-ab-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness.corpus import sections_dir

ROOT = Path(__file__).resolve().parents[2]
TRAIN = sections_dir() / "train.jsonl"

_WORKER = r"""
import json, random, sys, time
import numpy as np, torch
import stream_trf
from spacy.training import Example
from stream_trf.training.data import read_labelled, truncate_to_wordpieces
variant, n_steps, batch = sys.argv[1], int(sys.argv[2]), 16
rows = read_labelled(sys.argv[3], limit=n_steps * batch + 64)
labels = sorted({k for r in rows for k in r.cats})
random.seed(0); np.random.seed(0); torch.manual_seed(0)
if variant == "base":
    nlp = stream_trf.load(classifier=None, words_per_batch=1000, learn_rate=1e-4,
                          warmup_steps=0, total_steps=0)
    tc = nlp.add_pipe("trf_textcat", config={"learn_rate": 1e-3, "pooling": "doc_mean",
                                             "max_wordpieces": 64})
else:
    nlp = stream_trf.load(classifier=None, words_per_batch=1000)
    head = {"@optimizers": "Adam.v1", "learn_rate": 1e-3, "L2": 0.0, "use_averages": False}
    tc = nlp.add_pipe("trf_textcat", config={"optimizer": head, "pooling": "doc_mean",
                                             "max_wordpieces": 64})
for label in labels:
    tc.add_label(label)
tok = nlp.get_pipe("trf_wordpiecer").tokenizer
examples = [Example.from_dict(nlp.make_doc(truncate_to_wordpieces(r.text, tok, 64)),
            {"cats": {k: float(r.cats.get(k, 0.0)) for k in labels}}) for r in rows]
nlp.initialize(lambda: examples[:1])
if variant == "base":
    optimizer = nlp.resume_training()
else:
    from thinc.api import registry
    import stream_trf.training.optimizer  # noqa: F401
    name = "stream_trf.Adam.v1" if variant == "new" else "Adam.v1"
    optimizer = registry.resolve({"o": {"@optimizers": name, "learn_rate": 1e-4, "L2": 0.01,
                                        "use_averages": False}})["o"]
times = []
for step in range(n_steps + 2):  # the first two steps compile kernels for new shapes
    batch_egs = examples[step * batch : (step + 1) * batch]
    t = time.perf_counter()
    if variant == "base":
        nlp.update(batch_egs, sgd=optimizer, drop=0.1)
    else:
        nlp.update(batch_egs, sgd=False, drop=0.1)
        for _name, proc in nlp.pipeline:
            if getattr(proc, "is_trainable", False) and proc.model not in (True, False, None):
                proc.finish_update(optimizer)
        optimizer.step_schedules()
    times.append(time.perf_counter() - t)
print(json.dumps({"variant": variant, "step_seconds": times[2:]}))
"""


def run(variant: str, code_root: Path, steps: int) -> list[float]:
    env_path = str(code_root)
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, variant, str(steps), str(TRAIN)],
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPATH": env_path},
        cwd=code_root,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return list(json.loads(proc.stdout.strip().splitlines()[-1])["step_seconds"])


def _shadow_metadata(root: Path, revision: str) -> None:
    """Package metadata with the base revision's own entry points, first on the base
    process's path: the installed (new) ones name modules the base does not have, and spaCy
    imports them all when it lists a registry."""
    import tomllib

    pyproject = subprocess.run(
        ["git", "show", f"{revision}:pyproject.toml"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    groups = tomllib.loads(pyproject)["project"].get("entry-points", {})
    info = root / "stream_trf-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stream_trf\nVersion: 0.1.0\n")
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="7142827", help="git revision before issue 31")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per process")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from bench.harness.machine import describe

    with tempfile.TemporaryDirectory() as tmp:
        base_root = Path(tmp)
        archive = subprocess.run(
            ["git", "archive", args.base, "stream_trf"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(base_root)], input=archive.stdout, check=True)
        _shadow_metadata(base_root, args.base)
        roots = {"base": base_root, "new": ROOT, "thinc": ROOT}
        times: dict[str, list[float]] = {v: [] for v in roots}
        t0 = time.time()
        for r in range(args.rounds):
            order = list(roots) if r % 2 == 0 else list(reversed(roots))
            for variant in order:
                got = run(variant, roots[variant], args.steps)
                times[variant].extend(got)
                print(f"round {r + 1} {variant}: median {statistics.median(got):.3f} s/step")
    medians = {v: statistics.median(t) for v, t in times.items()}
    result: dict[str, Any] = {
        "benchmark": "finetune_step_ab",
        "command": "python -m bench.experiments.finetune_step_ab " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "note": args.note,
        "base_revision": args.base,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "median_step_seconds": {k: round(v, 4) for k, v in medians.items()},
        "new_over_base": round(medians["new"] / medians["base"], 3),
        "thinc_adam_over_base": round(medians["thinc"] / medians["base"], 3),
        "step_seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "seconds": round(time.time() - t0, 1),
    }
    print(
        json.dumps(
            {k: result[k] for k in ("median_step_seconds", "new_over_base", "thinc_adam_over_base")}
        )
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
