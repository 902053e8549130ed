"""Do the model lanes and Python beside them share the cores, or take turns at the GIL?

The lanes run the library's own sub-batches of the first docs (their windows, length-bucketed as
``trf_tok2vec`` does) round after round; a thread beside them runs the components before the
transformer (spaCy's tokenizer, the sentencizer, the wordpiecer) over the texts, without stop.
Each is measured alone, then together. "Machine used" adds the two shares: the lanes' rate over
their rate alone, plus the tokenizer's rate over its rate alone on one core, halved on 2 cores.
1.0 means they shared the cores; less is time spent waiting for each other. Once with the eager
model and once traced (model/traced.py), alternating, in fresh processes.

    python -m bench.experiments.gil_contention --out bench/results/gil-contention-cpu.json
"""

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path


def measure(trace: str, seconds: float, rounds: int) -> dict:
    import stream_trf
    from bench.harness.corpus import default_data_path, read_texts
    from stream_trf.text.batching import make_batches

    texts = read_texts(default_data_path(), 2048)
    nlp = stream_trf.load(trace=trace)
    t2v = nlp.get_pipe("trf_tok2vec")
    inputs = t2v.model_inputs(list(nlp.pipe(texts[:512], batch_size=256)))
    lengths = [len(x) for x in inputs.ids]
    batches = make_batches(lengths, t2v.words_per_batch, t2v.cfg["batch_cost"])
    runner, lanes = t2v.runner, t2v.lanes

    def lane_round() -> None:
        futures = [
            lanes.submit(runner.predict, [inputs.ids[i] for i in b], [inputs.types[i] for i in b])
            for b in batches
        ]
        for f in futures:
            f.result()

    lane_round()
    stop = threading.Event()
    done = [0]

    def upstream() -> None:
        k = 0
        while not stop.is_set():
            for _ in nlp.pipe(texts[k : k + 64], disable=["trf_tok2vec", "trf_textcat"]):
                pass
            done[0] += 64
            k = (k + 64) % (len(texts) - 64)

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def run(lanes_on: bool, upstream_on: bool) -> dict:
        stop.clear()
        done[0] = 0
        thread = threading.Thread(target=upstream) if upstream_on else None
        c0, t0, n = cpu(), time.perf_counter(), 0
        if thread:
            thread.start()
        while time.perf_counter() - t0 < seconds:
            if lanes_on:
                lane_round()
                n += 1
            else:
                time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        stop.set()
        if thread:
            thread.join()
        return {
            "lane_rounds_per_s": n / elapsed,
            "tokenized_docs_per_s": done[0] / elapsed,
            "cores_busy": (cpu() - c0) / elapsed,
        }

    out = []
    tokenizer_alone = run(False, True)["tokenized_docs_per_s"]
    for _ in range(rounds):
        alone = run(True, False)
        together = run(True, True)
        lanes_share = together["lane_rounds_per_s"] / alone["lane_rounds_per_s"]
        tok_share = together["tokenized_docs_per_s"] / tokenizer_alone
        out.append(
            {
                "lanes_alone_rounds_per_s": round(alone["lane_rounds_per_s"], 4),
                "lanes_together_rounds_per_s": round(together["lane_rounds_per_s"], 4),
                "tokenizer_alone_docs_per_s": round(tokenizer_alone, 1),
                "tokenizer_together_docs_per_s": round(together["tokenized_docs_per_s"], 1),
                "lanes_share_of_alone": round(lanes_share, 3),
                "tokenizer_share_of_one_core": round(tok_share, 3),
                "machine_used": round(lanes_share + tok_share / lanes.n, 3),
                "cores_busy_together": round(together["cores_busy"], 2),
            }
        )
    return {
        "trace": trace,
        "graph": "traced" if runner.traced is not None else "eager",
        "lanes": lanes.n,
        "sub_batches_per_round": len(batches),
        "rounds": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=1, help="eager/traced processes, alternating")
    ap.add_argument("--out", default="", help="write the JSON result here")
    ap.add_argument("--one", choices=("on", "off"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.seconds, args.rounds)))
        return
    from bench.harness.machine import describe

    runs = []
    for _ in range(args.pairs):
        for trace in ("off", "on"):
            cmd = [
                sys.executable,
                "-m",
                "bench.experiments.gil_contention",
                "--one",
                trace,
                "--seconds",
                str(args.seconds),
            ]
            cmd += ["--rounds", str(args.rounds)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            runs.append(run)
            for r in run["rounds"]:
                print(run["graph"], json.dumps(r), flush=True)
    result = {
        "command": "python -m bench.experiments.gil_contention " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "runs": runs,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
