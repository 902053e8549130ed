"""One switch of the batch processor, on and off in one process, on the near-zero-compute model
(issue 29): for steps too small to see through the host's drift between processes.

The processor runs the same buffers after a warm-up, rounds alternating the switch's two
settings (whole passes, or with ``--every buffer`` each buffer run both ways), and each
setting's CPU-ms per document (the process's, every thread) is reported with the paired ratios
``on / off``: both settings see the same drift. Switches:

* ``encoder``: without an alignment (the worker's default unless records carry tokens or
  wordpieces) the Rust tokenizer's ``encode_batch_fast``, which computes no offsets (on), or
  ``encode_batch`` (off).
* ``kept-text``: the processor's docs keep the text they were made from and the wordpiecer reads
  it (on), or the wordpiecer rebuilds each doc's text from its tokens (off).
* ``trace-graph``: the encoder's trace takes the fused attention kernel's own mask shape and
  reduces pooled rows inside the trace (on), or takes the 2-D mask and pools in Python (off).
* ``prefetch``: ``trf_tok2vec`` runs the components before it a batch ahead in a thread (on,
  its default), or in the calling thread (off).
* ``sub-batches-1000``: sub-batches of up to 1,000 padded wordpieces (on) or the worker's
  default (off; 500 on a CPU).

    python -m bench.experiments.processor_switch_ab encoder --rounds 6 --docs 3000 \\
        --out bench/results/encoder-ab-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.host import BUFFER, near_zero_model
from bench.harness.machine import describe, source_revision


def _encoder(processor: Any, on: bool) -> Callable[[], None]:
    import stream_trf.text.wordpieces as wordpieces

    fast = wordpieces._encode_without_offsets
    chosen = fast if on else (lambda backend: backend.encode_batch)

    def apply() -> None:
        wordpieces._encode_without_offsets = chosen

    return apply


def _kept_text(processor: Any, on: bool) -> Callable[[], None]:
    import stream_trf.stream.processor as processor

    keeping = processor._docs_keeping_text

    def plain(nlp: Any, texts: list[str]) -> Iterator[Any]:
        return (nlp.make_doc(t) for t in texts)

    chosen = keeping if on else plain

    def apply() -> None:
        processor._docs_keeping_text = chosen

    return apply


def _trace_graph(processor: Any, on: bool) -> Callable[[], None]:
    from stream_trf.model.traced import TracedEncoder, _Checks, _LastHiddenState, _trace_checked

    runner = processor.nlp.get_pipe("trf_tok2vec").runner
    chosen = runner.traced
    if not on:  # the trace as it was before: the model's 2-D mask, no pooled reduction
        plain: dict[bool, Any] = {}
        for types in chosen.modules:
            checks = _Checks(
                runner.model, runner.config.vocab_size, runner.pad_id, types, runner.device
            )
            module = _trace_checked(_LastHiddenState(runner.model), checks)
            if module is None:
                raise SystemExit("the near-zero model did not trace with the 2-D mask")
            plain[types] = module
        chosen = TracedEncoder(plain)

    def apply() -> None:
        runner.traced = chosen

    return apply


def _prefetch(processor: Any, on: bool) -> Callable[[], None]:
    cfg = processor.nlp.get_pipe("trf_tok2vec").cfg
    chosen = cfg["prefetch"] if on else 0

    def apply() -> None:
        cfg["prefetch"] = chosen

    return apply


def _big_sub_batches(processor: Any, on: bool) -> Callable[[], None]:
    cfg = processor.nlp.get_pipe("trf_tok2vec").cfg
    chosen = 1000 if on else cfg["words_per_batch"]

    def apply() -> None:
        cfg["words_per_batch"] = chosen

    return apply


SWITCHES = {
    "encoder": _encoder,
    "kept-text": _kept_text,
    "trace-graph": _trace_graph,
    "prefetch": _prefetch,
    "sub-batches-1000": _big_sub_batches,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("switch", choices=sorted(SWITCHES), help="what to turn on and off")
    ap.add_argument("--docs", type=int, default=3000, help="documents per timed pass")
    ap.add_argument("--rounds", type=int, default=6, help="timed passes per setting")
    ap.add_argument(
        "--every",
        choices=("pass", "buffer"),
        default="pass",
        help="switch between whole passes, or between the two settings on every buffer (the "
        "same buffer run both ways, in alternating order: drift within a pass cancels)",
    )
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()

    from stream_trf.settings import Settings
    from stream_trf.stream.processor import RawMessage
    from stream_trf.stream.records import Source
    from stream_trf.stream.worker import build_processor

    texts = read_texts(default_data_path(), 2 * args.docs)
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        processor = build_processor(Settings(model=str(near_zero_model(Path(tmp) / "model"))))
        switch = SWITCHES[args.switch]
        settings = {"on": switch(processor, True), "off": switch(processor, False)}

        def buffers(batch: list[str], first: int) -> list[list[RawMessage]]:
            messages = [
                RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, first + i))
                for i, t in enumerate(batch)
            ]
            return [messages[i : i + BUFFER] for i in range(0, len(messages), BUFFER)]

        for buffer in buffers(texts[args.docs :], 10**6):  # warm-up: vocabulary, caches
            processor.process(buffer)
        work = buffers(texts[: args.docs], 0)
        try:
            for k in range(args.rounds):
                if args.every == "pass":
                    for name, apply in settings.items():
                        apply()
                        start = time.process_time()
                        for buffer in work:
                            processor.process(buffer)
                        cpu[name].append(1000 * (time.process_time() - start) / args.docs)
                    continue
                spent = {"on": 0.0, "off": 0.0}
                for b, buffer in enumerate(work):
                    for name in ("on", "off") if (b + k) % 2 == 0 else ("off", "on"):
                        settings[name]()
                        start = time.process_time()
                        processor.process(buffer)
                        spent[name] += time.process_time() - start
                for name, seconds in spent.items():
                    cpu[name].append(1000 * seconds / args.docs)
        finally:
            settings["on"]()
    ratios = [on / off for on, off in zip(cpu["on"], cpu["off"])]
    result: dict[str, Any] = {
        "benchmark": f"processor-switch-ab ({args.switch})",
        "command": f"python -m bench.experiments.processor_switch_ab {args.switch} "
        f"--rounds {args.rounds} --docs {args.docs} --every {args.every}"
        + (f" --out {args.out}" if args.out else ""),
        "machine": describe(),
        "code": source_revision(),
        "model": "near-zero (BERT, 1 layer, width 32, the default model's tokenizer)",
        "switch": args.switch,
        "processor_cpu_ms_per_doc": {k: [round(x, 4) for x in v] for k, v in cpu.items()},
        "paired_ratio_on_over_off": [round(r, 4) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 4),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
