"""The live dashboard: one self-contained, read-only HTML page served at ``/dashboard``.

``page()`` returns the whole document, its style and script inlined from ``static/``
(``dashboard.html``, ``dashboard.css``, ``dashboard.js``, package data): no CDN, no web fonts, no
images, so it works on machines without internet. The page polls ``windows.json`` beside itself
(``/dashboard/windows.json``), which returns::

    {"windows": [window records, oldest first], "alerts": [current alerts], "lag": lag or null}

where a window record is one ``stream_trf/metrics/v1`` record (the metrics topic's schema) and a
current alert is ``{"model": {"name", "version"}, "figure", "value", "threshold", "windows",
"since"}``; ``lag`` is the worker's latest reading of the input topic's consumer lag
(``Monitor.lag()``: topic, group, at, total, partitions with their end, committed and position
offsets, the error of a failed reading, and the recent totals as ``history``). It draws the
lag (total, a sparkline, one row per partition), then, per model, a row of "now" tiles (red
while an alert on their figure is active) and small-multiple time series as inline SVG built by
its own script; windows in alert are shaded red. Null figures are gaps, never zeros.

Safety: nothing from a record is ever parsed as HTML. The script builds every node with
``createElement`` / ``createElementNS``, ``textContent`` and ``setAttribute`` (constant attribute
names only), and the page carries a Content-Security-Policy that allows only its own inline
script and style (by hash) and requests to its own origin, so even an injected element could
neither run script nor load anything. ``CONTENT_SECURITY_POLICY`` is the same policy, for the
server to send as a header too.

Hooks for tests and health checks: ``document.body.dataset.ready`` becomes ``"1"`` after the first
successful render; ``#empty`` says "No windows yet" until a window arrives; ``#alerts`` lists the
current alerts; ``#lag-panel`` (hidden without a reading) holds ``#lag-total`` and one
``tr.partition[data-partition]`` per partition (``.here``: this worker reads it); each model is
a ``section.model``; tiles are ``.tile[data-figure]`` (``.tile.alert`` when in alert), showing the
latest windows that had documents, with ``.tiles-age`` above them saying which and how old
(``.idle`` when later windows had none); charts are ``.chart[data-figure]`` holding one
``circle.pt[data-series]`` per non-null value.

Which tile or chart an alert belongs to is read from the words of its ``figure`` name (for
example ``embedding.cosine_distance``, ``embedding.p_value``, ``labels.js_distance``,
``agreement.ratio``, ``latency.p99_s``); an alert whose figure matches none is still listed.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

__all__ = ["CONTENT_SECURITY_POLICY", "page"]

_STATIC = resources.files("stream_trf.monitor").joinpath("static")


def _element_text(name: str) -> str:
    """A file of static/ as the page's ``<style>`` or ``<script>`` element holds it."""
    return "\n" + _STATIC.joinpath(name).read_text(encoding="utf-8")


_CSS = _element_text("dashboard.css")
_JS = _element_text("dashboard.js")
_PAGE = _STATIC.joinpath("dashboard.html").read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only the page's own inline script and style run, it talks only to its own origin, and it loads
# nothing: no images, fonts, frames or plugins. (frame-ancestors only works as a header.)
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_sha256(_JS)}; style-src {_sha256(_CSS)}; "
    "connect-src 'self'; img-src 'none'; font-src 'none'; base-uri 'none'; form-action 'none'"
)


def page(poll_seconds: float = 5.0) -> str:
    """The dashboard as one self-contained HTML document; it refreshes every ``poll_seconds``."""
    if not poll_seconds > 0:
        raise ValueError(f"poll_seconds must be positive, got {poll_seconds!r}")
    return _PAGE.format(
        csp=CONTENT_SECURITY_POLICY, poll=f"{float(poll_seconds):g}", css=_CSS, js=_JS
    )
