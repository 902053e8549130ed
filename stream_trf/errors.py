"""Typed errors. Each message says what went wrong *and* what to do about it.

Everything the library raises on misuse derives from :class:`StreamTrfError`, so callers
(the worker in particular) can tell a caller's mistake from a bug.
"""

from __future__ import annotations


def describe(err: BaseException) -> str:
    """``"TypeName: message"`` once (some libraries already start their message with it)."""
    name, text = type(err).__name__, str(err)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


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


class AlignmentNotKept(StreamTrfError):
    """A doc whose wordpiecer ran with ``alignment=False`` was asked for its token ↔
    wordpiece alignment (``doc.tensor``, token vectors, ``doc._.trf_alignment``)."""


class ExtensionConflict(StreamTrfError):
    """Another library registered one of stream_trf's ``doc._.trf_*`` attributes with a
    different meaning."""


class UsageError(StreamTrfError):
    """A command-line argument that cannot work as written."""


class MissingExtra(StreamTrfError):
    """A command or function needs an optional dependency that is not installed; the message
    names the extra that installs it (``pip install 'stream_trf[EXTRA]'``)."""
