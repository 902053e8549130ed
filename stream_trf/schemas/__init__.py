"""JSON Schemas of the records on the stream, versioned (``<name>.v<N>.json``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

NAMES = ("input", "enriched", "dead-letter", "metrics")


def load(name: str, version: int = 1) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(f"{name}.v{version}.json").read_text("utf-8")
    return dict(json.loads(text))
