"""What 0 ("auto") means: the sub-batch sizes by device, use and the model's width."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream_trf import auto
from stream_trf.model.source import model_width


def test_the_default_models_width_and_wider_keep_the_measured_figures() -> None:
    for width in (None, 384, 768, 1024):
        assert auto.words_per_batch("cpu", "library", width) == 1000
        assert auto.words_per_batch("cpu", "worker", width) == 500
        assert auto.words_per_batch("cuda", "library", width) == 32000
        assert auto.words_per_batch("cuda", "worker", width) == 8000
        assert auto.release_every("cpu", width) == 8 * 500


@pytest.mark.parametrize(
    ("width", "library", "worker"),
    [(192, 2000, 1000), (128, 3000, 1500), (32, 12000, 6000), (8, 32000, 8000), (1, 32000, 8000)],
)
def test_a_narrower_model_gets_the_cpu_figure_scaled_by_its_width_up_to_the_gpus(
    width: int, library: int, worker: int
) -> None:
    assert auto.words_per_batch("cpu", "library", width) == library
    assert auto.words_per_batch("cpu", "worker", width) == worker
    assert auto.release_every("cpu", width) == 8 * worker
    assert auto.words_per_batch("mps", "worker", width) == worker  # other devices: as a CPU
    # a GPU's figure is about launches, not memory: the same for every width
    assert auto.words_per_batch("cuda", "worker", width) == 8000
    # training keeps the library's CPU figure on any device and for any width
    assert auto.words_per_batch("cuda", "training", width) == 1000


@pytest.mark.parametrize(
    ("config", "width"),
    [
        ({"model_type": "bert", "hidden_size": 384}, 384),
        ({"model_type": "gpt2", "n_embd": 64}, 64),
        ({"model_type": "distilbert", "dim": 768}, 768),
        ({"model_type": "t5", "d_model": 512}, 512),
        ({"model_type": "odd"}, None),
    ],
)
def test_model_width_reads_each_familys_name_for_it(
    tmp_path: Path, config: dict[str, object], width: int | None
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert model_width(tmp_path) == width


def test_model_width_of_a_directory_without_a_readable_config_is_none(tmp_path: Path) -> None:
    assert model_width(tmp_path) is None
    (tmp_path / "config.json").write_text("{not json")
    assert model_width(tmp_path) is None


@pytest.mark.parametrize("width", [None, 384, 768, 32])
def test_the_library_and_training_keep_the_measured_batch_cost(width: int | None) -> None:
    for device in ("cpu", "cuda"):
        assert auto.batch_cost(device, "library", width) == auto.BATCH_COST == 32.0
        assert auto.batch_cost(device, "training", width) == 32.0


@pytest.mark.parametrize(
    ("width", "cost"), [(None, 32.0), (384, 32.0), (768, 32.0), (192, 64.0), (32, 384.0)]
)
def test_the_workers_batch_cost_scales_with_a_narrow_models_width_off_a_gpu(
    width: int | None, cost: float
) -> None:
    assert auto.batch_cost("cpu", "worker", width) == cost
    assert auto.batch_cost("mps", "worker", width) == cost  # other devices: as a CPU
    assert auto.batch_cost("cuda", "worker", width) == 32.0
