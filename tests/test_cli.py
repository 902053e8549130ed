"""The `stream-trf` command, run as a user would (in-process through main())."""

from __future__ import annotations

import json

import pytest

from stream_trf.cli import build_parser, main


def test_encode_prints_shapes_similarities_and_a_summary(tiny_models, capsys) -> None:
    texts = ["Here is some text to encode.", "Another text. With two sentences!"]
    rc = main(["encode", "--model", str(tiny_models["bert"]), "--json", "--quiet", *texts])
    out = capsys.readouterr().out
    assert rc == 0
    assert "doc.tensor (7, 32)" in out  # 7 spaCy tokens, width 32
    assert "similarity" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["docs"] == 2
    assert summary["vector_shape"] == [2, 32]
    assert 0 < summary["padding_efficiency"] <= 1


def test_encode_reads_jsonl(tiny_models, tmp_path, capsys) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"Text number {i}."}) for i in range(5)) + "\n")
    rc = main(
        [
            "encode",
            "--model",
            str(tiny_models["roberta"]),
            "--jsonl",
            str(path),
            "--field",
            "body",
            "--limit",
            "3",
            "--json",
            "--quiet",
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["docs"] == 3


def test_a_missing_model_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["encode", "--model", str(tmp_path / "nothing"), "x"]) == 2
    assert "never downloads" in capsys.readouterr().err


def test_help_explains_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "encode" in out and "info" in out
    for command in ("train", "init-config", "convert", "calibrate", "evaluate", "package"):
        assert command in out
