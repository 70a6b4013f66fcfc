"""`qkv bench train --peers` runs at tiny sizes, its JSON is well formed, and every side of a comparison
is really the same model size (no timing is asserted)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from qkv.bench import peers
from qkv.bench.side_by_side import Side, padding_fraction, parse_variant, summarize
from qkv.cli import main
from qkv.errors import UserError
from qkv.models.builder import build_model
from qkv.training.batches import StepBatch
from qkv.training.config import load_config

TINY = {
    "gpt": ["model.d_model=16", "model.n_heads=2", "model.d_ff=32", "model.n_decoder_layers=1"],
    "transformer": [
        "model.d_model=16",
        "model.n_heads=2",
        "model.d_ff=32",
        "model.n_encoder_layers=1",
        "model.n_decoder_layers=1",
        "task.max_train_examples=300",
        "task.options.vocab_size=300",
        "training.max_tokens=200",
    ],
    "gru": [
        "model.d_model=16",
        "model.hidden_size=24",
        "task.max_train_examples=300",
        "task.options.vocab_size=300",
        "training.max_tokens=200",
    ],
}


@pytest.mark.parametrize("case", ["gpt", "transformer", "gru"])
def test_peers_bench_saves_json_with_equal_sizes(case: str, tmp_path) -> None:
    args = ["bench", "train", "--peers", "--models", case, "--steps", "1", "--rounds", "2", "--warmup", "1"]
    args += ["--batches", "3", "--out", str(tmp_path), "--note", "test"]
    for override in TINY[case]:
        args += ["--set", override]
    if case == "gpt":
        args += ["--variant", "foreach:adamw=foreach"]
    assert main(args) == 0
    report = json.loads((tmp_path / "train-peers.json").read_text())
    assert report["note"] == "test" and report["machine"]["torch"]
    (result,) = report["results"]
    assert result["case"] == case and result["rounds"] == 2
    names = set(peers.PEERS[case]) - {"nanogpt"} | {"qkv"} | ({"foreach"} if case == "gpt" else set())
    assert set(result["sides"]) == names
    for side in result["sides"].values():
        assert len(side["tokens_per_s_rounds"]) == 2 and side["min"] <= side["median"] <= side["max"]
    for name, ratio in result["ratios"].items():
        assert name.startswith("qkv/") and len(ratio["rounds"]) == 2 and ratio["median"] > 0
    assert result["target_tokens_per_step"] > 0
    pad = result["padding_fraction"]
    assert 0 <= pad["tgt"] < 1 and (pad["src"] is None) == (case == "gpt")
    # the same size on every side: exactly, or by the tensors the peer's library cannot leave out
    diffs = {name.split("/")[1]: r["params_difference"] for name, r in result["ratios"].items()}
    assert {k: v for k, v in diffs.items() if k.startswith("torch-") or k == "foreach"} == {
        k: 0 for k in diffs if k.startswith("torch-") or k == "foreach"
    }
    config = load_config(f"configs/{peers_recipe(case)}", TINY[case]).model
    if case == "gpt":  # GPT-2 has a bias in every linear layer and LayerNorm; the recipe has none
        gpt2 = peers.HFGPT2(config, 65)
        assert diffs["hf-gpt2"] == sum(p.numel() for n, p in gpt2.named_parameters() if n.endswith("bias"))
    if case == "transformer":  # Marian is post-norm: no final LayerNorm after the encoder and the decoder
        assert diffs["hf-marian"] == -2 * 2 * config.d_model


def peers_recipe(case: str) -> str:
    from qkv.bench.side_by_side import PEER_CASES

    return PEER_CASES[case]


def test_peer_models_are_the_recipes_sizes() -> None:
    for case, (src, tgt) in {"gpt": (65, 65), "transformer": (120, 90), "gru": (120, 90)}.items():
        config = load_config(f"configs/{peers_recipe(case)}", TINY[case]).model
        qkv = peers.count_parameters(build_model(config, src, tgt))
        for name, builder in peers.PEERS[case].items():
            if name.startswith("torch-"):
                assert peers.count_parameters(builder(config, src, tgt)) == qkv, (case, name)


def test_peer_logits_shapes_and_causality() -> None:
    config = load_config("configs/tinyshakespeare-gpt.yaml", TINY["gpt"]).model
    tokens = torch.randint(4, 65, (2, 10))
    for name, builder in peers.PEERS["gpt"].items():
        if name == "nanogpt" and not os.environ.get("NANOGPT"):
            continue  # nanoGPT's model.py is read from a checkout, never copied here
        model = builder(config, 65, 65).eval()
        logits = model(tokens)
        assert logits.shape == (2, 10, 65)
        changed = tokens.clone()
        changed[:, 6:] = 5
        torch.testing.assert_close(model(changed)[:, :6], logits[:, :6])  # the future does not leak


def test_summary_ratios_are_within_rounds() -> None:
    a, b = Side("qkv", 10, lambda m: None, [100.0, 200.0, 300.0]), Side("p", 10, lambda m: None, [50.0, 100.0, 600.0])
    s = summarize([a, b])
    assert s["ratios"]["qkv/p"]["rounds"] == [2.0, 2.0, 0.5]
    assert s["ratios"]["qkv/p"]["median"] == 2.0 and s["sides"]["qkv"]["median"] == 200.0


def test_padding_fraction_and_variant_parsing() -> None:
    tgt = torch.tensor([[1, 5, 2], [1, 2, 0]])
    assert padding_fraction([[StepBatch(None, tgt, 3)]]) == {"src": None, "tgt": 1 / 6}
    assert parse_variant("c:training.compile=true:adamw=foreach") == ("c", ["training.compile=true"], "foreach")
    assert parse_variant("plain") == ("plain", [], "fused")
    with pytest.raises(UserError):
        parse_variant("c:adamw=fast")
    with pytest.raises(UserError):
        parse_variant("c:novalue")


def test_unknown_peer_is_a_user_error(capsys) -> None:
    assert main(["bench", "train", "--peers", "hf-llama", "--models", "gpt", "--set", TINY["gpt"][0]]) == 2
    assert "hf-llama" in capsys.readouterr().err
