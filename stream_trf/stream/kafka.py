"""Talking to Kafka: client arguments, credentials, the codecs, waiting for the broker.

A leaf: every Kafka client of the project (the worker's faust app, ``produce``, ``consume``,
the benchmarks) takes its connection settings from here, and nothing here imports the rest of
the stream package.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from ..errors import StreamTrfError, describe
from ..settings import Settings
from .backoff import Backoff

log = logging.getLogger("stream_trf.worker")

# Every codec a Kafka record batch can carry. aiokafka decodes gzip itself and the rest with
# cramjam (a dependency), so the worker reads whatever a Java or librdkafka producer writes.
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


class BrokerUnreachable(StreamTrfError, ConnectionError):
    """No broker answered: says where it looked and what to do."""


def broker_credentials(settings: Settings) -> Any:
    """faust credentials for TLS and SASL, from the settings (None for PLAINTEXT)."""
    import faust

    kafka = settings.kafka
    protocol = kafka.security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=kafka.ssl_cafile or None)
        if kafka.ssl_certfile:
            context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile or None)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if kafka.sasl_mechanism == "PLAIN":
            return faust.SASLCredentials(
                username=kafka.sasl_username,
                password=kafka.sasl_password,
                ssl_context=context,
            )
        from faust.auth import SASLCredentials

        return SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Security settings in aiokafka's terms (for the plain clients: produce, consume, probe)."""
    kafka = settings.kafka
    kwargs: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap_servers()}
    if kafka.security_protocol != "PLAINTEXT":
        kwargs["security_protocol"] = kafka.security_protocol
        creds = broker_credentials(settings)
        context = getattr(creds, "context", None) or getattr(creds, "ssl_context", None)
        if context is not None:
            kwargs["ssl_context"] = context
        if kafka.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = kafka.sasl_mechanism
            kwargs["sasl_plain_username"] = kafka.sasl_username
            kwargs["sasl_plain_password"] = kafka.sasl_password
    return kwargs


def unreachable(settings: Settings, err: BaseException, waited: float | None = None) -> str:
    """What to tell a person when no broker answers."""
    after = f" after {waited:.0f}s" if waited is not None else ""
    return (
        f"cannot reach the broker at {settings.kafka.broker}{after} ({describe(err)}). "
        "Start one with `stream-trf broker`, or point at yours with --broker / "
        "STREAM_TRF_BROKER (and --security-protocol for TLS/SASL)."
    )


async def wait_for_broker(settings: Settings, *, max_wait: float | None = None) -> float:
    """Block until the broker answers a metadata request; retry with backoff, saying why.

    Raises :class:`BrokerUnreachable` once ``max_wait`` seconds would be exceeded."""
    from aiokafka import AIOKafkaClient

    t0 = time.monotonic()
    backoff = Backoff(first=0.5, cap=15.0)
    while True:
        client = AIOKafkaClient(**kafka_client_kwargs(settings), request_timeout_ms=5000)
        try:
            await client.bootstrap()
            return time.monotonic() - t0
        except Exception as err:
            waited = time.monotonic() - t0
            delay = backoff.delay()
            if max_wait is not None and waited + delay > max_wait:
                raise BrokerUnreachable(unreachable(settings, err, waited)) from err
            log.warning(
                "%s Retrying in %.1fs (attempt %d).",
                unreachable(settings, err),
                delay,
                backoff.attempts,
            )
            await asyncio.sleep(delay)
        finally:
            await client.close()
