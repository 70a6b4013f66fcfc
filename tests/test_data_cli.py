"""`qkv data` without the datasets: says what is missing and where to put it; exit status 0."""

from __future__ import annotations

import json

from qkv.cli import main


def test_qkv_data_reports_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("QKV_DATA", raising=False)
    monkeypatch.setenv("QKV_CACHE", str(tmp_path / "cache"))
    assert main(["data", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "multi30k" in out and "MISSING" in out and "expected: multi30k/train.en.gz" in out
    assert main(["data", "--data-dir", str(tmp_path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cmudict"]["present"] and rows["cmudict"]["counts"]["test"] > 5000
    assert not rows["samsum"]["present"] and rows["samsum"]["path"] is None


def test_bad_task_input_exits_2(tmp_path, capsys):
    # an unreadable dataset is reported in its row; the command exits with status 2
    (tmp_path / "samsum").mkdir()
    for name in ("train", "validation", "test"):
        (tmp_path / "samsum" / f"{name}.csv.gz").write_bytes(b"not gzip")
    assert main(["data", "--data-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "train.csv.gz: not a valid gzip file" in captured.err and "Traceback" not in captured.err
    assert "UNREADABLE" in captured.out and "cmudict" in captured.out  # the other datasets are still listed


def test_every_command_of_the_design_is_registered_and_loads():
    """A missing or broken ``qkv/cli/<name>_cmd.py`` fails here instead of vanishing from ``qkv --help``."""
    from qkv.cli import COMMANDS, build_parser

    design = {
        "compare",
        "train",
        "evaluate",
        "generate",
        "attention",
        "explain",
        "serve",
        "search",
        "probe",
        "bench",
        "data",
    }  # the command table of the shared design contract
    assert design <= set(COMMANDS)
    parser = build_parser()
    registered = set(next(a for a in parser._actions if a.dest == "command").choices)
    assert registered == set(COMMANDS)
