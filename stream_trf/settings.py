"""The worker's settings, in sections: command-line flags, then ``STREAM_TRF_*`` environment
variables, then defaults. No other module reads the environment.

Each setting is declared once (``stream_trf.setting``), in the section that groups it; the
monitoring section is the monitor's own configuration (``monitor/config.py``). A setting reads
by section (``settings.topics.input_topic``) and by its own name too (``settings.input_topic``:
the name its flag and variable are made of), and ``Settings(input_topic=...)`` and
``settings.with_(input_topic=...)`` take those names. What 0 ("auto") means lives in
``stream_trf.auto``. ``python -m stream_trf.settings --markdown`` writes docs/configuration.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import auto
from .model.source import DEFAULT_MODEL
from .monitor.config import MonitorConfig
from .setting import (
    ENV_PREFIX,
    Spec,
    check_choices,
    coerce,
    intro,
    setting,
    specs,
    subsections,
    title,
)

__all__ = [
    "ENV_PREFIX",
    "MAX_MMAP_THRESHOLD_MB",
    "SPECS",
    "BatchingSettings",
    "KafkaSettings",
    "MemorySettings",
    "MonitorConfig",
    "OperationsSettings",
    "RecordSettings",
    "Settings",
    "TopicSettings",
    "TransformerSettings",
    "add_arguments",
    "markdown",
]

# glibc caps the mmap threshold (M_MMAP_THRESHOLD) at 32 MiB; stream/memory.py applies it.
MAX_MMAP_THRESHOLD_MB = 32


def _per_device(table: Mapping[str, int]) -> str:
    return f"{table['cpu']:,} on a CPU, {table['cuda']:,} on a GPU"


@dataclass(frozen=True)
class KafkaSettings:
    """Kafka connection.

    Where the brokers are and how to reach them (TLS, SASL)."""

    broker: str = setting(
        "kafka://127.0.0.1:9092", "broker URL list, e.g. kafka://a:9092;kafka://b:9092"
    )
    security_protocol: str = setting(
        "PLAINTEXT",
        "Kafka security protocol",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    )
    ssl_cafile: str = setting("", "CA bundle for TLS")
    ssl_certfile: str = setting("", "client certificate for TLS")
    ssl_keyfile: str = setting("", "client key for TLS")
    sasl_mechanism: str = setting(
        "PLAIN", "SASL mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    )
    sasl_username: str = setting("", "SASL user name")
    sasl_password: str = setting("", "SASL password (prefer the environment variable)")

    def broker_urls(self) -> list[str]:
        return [u.strip() for u in self.broker.replace(",", ";").split(";") if u.strip()]

    def bootstrap_servers(self) -> list[str]:
        return [u.split("://", 1)[-1] for u in self.broker_urls()]

    def validate(self) -> None:
        if not self.broker_urls():
            raise ValueError(
                "broker is empty: give a kafka://host:port URL (--broker / STREAM_TRF_BROKER)"
            )


@dataclass(frozen=True)
class TopicSettings:
    """Topics and consumer group.

    The group's timing is short because the embedded broker (Tansu) holds a JoinGroup for half
    the session timeout: faust's own 60 s made a first join take 30 s."""

    input_topic: str = setting("stream-trf-input", "topic the documents arrive on")
    output_topic: str = setting("stream-trf-enriched", "topic the enriched records go to")
    dlq_topic: str = setting("stream-trf-dead-letters", "topic for records that cannot be enriched")
    metrics_topic: str = setting(
        "stream-trf-metrics", "topic for one window record per model and window ('' for none)"
    )
    group_id: str = setting(
        "stream-trf", "consumer group; workers with the same id share partitions"
    )
    partitions: int = setting(4, "partitions of topics the worker creates (the unit of scale-out)")
    session_timeout: float = setting(10.0, "consumer session timeout in seconds")
    heartbeat_interval: float = setting(2.0, "consumer heartbeat interval in seconds")
    rebalance_timeout: float = setting(30.0, "seconds members get to rejoin during a rebalance")
    commit_interval: float = setting(
        1.0, "seconds between offset commits (of acknowledged work only)"
    )

    def validate(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {self.partitions}")
        if self.heartbeat_interval * 3 > self.session_timeout:
            raise ValueError("heartbeat_interval must be at most a third of session_timeout")


@dataclass(frozen=True)
class TransformerSettings:
    """Transformer.

    Which model, at what precision, in what sub-batches."""

    model: str = setting(DEFAULT_MODEL, "model name, HF directory or saved stream_trf pipeline")
    precision: str = setting(
        "fp32",
        "transformer precision: fp32; int8 (CPU) or fp16/bf16 (GPU), see stream-trf bench "
        "--precisions for their fidelity",
        choices=("fp32", "int8", "fp16", "bf16"),
    )
    packing: str = setting(
        "auto",
        "padding-free inference for BERT-family models: auto (on CUDA), on, off; on a CPU it "
        "is on par with length-bucketed padding",
        choices=("auto", "on", "off"),
    )
    trace: str = setting(
        "auto",
        "run the transformer as a TorchScript trace, checked against the eager model at load: "
        "auto (on a CPU), on, off; a traced pass holds no GIL, so the lanes and spaCy's Python "
        "share the cores instead of taking turns",
        choices=("auto", "on", "off"),
    )
    words_per_batch: int = setting(
        0,
        "most padded wordpieces in one transformer sub-batch; 0 = auto: "
        f"{_per_device(auto.WORDS_PER_BATCH['worker'])} (the library alone uses "
        f"{_per_device(auto.WORDS_PER_BATCH['library'])}; on a CPU, × {auto.REFERENCE_WIDTH} / "
        f"width for a model narrower than {auto.REFERENCE_WIDTH}; measure yours with stream-trf "
        "bench --sweep)",
    )

    def validate(self) -> None:
        if self.words_per_batch < 0:
            raise ValueError(
                f"words_per_batch must be positive or 0 (auto), got {self.words_per_batch}"
            )


@dataclass(frozen=True)
class BatchingSettings:
    """Batching.

    How records taken from the input topic become the model's batches."""

    max_batch: int = setting(256, "most documents buffered into one batch")
    batch_within: float = setting(
        0.1,
        "seconds to wait for a batch to fill before processing it anyway; under load the "
        "batch fills while the model works, so this only matters when traffic is light",
    )
    fetch_max_wait: float = setting(
        0.1,
        "longest a consumer fetch waits for data; some brokers (the embedded one) hold every "
        "fetch this long, so it bounds the latency it adds",
    )

    def validate(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {self.max_batch}")
        if not 0 < self.fetch_max_wait <= 30 or self.batch_within < 0:
            raise ValueError(
                "fetch_max_wait must be in (0, 30] seconds and batch_within at least 0, got "
                f"{self.fetch_max_wait} and {self.batch_within}"
            )


@dataclass(frozen=True)
class RecordSettings:
    """Records.

    What an input record may hold and what an enriched record carries."""

    max_text_chars: int = setting(1_000_000, "longer texts become dead letters (text_too_long)")
    emit_tokens: bool = setting(False, "add token texts and per-token vectors to enriched records")
    emit_wordpieces: bool = setting(
        False, "add wordpieces and the token alignment to enriched records"
    )
    vector_encoding: str = setting(
        "json",
        "how doc_vector and token_vectors travel: json (numbers, ~10 bytes a value), "
        "base64-f32 (every bit, 5.3 bytes a value) or base64-f16 (2.7 bytes a value), the "
        "latter two as {dtype, shape, base64} objects",
        choices=("json", "base64-f32", "base64-f16"),
    )
    max_record_bytes: int = setting(
        1_000_000,
        "largest record the worker's producer sends (Kafka's default broker limit); a larger "
        "enriched record becomes an output_too_large dead letter. Raise it together with the "
        "output topic's max.message.bytes",
    )

    def validate(self) -> None:
        if self.max_text_chars < 1:
            raise ValueError(f"max_text_chars must be positive, got {self.max_text_chars}")
        if self.max_record_bytes < 1024:
            raise ValueError(
                f"max_record_bytes must be at least 1024 bytes, got {self.max_record_bytes}"
            )


@dataclass(frozen=True)
class MemorySettings:
    """Memory.

    How a long-running worker keeps its resident memory low and level. All of these are process-wide, so the worker sets them, never the library. Why each default
    is what it is: docs/decisions/allocator.md, onednn-cache.md and zones.md."""

    mmap_threshold_mb: float = setting(
        4.0,
        "memory blocks of this many MiB or more get their own mappings and go back to the OS "
        "when freed, so the heap fragments less and RSS sits lower and creeps less (glibc; "
        f"0 = glibc's own sliding threshold; at most {MAX_MMAP_THRESHOLD_MB})",
    )
    huge_pages: bool = setting(
        True,
        "torch's large CPU tensors on 2 MiB pages (THP_MEM_ALLOC_ENABLE): takes back the page "
        "faults that fresh mappings cost",
    )
    onednn_cache: int = setting(
        0,
        "kernels oneDNN keeps compiled, one per tensor shape (ONEDNN_PRIMITIVE_CACHE_CAPACITY); "
        "sub-batch shapes hardly repeat, so a cache only grows: 0 = none (lower, flat RSS and "
        "no slower), -1 = oneDNN's default of 1,024",
    )
    release_every: int = setting(
        0,
        "hand freed heap back to the OS every N wordpieces the model computes, not only after "
        "each buffer (a full buffer's freed activations otherwise pile up as heap holes); "
        f"0 = auto ({auto.RELEASE_EVERY_SUB_BATCHES} of the auto sub-batches: "
        f"{auto.release_every('cpu'):,} on a CPU, {auto.release_every('cuda'):,} on a GPU), "
        "-1 = after each buffer only",
    )
    keep_free_mb: float = setting(
        64.0,
        "freed heap up to this many MiB stays with the process for the next buffers instead of "
        "being handed back (each page handed back costs a page fault when the next buffer takes "
        "it again; the worker's RSS may sit this much above what it holds); 0 = hand back "
        "whatever is free each time",
    )
    vocab_warmup_chars: int = setting(
        1_000_000,
        "characters of text (about 2,000 short docs) each worker process tokenizes outside "
        "spaCy's memory zones when it starts, so the stream's common words stay cached: spaCy "
        "caches nothing inside a zone (the cache stays, ~9 MB for 1 M characters; the buffer "
        "that crosses the budget still runs outside a zone); 0 = a zone for every buffer from "
        "the first",
    )

    def validate(self) -> None:
        if not 0 <= self.mmap_threshold_mb <= MAX_MMAP_THRESHOLD_MB:
            raise ValueError(
                f"mmap_threshold_mb must be in [0, {MAX_MMAP_THRESHOLD_MB}] MiB (0: glibc's own), "
                f"got {self.mmap_threshold_mb}"
            )
        if self.release_every < -1:
            raise ValueError(
                f"release_every must be -1 (per buffer only), 0 (auto) or positive, got "
                f"{self.release_every}"
            )
        if self.keep_free_mb < 0:
            raise ValueError(f"keep_free_mb must be at least 0, got {self.keep_free_mb}")
        if self.vocab_warmup_chars < 0:
            raise ValueError(
                f"vocab_warmup_chars must be 0 (no warm-up) or positive, got "
                f"{self.vocab_warmup_chars}"
            )
        if self.onednn_cache < -1:
            raise ValueError(
                f"onednn_cache must be -1 (oneDNN's default) or at least 0, got {self.onednn_cache}"
            )


@dataclass(frozen=True)
class OperationsSettings:
    """Operations.

    Worker processes, logs, the web server."""

    processes: int = setting(
        0,
        "worker processes this command runs in the consumer group, each with its own model and "
        f"an equal share of the cores; 0 = auto: one per {auto.CORES_PER_PROCESS} cores, at "
        "most one per partition (within a process the model runs on one lane per core; spaCy "
        "and Kafka share one interpreter), on a GPU too: the processes share the card",
    )
    log_level: str = setting("info", "log level", choices=("debug", "info", "warn", "error"))
    data_dir: str = setting("", "faust's data directory (default: a temporary one)")
    web_port: int = setting(0, "port of the worker's web server (0: off)")
    web_host: str = setting("127.0.0.1", "address the web server binds to")

    def validate(self) -> None:
        if self.processes < 0:
            raise ValueError(f"processes must be 0 (auto) or positive, got {self.processes}")
        if not 0 <= self.web_port <= 65535:
            raise ValueError(f"web_port must be a port number (0 for off), got {self.web_port}")


@dataclass(frozen=True, init=False)
class Settings:
    """Everything ``stream-trf worker`` is told, section by section."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    transformer: TransformerSettings = field(default_factory=TransformerSettings)
    batching: BatchingSettings = field(default_factory=BatchingSettings)
    records: RecordSettings = field(default_factory=RecordSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    operations: OperationsSettings = field(default_factory=OperationsSettings)

    def __init__(self, **values: Any) -> None:
        """Sections by name (``kafka=KafkaSettings(...)``), and single settings by their own
        names (``input_topic="in"``), which win over the sections given."""
        sections = {name: values.pop(name, None) or cls() for name, cls in subsections(Settings)}
        unknown = sorted(set(values) - set(SPECS))
        if unknown:
            raise TypeError(f"Settings() got unexpected settings: {', '.join(unknown)}")
        for name, value in values.items():
            path = SPECS[name].path
            sections[path[0]] = _set(sections[path[0]], path[1:], value)
        for name, section in sections.items():
            object.__setattr__(self, name, section)

    def __getattr__(self, name: str) -> Any:
        """A setting by its own name (``settings.input_topic``)."""
        spec = SPECS.get(name)
        if spec is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value: Any = object.__getattribute__(self, spec.path[0])
        for attr in spec.path[1:]:
            value = getattr(value, attr)
        return value

    @classmethod
    def from_sources(
        cls, args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Flags beat the environment, which beats the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for spec in SPECS.values():
            raw: Any = None
            if args is not None and getattr(args, spec.name, None) is not None:
                raw = getattr(args, spec.name)
            elif spec.env in env:
                raw = env[spec.env]
            if raw is not None:
                values[spec.name] = coerce(raw, spec)
        settings = cls(**values)
        settings.validate()
        return settings

    def with_(self, **changes: Any) -> Settings:
        """These settings with some changed, by their own names or whole sections."""
        return Settings(**({f.name: getattr(self, f.name) for f in fields(self)} | changes))

    def validate(self) -> None:
        check_choices(self)
        for f in fields(self):
            getattr(self, f.name).validate()

    def broker_urls(self) -> list[str]:
        return self.kafka.broker_urls()

    def bootstrap_servers(self) -> list[str]:
        return self.kafka.bootstrap_servers()

    def public(self) -> dict[str, Any]:
        """Every setting by its own name, secrets masked: for logs and the startup banner."""
        out = {name: getattr(self, name) for name in SPECS}
        if out["sasl_password"]:
            out["sasl_password"] = "***"
        return out


def _set(section: Any, path: tuple[str, ...], value: Any) -> Any:
    """``section`` with the field at ``path`` (inside nested sections) set to ``value``."""
    if len(path) == 1:
        return replace(section, **{path[0]: value})
    return replace(section, **{path[0]: _set(getattr(section, path[0]), path[1:], value)})


# Every setting by its own name, in the order of the sections.
SPECS: dict[str, Spec] = {spec.name: spec for spec in specs(Settings)}


def _help(spec: Spec) -> str:
    return f"{spec.help} [env {spec.env}; default {spec.default!r}]".replace("%", "%%")


def add_arguments(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Flags for every setting (or those named in ``only``), grouped by section. Flags default
    to None, so that ``Settings.from_sources`` can tell a flag given from one left out."""
    groups: dict[str, Any] = {}
    for spec in SPECS.values():
        if only is not None and spec.name not in only:
            continue
        if spec.section not in groups:
            groups[spec.section] = parser.add_argument_group(spec.section)
        group = groups[spec.section]
        if spec.type is bool:
            group.add_argument(
                spec.flag,
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=_help(spec),
            )
        else:
            group.add_argument(
                spec.flag,
                dest=spec.name,
                type=spec.type,
                default=None,
                choices=spec.choices,
                help=_help(spec),
            )


def _markdown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`" if value != "" else '`""` (none)'


def markdown() -> str:
    """docs/configuration.md: every setting with its section, flag, variable, default and help."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated from stream_trf/settings.py by `python -m stream_trf.settings "
        "--markdown > docs/configuration.md`; tests/test_settings.py checks it is current. -->",
        "",
        "Every setting of `stream-trf worker` comes from its flag, else from its environment "
        "variable, else from its default. Booleans take `--flag` / `--no-flag`, and `1`, "
        "`true`, `yes`, `on` (or `0`, `false`, `no`, `off`, empty) in the environment. "
        "`stream-trf produce`, `consume` and `reference` take the Kafka connection settings "
        "too. What 0 (auto) picks is in `stream_trf/auto.py`.",
    ]

    def emit(section: type, level: str) -> None:
        out.extend(["", f"{level} {title(section)}", ""])
        text = intro(section)
        if text:
            out.extend([text, ""])
        out.append("| Flag | Environment variable | Default | What it does |")
        out.append("|---|---|---|---|")
        own = [s for s in SPECS.values() if s.section == title(section)]
        for spec in own:
            help_text = spec.help
            if spec.choices:
                help_text += " (one of " + ", ".join(f"`{c}`" for c in spec.choices) + ")"
            help_text = help_text.replace("|", "\\|")
            out.append(
                f"| `{spec.flag}` | `{spec.env}` | {_markdown_value(spec.default)} | {help_text} |"
            )
        for _, nested in subsections(section):
            emit(nested, level + "#")

    for _, section in subsections(Settings):
        emit(section, "##")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream_trf.settings",
        description="Print the worker's settings: as Markdown (docs/configuration.md), or the "
        "values they take from this environment.",
    )
    parser.add_argument("--markdown", action="store_true", help="print docs/configuration.md")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
    else:
        for name, value in Settings.from_sources(env=os.environ).public().items():
            print(f"{SPECS[name].env}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
