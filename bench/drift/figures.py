"""The monitor's alert figures, grouped by what they watch: the unit every summary counts in."""

from __future__ import annotations

# Alert figures grouped by what they watch (names as in window records and /metrics).
GROUPS: dict[str, tuple[str, ...]] = {
    "embedding": ("embedding_cosine", "embedding_p_value"),
    "label": ("label_js", "label_psi"),
    "agreement": ("agreement",),
    "confidence": ("confidence",),
    "text": ("mean_words", "mean_sentences", "windowed_share", "unknown_share"),
}


DRIFT_GROUPS = ("embedding", "label")
