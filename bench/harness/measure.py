"""One measurement in a process of its own: ``python -m bench.harness.measure KIND …``.

Each figure gets a fresh process so that its peak RSS is its own and no measurement warms the
caches of the next. The last line of stdout is the result as JSON.

``--serve`` (the host system's floor and processor) keeps one set up between requests instead:
each line on stdin, ``{"start": a, "stop": b}``, measures the texts ``[a, b)`` and answers with
one line of JSON; :class:`SliceServer` is the other end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from .machine import peak_rss_mb

KINDS = ("ceiling", "library", "naive", "fidelity", "floor", "processor")
# The folder that holds the ``bench`` package: the child imports it from there, wherever it runs.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


class MeasurementFailed(RuntimeError):
    """A measurement subprocess failed; its output tail is in the message."""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    return env


def run_measurement(
    kind: str, texts_file: Path, model: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Measure ``kind`` on the texts of ``texts_file`` (JSONL with 'text') in a fresh process;
    ``options`` are the keyword arguments of that measurement's function."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.harness.measure",
            kind,
            "--texts",
            str(texts_file),
            "--model",
            model,
            "--options",
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        env=_child_env(),
    )
    if proc.returncode != 0:
        raise MeasurementFailed(f"{kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


_ANSWER = "MEASURED "  # the prefix of an answer line (a library may print to stdout too)


class SliceServer:
    """A measurement kept set up in a process of its own (``--serve``), asked for one slice of
    its texts at a time, so that several systems can take turns on the same slices. Its stderr
    goes to ``log_file``."""

    def __init__(
        self, kind: str, texts_file: Path, model: str, options: dict[str, Any], log_file: Path
    ) -> None:
        self.kind = kind
        self.log_file = log_file
        # the worker runs the Rust tokenizer single-threaded; its floor and processor do too
        env = _child_env() | {"TOKENIZERS_PARALLELISM": "false"}
        with open(log_file, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.harness.measure", kind, "--texts", str(texts_file),
                 "--model", model, "--options", json.dumps(options), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )  # fmt: skip
        self._answer()  # set up and warmed up

    def measure(self, start: int, stop: int) -> dict[str, Any]:
        """The measurement of texts ``[start, stop)``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"start": start, "stop": stop}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_ANSWER):
                answer: dict[str, Any] = json.loads(line[len(_ANSWER) :])
                return answer
        self.proc.wait()
        tail = self.log_file.read_text(errors="replace")[-3000:]
        raise MeasurementFailed(f"{self.kind} (--serve) ended ({self.proc.returncode}):\n{tail}")

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # end of requests: the server returns
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> SliceServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _serve(kind: str, texts: list[str], model: str, options: dict[str, Any]) -> None:
    from .host import SERVED

    if kind not in SERVED:
        raise SystemExit(f"--serve takes {', '.join(SERVED)}, not {kind}")
    system = SERVED[kind](model, **options)
    print(_ANSWER + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        start, stop = int(request["start"]), int(request["stop"])
        print(_ANSWER + json.dumps(system.measure(texts[start:stop], start)), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("--texts", required=True, help="JSONL with 'text'")
    ap.add_argument("--model", required=True)
    ap.add_argument("--options", default="{}", help="keyword arguments as JSON")
    ap.add_argument(
        "--serve", action="store_true", help="measure slices asked for on stdin (floor, processor)"
    )
    args = ap.parse_args(argv)
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    options = json.loads(args.options)
    if args.serve:
        _serve(args.kind, texts, args.model, options)
        return
    if args.kind == "ceiling":
        from stream_trf.model.source import resolve_model_dir

        from .ceiling import packed_ceiling
        from .library import sentence_wordpieces

        seqs = sentence_wordpieces(texts, args.model)
        result = packed_ceiling(resolve_model_dir(args.model), seqs, **options)
        result["wordpieces"] = int(sum(len(s) for s in seqs))
    elif args.kind == "fidelity":
        from .fidelity import fidelity

        result = fidelity(texts, model=args.model, **options)
    elif args.kind == "library":
        from .library import run_library

        result = run_library(texts, model=args.model, **options)
    elif args.kind == "floor":
        from .host import floor

        result = floor(texts, args.model, **options)
    elif args.kind == "processor":
        from .host import processor

        result = processor(texts, args.model, **options)
    else:
        from stream_trf.model.source import resolve_model_dir

        from .peers import naive_hf_loop

        result = naive_hf_loop(texts, resolve_model_dir(args.model), **options)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
