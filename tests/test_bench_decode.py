"""`qkv bench decode --peers` runs at tiny sizes: same weights and the same search on both sides (greedy and
beam outputs identical), and its JSON is well formed (no timing is asserted)."""

from __future__ import annotations

import json

from qkv.cli import main


def test_decode_peers_saves_json_and_greedy_outputs_match(tmp_path) -> None:
    args = ["bench", "decode", "--peers", "--tiny", "--batch", "3", "--repeats", "2", "--max-len", "6"]
    assert main([*args, "--vocab", "50", "--threads", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "decode-peers.json").read_text())
    assert report["machine"]["torch"] and report["benchmark"] == "decode --peers"
    assert [r["model"] for r in report["results"]] == ["marian", "gpt2"]
    for result in report["results"]:
        assert set(result["beams"]) == {"1", "5"}
        greedy = result["beams"]["1"]
        assert greedy["agreement"] == 1.0  # the same weights decode the same tokens
        assert greedy["output_tokens"]["qkv"] == greedy["output_tokens"]["hf"]
        for entry in result["beams"].values():
            assert entry["agreement"] == 1.0  # beam 5 too (these tiny rows run to max_len: the length-penalty
            # forms are told apart in tests/test_pretrained.py, where outputs end by EOS)
            assert len(entry["ratio_qkv_over_hf"]["rounds"]) == 2
            assert entry["tokens_per_s"]["qkv"]["median"] > 0 and entry["tokens_per_s"]["hf"]["median"] > 0


def test_unknown_decode_model_is_a_user_error(capsys) -> None:
    assert main(["bench", "decode", "--models", "t5"]) == 2
    assert "t5" in capsys.readouterr().err
