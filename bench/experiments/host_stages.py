"""Where the batch processor's CPU goes, stage by stage, on the near-zero-compute model (issue 29).

`stream-trf bench --systems host` gives the totals (floor, processor, worker); this splits the
processor's CPU per document into its stages by timing each one's thread CPU inside wrappers:
spaCy's tokenizer, the sentencizer, the wordpiecer (and inside it the Rust tokenizer), the
transformer component's launch and finish (alignment, pooling), the model lanes, parsing and
enriching records and their serialization. What no wrapper covers is the rest of the
processor's Python (buffer handling, zones, the monitor's view). Single process, after the
same vocabulary warm-up as the worker; run it alone on the machine.

    python -m bench.experiments.host_stages --docs 6000 --out bench/results/host-stages-cpu.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.host import BUFFER, near_zero_model
from bench.harness.machine import describe


class StageClock:
    """Thread CPU spent inside wrapped callables, per label; nested calls count once."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = collections.defaultdict(float)
        self._inside = threading.local()

    def wrap(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if getattr(self._inside, label, False):
                return fn(*args, **kwargs)
            setattr(self._inside, label, True)
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[label] += time.thread_time() - t0
                setattr(self._inside, label, False)

        return timed

    def patch(self, owner: Any, name: str, label: str) -> None:
        setattr(owner, name, self.wrap(getattr(owner, name), label))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=6000)
    parser.add_argument("--warmup-docs", type=int, default=3000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import orjson

    import stream_trf.stream.processor as processor_module
    import stream_trf.text.wordpieces as wordpieces_module
    from stream_trf.settings import Settings
    from stream_trf.stream.processor import RawMessage
    from stream_trf.stream.records import Source
    from stream_trf.stream.worker import build_processor

    texts = read_texts(args.data or default_data_path(), args.docs + args.warmup_docs)
    model = near_zero_model(Path(tempfile.mkdtemp(prefix="stream-trf-stages-")) / "model")
    proc = build_processor(Settings(model=str(model)))
    nlp = proc.nlp
    clock = StageClock()

    tokenizer = nlp.tokenizer

    class TimedTokenizer:
        def __init__(self) -> None:
            self._call = clock.wrap(tokenizer.__call__, "spacy tokenizer")

        def __call__(self, text: str) -> Any:
            return self._call(text)

        def __getattr__(self, name: str) -> Any:
            return getattr(tokenizer, name)

    nlp.tokenizer = TimedTokenizer()
    sentencizer = nlp.get_pipe("sentencizer")
    clock.patch(sentencizer, "__call__", "sentencizer")
    clock.patch(sentencizer, "pipe", "sentencizer")
    wordpiecer = nlp.get_pipe("trf_wordpiecer")
    clock.patch(wordpiecer, "set_annotations", "wordpiecer (Python)")
    rust_tokenizer = wordpieces_module.rust_tokenizer

    def timed_rust_tokenizer(tok: Any) -> Any:
        inner: Any = rust_tokenizer(tok)

        class Timed:
            encode_batch = clock.wrap(inner.encode_batch, "Rust wordpiece tokenizer")

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return Timed()

    wordpieces_module.rust_tokenizer = timed_rust_tokenizer  # type: ignore[assignment]
    tok2vec = nlp.get_pipe("trf_tok2vec")
    clock.patch(tok2vec, "launch", "trf_tok2vec launch")
    clock.patch(tok2vec, "finish", "trf_tok2vec finish (alignment, pooling)")
    clock.patch(tok2vec.runner, "predict", "model lanes")
    for name, label in (
        ("parse", "parse records"),
        ("enrich", "enrich records"),
        ("dumps", "orjson records"),
        ("release_freed_memory", "release freed memory"),
    ):
        clock.patch(processor_module, name, label)

    def messages(batch: list[str], first: int) -> list[RawMessage]:
        return [
            RawMessage(orjson.dumps({"id": str(first + i), "text": t}), Source("in", 0, first + i))
            for i, t in enumerate(batch)
        ]

    work, warm = texts[: args.docs], texts[args.docs :]
    for k in range(0, len(warm), BUFFER):
        proc.process(messages(warm[k : k + BUFFER], 10**9 + k))
    clock.cpu.clear()
    buffers = [messages(work[k : k + BUFFER], k) for k in range(0, len(work), BUFFER)]
    c0 = time.process_time()
    for buffer in buffers:
        proc.process(buffer)
    cpu = time.process_time() - c0
    n = len(work)
    stages = {
        label: round(1000 * seconds / n, 4)
        for label, seconds in sorted(clock.cpu.items(), key=lambda kv: -kv[1])
    }
    result = {
        "benchmark": "host_stages",
        "command": "python -m bench.experiments.host_stages " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "note": args.note,
        "docs": n,
        "processor_cpu_ms_per_doc": round(1000 * cpu / n, 4),
        "stages_cpu_ms_per_doc": stages,
        "not_in_any_stage_cpu_ms_per_doc": round(1000 * (cpu - sum(clock.cpu.values())) / n, 4),
        "caveat": "the wrappers themselves cost a little; the Rust tokenizer runs inside the "
        "wordpiecer, so the wordpiecer's figure includes it",
    }
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
