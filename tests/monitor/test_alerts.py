"""Alerts: K consecutive windows beyond the threshold raise one; back in range clears it."""

from __future__ import annotations

import pytest

from stream_trf.monitor.alerts import Alerts, Check, above, below, outside

M = ("m", "1")


def test_an_alert_needs_k_consecutive_windows_and_clears_when_back_in_range() -> None:
    alerts = Alerts(windows=2)
    assert alerts.update(M, [above("label_js", 0.5, 0.25)], 1.0) == []
    assert alerts.update(M, [above("label_js", 0.1, 0.25)], 2.0) == []  # the streak is broken
    assert alerts.update(M, [above("label_js", 0.4, 0.25)], 3.0) == []
    active = alerts.update(M, [above("label_js", 0.6, 0.25)], 4.0)
    assert active == [{"figure": "label_js", "value": 0.6, "threshold": 0.25, "windows": 2}]
    assert alerts.update(M, [above("label_js", 0.7, 0.25)], 5.0)[0]["windows"] == 3
    everyone = alerts.active()
    assert everyone[0]["model"] == {"name": "m", "version": "1"}
    assert everyone[0]["since"] == 4.0
    assert alerts.is_active(M, "label_js")
    assert alerts.update(M, [above("label_js", 0.2, 0.25)], 6.0) == []
    assert not alerts.is_active(M, "label_js")


def test_a_window_without_evidence_neither_advances_nor_clears() -> None:
    alerts = Alerts(windows=2)
    alerts.update(M, [below("embedding_p_value", 0.001, 0.01)], 1.0)
    alerts.update(M, [below("embedding_p_value", None, 0.01)], 2.0)  # no reference
    alerts.update(M, [below("embedding_p_value", 0.5, 0.01, evaluate=False)], 3.0)  # too small
    assert alerts.update(M, [below("embedding_p_value", 0.002, 0.01)], 4.0) != []
    alerts.update(M, [Check("embedding_p_value", None, None, None)], 5.0)
    assert alerts.is_active(M, "embedding_p_value")


def test_alerts_are_kept_per_model_and_figure() -> None:
    alerts = Alerts(windows=1)
    alerts.update(M, [outside("mean_words", -0.8, 0.5), outside("unknown_share", 0.01, 0.05)], 1)
    alerts.update(("other", "2"), [outside("mean_words", 0.1, 0.5)], 1)
    assert [a["figure"] for a in alerts.active(M)] == ["mean_words"]
    assert alerts.active(("other", "2")) == []


def test_directions() -> None:
    assert above("x", 2, 1).beyond is True and above("x", 1, 1).beyond is False
    assert below("x", 0, 1).beyond is True and below("x", 1, 1).beyond is False
    assert outside("x", -2, 1).beyond is True and outside("x", 0.5, 1).beyond is False
    assert above("x", None, 1).beyond is None


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Alerts(windows=0)
