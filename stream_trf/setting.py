"""How a setting is declared: one dataclass field with its default, its help and maybe choices.

A setting's name makes its flag (``--input-topic``) and its environment variable
(``STREAM_TRF_INPUT_TOPIC``); by default the name is the field's own. A *section* is a frozen
dataclass of such fields (its docstring's first line is its title) and may hold other sections.
The module that uses a section declares it (the monitor declares its own); ``stream_trf.settings``
puts the sections together into the worker's settings. A leaf: it imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

ENV_PREFIX = "STREAM_TRF_"
_KEY = "stream_trf.setting"


@dataclass(frozen=True)
class _Declared:
    help: str
    name: str | None
    choices: tuple[str, ...] | None


def setting(
    default: Any,
    help: str,
    *,
    name: str | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field that is a setting. ``name``: the setting's name where it differs from
    the field's (so that flags and variables keep their names when a section names a field in
    its own terms)."""
    return field(default=default, metadata={_KEY: _Declared(help, name, choices)})


@dataclass(frozen=True)
class Spec:
    """One setting as users see it."""

    name: str  # input_topic
    path: tuple[str, ...]  # attributes from the root section down: ("topics", "input_topic")
    section: str  # the title of the section that declares it
    help: str
    default: Any
    choices: tuple[str, ...] | None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def type(self) -> type:
        return type(self.default)


def title(section: type) -> str:
    """A section's title: the first line of its docstring, without the full stop."""
    doc = (section.__doc__ or section.__name__).strip()
    return doc.splitlines()[0].rstrip(".")


def intro(section: type) -> str:
    """A section's docstring after its title (may be empty), as one paragraph per blank line."""
    lines = (section.__doc__ or "").strip().splitlines()[1:]
    return "\n".join(line.strip() for line in lines).strip()


def subsections(section: type) -> Iterator[tuple[str, type]]:
    """(field name, section class) of the sections nested in ``section``."""
    for f in fields(section):
        factory = f.default_factory
        if _KEY not in f.metadata and factory is not MISSING and is_dataclass(factory):
            yield f.name, factory


def specs(section: type, path: tuple[str, ...] = ()) -> Iterator[Spec]:
    """Every setting of ``section`` and of the sections it holds, in declaration order."""
    nested = dict(subsections(section))
    for f in fields(section):
        declared = f.metadata.get(_KEY)
        if declared is not None:
            yield Spec(
                name=declared.name or f.name,
                path=(*path, f.name),
                section=title(section),
                help=declared.help,
                default=f.default,
                choices=declared.choices,
            )
        elif f.name in nested:
            yield from specs(nested[f.name], (*path, f.name))


def check_choices(section: Any) -> None:
    """Raise ValueError naming the setting when a value is not one of its choices."""
    for spec in specs(type(section)):
        value = section
        for attr in spec.path:
            value = getattr(value, attr)
        if spec.choices and value not in spec.choices:
            raise ValueError(f"{spec.name}={value!r}: choose one of {spec.choices}")


def coerce(raw: Any, spec: Spec) -> Any:
    """A flag's or an environment variable's value as the setting's type."""
    if isinstance(spec.default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{spec.env}={raw!r} is not a boolean")
    try:
        return spec.type(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{spec.name}={raw!r}: expected {spec.type.__name__}") from None
