"""How vectors travel in records: JSON numbers, or base64 of little-endian floats.

JSON numbers are what every consumer reads without help, and what the records have always
carried; but a float written as text takes ~10 bytes (orjson's shortest round-trip form), so a
document's token vectors (one row of the model's width per token) soon outgrow what a broker
accepts (1 MB by default). base64 of float32 keeps every bit in 5.33 bytes a value; float16
(2.67 bytes a value, ~3 significant digits) is plenty for similarity and drift.

An encoded array is a JSON object ``{"dtype": "<f4" | "<f2", "shape": [...], "base64": "..."}``
(``enriched.v1.json``, ``$defs/encoded_array``); :func:`decode` reads either form back.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt

ENCODINGS = ("json", "base64-f32", "base64-f16")
_DTYPES = {"base64-f32": "<f4", "base64-f16": "<f2"}


def encode(array: Any, encoding: str = "json") -> Any:
    """``array`` as a record carries it: float32 numbers (orjson writes them as a JSON list),
    or an encoded object."""
    values = np.asarray(array, dtype=np.float32)
    if encoding == "json":
        return values
    dtype = _DTYPES.get(encoding)
    if dtype is None:
        raise ValueError(f"unknown vector encoding {encoding!r}: choose one of {ENCODINGS}")
    data = np.ascontiguousarray(values, dtype=dtype).tobytes()
    return {
        "dtype": dtype,
        "shape": list(values.shape),
        "base64": base64.b64encode(data).decode("ascii"),
    }


def decode(value: Any) -> npt.NDArray[np.float32]:
    """A vector or matrix from a record, in either form, as float32."""
    if isinstance(value, dict):
        raw = base64.b64decode(value["base64"])
        return (
            np.frombuffer(raw, dtype=np.dtype(value["dtype"]))
            .reshape(value["shape"])
            .astype(np.float32)
        )
    return np.asarray(value, dtype=np.float32)
