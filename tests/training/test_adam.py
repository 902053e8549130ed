"""``stream_trf.Adam.v1`` is Thinc's Adam computed in torch: the same weights, moments and
averages as ``thinc.api.Adam``, step for step."""

from __future__ import annotations

import numpy as np
import pytest
from thinc.api import registry

import stream_trf.training.optimizer  # noqa: F401  (registers stream_trf.Adam.v1)


@pytest.mark.parametrize(
    "settings",
    [
        {"L2": 0.01, "grad_clip": 1.0, "use_averages": True},
        {"L2": 0.01, "L2_is_weight_decay": False, "grad_clip": 0.5, "use_averages": False},
        {"L2": 0.0, "grad_clip": 0.0, "use_averages": False, "beta1": 0.8, "eps": 1e-6},
    ],
)
def test_same_steps_as_thincs_adam(settings: dict) -> None:
    schedule = {
        "@schedules": "warmup_linear.v1",
        "initial_rate": 0.01,
        "warmup_steps": 3,
        "total_steps": 30,
    }
    ours = registry.resolve(
        {"o": {"@optimizers": "stream_trf.Adam.v1", "learn_rate": schedule, **settings}}
    )["o"]
    thinc = registry.resolve({"o": {"@optimizers": "Adam.v1", "learn_rate": schedule, **settings}})[
        "o"
    ]
    assert not isinstance(thinc, type(ours))
    rng = np.random.default_rng(0)
    w_ours = {
        name: rng.normal(size=shape).astype(np.float32)
        for name, shape in (("W", (20, 7)), ("b", (7,)))
    }
    w_thinc = {k: v.copy() for k, v in w_ours.items()}
    for _ in range(25):
        for name in w_ours:
            grad = (rng.normal(size=w_ours[name].shape) * 3).astype(np.float32)
            new_ours, g_ours = ours((1, name), w_ours[name], grad.copy())
            new_thinc, _ = thinc((1, name), w_thinc[name], grad.copy())
            assert new_ours is w_ours[name]  # updated in place, as the components expect
            assert not g_ours.any()  # the gradient is consumed
            w_thinc[name] = new_thinc
        ours.step_schedules()
        thinc.step_schedules()
    for name in w_ours:
        np.testing.assert_allclose(w_ours[name], w_thinc[name], atol=1e-5)
        if settings["use_averages"]:
            np.testing.assert_allclose(
                ours.averages[(1, name)], thinc.averages[(1, name)], atol=1e-5
            )
