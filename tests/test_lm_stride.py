"""Sliding-window scoring of attention language models (``eval.lm_stride``; the sliding-window perplexity of
Hugging Face's "Perplexity of fixed-length models" guide): the windows worked by hand, the summed NLL equal
to a token-by-token reference that feeds the model each token's history explicitly, every token scored
once, and the errors that name the key or flag."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qkv.data.batching import lm_windows
from qkv.errors import UserError
from qkv.models import ModelConfig, build_model
from qkv.training.evaluate import lm_nll, lm_scoring_label, lm_stride

VOCAB = 11
CONTEXT = 8


def tiny_gpt(seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(name="gpt", d_model=16, n_heads=2, n_decoder_layers=2, d_ff=32, dropout=0.0, max_len=16)
    model = build_model(config, VOCAB, VOCAB).eval()
    with torch.no_grad():  # sharper distributions than a fresh init, so a wrong history shows in the sum
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model


def reference_nll(model, ids: list[int], history_start) -> tuple[float, int]:
    """Token by token: the NLL of ``ids[j]`` given exactly ``ids[history_start(j):j]``, for every ``j`` that
    ``history_start`` covers (it returns None past the last scored token)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for j in range(1, len(ids)):
            start = history_start(j)
            if start is None:
                break
            history = torch.tensor([ids[start:j]])  # (1, j - start)
            logits = model(history).logits[0, -1]  # (V,): the prediction after the last history token
            total -= F.log_softmax(logits.double(), dim=-1)[ids[j]].item()
            count += 1
    return total, count


def test_sliding_windows_by_hand():
    windows = lm_windows(list(range(10)), 4, stride=2)
    # starts 0, 2, 4: a window of 5 tokens must fit in 10 (a start of 6 would need token 10)
    assert windows.tolist() == [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [4, 5, 6, 7, 8]]
    assert lm_windows(list(range(11)), 4, stride=4).tolist() == lm_windows(list(range(11)), 4).tolist()
    assert lm_windows(list(range(5)), 4, stride=1).tolist() == [[0, 1, 2, 3, 4]]
    with pytest.raises(UserError, match="fewer than one window of 5"):
        lm_windows([1, 2, 3, 4], 4, stride=1)


def test_stride_one_predicts_every_token_from_the_previous_context_tokens():
    model = tiny_gpt()
    ids = torch.randint(0, VOCAB, (40,), generator=torch.Generator().manual_seed(1)).tolist()
    total, count = lm_nll(model, ids, context=CONTEXT, max_tokens=len(ids) - 1, stride=1)
    expected, n = reference_nll(model, ids, lambda j: max(0, j - CONTEXT))
    assert count == n == len(ids) - 1
    assert total == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("stride", [3, 5])
def test_each_token_is_scored_once_from_the_window_that_first_reaches_it(stride: int):
    model = tiny_gpt(seed=2)
    ids = torch.randint(0, VOCAB, (37,), generator=torch.Generator().manual_seed(3)).tolist()
    windows = (len(ids) - 1 - CONTEXT) // stride + 1
    last = CONTEXT + (windows - 1) * stride  # the last token any window reaches

    def history_start(j: int) -> int | None:
        if j > last:
            return None
        if j <= CONTEXT:
            return 0  # the first window scores all of its targets
        return -(-(j - CONTEXT) // stride) * stride  # the first window start whose end reaches j

    total, count = lm_nll(model, ids, context=CONTEXT, max_tokens=len(ids) - 1, batch_size=2, stride=stride)
    expected, n = reference_nll(model, ids, history_start)
    assert count == n == last
    assert total == pytest.approx(expected, rel=1e-5)


def test_a_stride_of_the_context_is_the_disjoint_windows():
    model = tiny_gpt(seed=4)
    ids = torch.randint(0, VOCAB, (50,), generator=torch.Generator().manual_seed(5)).tolist()
    disjoint = lm_nll(model, ids, context=CONTEXT, max_tokens=len(ids) - 1, stride=CONTEXT)
    expected, n = reference_nll(model, ids, lambda j: None if j > 48 else (j - 1) // CONTEXT * CONTEXT)
    assert disjoint[1] == n == 48
    assert disjoint[0] == pytest.approx(expected, rel=1e-5)
    # more history per token: a trained model would gain; here only the bookkeeping differs
    assert lm_nll(model, ids, context=CONTEXT, max_tokens=len(ids) - 1, stride=2)[1] == 8 + 20 * 2


def config_with(**eval_options):
    from qkv.training.config import from_dict

    data = {
        "task": {"name": "lm", "options": {"dataset": "tinyshakespeare"}},
        "model": {"name": "gpt"},
        "training": {"context": 64},
        "eval": eval_options,
    }
    return from_dict(data)


def test_the_config_and_the_flag_say_what_a_stride_must_be():
    assert config_with(lm_stride=32).eval.lm_stride == 32
    with pytest.raises(UserError, match=r"eval.lm_stride: must be <= training.context \(64\), got 65"):
        config_with(lm_stride=65)
    with pytest.raises(UserError, match="eval.lm_stride.*must be >= 1"):
        config_with(lm_stride=0)
    config = config_with(lm_stride=32)
    assert lm_stride(config) == 32 and lm_stride(config, 16) == 16
    with pytest.raises(UserError, match=r"--lm-stride 65: must be between 1 and the run's context \(64\)"):
        lm_stride(config, 65)
    assert lm_scoring_label(config, 32) == "teacher-forced, sliding window (stride 32 of 64)"
    assert lm_scoring_label(config, 64) == lm_scoring_label(config, None) == "teacher-forced"


def test_a_carried_state_has_no_windows_to_slide():
    from qkv.training.config import from_dict

    data = {
        "task": {"name": "lm", "options": {"dataset": "ptb"}},
        "model": {"name": "lstm-lm"},
        "training": {"context": 35, "carry_state": True},
        "eval": {"lm_stride": 10},
    }
    with pytest.raises(UserError, match="eval.lm_stride.*training.carry_state"):
        from_dict(data)
    del data["eval"]
    with pytest.raises(UserError, match="--lm-stride: this run is scored with its recurrent state carried"):
        lm_stride(from_dict(data), 10)


def test_a_decoded_task_takes_no_stride():
    from qkv.training.config import from_dict

    config = from_dict({"task": {"name": "g2p"}, "model": {"name": "transformer"}})
    assert lm_stride(config, None, language_model=False) is None
    with pytest.raises(UserError, match="--lm-stride applies to language models; g2p is decoded"):
        lm_stride(config, 4, language_model=False)


GPT_RECIPE = """
task: {name: lm, options: {dataset: TEXT}}
model: {name: gpt, d_model: 16, n_heads: 2, n_decoder_layers: 1, d_ff: 32, dropout: 0.0, max_len: 12}
optim: {lr: 0.01, label_smoothing: 0.0}
schedule: {kind: constant, warmup_steps: 2}
training: {max_steps: 10, batch_size: 4, context: 12, log_every: 5, save_every: 5}
eval: {every: 1000, lm_tokens: 400, samples: 0}
"""


def test_evaluate_and_collect_score_with_the_stride_they_are_given(tmp_path, capsys: pytest.CaptureFixture):
    """`qkv evaluate --lm-stride 4` equals scoring the run's model with stride 4 directly; a stride equal to
    the context is the default disjoint scoring; `qkv results collect --lm-stride 4` names the reading; a
    stride longer than the context exits 2 naming the flag."""
    import json

    from qkv.cli import main
    from qkv.results.collect import load_results
    from qkv.training.evaluate import evaluate_lm
    from qkv.training.run import load_run, split_name, split_text

    text = tmp_path / "text.txt"
    text.write_text("".join(f"to be or not to be, line {i % 7}.\n" for i in range(80)))
    recipe, run = tmp_path / "gpt.yaml", tmp_path / "run"
    recipe.write_text(GPT_RECIPE.replace("TEXT", str(text)))
    assert main(["train", str(recipe), "--out", str(run), "--no-progress"]) == 0

    def evaluated(*flags: str) -> dict:
        assert main(["evaluate", str(run), "--split", "test", *flags]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    loaded = load_run(run)
    test_text = split_text(loaded.task, split_name(loaded.task, "test"), None)
    direct = evaluate_lm(loaded.model, loaded.task, test_text, loaded.tgt_tok, 12, len(test_text), stride=4)
    strided = evaluated("--lm-stride", "4")
    assert strided["loss"] == pytest.approx(direct["loss"], rel=1e-6)
    assert strided["scoring"] == "teacher-forced, sliding window (stride 4 of 12)"
    saved = json.loads((run / "eval" / "test-best-beam1-stride4.json").read_text())  # its own file
    assert saved["loss"] == strided["loss"]
    disjoint = evaluated()
    assert disjoint["scoring"] == "teacher-forced"
    assert evaluated("--lm-stride", "12")["loss"] == pytest.approx(disjoint["loss"], rel=1e-9)
    assert strided["loss"] != pytest.approx(disjoint["loss"], rel=1e-6)
    assert json.loads((run / "eval" / "test-best-beam1.json").read_text())["loss"] == disjoint["loss"]

    out = tmp_path / "results"
    args = ["--command", "qkv train gpt.yaml", "--threads", "1", "--lm-stride", "4", "--out", str(out)]
    assert main(["results", "collect", str(run), "--recipe", "gpt-tiny", *args]) == 0
    record = load_results(out)[0]
    assert record.decoding == "teacher-forced, sliding window (stride 4 of 12)"
    assert record.metrics["loss"] == pytest.approx(direct["loss"], rel=1e-6)

    capsys.readouterr()
    assert main(["evaluate", str(run), "--lm-stride", "13"]) == 2
    assert "--lm-stride 13: must be between 1 and the run's context (12)" in capsys.readouterr().err
