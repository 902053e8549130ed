"""The peers the harness measures itself against: how people run an encoder without stream_trf.

Two of them, on the same texts and the same model directory:

* the naive Hugging Face loop (`naive_hf_loop`): tokenize a batch of docs in input order, pad
  to the longest, run the model, mean-pool; what most people write first;
* spacy-transformers 1.x (`spacy_transformers_peer`): ``nlp.pipe`` with its default strided
  spans. It pins an older transformers than this project, so it runs in a virtual environment of
  its own, made on first use, in a child process.

Both report real (non-padding, boundary tokens included) and padded wordpieces, so throughput is
compared on the same unit of work, and both use as many torch threads as this process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import torch

from .machine import peak_rss_mb

# spacy-transformers' newest 1.x; it accepts transformers < 4.53.3, so the newest it allows.
SPACY_TRANSFORMERS_VERSION = "1.4.0"
PEER_TRANSFORMERS_VERSION = "4.53.2"

DEFAULT_PEER_VENV = Path("~/.cache/stream-trf/peer-spacy-transformers")
_MARKER = "stream-trf-peer.json"
_RESULT_PREFIX = "STREAM_TRF_PEER_RESULT "


class PeerFailed(RuntimeError):
    """A peer could not be set up or run; the message carries the tail of what it printed."""


# --------------------------------------------------------------------------- naive HF loop


def naive_hf_loop(
    texts: list[str],
    model_dir: Path,
    *,
    batch_size: int = 32,
    max_length: int = 512,
    progress: bool = False,
) -> dict[str, Any]:
    """The usual HF encoder loop, timed with its tokenization: batches in input order, padded to
    the longest doc of each, truncated at ``max_length``, mean-pooled to one vector a doc."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    # Never longer than the model's position table (a small model may hold fewer than 512).
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and 0 < positions < max_length:
        max_length = positions
    batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]

    def encode(batch: list[str]) -> tuple[torch.Tensor, int, int]:
        enc = tokenizer(
            batch,
            padding="longest",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        out = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return pooled, int(enc["attention_mask"].sum()), int(enc["input_ids"].numel())

    real = padded = 0
    vectors: list[torch.Tensor] = []
    with torch.inference_mode():
        if batches:
            encode(batches[0])  # warm-up: first-call allocations and lazy init stay out of timing
        bar = _progress(len(texts), "naive HF loop") if progress else None
        t0 = time.perf_counter()
        for batch in batches:
            pooled, n_real, n_padded = encode(batch)
            vectors.append(pooled)
            real += n_real
            padded += n_padded
            if bar is not None:
                bar.update(len(batch))
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()

    # Counted after the clock stops: a second, untruncated tokenization is no part of the loop.
    lengths = tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"] if texts else []
    truncated = sum(len(ids) > max_length for ids in lengths)
    return {
        "name": "naive HF loop",
        "seconds": round(seconds, 3),
        "docs": len(texts),
        "wordpieces": real,
        "padded_wordpieces": padded,
        "padding_efficiency": round(real / padded, 4) if padded else None,
        "truncated_docs": truncated,
        "batch_size": batch_size,
        "max_length": max_length,
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mb": peak_rss_mb(),
    }


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="doc", file=sys.stderr)


# --------------------------------------------------------------------------- spacy-transformers


def peer_requirements() -> list[str]:
    """What the peer venv holds: spacy-transformers, the transformers it accepts, and this
    process's spaCy and torch. torch is pinned so pip takes the build on this disk (the CPU
    build here) instead of pulling a multi-GB CUDA build."""
    import spacy

    return [
        f"spacy-transformers=={SPACY_TRANSFORMERS_VERSION}",
        f"transformers=={PEER_TRANSFORMERS_VERSION}",
        f"spacy=={spacy.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
    ]


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _say(msg: str) -> None:
    print(f"[peer venv] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time builds a given venv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_peer_venv(venv: Path | None = None) -> Path:
    """Make the spacy-transformers venv unless a marker says it already holds these pins.

    Returns the venv's directory. Idempotent: a venv whose marker lists the same requirements
    (and the same Python) is reused as it is; any other is rebuilt from scratch.
    """
    venv = (venv or DEFAULT_PEER_VENV).expanduser().resolve()
    wanted = {"requirements": peer_requirements(), "python": sys.version.split()[0]}
    marker = venv / _MARKER
    with _locked(venv.with_name(venv.name + ".lock")):
        if marker.is_file() and _venv_python(venv).exists():
            try:
                have = json.loads(marker.read_text())
            except ValueError:
                have = {}
            if {k: have.get(k) for k in wanted} == wanted:
                return venv
        if venv.exists() and any(venv.iterdir()) and not (venv / "pyvenv.cfg").exists():
            raise PeerFailed(f"{venv} exists and is not a virtual environment; pick another venv=")
        t0 = time.perf_counter()
        _say(f"creating {venv} with {sys.executable} -m venv")
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], what="python -m venv")
        py = str(_venv_python(venv))
        reqs = wanted["requirements"]
        assert isinstance(reqs, list)
        _say("resolving " + " ".join(reqs))
        _check_resolution(py, reqs)
        _say("installing (a few minutes the first time)")
        _run([py, "-m", "pip", "install", *reqs], what="pip install", echo=True, merge=True)
        versions = json.loads(
            _run(
                [py, "-I", "-c", _VERSIONS_SCRIPT],
                what="version check in the peer venv",
            )
        )
        marker.write_text(
            json.dumps({**wanted, "installed": versions, "created_at": time.time()}, indent=2)
        )
        _say(f"ready in {time.perf_counter() - t0:.0f} s: {versions}")
    return venv


_VERSIONS_SCRIPT = """
import json
from importlib.metadata import version
print(json.dumps({n: version(n) for n in ("spacy-transformers", "transformers", "spacy", "torch")}))
"""


def _check_resolution(py: str, reqs: list[str]) -> None:
    """Refuse, before downloading anything, an install that would pull a CUDA torch into a venv
    meant to mirror a CPU-only host."""
    if torch.version.cuda is not None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _run(
            [py, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report), *reqs],
            what="pip install --dry-run",
            merge=True,
        )
        planned = {
            item["metadata"]["name"].lower(): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]
        }
    cuda = sorted(name for name in planned if name.startswith("nvidia-"))
    if cuda or planned.get("torch") != torch.__version__:
        raise PeerFailed(
            f"pip would install torch {planned.get('torch')} (host: {torch.__version__})"
            + (f" with {', '.join(cuda)}" if cuda else "")
            + "; make the CPU build of torch installable (a local wheel or the CPU index) first."
        )


def spacy_transformers_peer(
    texts: list[str],
    model_dir: Path,
    *,
    venv: Path | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """spacy-transformers' ``nlp.pipe`` on the same model, timed in a child process in the peer
    venv (made here on first use), offline and with this process's torch thread count."""
    venv_dir = ensure_peer_venv(venv)
    threads = torch.get_num_threads()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        VIRTUAL_ENV=str(venv_dir),
    )
    with tempfile.TemporaryDirectory(prefix="stream-trf-peer-") as tmp:
        script = Path(tmp) / "peer_spacy_transformers.py"
        script.write_text(_CHILD_SCRIPT, encoding="utf-8")
        data = Path(tmp) / "texts.jsonl"
        with open(data, "w", encoding="utf-8") as fh:
            for text in texts:
                fh.write(json.dumps({"text": text}) + "\n")
        cmd = [
            str(_venv_python(venv_dir)),
            "-I",
            str(script),
            str(Path(model_dir).resolve()),
            str(data),
            str(batch_size),
            str(threads),
            "1" if progress else "0",
        ]
        out = _run(cmd, env=env, what="the spacy-transformers child", echo=progress)
    lines = [ln for ln in out.splitlines() if ln.startswith(_RESULT_PREFIX)]
    if not lines:
        raise PeerFailed(
            f"the spacy-transformers child printed no result; its stdout:\n{out[-2000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(_RESULT_PREFIX) :])
    return {"name": f"spacy-transformers {result['spacy_transformers']}", **result}


def _run(
    cmd: Sequence[str],
    *,
    what: str,
    env: dict[str, str] | None = None,
    echo: bool = False,
    merge: bool = False,
) -> str:
    """Run ``cmd`` and return its stdout; stderr (or both, with ``merge``) goes to ours when
    ``echo``, and its tail into the PeerFailed raised on a non-zero exit."""
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        env=env,
    )
    side = proc.stdout if merge else proc.stderr
    assert side is not None and proc.stdout is not None
    tail = bytearray()

    def pump(stream: IO[bytes]) -> None:
        # Chunks, not lines: a child's progress bar redraws with "\r" and must pass as it is.
        while chunk := stream.read1(8192):  # type: ignore[attr-defined]
            tail.extend(chunk)
            del tail[:-6000]
            if echo:
                sys.stderr.write(chunk.decode("utf-8", errors="replace"))
                sys.stderr.flush()

    if merge:
        pump(side)
        out = b""
    else:
        thread = threading.Thread(target=pump, args=(side,), daemon=True)
        thread.start()
        out = proc.stdout.read()
        thread.join()
    rc = proc.wait()
    if rc != 0:
        text = tail.decode("utf-8", errors="replace").replace("\r", "\n")
        raise PeerFailed(f"{what} failed (exit {rc}); last of its output:\n{text[-3000:]}")
    return out.decode("utf-8", errors="replace")


# Runs inside the peer venv, which has no stream_trf: standard library, spaCy and torch only.
_CHILD_SCRIPT = r'''
"""spacy-transformers nlp.pipe timed on texts from a JSONL file; prints one result line."""
import json
import resource
import sys
import time

model_dir, texts_path, batch_size, threads, progress = sys.argv[1:6]
batch_size, threads = int(batch_size), int(threads)

import torch

torch.set_num_threads(threads)

import spacy
import transformers
from importlib.metadata import version

with open(texts_path, encoding="utf-8") as fh:
    texts = [json.loads(line)["text"] for line in fh]

nlp = spacy.blank("en")
nlp.add_pipe(
    "transformer",
    config={
        "model": {
            "@architectures": "spacy-transformers.TransformerModel.v3",
            "name": model_dir,
            "tokenizer_config": {"use_fast": True},
            "transformer_config": {},
            "mixed_precision": False,
            "grad_scaler_config": {},
            "get_spans": {
                "@span_getters": "spacy-transformers.strided_spans.v1",
                "window": 128,
                "stride": 96,
            },
        }
    },
)
nlp.initialize()
list(nlp.pipe(texts[:8], batch_size=batch_size))  # warm-up

stream = nlp.pipe(texts, batch_size=batch_size)
if progress == "1":
    from tqdm import tqdm

    stream = tqdm(stream, total=len(texts), desc="spacy-transformers", unit="doc")
t0 = time.perf_counter()
docs = list(stream)
seconds = time.perf_counter() - t0

# doc._.trf_data.wordpieces holds the doc's rows (one per strided span) of the padded batch the
# model saw, padded to the longest span of the length-sorted sub-batch the doc was in. Real
# wordpieces (boundary tokens included) are counted from attention_mask, not `lengths`: after a
# truncation spacy-transformers resets `lengths` to the padded row width.
max_length = nlp.get_pipe("transformer").model.tokenizer.model_max_length
real = padded = spans = at_max = 0
for doc in docs:
    wp = doc._.trf_data.wordpieces
    row_lengths = wp.attention_mask.sum(axis=1) if wp.attention_mask.size else []
    real += int(sum(row_lengths))
    padded += int(wp.input_ids.size)
    spans += len(row_lengths)
    at_max += sum(int(n) >= max_length for n in row_lengths)

print(
    "STREAM_TRF_PEER_RESULT "
    + json.dumps(
        {
            "seconds": round(seconds, 3),
            "docs": len(docs),
            "wordpieces": real,
            "padded_wordpieces": padded,
            "padding_efficiency": round(real / padded, 4) if padded else None,
            "spans": spans,
            "spans_at_max_length": at_max,  # truncated (or exactly max_length long)
            "batch_size": batch_size,
            "torch_threads": torch.get_num_threads(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "spacy_transformers": version("spacy-transformers"),
            "transformers": transformers.__version__,
            "spacy": spacy.__version__,
            "torch": torch.__version__,
        }
    ),
    flush=True,
)
'''
