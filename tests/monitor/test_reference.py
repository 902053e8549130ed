"""References: built from enriched records, saved and loaded without loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from monitor_helpers import LABELS, RecordStream

from stream_trf.cli import main
from stream_trf.monitor.reference import REFERENCE_FORMAT, Reference


def _records(n: int = 60) -> list[dict]:
    stream = RecordStream()
    return [stream.record(agrees=i % 3 != 0, unknown=i % 2) for i in range(n)]


def test_a_reference_summarises_the_records() -> None:
    recs = _records(60)
    ref = Reference.from_records(recs, source="test", sample_size=25)
    assert ref.documents == 60
    assert ref.model == {"name": "m", "version": "1"}
    assert sum(ref.label_counts.values()) == 60 and set(ref.label_counts) <= set(LABELS)
    assert ref.mean_confidence == pytest.approx(np.mean([r["score"] for r in recs]))
    assert (ref.compared, ref.agree) == (60, 40)
    vectors = np.array([r["doc_vector"] for r in recs])
    np.testing.assert_allclose(ref.mean_vector, vectors.mean(0), rtol=1e-6)
    assert ref.vector_sample is not None and ref.vector_sample.shape == (25, 16)
    # the sample is made of real rows
    assert all(np.any(np.all(np.isclose(vectors, row), axis=1)) for row in ref.vector_sample)
    assert ref.text["mean_words"] == pytest.approx(np.mean([r["n_words"] for r in recs]))
    wordpieces = sum(r["n_wordpieces"] for r in recs)
    assert ref.text["unknown_share"] == pytest.approx(30 / wordpieces)
    assert ref.text["windowed_share"] == 0


def test_limit_duplicates_and_model_filter() -> None:
    recs = _records(30)
    other = RecordStream(name="other", seed=5).records(10)
    mixed = other[:3] + recs[:5] + [dict(recs[0])] + other[3:] + recs[5:]
    ref = Reference.from_records(mixed, source="test", limit=20, model="m")
    assert ref.documents == 20  # the duplicate of recs[0] was skipped
    assert ref.model == {"name": "m", "version": "1"}
    first = Reference.from_records(mixed, source="test")
    assert first.model == {"name": "other", "version": "1"} and first.documents == 10
    with pytest.raises(ValueError, match="no enriched records of model 'x'"):
        Reference.from_records(mixed, source="test", model="x")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    ref = Reference.from_records(_records(40), source="stream:first-40", sample_size=30)
    path = ref.save(tmp_path / "sub" / "ref.json")
    data = json.loads(path.read_text())
    assert data["format"] == REFERENCE_FORMAT
    back = Reference.load(path)
    assert back.documents == ref.documents and back.source == ref.source
    assert back.model == ref.model and back.label_counts == ref.label_counts
    assert back.mean_confidence == ref.mean_confidence
    assert (back.compared, back.agree) == (ref.compared, ref.agree)
    np.testing.assert_array_equal(back.mean_vector, ref.mean_vector)
    np.testing.assert_array_equal(back.vector_sample, ref.vector_sample)
    assert back.vector_sample.dtype == np.float32
    assert back.text == ref.text
    assert back.label_distribution == pytest.approx(ref.label_distribution)
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left


def test_a_reference_without_vectors_or_labels_round_trips(tmp_path: Path) -> None:
    recs = _records(5)
    for r in recs:
        del r["label"], r["score"], r["cats"]
        r["doc_vector"] = None
    ref = Reference.from_records(recs, source="bare")
    assert ref.mean_vector is None and ref.vector_sample is None and ref.label_counts == {}
    back = Reference.load(ref.save(tmp_path / "bare.json"))
    assert back.mean_vector is None and back.vector_sample is None and back.documents == 5


def test_loading_something_else_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "something/else"}')
    with pytest.raises(ValueError, match="stream-trf reference"):
        Reference.load(path)


def test_the_reference_command_reads_a_file_of_enriched_records(tmp_path, capsys) -> None:
    enriched = tmp_path / "enriched.jsonl"
    recs = _records(50)
    enriched.write_bytes(b"\n".join(orjson.dumps(r) for r in recs) + b"\n\n")
    out = tmp_path / "ref.json"
    rc = main(["reference", "--from-file", str(enriched), "--output", str(out), "--limit", "30"])
    assert rc == 0
    assert "30 documents" in capsys.readouterr().err
    ref = Reference.load(out)
    assert ref.documents == 30 and ref.source == "file:enriched.jsonl"
    want = Reference.from_records(recs, source="x", limit=30)
    np.testing.assert_allclose(ref.mean_vector, want.mean_vector)
    # asking for more than there is: all of them, and a warning
    assert (
        main(["reference", "--from-file", str(enriched), "--output", str(out), "--limit", "80"])
        == 0
    )
    assert "only 50 of the 80" in capsys.readouterr().err
    # a file with no enriched records is a clear error
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"error": {"type": "invalid_json"}}\n')
    assert main(["reference", "--from-file", str(empty), "--output", str(out)]) == 2
    assert "no enriched records" in capsys.readouterr().err


def test_the_reference_command_explains_itself(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["reference", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--from-file", "--from-topic", "--output", "--limit", "--broker"):
        assert flag in text
    with pytest.raises(SystemExit):
        main(["reference", "--output", "x.json"])  # a source is required


def test_text_standard_errors_match_a_direct_computation_and_the_bootstrap() -> None:
    from stream_trf.monitor.reference import TextSums

    rng = np.random.default_rng(3)
    n = 400
    wordpieces = rng.lognormal(4, 1, n).astype(int) + 5  # heavy-tailed, like real text
    windowed = np.where(rng.random(n) < 0.05, wordpieces // 2, 0)
    unknown = rng.binomial(wordpieces, 0.01)
    words = wordpieces // 2 + 1
    sums = TextSums()
    for i in range(n):
        sums.add(
            {
                "n_words": int(words[i]),
                "sentences": [[0, 1]] * int(1 + words[i] // 20),
                "n_wordpieces": int(wordpieces[i]),
                "windowed_wordpieces": int(windowed[i]),
                "n_unknown_wordpieces": int(unknown[i]),
            }
        )
    se = sums.standard_errors()
    assert se["mean_words"] == pytest.approx(words.std(ddof=1) / np.sqrt(n), rel=1e-9)
    for name, y in (("windowed_share", windowed), ("unknown_share", unknown)):
        share = y.sum() / wordpieces.sum()
        direct = np.sqrt(np.sum((y - share * wordpieces) ** 2) / (n * (n - 1))) / wordpieces.mean()
        assert se[name] == pytest.approx(direct, rel=1e-6)
        # and it is what resampling the documents shows
        idx = rng.integers(0, n, size=(2000, n))
        boot = y[idx].sum(1) / wordpieces[idx].sum(1)
        assert se[name] == pytest.approx(boot.std(), rel=0.15)
    assert TextSums().standard_errors()["mean_words"] is None


def test_text_standard_errors_survive_a_save_and_load(tmp_path: Path) -> None:
    ref = Reference.from_records(_records(40), source="test")
    assert ref.text_se["mean_words"] is not None and ref.text_se["mean_words"] > 0
    loaded = Reference.load(ref.save(tmp_path / "ref.json"))
    assert loaded.text_se == ref.text_se
    # a file written before standard errors existed still loads
    data = json.loads((tmp_path / "ref.json").read_text())
    del data["text_standard_errors"]
    assert Reference.from_json(data).text_se == {}


def test_vector_reservoir_is_a_uniform_sample_with_an_exact_mean() -> None:
    """Every vector of a stream has the same chance ``size / n`` to be in the sample (a
    chi-square test over many seeds), the mean is over all of them, and one seed gives one
    sample."""
    import numpy as np
    from scipy.stats import chisquare

    from stream_trf.monitor.reference import VectorReservoir

    n, size, seeds = 40, 8, 2000
    counts = np.zeros(n)
    stream = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    for seed in range(seeds):
        r = VectorReservoir(size, seed=seed)
        for v in stream:
            r.add(v)
        sample = r.sample()
        assert sample is not None and sample.shape == (size, 3)
        counts[sample[:, 0].astype(int)] += 1
        np.testing.assert_allclose(r.mean(), stream.mean(axis=0))
    assert counts.sum() == seeds * size
    assert chisquare(counts).pvalue > 1e-3  # uniform: each index expected seeds*size/n times
    a, b = VectorReservoir(size, seed=3), VectorReservoir(size, seed=3)
    for v in stream:
        a.add(v)
        b.add(v)
    np.testing.assert_array_equal(a.sample(), b.sample())
