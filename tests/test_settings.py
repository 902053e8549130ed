"""Settings: flags beat ``STREAM_TRF_*`` environment variables, which beat the defaults."""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from stream_trf import auto
from stream_trf.cli import build_parser
from stream_trf.model.source import DEFAULT_MODEL
from stream_trf.monitor.alerts import Thresholds
from stream_trf.monitor.config import MonitorConfig
from stream_trf.settings import (
    ENV_PREFIX,
    SPECS,
    KafkaSettings,
    Settings,
    TopicSettings,
    add_arguments,
    markdown,
)

REPO = Path(__file__).resolve().parents[1]

# Every environment variable users may have in their manifests: none may disappear or change.
ENVIRONMENT = [
    "BROKER",
    "INPUT_TOPIC",
    "OUTPUT_TOPIC",
    "DLQ_TOPIC",
    "GROUP_ID",
    "PARTITIONS",
    "MODEL",
    "MAX_BATCH",
    "BATCH_WITHIN",
    "FETCH_MAX_WAIT",
    "WORDS_PER_BATCH",
    "PRECISION",
    "PACKING",
    "TRACE",
    "PROCESSES",
    "MAX_TEXT_CHARS",
    "EMIT_TOKENS",
    "EMIT_WORDPIECES",
    "VECTOR_ENCODING",
    "MAX_RECORD_BYTES",
    "SESSION_TIMEOUT",
    "HEARTBEAT_INTERVAL",
    "REBALANCE_TIMEOUT",
    "COMMIT_INTERVAL",
    "SECURITY_PROTOCOL",
    "SSL_CAFILE",
    "SSL_CERTFILE",
    "SSL_KEYFILE",
    "SASL_MECHANISM",
    "SASL_USERNAME",
    "SASL_PASSWORD",
    "WEB_PORT",
    "WEB_HOST",
    "LOG_LEVEL",
    "DATA_DIR",
    "MMAP_THRESHOLD_MB",
    "HUGE_PAGES",
    "ONEDNN_CACHE",
    "RELEASE_EVERY",
    "KEEP_FREE_MB",
    "VOCAB_WARMUP_CHARS",
    "METRICS_TOPIC",
    "WINDOW_SECONDS",
    "LAG_INTERVAL",
    "REFERENCE_SIZE",
    "REFERENCE_FILE",
    "ALERT_WINDOWS",
    "ALERT_MIN_DOCUMENTS",
    "DRIFT_SAMPLE_SIZE",
    "DRIFT_PERMUTATIONS",
    "AGREEMENT_MIN",
    "AGREEMENT_MAX_DROP",
    "LABEL_JS_MAX",
    "LABEL_PSI_MAX",
    "LABEL_NOISE_ALPHA",
    "CONFIDENCE_MAX_DROP",
    "EMBEDDING_COSINE_MAX",
    "EMBEDDING_P_VALUE_MIN",
    "TEXT_RELATIVE_MAX",
    "TEXT_SHARE_MAX",
    "TEXT_NOISE_Z",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser


def _from(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    args = None if argv is None else _parser().parse_args(argv)
    return Settings.from_sources(args, env=env or {})


def test_defaults() -> None:
    s = _from()
    assert s == Settings()
    assert s.broker == "kafka://127.0.0.1:9092"
    assert s.input_topic == "stream-trf-input"
    assert s.output_topic == "stream-trf-enriched"
    assert s.dlq_topic == "stream-trf-dead-letters"
    assert s.model == DEFAULT_MODEL
    assert s.security_protocol == "PLAINTEXT"
    assert s.emit_tokens is False and s.emit_wordpieces is False
    assert s.heartbeat_interval * 3 <= s.session_timeout
    s.validate()


def test_no_flags_given_means_defaults_too() -> None:
    assert _from([]) == Settings()


def test_from_sources_reads_os_environ_when_no_env_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAM_TRF_INPUT_TOPIC", "from-os-environ")
    assert Settings.from_sources().input_topic == "from-os-environ"


def test_the_environment_fills_in_and_is_coerced() -> None:
    env = {
        "STREAM_TRF_BROKER": "kafka://k1:9092",
        "STREAM_TRF_INPUT_TOPIC": "in",
        "STREAM_TRF_PARTITIONS": "12",
        "STREAM_TRF_BATCH_WITHIN": "0.25",
        "STREAM_TRF_MAX_TEXT_CHARS": " 500 ",
        "STREAM_TRF_EMIT_TOKENS": "true",
        "STREAM_TRF_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_TRF_SASL_PASSWORD": "s3cret",
        "INPUT_TOPIC": "ignored: no prefix",
        "stream_trf_output_topic": "ignored: wrong case",
    }
    s = _from(env=env)
    assert s.broker == "kafka://k1:9092"
    assert s.input_topic == "in"
    assert s.partitions == 12 and isinstance(s.partitions, int)
    assert s.batch_within == 0.25 and isinstance(s.batch_within, float)
    assert s.max_text_chars == 500
    assert s.emit_tokens is True
    assert s.security_protocol == "SASL_SSL"
    assert s.sasl_password == "s3cret"
    assert s.output_topic == Settings().output_topic
    assert s.dlq_topic == Settings().dlq_topic


def test_flags_beat_the_environment() -> None:
    env = {
        "STREAM_TRF_INPUT_TOPIC": "env-in",
        "STREAM_TRF_PARTITIONS": "3",
        "STREAM_TRF_EMIT_TOKENS": "1",
        "STREAM_TRF_EMIT_WORDPIECES": "0",
        "STREAM_TRF_OUTPUT_TOPIC": "env-out",
    }
    s = _from(
        ["--input-topic", "flag-in", "--partitions", "8", "--no-emit-tokens", "--emit-wordpieces"],
        env,
    )
    assert s.input_topic == "flag-in"
    assert s.partitions == 8
    assert s.emit_tokens is False
    assert s.emit_wordpieces is True
    assert s.output_topic == "env-out"  # no flag: the environment


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", True),
        ("true", True),
        ("True", True),
        ("YES", True),
        ("on", True),
        (" true ", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("Off", False),
        ("", False),
    ],
)
def test_booleans_from_the_environment(raw: str, value: bool) -> None:
    assert _from(env={"STREAM_TRF_EMIT_WORDPIECES": raw}).emit_wordpieces is value


@pytest.mark.parametrize("raw", ["maybe", "2", "yess", "t r u e"])
def test_a_bad_boolean_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="STREAM_TRF_EMIT_TOKENS") as info:
        _from(env={"STREAM_TRF_EMIT_TOKENS": raw})
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(
    ("name", "raw"),
    [("partitions", "four"), ("partitions", "4.5"), ("web_port", ""), ("batch_within", "soon")],
)
def test_a_bad_number_raises_naming_the_setting(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        _from(env={ENV_PREFIX + name.upper(): raw})


def test_a_bad_number_flag_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--partitions", "four"])


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("security_protocol", "SSL", "TLS"),
        ("security_protocol", "SASL_PLAINTEXT", "ssl"),
        ("sasl_mechanism", "SCRAM-SHA-512", "GSSAPI"),
        ("log_level", "debug", "verbose"),
        ("precision", "int8", "int4"),
    ],
)
def test_choices_are_validated(name: str, good: str, bad: str) -> None:
    assert getattr(_from(env={ENV_PREFIX + name.upper(): good}), name) == good
    with pytest.raises(ValueError, match=name):
        _from(env={ENV_PREFIX + name.upper(): bad})
    with pytest.raises(ValueError, match=name):
        Settings(**{name: bad}).validate()
    with pytest.raises(SystemExit):
        _parser().parse_args(["--" + name.replace("_", "-"), bad])


def test_heartbeat_must_be_at_most_a_third_of_the_session() -> None:
    ok = _from(env={"STREAM_TRF_SESSION_TIMEOUT": "9", "STREAM_TRF_HEARTBEAT_INTERVAL": "3"})
    assert (ok.session_timeout, ok.heartbeat_interval) == (9.0, 3.0)
    with pytest.raises(ValueError, match="heartbeat_interval"):
        _from(env={"STREAM_TRF_SESSION_TIMEOUT": "9", "STREAM_TRF_HEARTBEAT_INTERVAL": "3.5"})
    with pytest.raises(ValueError, match="heartbeat_interval"):
        _from(["--heartbeat-interval", "4"])  # default session timeout 10
    with pytest.raises(ValueError, match="heartbeat_interval"):
        Settings().with_(session_timeout=5.0).validate()


@pytest.mark.parametrize("name", ["max_batch", "max_text_chars"])
def test_sizes_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        _from(env={ENV_PREFIX + name.upper(): "0"})
    assert getattr(_from(env={ENV_PREFIX + name.upper(): "1"}), name) == 1


def test_words_per_batch_is_positive_or_auto() -> None:
    assert Settings().words_per_batch == 0  # auto: chosen by the device (stream_trf/auto.py)
    assert _from(env={ENV_PREFIX + "WORDS_PER_BATCH": "1"}).words_per_batch == 1
    with pytest.raises(ValueError, match="words_per_batch"):
        _from(env={ENV_PREFIX + "WORDS_PER_BATCH": "-1"})


def test_broker_urls_split_on_semicolons_and_commas() -> None:
    s = Settings(broker=" kafka://a:9092; kafka://b:9093,kafka://c:9094 ;; b-host:9095, ")
    assert s.broker_urls() == ["kafka://a:9092", "kafka://b:9093", "kafka://c:9094", "b-host:9095"]
    assert s.bootstrap_servers() == ["a:9092", "b:9093", "c:9094", "b-host:9095"]


def test_the_default_broker() -> None:
    assert Settings().broker_urls() == ["kafka://127.0.0.1:9092"]
    assert Settings().bootstrap_servers() == ["127.0.0.1:9092"]


def test_public_masks_the_password_and_nothing_else() -> None:
    s = Settings(sasl_username="alice", sasl_password="hunter2")
    public = s.public()
    assert public["sasl_password"] == "***"
    assert "hunter2" not in repr(public)
    assert public["sasl_username"] == "alice"
    assert s.sasl_password == "hunter2"  # the settings themselves keep it
    assert set(public) == set(SPECS)
    assert {k: v for k, v in public.items() if k != "sasl_password"} == {
        name: getattr(s, name) for name in SPECS if name != "sasl_password"
    }


def test_public_leaves_an_empty_password_empty() -> None:
    assert Settings().public()["sasl_password"] == ""


def test_with_changes_one_field() -> None:
    s = Settings().with_(input_topic="other")
    assert s.input_topic == "other"
    assert s.with_(input_topic=Settings().input_topic) == Settings()


def _worker_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["worker", "--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "var",
    [
        "STREAM_TRF_BROKER",
        "STREAM_TRF_INPUT_TOPIC",
        "STREAM_TRF_OUTPUT_TOPIC",
        "STREAM_TRF_DLQ_TOPIC",
        "STREAM_TRF_MODEL",
        "STREAM_TRF_SECURITY_PROTOCOL",
        "STREAM_TRF_SASL_USERNAME",
    ],
)
def test_worker_help_names_the_environment_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert var in _worker_help(capsys)


def test_worker_help_covers_every_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    text = _worker_help(capsys)
    for name in SPECS:
        assert ENV_PREFIX + name.upper() in text, name
        assert "--" + name.replace("_", "-") in text, name


def test_worker_flags_reach_the_settings() -> None:
    args = build_parser().parse_args(
        ["worker", "--broker", "kafka://x:1", "--dlq-topic", "dead", "--emit-tokens"]
    )
    s = Settings.from_sources(args, env={"STREAM_TRF_DLQ_TOPIC": "env-dead"})
    assert (s.broker, s.dlq_topic, s.emit_tokens) == ("kafka://x:1", "dead", True)


@pytest.mark.parametrize(("name", "raw"), [("fetch_max_wait", "0"), ("fetch_max_wait", "-1")])
def test_fetch_max_wait_must_be_positive(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match="fetch_max_wait"):
        _from(env={ENV_PREFIX + name.upper(): raw})
    assert _from(env={ENV_PREFIX + name.upper(): "0.25"}).fetch_max_wait == 0.25


def test_release_every_is_auto_per_buffer_or_positive() -> None:
    assert Settings().release_every == 0
    assert Settings(release_every=-1).release_every == -1
    with pytest.raises(ValueError, match="release_every"):
        Settings(release_every=-2).validate()


def test_vocab_warmup_chars_is_zero_or_positive() -> None:
    assert Settings().vocab_warmup_chars == 1_000_000
    assert Settings(vocab_warmup_chars=0).vocab_warmup_chars == 0
    with pytest.raises(ValueError, match="vocab_warmup_chars"):
        Settings(vocab_warmup_chars=-1).validate()


# --- sections ------------------------------------------------------------------------------


def test_every_environment_variable_is_still_there() -> None:
    assert sorted(spec.env for spec in SPECS.values()) == sorted(
        ENV_PREFIX + n for n in ENVIRONMENT
    )
    assert all(spec.flag == "--" + spec.name.replace("_", "-") for spec in SPECS.values())


def test_a_setting_reads_by_section_and_by_its_own_name() -> None:
    s = Settings.from_sources(
        env={
            "STREAM_TRF_INPUT_TOPIC": "in",
            "STREAM_TRF_SASL_USERNAME": "alice",
            "STREAM_TRF_ALERT_MIN_DOCUMENTS": "7",
            "STREAM_TRF_DRIFT_SAMPLE_SIZE": "300",
            "STREAM_TRF_DRIFT_PERMUTATIONS": "99",
            "STREAM_TRF_WORDS_PER_BATCH": "640",
        }
    )
    assert s.topics.input_topic == s.input_topic == "in"
    assert s.kafka.sasl_username == s.sasl_username == "alice"
    assert s.transformer.words_per_batch == s.words_per_batch == 640
    # where the monitor names a field in its own terms, the setting keeps its name
    assert s.monitor.thresholds.min_documents == s.alert_min_documents == 7
    assert s.monitor.max_per_side == s.drift_sample_size == 300
    assert s.monitor.reference_vectors == 300  # a stream-built reference keeps as many
    assert s.monitor.permutations == s.drift_permutations == 99
    with pytest.raises(AttributeError, match="no_such_setting"):
        _ = s.no_such_setting


def test_the_monitor_section_is_the_monitors_config() -> None:
    s = Settings(label_js_max=0.3, window_seconds=5.0)
    assert type(s.monitor) is MonitorConfig and type(s.monitor.thresholds) is Thresholds
    assert s.monitor == MonitorConfig(window_seconds=5.0, thresholds=Thresholds(label_js_max=0.3))
    assert Settings().monitor == MonitorConfig()  # the same defaults: they are declared once


def test_sections_and_single_settings_combine() -> None:
    s = Settings(kafka=KafkaSettings(broker="kafka://k:1"), sasl_username="bob")
    assert (s.broker, s.sasl_username) == ("kafka://k:1", "bob")
    t = s.with_(topics=TopicSettings(input_topic="a"), output_topic="b")
    assert (t.input_topic, t.output_topic, t.broker) == ("a", "b", "kafka://k:1")
    assert s.with_(input_topic="x").kafka is s.kafka  # other sections untouched
    with pytest.raises(TypeError, match="input_topik"):
        Settings(input_topik="x")
    with pytest.raises(TypeError, match="bogus"):
        Settings().with_(bogus=1)


def test_settings_travel_to_a_spawned_process_whole() -> None:
    s = Settings(input_topic="in", label_js_max=0.3, sasl_password="p")
    back = pickle.loads(pickle.dumps(s))
    assert back == s and back.label_js_max == 0.3 and hash(back) == hash(s)


def test_every_setting_has_help_and_a_typed_default() -> None:
    for spec in SPECS.values():
        assert spec.help and spec.section, spec.name
        assert spec.type in (bool, int, float, str), spec.name
    sections = {spec.section for spec in SPECS.values()}
    assert {"Kafka connection", "Monitoring", "Alert thresholds", "Memory"} <= sections


def test_the_auto_figures_in_the_help_are_the_ones_used() -> None:
    text = SPECS["words_per_batch"].help
    assert f"{auto.words_per_batch('cpu', 'worker'):,} on a CPU" in text
    assert f"{auto.words_per_batch('cuda', 'worker'):,} on a GPU" in text
    assert f"{auto.release_every('cpu'):,} on a CPU" in SPECS["release_every"].help
    assert f"one per {auto.CORES_PER_PROCESS} cores" in SPECS["processes"].help


def test_worker_help_groups_the_flags_by_section(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    text = _worker_help(capsys)
    groups = text[text.index("Kafka connection:") :]  # after the usage line
    assert groups.index("--broker BROKER") < groups.index("Transformer:")
    assert groups.index("Transformer:") < groups.index("--words-per-batch WORDS_PER_BATCH")
    assert groups.index("Alert thresholds:") < groups.index("--label-js-max LABEL_JS_MAX")
    assert "95% upper bound" in text  # a literal % survives argparse


def test_docs_configuration_is_generated_from_the_settings() -> None:
    """docs/configuration.md is what ``python -m stream_trf.settings --markdown`` prints; after
    changing a setting, regenerate it with that command."""
    text = markdown()
    for spec in SPECS.values():
        assert f"| `{spec.flag}` | `{spec.env}` |" in text, spec.name
    printed = subprocess.run(
        [sys.executable, "-m", "stream_trf.settings", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == text
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == text, (
        "docs/configuration.md is out of date: python -m stream_trf.settings --markdown "
        "> docs/configuration.md"
    )
