"""`benchmarks/train_profile.py` at tiny sizes: both steps profiled by kind of work on the same batches, and
the ceiling is the peer's step over qkv's time in the model's arithmetic, round by round (no time asserted)."""

from __future__ import annotations

import json
import statistics

import pytest

from qkv.bench.work_profile import OTHER, kind_of
from qkv.machine import commit

TINY = ["model.d_model=16", "model.n_heads=2", "model.d_ff=32", "model.n_decoder_layers=1"]


@pytest.fixture(scope="module")
def script(load_benchmark):
    return load_benchmark("train_profile")


def test_tiny_gpt_profile_against_torch_writes_its_json(script, data_dir, tmp_path) -> None:
    args = ["--case", "gpt", "--peer", "torch-transformer", "--steps", "2", "--rounds", "2", "--warmup", "1"]
    args += ["--batches", "3", "--out", str(tmp_path / "p.json"), *(x for t in TINY for x in ("--set", t))]
    script.main(args)
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["params"]["qkv"] == record["params"]["torch-transformer"]  # the same model on both sides
    kinds = record["profile_ms_by_kind"]
    assert kinds["qkv"]["matrix products"] > 0 and kinds["torch-transformer"]["matrix products"] > 0
    assert kinds["qkv"]["optimizer"] > 0  # qkv's fused AdamW is one operator
    needed = record["qkv_needed_ms_rounds"]
    assert len(needed) == len(record["ceiling_rounds"]) == 2 and all(n > 0 for n in needed)
    peer_ms = record["step_ms_rounds"]["torch-transformer"]
    assert record["ceiling_rounds"] == pytest.approx([p / n for p, n in zip(peer_ms, needed, strict=True)])
    assert record["ceiling_qkv_over_peer"] == pytest.approx(statistics.median(record["ceiling_rounds"]))
    assert OTHER in kinds["torch-transformer"] and record["machine"]["torch"]
    assert record["commit"] == commit()  # the checkout that measured it (None outside git)


def test_the_arithmetic_of_cpu_operators_is_not_counted_as_glue(script) -> None:
    """On CPU, ReLU runs as clamp_min, an embedding lookup as index_select, GRU gates as sigmoid/tanh, and
    PyTorch's default AdamW as _foreach_ operators: each is the model's arithmetic, not qkv's glue."""
    expected = {
        "aten::clamp_min": "activations",
        "aten::threshold_backward": "activations",
        "aten::sigmoid_": "activations",
        "aten::tanh_backward": "activations",
        "aten::index_select": "embeddings",
        "aten::embedding_dense_backward": "embeddings",
        "aten::_foreach_addcmul_": "optimizer",
        "aten::_fused_adamw_": "optimizer",
        "aten::mkldnn_rnn_layer_backward": "recurrent cells",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward": "attention kernel (SDPA)",
        "aten::_log_softmax_backward_data": "softmax / cross-entropy",
        "aten::add_": OTHER,
    }
    assert {name: kind_of(name, script.KINDS) for name in expected} == expected


def test_a_peer_of_another_case_is_refused(script, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["--case", "gpt", "--peer", "hf-marian"])
    assert "--peer must be one of" in capsys.readouterr().err
