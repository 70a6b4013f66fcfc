"""`qkv summary` and `qkv.models.summary`: parameter counts against hand-worked formulas and Hugging Face."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qkv.cli import main
from qkv.models import ModelConfig, build_model
from qkv.models.summary import format_summary, summarize

ROOT = Path(__file__).resolve().parents[1]


def test_counts_match_the_formulas_of_the_paper():
    e, f, h, v = 64, 256, 8, 100
    config = ModelConfig(d_model=e, n_heads=h, d_ff=f, n_encoder_layers=2, n_decoder_layers=3, tie_embeddings=True)
    info = summarize(build_model(config, v, v))
    rows = {r["module"]: r for r in info["modules"]}
    attention = 4 * (e * e + e)  # W_Q, W_K, W_V, W_O with biases
    ffn = e * f + f + f * e + e
    norm = 2 * e
    assert rows["encoder.layers"]["repeat"] == 2
    assert rows["encoder.layers"]["params"] == 2 * (attention + ffn + 2 * norm)
    assert rows["decoder.layers"]["params"] == 3 * (2 * attention + ffn + 3 * norm)
    assert rows["encoder.layers.0.self_attn"]["params"] == attention
    assert rows["lm_head"]["params"] == 0 and rows["lm_head"]["shared"] == ["weight = decoder.embed.tokens.weight"]
    expected_total = 2 * v * e + 2 * (attention + ffn + 2 * norm) + 3 * (2 * attention + ffn + 3 * norm) + 2 * norm
    assert info["total_params"] == expected_total
    assert info["attention"]["cross"] == {"layers": 3, "heads": 8, "kv_heads": 8, "head_dim": 8}
    text = format_summary(info)
    assert "2 x EncoderLayer" in text and f"{expected_total:,}" in text


def test_minilm_count_matches_hugging_face(capsys):
    transformers = pytest.importorskip("transformers")
    from qkv.pretrained import minilm_path

    reference = transformers.BertModel.from_pretrained(str(minilm_path()))
    pooler = sum(p.numel() for p in reference.pooler.parameters())  # qkv does not load BERT's pooler
    assert main(["summary", "--pretrained", str(minilm_path()), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["total_params"] == reference.num_parameters() - pooler
    assert info["attention"]["encoder_self"] == {"layers": 6, "heads": 12, "kv_heads": 12, "head_dim": 32}


def test_cli_prints_recipe_and_checkpoint_summaries(capsys):
    recipe = ROOT / "configs" / "g2p-transformer.yaml"
    if not recipe.exists():
        pytest.skip("recipe configs/g2p-transformer.yaml not present")
    assert main(["summary", str(recipe), "--src-vocab", "40", "--tgt-vocab", "50", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    model = build_model(ModelConfig(**info["config"] | {"name": info["name"], "dropout": 0.0}), 40, 50)
    assert info["total_params"] == sum(p.numel() for p in model.parameters())
    assert main(["summary"]) == 2
    assert "nothing to summarise" in capsys.readouterr().err
