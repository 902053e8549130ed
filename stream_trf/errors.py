"""Typed errors. Each message says what went wrong *and* what to do about it.

Everything the library raises on misuse derives from :class:`StreamTrfError`, so callers
(the worker in particular) can tell a caller's mistake from a bug.
"""

from __future__ import annotations


class StreamTrfError(Exception):
    """Base class of every error stream_trf raises on purpose."""


class ModelNotFound(StreamTrfError):
    """A model name or path that resolves to nothing on this machine (nothing is downloaded)."""


class MissingTokenizer(StreamTrfError):
    """A model directory without tokenizer files."""


class UnsupportedTokenizer(StreamTrfError):
    """A tokenizer that cannot be built here (a slow tokenizer whose own dependency is missing)."""


class UnsupportedModel(StreamTrfError):
    """A model family transformers does not know, or a model that is not an encoder."""


class MissingSentenceBoundaries(StreamTrfError):
    """The wordpiecer got a doc whose sentence boundaries nobody set."""


class MissingWordpieces(StreamTrfError):
    """The transformer got a doc the wordpiecer has not seen."""


class RowsNotKept(StreamTrfError):
    """A doc whose transformer ran with ``outputs="pooled"`` was asked for per-wordpiece or
    per-token rows, which that mode does not keep."""
