"""The worker's processor: its sub-batch size where the setting is auto, and where it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_trf.settings import Settings
from stream_trf.stream.worker import WORKER_AUTO_WORDS_PER_BATCH, build_processor


@pytest.mark.parametrize(("setting", "expected"), [(0, None), (640, 640)])
def test_auto_words_per_batch_is_the_workers_own_and_a_setting_wins(
    tiny_models: dict[str, Path], setting: int, expected: int | None
) -> None:
    settings = Settings(model=str(tiny_models["bert"]), words_per_batch=setting)
    processor = build_processor(settings)
    tok2vec = processor.nlp.get_pipe("trf_tok2vec")
    device = tok2vec.runner.device.type
    want = expected if expected is not None else WORKER_AUTO_WORDS_PER_BATCH[device]
    assert tok2vec.words_per_batch == want
