"""One settings object for the worker: command-line flags, then ``STREAM_TRF_*`` environment
variables, then defaults. No other module reads the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .model.source import DEFAULT_MODEL
from .stream.memory import MAX_MMAP_THRESHOLD_MB

ENV_PREFIX = "STREAM_TRF_"


def _f(
    default: Any, help: str, *, flag: str | None = None, choices: tuple[str, ...] | None = None
) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices})


@dataclass(frozen=True)
class Settings:
    # Where
    broker: str = _f(
        "kafka://127.0.0.1:9092", "broker URL list, e.g. kafka://a:9092;kafka://b:9092"
    )
    input_topic: str = _f("stream-trf-input", "topic the documents arrive on")
    output_topic: str = _f("stream-trf-enriched", "topic the enriched records go to")
    dlq_topic: str = _f("stream-trf-dead-letters", "topic for records that cannot be enriched")
    group_id: str = _f("stream-trf", "consumer group; workers with the same id share partitions")
    partitions: int = _f(4, "partitions of topics the worker creates (the unit of scale-out)")
    # What
    model: str = _f(DEFAULT_MODEL, "model name, HF directory or saved stream_trf pipeline")
    # Batching
    max_batch: int = _f(256, "most documents buffered into one batch")
    batch_within: float = _f(
        0.1,
        "seconds to wait for a batch to fill before processing it anyway; under load the "
        "batch fills while the model works, so this only matters when traffic is light",
    )
    fetch_max_wait: float = _f(
        0.1,
        "longest a consumer fetch waits for data; some brokers (the embedded one) hold every "
        "fetch this long, so it bounds the latency it adds",
    )
    words_per_batch: int = _f(
        0,
        "most padded wordpieces in one transformer sub-batch; 0 = auto: 500 on a CPU, 8000 "
        "on a GPU (the worker's latency at half load on an H100; the library alone uses 32000 "
        "there; measure yours with stream-trf bench --sweep)",
    )
    precision: str = _f(
        "fp32",
        "transformer precision: fp32; int8 (CPU) or fp16/bf16 (GPU), see stream-trf bench "
        "--precisions for their fidelity",
        choices=("fp32", "int8", "fp16", "bf16"),
    )
    packing: str = _f(
        "auto",
        "padding-free inference for BERT-family models: auto (on CUDA), on, off; on a CPU it "
        "measured on par with length-bucketed padding",
        choices=("auto", "on", "off"),
    )
    trace: str = _f(
        "auto",
        "run the transformer as a TorchScript trace, checked against the eager model at load: "
        "auto (on a CPU), on, off; a traced pass holds no GIL, so the lanes and spaCy's Python "
        "share the cores instead of taking turns",
        choices=("auto", "on", "off"),
    )
    processes: int = _f(
        0,
        "worker processes this command runs in the consumer group, each with its own model and "
        "an equal share of the cores; 0 = auto: one per 4 cores, at most one per partition "
        "(within a process the model runs on one lane per core; spaCy and Kafka share one "
        "interpreter), on a GPU too: the processes share the card",
    )
    max_text_chars: int = _f(1_000_000, "longer texts become dead letters (text_too_long)")
    # Heavy output fields
    emit_tokens: bool = _f(False, "add token texts and per-token vectors to enriched records")
    emit_wordpieces: bool = _f(False, "add wordpieces and the token alignment to enriched records")
    vector_encoding: str = _f(
        "json",
        "how doc_vector and token_vectors travel: json (numbers, ~10 bytes a value), "
        "base64-f32 (every bit, 5.3 bytes a value) or base64-f16 (2.7 bytes a value), the "
        "latter two as {dtype, shape, base64} objects",
        choices=("json", "base64-f32", "base64-f16"),
    )
    max_record_bytes: int = _f(
        1_000_000,
        "largest record the worker's producer sends (Kafka's default broker limit); a larger "
        "enriched record becomes an output_too_large dead letter. Raise it together with the "
        "output topic's max.message.bytes",
    )
    # Consumer-group timing. Tansu (the embedded broker) holds a JoinGroup for half the session
    # timeout; faust's own default (60 s) made the first join take 30 s.
    session_timeout: float = _f(10.0, "consumer session timeout in seconds")
    heartbeat_interval: float = _f(2.0, "consumer heartbeat interval in seconds")
    rebalance_timeout: float = _f(30.0, "seconds members get to rejoin during a rebalance")
    commit_interval: float = _f(1.0, "seconds between offset commits (of acknowledged work only)")
    # Security, passed through to the Kafka clients
    security_protocol: str = _f(
        "PLAINTEXT",
        "Kafka security protocol",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    )
    ssl_cafile: str = _f("", "CA bundle for TLS")
    ssl_certfile: str = _f("", "client certificate for TLS")
    ssl_keyfile: str = _f("", "client key for TLS")
    sasl_mechanism: str = _f(
        "PLAIN", "SASL mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    )
    sasl_username: str = _f("", "SASL user name")
    sasl_password: str = _f("", "SASL password (prefer the environment variable)")
    # Operations
    web_port: int = _f(0, "port of the worker's web server (0: off)")
    web_host: str = _f("127.0.0.1", "address the web server binds to")
    log_level: str = _f("info", "log level", choices=("debug", "info", "warn", "error"))
    data_dir: str = _f("", "faust's data directory (default: a temporary one)")
    mmap_threshold_mb: float = _f(
        4.0,
        "memory blocks of this many MiB or more get their own mappings and go back to the OS "
        "when freed, so the heap fragments less and RSS sits lower and creeps less (glibc; "
        "0 = glibc's own sliding threshold; at most 32)",
    )
    huge_pages: bool = _f(
        True,
        "torch's large CPU tensors on 2 MiB pages (THP_MEM_ALLOC_ENABLE): takes back the page "
        "faults that fresh mappings cost",
    )
    onednn_cache: int = _f(
        0,
        "kernels oneDNN keeps compiled, one per tensor shape (ONEDNN_PRIMITIVE_CACHE_CAPACITY); "
        "sub-batch shapes hardly repeat, so a cache only grows: 0 = none (lower, flat RSS and "
        "no slower), -1 = oneDNN's default of 1,024",
    )
    release_every: int = _f(
        0,
        "hand freed heap back to the OS every N wordpieces the model computes, not only after "
        "each buffer: a full buffer's freed activations otherwise pile up as heap holes (its "
        "RSS climbed ~30 MB to the last sub-batch); 0 = auto (8 of the auto sub-batches: "
        "4,000 on a CPU, 64,000 on a GPU), -1 = after each buffer only",
    )
    vocab_warmup_chars: int = _f(
        1_000_000,
        "characters of text (about 2,000 short docs) each worker process tokenizes outside "
        "spaCy's memory zones when it starts, so the stream's common words stay cached: spaCy "
        "caches nothing inside a zone, and its tokenizer ran ~3x faster on new docs after "
        "such a warm-up (the cache stays, ~9 MB for 1 M characters; the buffer that crosses the "
        "budget still runs outside a zone); 0 = a zone for every "
        "buffer from the first",
    )
    # Monitoring (stream_trf/monitor): windows, reference, alert thresholds
    metrics_topic: str = _f(
        "stream-trf-metrics", "topic for one window record per model and window ('' for none)"
    )
    window_seconds: float = _f(60.0, "length of the monitor's tumbling windows in seconds")
    lag_interval: float = _f(
        5.0,
        "seconds between two readings of the input topic's consumer lag from the broker, for "
        "/metrics, the dashboard and the progress line (0: not read)",
    )
    reference_size: int = _f(
        500, "a model's first N documents are its drift reference when no reference file exists"
    )
    reference_file: str = _f(
        "",
        "reference made by `stream-trf reference`; when the file does not exist yet, the "
        "reference built from the stream is saved there",
    )
    alert_windows: int = _f(2, "a figure beyond its threshold for this many windows alerts")
    alert_min_documents: int = _f(
        100, "windows with fewer documents neither raise nor clear alerts (too noisy)"
    )
    drift_sample_size: int = _f(
        500,
        "doc vectors per side of the MMD two-sample test (kept per window and in the reference)",
    )
    drift_permutations: int = _f(
        200, "permutations of the MMD two-sample test on doc vectors (its p-value's resolution)"
    )
    agreement_min: float = _f(
        0.0,
        "alert when the agreement ratio's 95%% upper bound is below this; 0: below the "
        "reference's ratio minus --agreement-max-drop",
    )
    agreement_max_drop: float = _f(
        0.05, "agreement drop from the reference's ratio that alerts (95%% upper bound below it)"
    )
    label_js_max: float = _f(
        0.25, "Jensen-Shannon distance of the label distribution from the reference that alerts"
    )
    label_psi_max: float = _f(
        0.5, "PSI of the label distribution against the reference that alerts"
    )
    label_noise_alpha: float = _f(
        0.001,
        "label drift alerts only beyond what chance exceeds with this probability at the "
        "window's size too (small windows are noisy)",
    )
    confidence_max_drop: float = _f(0.1, "mean confidence drop from the reference's that alerts")
    embedding_cosine_max: float = _f(
        0.05, "cosine distance of the window's mean doc vector from the reference's that alerts"
    )
    embedding_p_value_min: float = _f(
        0.01, "MMD two-sample test p-value (window vs reference doc vectors) below which to alert"
    )
    text_relative_max: float = _f(
        0.5, "relative change of mean words or sentences per doc from the reference that alerts"
    )
    text_share_max: float = _f(
        0.05, "change of the windowed or unknown wordpiece share from the reference that alerts"
    )
    text_noise_z: float = _f(
        3.0,
        "a text figure's change alerts only beyond this many standard errors of the change too "
        "(long documents make small windows noisy)",
    )

    @classmethod
    def from_sources(
        cls, args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Flags beat the environment, which beats the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw: Any = None
            if args is not None and getattr(args, f.name, None) is not None:
                raw = getattr(args, f.name)
            elif ENV_PREFIX + f.name.upper() in env:
                raw = env[ENV_PREFIX + f.name.upper()]
            if raw is not None:
                values[f.name] = _coerce(raw, f.default, f.name)
        settings = cls(**values)
        settings.validate()
        return settings

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def validate(self) -> None:
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name}={getattr(self, f.name)!r}: choose one of {choices}")
        if self.max_record_bytes < 1024:
            raise ValueError(
                f"max_record_bytes must be at least 1024 bytes, got {self.max_record_bytes}"
            )
        if self.max_batch < 1 or self.words_per_batch < 0 or self.max_text_chars < 1:
            raise ValueError(
                "max_batch and max_text_chars must be positive, words_per_batch positive or 0 "
                "(auto)"
            )
        if not self.broker_urls():
            raise ValueError(
                "broker is empty: give a kafka://host:port URL (--broker / STREAM_TRF_BROKER)"
            )
        if self.processes < 0:
            raise ValueError(f"processes must be 0 (auto) or positive, got {self.processes}")
        if self.partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {self.partitions}")
        if not 0 < self.fetch_max_wait <= 30 or self.batch_within < 0:
            raise ValueError(
                "fetch_max_wait must be in (0, 30] seconds and batch_within at least 0, got "
                f"{self.fetch_max_wait} and {self.batch_within}"
            )
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
        if self.vocab_warmup_chars < 0:
            raise ValueError(
                f"vocab_warmup_chars must be 0 (no warm-up) or positive, got "
                f"{self.vocab_warmup_chars}"
            )
        if self.onednn_cache < -1:
            raise ValueError(
                f"onednn_cache must be -1 (oneDNN's default) or at least 0, got {self.onednn_cache}"
            )
        if not 0 <= self.web_port <= 65535:
            raise ValueError(f"web_port must be a port number (0 for off), got {self.web_port}")
        if self.lag_interval < 0:
            raise ValueError(f"lag_interval must be 0 (off) or positive, got {self.lag_interval}")
        if self.window_seconds <= 0 or self.reference_size < 1 or self.alert_windows < 1:
            raise ValueError(
                "window_seconds must be positive, reference_size and alert_windows at least 1"
            )
        if self.drift_permutations < 1 or self.alert_min_documents < 0:
            raise ValueError("drift_permutations must be at least 1, alert_min_documents >= 0")
        if not 0 < self.label_noise_alpha < 1:
            raise ValueError(f"label_noise_alpha must be in (0, 1), got {self.label_noise_alpha}")
        if self.drift_sample_size < 2:
            raise ValueError("drift_sample_size must be at least 2")
        if self.heartbeat_interval * 3 > self.session_timeout:
            raise ValueError("heartbeat_interval must be at most a third of session_timeout")

    def broker_urls(self) -> list[str]:
        return [u.strip() for u in self.broker.replace(",", ";").split(";") if u.strip()]

    def bootstrap_servers(self) -> list[str]:
        return [u.split("://", 1)[-1] for u in self.broker_urls()]

    def public(self) -> dict[str, Any]:
        """The settings with secrets masked, for logs and the startup banner."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["sasl_password"]:
            out["sasl_password"] = "***"
        return out


def _coerce(raw: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a boolean")
    try:
        return type(default)(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={raw!r}: expected {type(default).__name__}") from None


def add_arguments(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Flags for every setting (defaults shown come from the environment at run time)."""
    for f in fields(Settings):
        if only is not None and f.name not in only:
            continue
        flag = "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        help_text = f"{f.metadata['help']} [env {env}; default {f.default!r}]"
        if isinstance(f.default, bool):
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                dest=f.name,
                type=type(f.default),
                default=None,
                choices=f.metadata.get("choices"),
                help=help_text,
            )
