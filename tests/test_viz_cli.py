"""`qkv attention`, `qkv explain` and `qkv serve --export` on a real run directory written by qkv's training."""

from __future__ import annotations

import pytest

from qkv.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from qkv.training import train
    from qkv.training.config import from_dict

    out = tmp_path_factory.mktemp("runs") / "reverse"
    config = from_dict(
        {
            "task": {
                "name": "reverse",
                "options": {"length": 5, "num_examples": 64, "num_eval_examples": 4, "vocab_size": 8},
            },
            "model": {
                "name": "transformer",
                "d_model": 16,
                "n_heads": 2,
                "n_encoder_layers": 1,
                "n_decoder_layers": 2,
                "d_ff": 32,
                "dropout": 0.0,
            },
            "training": {"max_steps": 3, "max_tokens": 200, "device": "cpu"},
            "eval": {"every": 3, "max_examples": 4, "max_len": 8},
        }
    )
    train(config, out, progress=False)
    return str(out)


def test_attention_writes_every_layer_and_head(run_dir, tmp_path, capsys):
    out = tmp_path / "att"
    assert (
        main(["attention", run_dir, "1 2 3 4 5", "--out", str(out), "--search", "greedy", "--formats", "png,svg"]) == 0
    )
    for search in ("greedy",):
        for kind, n_layers in (("encoder_self", 1), ("decoder_self", 2), ("cross", 2)):
            for layer in range(n_layers):
                for head in range(2):
                    for fmt in ("png", "svg"):
                        assert (out / search / f"{kind}_L{layer}_H{head}.{fmt}").stat().st_size > 0
    assert len(list((out / "greedy").glob("*_H*.png"))) == (1 + 2 + 2) * 2
    assert (out / "attention.html").exists() and (out / "heads.json").exists()
    assert "wrote" in capsys.readouterr().out


def test_explain_prints_the_walkthrough_and_writes_html(run_dir, tmp_path, capsys):
    html = tmp_path / "w.html"
    assert main(["explain", run_dir, "1 2 3", "--token", "1", "--layer", "0", "--head", "1", "--html", str(html)]) == 0
    printed = capsys.readouterr().out
    assert "query tokens: 0:1  1:2  2:3  3:<eos>" in printed
    assert "layer 0, head 1 of 2, query token 1 '2'" in printed
    assert "checked against the forward pass" in printed
    page = html.read_text()
    assert "&lt;eos&gt;" in page and "<eos>" not in page


def test_user_errors_exit_2(run_dir, tmp_path, capsys):
    assert main(["explain", run_dir, "1 2 3", "--token", "9"]) == 2
    assert "token 9 is out of range" in capsys.readouterr().err
    assert main(["explain", run_dir, "1 2", "--token", "0", "--kind", "cross", "--layer", "5"]) == 2
    assert "layer 5 is out of range" in capsys.readouterr().err
    assert main(["attention", str(tmp_path / "nope"), "1 2"]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["serve", "--pretrained"]) == 2
    assert "needs a checkpoint directory" in capsys.readouterr().err
    assert main(["serve", run_dir, "--pretrained", run_dir]) == 2
    assert "not both" in capsys.readouterr().err


def test_serve_export_writes_a_static_page(run_dir, tmp_path):
    out = tmp_path / "site"
    assert main(["serve", run_dir, "--export", str(out), "--text", "1 2 3"]) == 0
    assert {p.name for p in out.iterdir()} == {"index.html", "app.js", "style.css", "data.js"}
