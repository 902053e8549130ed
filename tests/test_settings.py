"""Settings: flags beat ``STREAM_TRF_*`` environment variables, which beat the defaults."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from stream_trf.cli import build_parser
from stream_trf.model.source import DEFAULT_MODEL
from stream_trf.settings import ENV_PREFIX, Settings, add_arguments


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
    assert Settings().words_per_batch == 0  # auto: chosen by the device (pipeline/tok2vec.py)
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
    assert set(public) == {f.name for f in fields(Settings)}
    assert {k: v for k, v in public.items() if k != "sasl_password"} == {
        f.name: getattr(s, f.name) for f in fields(Settings) if f.name != "sasl_password"
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
    for f in fields(Settings):
        assert ENV_PREFIX + f.name.upper() in text, f.name
        assert "--" + f.name.replace("_", "-") in text, f.name


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
