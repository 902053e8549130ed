"""Quality of drift detection: does the monitor alert when it should, and only then?

The monitor's thresholds (``stream_trf.settings``) were chosen from a few measurements; this
benchmark measures what they do on real text. It has three parts:

1. **Enrichment through the real worker.** Labelled Debian package descriptions (the section is
   the label) go through ``stream-trf worker`` on the embedded broker, each input record carrying
   a production prediction from a cheap model trained on the train split
   (:class:`NaiveBayes`). The enriched records are read back from the output topic and cached
   (gzipped JSONL under ``~/.cache/stream-trf/drift/``, keyed by the data, the model, its
   classifier head and the production model's recipe), so that a rerun replays in seconds.
2. **Replay through** :class:`~stream_trf.monitor.monitor.Monitor` **with a synthetic clock.**
   Every window gets exactly ``window_docs`` records, so that a figure's noise depends on the
   window size only, not on how fast this machine happens to be. The reference is the monitor's
   own: the stream's first ``reference_size`` records. Scenarios (:class:`Scenario`): a
   stationary stream, a stream that switches (wholly or partly) to sections the reference never
   saw, and a stream whose production labels get corrupted. Each runs with several seeds; a seed
   picks which sections are "home" (the reference's) and which are "other", and the order.
3. **A live check** (:func:`live_check`): a worker with short windows, a stream that switches
   sections half-way, and the time until ``stream_trf_drift_alert{...} 1`` shows on its
   ``/metrics`` and an alert appears in a window record on the metrics topic.

Nothing here changes the monitor: the replay calls the same ``observe_enriched`` and ``tick``
the worker calls, only with a clock that the benchmark moves.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import math
import re
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt
import orjson

from ..monitor.monitor import Monitor, MonitorConfig
from ..settings import Settings

Record = dict[str, Any]

# Alert figures grouped by what they watch (names as in window records and /metrics).
GROUPS: dict[str, tuple[str, ...]] = {
    "embedding": ("embedding_cosine", "embedding_p_value"),
    "label": ("label_js", "label_psi"),
    "agreement": ("agreement",),
    "confidence": ("confidence",),
    "text": ("mean_words", "mean_sentences", "windowed_share", "unknown_share"),
}
DRIFT_GROUPS = ("embedding", "label")

# Bump when the enriched-record cache's content would change for the same inputs.
CACHE_FORMAT = "drift-enriched/v1"
PRODUCTION_RECIPE = "multinomial-naive-bayes alpha=0.1 tokens=[a-z0-9]+ folds=5 seed=0"

# A fixed, window-aligned origin for the synthetic clock (any multiple of the window works).
CLOCK_ORIGIN_WINDOWS = 28_000_000


# --- the labelled documents ----------------------------------------------------------------


@dataclass(frozen=True)
class LabelledDoc:
    id: str
    text: str
    label: str  # the Debian section
    split: str  # "train" or "dev"


def read_labelled(path: Path, split: str) -> list[LabelledDoc]:
    """JSONL with ``id``, ``text`` and ``label``."""
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                docs.append(LabelledDoc(str(obj["id"]), obj["text"], str(obj["label"]), split))
    return docs


def default_sections_dir() -> Path | None:
    """``shared/data/debian-sections`` beside the working directory or the repository."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), Path.cwd().parent, here.parents[2], here.parents[3]):
        candidate = base / "shared" / "data" / "debian-sections"
        if (candidate / "train.jsonl").exists():
            return candidate
    return None


# --- the production model ------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class NaiveBayes:
    """Multinomial naive Bayes on lower-cased word counts: the "production model".

    Written in numpy rather than taken from scikit-learn, which is not a dependency of the
    package. It stands for the cheap model a team runs in production and wants health-checked
    against the transformer: on the Debian sections it is about as accurate as the transformer's
    head (0.91 on dev), and it disagrees with it on different documents, which is what makes the
    agreement ratio informative. Its scores are naive Bayes posteriors, over-confident as usual.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.labels: list[str] = []
        self.vocab: dict[str, int] = {}
        self.log_prior: npt.NDArray[np.float64] = np.zeros(0)
        self.log_likelihood: npt.NDArray[np.float64] = np.zeros((0, 0))

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> NaiveBayes:
        self.labels = sorted(set(labels))
        index = {label: i for i, label in enumerate(self.labels)}
        tokenized = [_tokens(t) for t in texts]
        self.vocab = {w: i for i, w in enumerate(sorted({w for ts in tokenized for w in ts}))}
        counts = np.zeros((len(self.labels), len(self.vocab)), dtype=np.float64)
        prior = np.zeros(len(self.labels), dtype=np.float64)
        for ts, label in zip(tokenized, labels):
            y = index[label]
            prior[y] += 1
            np.add.at(counts[y], [self.vocab[w] for w in ts], 1.0)
        smoothed = counts + self.alpha
        self.log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
        self.log_prior = np.log(prior / prior.sum())
        return self

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, posterior probability of that label) per text."""
        out = []
        for text in texts:
            idx = [self.vocab[w] for w in _tokens(text) if w in self.vocab]
            joint = self.log_prior + self.log_likelihood[:, idx].sum(axis=1)
            p = np.exp(joint - joint.max())
            p /= p.sum()
            best = int(p.argmax())
            out.append((self.labels[best], round(float(p[best]), 6)))
        return out


def production_predictions(
    train: Sequence[LabelledDoc], dev: Sequence[LabelledDoc], folds: int = 5, seed: int = 0
) -> tuple[dict[str, tuple[str, float]], dict[str, float]]:
    """A production prediction for every document, never from a model that saw it.

    Dev documents get the model trained on the whole train split; train documents get the model
    trained on the other folds (out-of-fold), since the stream uses both splits and a model's
    predictions on its own training data would make it look better than it is.
    Returns the predictions by id and the accuracies (out-of-fold on train, dev).
    """
    preds: dict[str, tuple[str, float]] = {}
    order = np.random.default_rng(seed).permutation(len(train))
    correct = 0
    for k in range(folds):
        held = set(order[k::folds].tolist())
        model = NaiveBayes().fit(
            [d.text for i, d in enumerate(train) if i not in held],
            [d.label for i, d in enumerate(train) if i not in held],
        )
        docs = [d for i, d in enumerate(train) if i in held]
        for d, p in zip(docs, model.predict([d.text for d in docs])):
            preds[d.id] = p
            correct += p[0] == d.label
    model = NaiveBayes().fit([d.text for d in train], [d.label for d in train])
    dev_correct = 0
    for d, p in zip(dev, model.predict([d.text for d in dev])):
        preds[d.id] = p
        dev_correct += p[0] == d.label
    return preds, {
        "train_out_of_fold_accuracy": round(correct / max(len(train), 1), 4),
        "dev_accuracy": round(dev_correct / max(len(dev), 1), 4),
    }


def input_records(
    docs: Sequence[LabelledDoc], predictions: dict[str, tuple[str, float]], prefix: str = ""
) -> list[Record]:
    """Input records (``input.v1.json``): the text, the section in ``meta``, the prediction."""
    out = []
    for d in docs:
        rec: Record = {
            "id": prefix + d.id,
            "text": d.text,
            "meta": {"section": d.label, "split": d.split},
        }
        if d.id in predictions:
            label, score = predictions[d.id]
            rec["prediction"] = {"label": label, "score": score}
        out.append(rec)
    return out


# --- enrichment through the worker, cached -------------------------------------------------


def cache_key(paths: Sequence[Path], model: str) -> str:
    """What the enriched records depend on: the data files, the model (and the classifier head
    shipped for the default model), the production model's recipe and this cache's format."""
    import stream_trf

    h = hashlib.sha256()
    for part in (CACHE_FORMAT, PRODUCTION_RECIPE, model):
        h.update(part.encode() + b"\0")
    for p in paths:
        h.update(Path(p).read_bytes())
    if model == stream_trf.DEFAULT_MODEL and stream_trf.DEFAULT_CLASSIFIER.exists():
        for f in sorted(stream_trf.DEFAULT_CLASSIFIER.iterdir()):
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path("~/.cache/stream-trf/drift").expanduser()


def save_cache(path: Path, header: dict[str, Any], records: Iterable[Record]) -> None:
    """A header line, then one enriched record per line (gzipped), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{uuid.uuid4().hex[:6]}.tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(orjson.dumps({"_header": header}) + b"\n")
        for rec in records:
            f.write(orjson.dumps(rec, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    tmp.replace(path)


def load_cache(path: Path) -> tuple[dict[str, Any], list[Record]]:
    header: dict[str, Any] = {}
    records: list[Record] = []
    with gzip.open(path, "rb") as f:
        for line in f:
            obj = orjson.loads(line)
            if "_header" in obj:
                header = obj["_header"]
            else:
                records.append(obj)
    return header, records


async def _produce_and_collect(
    settings: Settings,
    inputs: Sequence[Record],
    *,
    timeout: float,
    idle_timeout: float | None,
    on_record: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Produce every input record at once, read the output topic until each id came back."""
    from ..stream import clients

    want = {r["id"] for r in inputs}
    seen: set[str] = set()

    def record(rec: Record) -> None:
        if rec.get("id") in want:
            seen.add(rec["id"])
        if on_record is not None:
            on_record(rec)

    consumer = asyncio.create_task(
        clients.consume(
            settings,
            settings.output_topic,
            until=lambda _: seen >= want,
            timeout=timeout,
            idle_timeout=idle_timeout,
            on_record=record,
        )
    )
    await clients.produce(
        settings,
        settings.input_topic,
        [orjson.dumps(r) for r in inputs],
        [r["id"].encode() for r in inputs],
    )
    out = await consumer
    first: dict[str, Record] = {}
    for rec in out:
        if rec.get("id") in want and rec["id"] not in first:
            first[rec["id"]] = rec
    return list(first.values())


def enrich_through_worker(
    inputs: Sequence[Record],
    *,
    model: str,
    log_dir: Path,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> tuple[list[Record], dict[str, Any]]:
    """Enrich ``inputs`` with ``stream-trf worker`` on the embedded broker; the enriched
    records (first copy of each id, without the consumer's ``_kafka`` field) and timings."""
    from tqdm import tqdm

    from ..stream import clients
    from ..stream.broker import EmbeddedBroker
    from ..stream.local import WorkerProcess
    from .worker import bench_settings

    log_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker(log_file=log_dir / "broker.log") as broker:
        settings = bench_settings(broker.url, model, metrics_topic="", **(overrides or {}))
        asyncio.run(clients.ensure_worker_topics(settings))
        worker = WorkerProcess(settings, log_dir / "enrich-worker.log")
        try:
            ready = worker.wait_ready(timeout=600)
            with tqdm(
                total=len(inputs), unit="doc", desc="enrich (worker)", disable=not progress
            ) as bar:
                t0 = time.monotonic()
                out = asyncio.run(
                    _produce_and_collect(
                        settings,
                        inputs,
                        timeout=3600,
                        idle_timeout=180,
                        on_record=lambda r: bar.update(1) if "id" in r else None,
                    )
                )
                seconds = time.monotonic() - t0
        finally:
            code = worker.terminate()
    for rec in out:
        rec.pop("_kafka", None)
    info = {
        "documents": len(inputs),
        "enriched": len(out),
        "missing": len(inputs) - len(out),
        "worker_ready_seconds": round(ready, 1),
        "seconds": round(seconds, 1),
        "docs_per_s": round(len(out) / seconds, 2) if seconds > 0 else None,
        "worker_exit_code": code,
        "worker_settings": {
            k: v
            for k, v in settings.public().items()
            if k in ("model", "partitions", "max_batch", "words_per_batch", "precision")
        },
    }
    return out, info


# --- replay through the monitor --------------------------------------------------------------


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


class Cycle:
    """Endless draws from a pool: a shuffled pass, then another shuffled pass, and so on.

    Within a pass every record comes once (sampling without replacement); across passes records
    repeat. The monitor sees each draw as a new record (a fresh source offset), as it would see
    a document that was sent again."""

    def __init__(self, pool: Sequence[Record], rng: np.random.Generator) -> None:
        if not pool:
            raise ValueError("an empty pool")
        self.pool = pool
        self.rng = rng
        self._order: list[int] = []
        self.passes = 0

    def take(self, n: int) -> list[Record]:
        out = []
        for _ in range(n):
            if not self._order:
                self._order = self.rng.permutation(len(self.pool)).tolist()
                self.passes += 1
            out.append(self.pool[self._order.pop()])
        return out


@dataclass(frozen=True)
class Scenario:
    """A stream of windows: ``before`` windows like the reference, then ``after`` windows with
    the change (none for ``stationary``). ``share``: the share of each changed window's records
    drawn from the other sections (``switch``) or whose production label is replaced by a
    random other label (``corrupt``)."""

    name: str
    kind: Literal["stationary", "switch", "corrupt"]
    share: float = 0.0
    before: int = 0
    after: int = 0
    window_docs: int | None = None  # documents per window; None: the run's default

    @property
    def windows(self) -> int:
        return self.before + self.after

    @property
    def expected(self) -> tuple[str, ...]:
        """The alert groups that should fire after the change."""
        return {"stationary": (), "switch": DRIFT_GROUPS, "corrupt": ("agreement",)}[self.kind]

    @property
    def unexpected(self) -> tuple[str, ...]:
        """Alert groups that must stay quiet throughout (the text does not change when only
        production labels are corrupted)."""
        return DRIFT_GROUPS if self.kind in ("stationary", "corrupt") else ()


@dataclass
class Pools:
    """One seed's split of the enriched records."""

    reference: list[Record]  # the stream's first records: the monitor's reference
    home: list[Record]  # the reference's sections, disjoint from ``reference``
    other: list[Record]  # the sections the reference never saw
    home_sections: list[str] = field(default_factory=list)
    other_sections: list[str] = field(default_factory=list)


def make_pools(
    records: Sequence[Record], seed: int, home_sections: int, reference_size: int
) -> Pools:
    """Pick ``home_sections`` sections at random (seeded); shuffle their records; the first
    ``reference_size`` are the reference, the rest the home pool; the other sections' records
    are the other pool."""
    rng = np.random.default_rng([seed, 1])
    sections = sorted({r["section"] for r in records if r.get("section")})
    if not 0 < home_sections < len(sections):
        raise ValueError(f"home_sections must be in 1..{len(sections) - 1}, got {home_sections}")
    home_set = {str(s) for s in rng.choice(sections, size=home_sections, replace=False)}
    home = [r for r in records if r.get("section") in home_set]
    other = [r for r in records if r.get("section") and r["section"] not in home_set]
    home = [home[i] for i in rng.permutation(len(home))]
    if len(home) < reference_size * 2:
        raise ValueError(f"{len(home)} home records: too few for a {reference_size} reference")
    return Pools(
        reference=home[:reference_size],
        home=home[reference_size:],
        other=other,
        home_sections=sorted(home_set),
        other_sections=sorted(set(sections) - home_set),
    )


def _corrupt(rec: Record, labels: Sequence[str], rng: np.random.Generator) -> Record:
    """The record with its production label replaced by a random other label; ``agrees`` is
    recomputed with the worker's rule (``stream.enrich``): equal to the transformer's label,
    when the classifier knows the label."""
    prod = dict(rec.get("production") or {})
    choices = [label for label in labels if label != prod.get("label")]
    new = str(choices[int(rng.integers(len(choices)))])
    prod["label"] = new
    prod["agrees"] = (new == rec.get("label")) if new in (rec.get("labels") or labels) else None
    return {**rec, "production": prod}


def scenario_windows(
    scenario: Scenario,
    pools: Pools,
    window_docs: int,
    rng: np.random.Generator,
) -> Iterator[list[Record]]:
    """The records of each window, in order. A changed window holds exactly
    ``round(share × window_docs)`` changed records, in random positions."""
    home = Cycle(pools.home, rng)
    other = Cycle(pools.other, rng) if pools.other else None
    labels = sorted({label for r in pools.reference for label in r.get("labels") or ()})
    if not labels:
        labels = sorted({str(r.get("label")) for r in pools.reference})
    changed = round(scenario.share * window_docs)
    for k in range(scenario.windows):
        after = scenario.kind != "stationary" and k >= scenario.before
        if after and scenario.kind == "switch":
            assert other is not None, "a switch needs other sections"
            batch = other.take(changed) + home.take(window_docs - changed)
            batch = [batch[i] for i in rng.permutation(len(batch))]
        else:
            batch = home.take(window_docs)
            if after and scenario.kind == "corrupt":
                hit = set(rng.choice(window_docs, size=changed, replace=False).tolist())
                batch = [_corrupt(r, labels, rng) if i in hit else r for i, r in enumerate(batch)]
        yield batch


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


# --- summaries -------------------------------------------------------------------------------


def group_active(row: WindowRow, group: str) -> bool:
    return any(f in row["alerts"] for f in GROUPS[group])


def onsets(active: Sequence[bool]) -> int:
    """Alerts raised: inactive → active transitions (an alert already active at the start
    counts once)."""
    return sum(1 for i, a in enumerate(active) if a and (i == 0 or not active[i - 1]))


def _quantiles(values: Sequence[float | None], qs: Sequence[float]) -> dict[str, float] | None:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return None
    return {f"p{q * 100:g}": round(float(np.quantile(a, q)), 5) for q in qs}


def _beyond(row: WindowRow, config: MonitorConfig) -> dict[str, bool]:
    """Which figures of one window are beyond their threshold (before the K-windows rule)."""
    th = config.thresholds
    if not row["evaluated"]:
        return {}
    out = {}
    if row["cosine"] is not None:
        out["embedding_cosine"] = row["cosine"] > th.embedding_cosine_max
    if row["p_value"] is not None:
        out["embedding_p_value"] = row["p_value"] < th.embedding_p_value_min
    if row["js"] is not None:
        out["label_js"] = row["js"] > th.label_js_max
    if row["psi"] is not None:
        out["label_psi"] = row["psi"] > th.label_psi_max
    if row["agreement_upper"] is not None and row["agreement_floor"] is not None:
        out["agreement"] = row["agreement_upper"] < row["agreement_floor"]
    return out


def summarize_stationary(runs: Sequence[ScenarioRun], config: MonitorConfig) -> dict[str, Any]:
    """False alarms: alerts raised (onsets) and windows in alert, per group and per seed, plus
    how often each figure alone was beyond its threshold in a window and the figures'
    distribution (the evidence a threshold is judged by)."""
    rows = [r for run in runs for r in run.rows if r["evaluated"]]
    n = len(rows)
    groups: dict[str, Any] = {}
    for g in GROUPS:
        per_seed = []
        for run in runs:
            active = [group_active(r, g) for r in run.rows if r["evaluated"]]
            per_seed.append(
                {"seed": run.seed, "alerts": onsets(active), "windows_in_alert": sum(active)}
            )
        raised = sum(s["alerts"] for s in per_seed)
        in_alert = sum(s["windows_in_alert"] for s in per_seed)
        groups[g] = {
            "alerts_raised": raised,
            "alerts_per_100_windows": round(100 * raised / n, 3) if n else None,
            "windows_in_alert": in_alert,
            "false_alarm_rate_per_window": round(in_alert / n, 5) if n else None,
            "seeds_with_an_alert": sum(1 for s in per_seed if s["alerts"]),
            "per_seed": per_seed,
        }
    by_figure: dict[str, int] = {}
    for fig in (f for figs in GROUPS.values() for f in figs):
        raised = sum(
            onsets([fig in r["alerts"] for r in run.rows if r["evaluated"]]) for run in runs
        )
        if raised:
            by_figure[fig] = raised
    beyond: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    for r in rows:
        for fig, b in _beyond(r, config).items():
            judged[fig] += 1
            beyond[fig] += int(b)
    qs = (0.5, 0.95, 0.99, 0.999, 1.0)
    return {
        "windows": n,
        "seeds": len(runs),
        "groups": groups,
        "alerts_raised_by_figure": by_figure,
        "single_window_beyond_rate": {
            f: round(beyond[f] / judged[f], 5) for f in sorted(judged) if judged[f]
        },
        "figures": {
            "cosine_distance": _quantiles([r["cosine"] for r in rows], qs),
            "js_distance": _quantiles([r["js"] for r in rows], qs),
            "psi": _quantiles([r["psi"] for r in rows], qs),
            "p_value": _quantiles([r["p_value"] for r in rows], (0.0, 0.001, 0.01, 0.05, 0.5)),
            "p_value_share_below_0.01": (
                round(
                    float(np.mean([r["p_value"] < 0.01 for r in rows if r["p_value"] is not None])),
                    5,
                )
                if n
                else None
            ),
            "p_value_share_below_0.05": (
                round(
                    float(np.mean([r["p_value"] < 0.05 for r in rows if r["p_value"] is not None])),
                    5,
                )
                if n
                else None
            ),
            "agreement": _quantiles([r["agreement"] for r in rows], (0.001, 0.01, 0.5, 0.99)),
            "text_drift_abs": {
                name: _quantiles(
                    [
                        None
                        if r["text_drift"].get(name) is None
                        else abs(r["text_drift"][name] or 0)
                        for r in rows
                    ],
                    qs,
                )
                for name in sorted({k for r in rows for k in r["text_drift"]})
            },
        },
        "home_passes_max": max((run.home_passes for run in runs), default=0),
    }


def detection(run: ScenarioRun, group: str) -> tuple[int | None, int]:
    """(delay, pre-change alert windows) of one group in one run. The delay counts windows
    from the change: 1 when the alert is active when the first changed window closes; with
    ``alert_windows`` = K the earliest possible is K. None when it never fired after the
    change (a miss within the run's horizon)."""
    before = run.scenario.before
    pre = sum(1 for r in run.rows[:before] if group_active(r, group))
    for r in run.rows[before:]:
        if group_active(r, group):
            return r["window"] - before + 1, pre
    return None, pre


def summarize_change(runs: Sequence[ScenarioRun]) -> dict[str, Any]:
    """Per alert group: detection delay (median and max over the seeds that detected), misses,
    alerts before the change; and for the groups that must stay quiet, alerts after it."""
    scenario = runs[0].scenario
    out: dict[str, Any] = {
        "kind": scenario.kind,
        "window_docs": scenario.window_docs,
        "share": scenario.share,
        "windows_before_change": scenario.before,
        "windows_after_change": scenario.after,
        "seeds": len(runs),
        "groups": {},
    }
    for g in GROUPS:
        delays, pre, post_windows, post_alerts = [], 0, 0, 0
        per_seed = []
        for run in runs:
            d, p = detection(run, g)
            delays.append(d)
            pre += p
            after = [group_active(r, g) for r in run.rows[scenario.before :]]
            post_windows += sum(after)
            post_alerts += onsets(after)
            per_seed.append({"seed": run.seed, "delay": d, "pre_change_windows_in_alert": p})
        found = [d for d in delays if d is not None]
        out["groups"][g] = {
            "expected": g in scenario.expected,
            "must_stay_quiet": g in scenario.unexpected,
            "detected": len(found),
            "misses": len(delays) - len(found),
            "delay_windows_median": float(np.median(found)) if found else None,
            "delay_windows_max": max(found) if found else None,
            "pre_change_windows_in_alert": pre,
            "post_change_alerts_raised": post_alerts,
            "post_change_windows_in_alert": post_windows,
            "per_seed": per_seed,
        }
    post = [r for run in runs for r in run.rows[scenario.before :] if r["evaluated"]]
    out["post_change_figures_median"] = {
        k: (
            round(float(np.median([r[k] for r in post if r[k] is not None])), 5)
            if any(r[k] is not None for r in post)
            else None
        )
        for k in ("cosine", "p_value", "js", "psi", "agreement", "confidence")
    }
    out["splits"] = [
        {"seed": run.seed, "home": run.home_sections, "other": run.other_sections} for run in runs
    ]
    return out


def default_scenarios(
    *,
    stationary_windows: int,
    before: int,
    after: int,
    switch_shares: Sequence[float],
    corrupt_shares: Sequence[float],
    stationary_window_docs: Sequence[int] = (),
) -> list[Scenario]:
    """The stationary stream (also with each of ``stationary_window_docs`` documents per
    window), a switch to the other sections at each share, and production labels corrupted at
    each share; each change comes after ``before`` windows and lasts ``after`` windows."""
    out = [Scenario("stationary", "stationary", 0.0, stationary_windows, 0)]
    out += [
        Scenario(f"stationary-{n}-docs", "stationary", 0.0, stationary_windows, 0, n)
        for n in stationary_window_docs
    ]
    out += [Scenario(f"switch-{s:.0%}", "switch", s, before, after) for s in switch_shares]
    out += [Scenario(f"corrupt-{s:.0%}", "corrupt", s, before, after) for s in corrupt_shares]
    return out


def run_replays(
    records: Sequence[Record],
    scenarios: Sequence[Scenario],
    seeds: Sequence[int],
    config: MonitorConfig,
    *,
    window_docs: int,
    home_sections: int,
    on_window: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], dict[str, list[WindowRow]], dict[str, dict[str, list[float | None]]]]:
    """Every scenario with every seed. Returns the summaries by scenario name, the first
    seed's window rows by scenario (for the chart), and the per-window figures by figure and
    scenario (stationary windows, and changed windows after the change) for the histograms."""
    runs: dict[str, list[ScenarioRun]] = {s.name: [] for s in scenarios}
    for seed in seeds:
        pools = make_pools(records, seed, home_sections, config.reference_size)
        for i, scenario in enumerate(scenarios):
            runs[scenario.name].append(
                run_scenario(
                    scenario,
                    pools,
                    config,
                    window_docs,
                    seed,
                    scenario_index=i,
                    on_window=on_window,
                )
            )
    summaries: dict[str, Any] = {}
    for scenario in scenarios:
        done = runs[scenario.name]
        if scenario.kind == "stationary":
            summaries[scenario.name] = {
                "kind": "stationary",
                "window_docs": scenario.window_docs,
                **summarize_stationary(done, config),
            }
        else:
            summaries[scenario.name] = summarize_change(done)
    series = {name: done[0].rows for name, done in runs.items() if done}
    dist: dict[str, dict[str, list[float | None]]] = {"cosine": {}, "js": {}, "p_value": {}}
    for scenario in scenarios:
        if scenario.kind == "corrupt" or scenario.window_docs is not None:
            continue
        start = 0 if scenario.kind == "stationary" else scenario.before
        rows = [r for run in runs[scenario.name] for r in run.rows[start:] if r["evaluated"]]
        for key in dist:
            dist[key][scenario.name] = [r[key] for r in rows]  # type: ignore[literal-required]
    return summaries, series, dist


# --- the live check --------------------------------------------------------------------------


def _alert_gauges(port: int) -> dict[str, tuple[float, str]]:
    """``stream_trf_drift_alert`` samples on the worker's /metrics: value and exposition line,
    by figure."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    lines = {
        line.split(" ")[0]: line
        for line in text.splitlines()
        if line.startswith("stream_trf_drift")
    }
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "stream_trf_drift_alert":
                figure = sample.labels.get("figure", "")
                line = next((v for k, v in lines.items() if f'figure="{figure}"' in k), "")
                out[figure] = (float(sample.value), line)
    return out


class AlertPoller:
    """Polls /metrics in a thread and keeps every change of the set of alerting figures, with
    the time it was seen and the exposition lines that read 1."""

    def __init__(self, port: int, interval: float = 0.25) -> None:
        self.port, self.interval = port, interval
        self.events: list[tuple[float, frozenset[str], list[str]]] = []
        self.polls = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        active: frozenset[str] = frozenset()
        while not self._stop.wait(self.interval):
            try:
                gauges = _alert_gauges(self.port)
            except OSError:
                self.errors += 1
                continue
            self.polls += 1
            now = frozenset(f for f, (v, _) in gauges.items() if v == 1.0)
            if now != active:
                active = now
                self.events.append((time.time(), now, [gauges[f][1] for f in sorted(now)]))

    def first_after(self, t: float, figures: set[str]) -> tuple[float, list[str]] | None:
        """When one of ``figures`` was first seen alerting at or after ``t`` (or was already
        alerting at ``t``), and the lines that showed it."""
        current: tuple[float, frozenset[str], list[str]] | None = None
        for event in self.events:
            if event[0] < t:
                current = event
                continue
            if figures & event[1]:
                return event[0], event[2]
        if current is not None and figures & current[1]:
            return t, current[2]
        return None

    def __enter__(self) -> AlertPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def live_check(
    reference: Sequence[Record],
    stationary: Sequence[Record],
    switched: Sequence[Record],
    *,
    model: str,
    window_seconds: float,
    min_documents: int,
    log_dir: Path,
    max_batch: int = 64,
    wait_windows: int = 4,
) -> dict[str, Any]:
    """One worker, one partition (so the order of the input is the order of processing), web
    port on: the reference records, then stationary ones, then records of other sections, all
    produced at once. Measures when the first switched record was published, when an
    embedding or label alert first read 1 on /metrics, and which window record first carried
    one. ``reference_size`` is ``len(reference)``; every other threshold keeps its default
    except ``alert_min_documents`` (short windows hold fewer documents).

    ``max_batch`` is lowered from 256 because the monitor sees a batch when it is published: on
    2 cores a 256-document batch took about 8 s, longer than a short window, so windows alternate
    between a whole batch and nothing (empty windows are not evaluated, so alerts stay right,
    but each counts in a delay measured in windows)."""
    from ..stream import clients
    from ..stream.broker import EmbeddedBroker, free_port
    from ..stream.local import WorkerProcess
    from .worker import bench_settings

    inputs = [*reference, *stationary, *switched]
    switched_ids = {r["id"] for r in switched}
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    drift_figures = {f for g in DRIFT_GROUPS for f in GROUPS[g]}
    t_start = time.monotonic()
    with EmbeddedBroker(log_file=log_dir / "live-broker.log") as broker:
        settings = bench_settings(
            broker.url,
            model,
            partitions=1,
            max_batch=max_batch,
            web_port=port,
            window_seconds=window_seconds,
            reference_size=len(reference),
            alert_min_documents=min_documents,
            metrics_topic=f"bench-metrics-{tag}",
        )
        asyncio.run(
            clients.ensure_topics(
                settings,
                [
                    settings.input_topic,
                    settings.output_topic,
                    settings.dlq_topic,
                    settings.metrics_topic,
                ],
                1,
            )
        )
        worker = WorkerProcess(settings, log_dir / "live-worker.log")
        try:
            ready = worker.wait_ready(timeout=600)
            with AlertPoller(port) as poller:
                out = asyncio.run(
                    _produce_and_collect(settings, inputs, timeout=600, idle_timeout=60)
                )
                deadline = time.monotonic() + wait_windows * window_seconds + 2
                while time.monotonic() < deadline and not any(
                    drift_figures & e[1] for e in poller.events
                ):
                    time.sleep(0.1)
                time.sleep(min(window_seconds, 3.0) + 1.0)  # the alert's window record, published
            windows = asyncio.run(
                clients.consume(settings, settings.metrics_topic, timeout=30, idle_timeout=3)
            )
        finally:
            code = worker.terminate()
    published = sorted(
        r["_kafka"]["timestamp_ms"] / 1000 for r in out if r.get("id") in switched_ids
    )
    t_switch = published[0] if published else None
    windows = sorted(windows, key=lambda w: w["window"]["end"])
    rows = []
    for w in windows:
        figures = [a["figure"] for a in w.get("alerts", [])]
        rows.append(
            {
                "start": w["window"]["start"],
                "end": w["window"]["end"],
                "documents": w["volume"]["documents"],
                "reference": w["reference"]["source"],
                "cosine": w["embedding"]["cosine_distance"],
                "p_value": w["embedding"]["p_value"],
                "js": w["labels"]["js_distance"],
                "psi": w["labels"]["psi"],
                "agreement": w["agreement"]["ratio"],
                "alerts": figures,
                "evaluated": w["volume"]["documents"] >= min_documents,
            }
        )
    change = next(
        (i for i, r in enumerate(rows) if t_switch is not None and r["end"] > t_switch), None
    )
    first_alert = next(
        (
            i
            for i, r in enumerate(rows)
            if change is not None and i >= change and drift_figures & set(r["alerts"])
        ),
        None,
    )
    pre_change = [
        r
        for r in rows
        if t_switch is not None and r["end"] <= t_switch and drift_figures & set(r["alerts"])
    ]
    seen = poller.first_after(t_switch, drift_figures) if t_switch is not None else None
    first_metric = seen[0] if seen else None
    return {
        "documents": {
            "reference": len(reference),
            "stationary": len(stationary),
            "switched": len(switched),
            "enriched": len(out),
        },
        "settings": {
            "window_seconds": window_seconds,
            "reference_size": len(reference),
            "alert_min_documents": min_documents,
            "partitions": 1,
            "max_batch": max_batch,
            "other thresholds": "defaults",
        },
        "worker_ready_seconds": round(ready, 1),
        "worker_exit_code": code,
        "seconds_total": round(time.monotonic() - t_start, 1),
        "metrics_polls": poller.polls,
        "first_switched_record_published_at": t_switch,
        "metrics_lines_at_first_alert": seen[1] if seen else [],
        "metrics_alert_changes": [
            {"after_switch_s": round(t - t_switch, 2) if t_switch else None, "alerting": sorted(f)}
            for t, f, _ in poller.events
        ],
        "delay_seconds_to_metrics_alert": (
            round(first_metric - t_switch, 2)
            if first_metric is not None and t_switch is not None
            else None
        ),
        "change_window_index": change,
        "first_alert_window_index": first_alert,
        "delay_windows": (
            first_alert - change + 1 if first_alert is not None and change is not None else None
        ),
        "delay_evaluated_windows": (
            sum(1 for r in rows[change : first_alert + 1] if r["evaluated"])
            if first_alert is not None and change is not None
            else None
        ),
        "first_alert_window": rows[first_alert] if first_alert is not None else None,
        "pre_change_windows_with_drift_alert": len(pre_change),
        "detected_on_metrics": first_metric is not None,
        "detected_in_window_record": first_alert is not None,
        "windows": rows,
    }


# --- the chart -------------------------------------------------------------------------------


def chart(
    result: dict[str, Any],
    series: dict[str, list[WindowRow]],
    distributions: dict[str, dict[str, list[float | None]]],
    path: Path,
) -> None:
    """Six panels: the stationary and changed distributions of the cosine distance, the JS
    distance and the MMD p-value against their thresholds; one seed's switch and corruption
    runs over time; and the detection delays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    th = result["settings"]["thresholds"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))

    def hist(ax: Any, key: str, threshold: float, title: str, log: bool = True) -> None:
        groups = {
            name: [v for v in values if v is not None and (v > 0 or not log)]
            for name, values in distributions.get(key, {}).items()
        }
        pooled = [v for vals in groups.values() for v in vals]
        if not pooled:
            return
        if log:  # one set of bins for every scenario, so the bars compare
            lo, hi = min(*pooled, threshold), max(*pooled, threshold)
            bins = np.logspace(np.log10(lo * 0.9), np.log10(hi * 1.1), 50)
        else:
            bins = np.linspace(0, 1, 51)
        for name, vals in groups.items():
            if vals:
                ax.hist(vals, bins=bins, alpha=0.55, label=f"{name} ({len(vals)})", density=True)
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
        if log:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)

    hist(
        axes[0, 0],
        "cosine",
        th["embedding_cosine_max"],
        "embedding cosine distance per window (stationary; after a switch)",
    )
    hist(axes[0, 1], "js", th["label_js_max"], "label JS distance per window")
    hist(
        axes[0, 2],
        "p_value",
        th["embedding_p_value_min"],
        "MMD permutation p-value per window (uniform when calibrated)",
        log=False,
    )
    ax = axes[1, 0]
    for name, rows in series.items():
        if name.startswith("switch"):
            ax.plot([r["window"] for r in rows], [r["cosine"] for r in rows], label=name, lw=1)
            on = [r for r in rows if any(f in r["alerts"] for f in GROUPS["embedding"])]
            ax.scatter([r["window"] for r in on], [r["cosine"] for r in on], s=10, marker="o")
    ax.axhline(th["embedding_cosine_max"], color="k", ls="--", lw=1)
    before = result["design"]["windows_before_change"]
    ax.axvline(before - 0.5, color="r", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("window (red: the change; dots: embedding alert active)")
    ax.set_title("section switch, seed 0: cosine distance", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    for name, rows in series.items():
        if name.startswith("corrupt"):
            line = ax.plot([r["window"] for r in rows], [r["agreement"] for r in rows], label=name)
            on = [r for r in rows if "agreement" in r["alerts"]]
            ax.scatter(
                [r["window"] for r in on],
                [r["agreement"] for r in on],
                s=10,
                color=line[0].get_color(),
            )
            floors = [r["agreement_floor"] for r in rows if r["agreement_floor"] is not None]
            if floors:
                ax.axhline(floors[0], color="k", ls="--", lw=1)
    ax.axvline(before - 0.5, color="r", lw=1)
    ax.set_xlabel("window (dashed: the floor, reference − drop; dots: alert active)")
    ax.set_title("production labels corrupted, seed 0: agreement ratio", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 2]
    names, medians, maxes, colors, notes = [], [], [], [], []
    for name, s in result["scenarios"].items():
        if s.get("kind") in (None, "stationary"):
            continue
        for g in s["groups"]:
            info = s["groups"][g]
            if not info["expected"]:
                continue
            names.append(f"{name}\n{g}")
            medians.append(info["delay_windows_median"] or 0)
            maxes.append(info["delay_windows_max"] or 0)
            colors.append("C0" if g == "embedding" else "C1" if g == "label" else "C2")
            notes.append(
                f"{info['misses']}/{s['seeds']} missed within {s['windows_after_change']}"
                if info["misses"]
                else ""
            )
    y = np.arange(len(names))
    bars = ax.barh(y, medians, color=colors, alpha=0.8, label="median")
    for bar, note in zip(bars, notes):
        if note:  # the median of the few seeds that detected: not a typical delay
            bar.set_alpha(0.3)
            bar.set_hatch("//")
    ax.scatter(maxes, y, color="k", marker="|", s=120, label="max")
    for i, note in enumerate(notes):
        if note:
            ax.text(max(maxes[i], medians[i]) + 0.2, i, note, va="center", fontsize=7, color="r")
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"detection delay, windows of {result['design']['window_docs']} docs")
    stationary = result["scenarios"].get("stationary", {})
    fa = ", ".join(
        f"{g} {info['alerts_raised']}" for g, info in stationary.get("groups", {}).items()
    )
    ax.set_title(
        f"detection delay (bar: median of the seeds that detected; |: max)\n"
        f"alerts raised in {stationary.get('windows', 0)} stationary windows: {fa}",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    fig.suptitle(
        f"drift detection · {result['model']['name']} · windows of "
        f"{result['design']['window_docs']} docs · {result['seeds']} seeds · "
        f"{result['machine']['device']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def monitor_config(settings: Settings, window_seconds: float = 60.0) -> MonitorConfig:
    """The worker's monitor configuration for ``settings`` (thresholds, K, reference size,
    permutations); only the window length differs, and it means nothing on a synthetic clock."""
    from dataclasses import replace

    return replace(MonitorConfig.from_settings(settings), window_seconds=window_seconds)


def tmp_log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="stream-trf-drift-"))


__all__ = [
    "GROUPS",
    "Cycle",
    "LabelledDoc",
    "NaiveBayes",
    "Pools",
    "Scenario",
    "ScenarioRun",
    "WindowRow",
    "chart",
    "default_scenarios",
    "detection",
    "enrich_through_worker",
    "live_check",
    "make_pools",
    "monitor_config",
    "production_predictions",
    "replay",
    "run_replays",
    "run_scenario",
    "scenario_windows",
    "slim",
    "summarize_change",
    "summarize_stationary",
]
