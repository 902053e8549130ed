"""The naive HF loop peer counts the work it does the way the tokenizer sees it.

(The spacy-transformers peer builds a venv of its own, minutes of pip: checked by hand, not here.)
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from bench.harness.peers import naive_hf_loop

TEXTS = [
    "A short one.",
    "Debian packages describe libraries, tools, fonts and documentation.",
    "Apple shares rose on the news. Apple sold fewer iPhones this quarter.",
    "word " * 40,
    "Über café naïve résumé façade.",
]


def test_naive_hf_loop_counts_real_and_padded_wordpieces(minilm_dir: Path) -> None:
    max_length, batch_size = 16, 2
    result = naive_hf_loop(TEXTS, minilm_dir, batch_size=batch_size, max_length=max_length)

    # Independently: untruncated lengths with boundary tokens, capped at max_length.
    tok = AutoTokenizer.from_pretrained(str(minilm_dir), local_files_only=True)
    full = [len(tok(t)["input_ids"]) for t in TEXTS]
    kept = [min(n, max_length) for n in full]
    padded = sum(
        len(kept[i : i + batch_size]) * max(kept[i : i + batch_size])
        for i in range(0, len(kept), batch_size)
    )

    assert result["name"] == "naive HF loop"
    assert result["wordpieces"] == sum(kept)
    assert result["padded_wordpieces"] == padded
    assert result["truncated_docs"] == sum(n > max_length for n in full) >= 1
    assert 0 < result["padding_efficiency"] <= 1
    assert result["padding_efficiency"] == round(sum(kept) / padded, 4)
    assert result["seconds"] > 0
    assert result["peak_rss_mb"] > 0
