"""End to end through the command line: `qkv train` -> `qkv evaluate` -> `qkv generate`, for each task kind
(sequence-to-sequence and language model), on tiny data. Every number the commands print is checked
against an independent computation from the saved files (the run's weights, tokenizers and hypotheses).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qkv.cli import main

SEQ2SEQ = """
task:
  name: reverse
  options: {length: 6, num_examples: 300, num_eval_examples: 12, vocab_size: 6}
model: {name: transformer, d_model: 32, n_heads: 2, d_ff: 64, n_encoder_layers: 1, n_decoder_layers: 1,
        dropout: 0.0, max_len: 32}
optim: {lr: 0.005, label_smoothing: 0.0}
schedule: {kind: constant, warmup_steps: 10}
training: {max_steps: 60, max_tokens: 256, log_every: 10}
eval: {every: 30, max_examples: 12, max_len: 10, samples: 2}
"""

LM = """
task: {name: lm, options: {dataset: TEXT}}
model: {name: gpt, d_model: 32, n_heads: 2, d_ff: 64, n_decoder_layers: 1, dropout: 0.0, max_len: 24,
        positions: learned}
optim: {lr: 0.01, label_smoothing: 0.0}
schedule: {kind: cosine, warmup_steps: 5}
training: {max_steps: 40, batch_size: 8, context: 24, log_every: 10}
eval: {every: 20, lm_tokens: 200, samples: 1}
"""


def _json_out(capsys: pytest.CaptureFixture) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _train_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_seq2seq_train_evaluate_generate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe, run = tmp_path / "reverse.yaml", tmp_path / "run"
    recipe.write_text(SEQ2SEQ)
    assert main(["train", str(recipe), "--out", str(run), "--no-progress", "--seed", "3"]) == 0
    summary = _json_out(capsys)
    assert summary["step"] == 60 and summary["best"]["metric"] == "exact_match"
    for name in (
        "config.yaml",
        "tokenizer/src",
        "tokenizer/tgt",
        "checkpoints/best.safetensors",
        "checkpoints/last.safetensors",
        "checkpoints/last.json",
        "samples.txt",
    ):
        assert (run / name).exists(), name
    train_losses = [r["loss"] for r in _train_log(run) if r["split"] == "train"]
    assert train_losses[-1] < 0.7 * train_losses[0]  # it learned something

    assert main(["evaluate", str(run), "--split", "test", "--checkpoint", "last"]) == 0
    scores = _json_out(capsys)
    hyps = (run / "eval" / "test-last-beam1.hyp.txt").read_text().splitlines()
    from qkv.training.run import load_run

    loaded = load_run(run, "last")
    examples = loaded.task.examples("test")
    assert len(hyps) == len(examples) == scores["examples"] == 12
    rescored = loaded.task.score(hyps, examples)  # the task's metric on the written hypotheses
    assert scores["exact_match"] == pytest.approx(rescored["exact_match"])
    assert json.loads((run / "eval" / "test-last-beam1.json").read_text())["exact_match"] == scores["exact_match"]

    # generate: the same greedy outputs as evaluate, one line per input, from arguments and from a file
    sources = [e.src for e in examples[:3]]
    assert main(["generate", str(run), *sources, "--checkpoint", "last"]) == 0
    assert capsys.readouterr().out.splitlines() == hyps[:3]
    (tmp_path / "in.txt").write_text("\n".join(sources) + "\n")
    assert main(["generate", str(run), "--file", str(tmp_path / "in.txt"), "--checkpoint", "last"]) == 0
    assert capsys.readouterr().out.splitlines() == hyps[:3]

    # greedy by hand, straight from the full forward pass (no cache): argmax, append, repeat
    src = torch.tensor([loaded.src_tok.encode(sources[0]) + [2]])
    out = [1]
    with torch.no_grad():
        for _ in range(10):
            nxt = int(loaded.model(src, torch.tensor([out])).logits[0, -1].argmax())
            if nxt == 2:
                break
            out.append(nxt)
    assert loaded.tgt_tok.decode(out[1:]) == hyps[0]


@pytest.mark.slow
def test_lm_train_evaluate_generate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "text.txt"
    text.write_text("".join(f"to be or not to be, line {i % 7}.\n" for i in range(400)))
    recipe, run = tmp_path / "lm.yaml", tmp_path / "run"
    recipe.write_text(LM.replace("TEXT", str(text)))
    assert main(["train", str(recipe), "--out", str(run), "--no-progress", "--set", "training.max_steps=30"]) == 0
    assert _json_out(capsys)["step"] == 30

    assert main(["evaluate", str(run), "--split", "test"]) == 0
    scores = _json_out(capsys)
    from qkv.training.run import load_run

    loaded = load_run(run)
    ids = torch.tensor(loaded.tgt_tok.encode(loaded.task.text("test")))
    n = (len(ids) - 1) // 24
    x = ids[: n * 24].view(n, 24)  # (N, T) non-overlapping windows
    y = ids[1 : n * 24 + 1].view(n, 24)
    with torch.no_grad():
        expected = F.cross_entropy(loaded.model(x).logits.reshape(-1, loaded.tgt_tok.vocab_size), y.reshape(-1))
    assert scores["loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert scores["bpc"] == pytest.approx(expected.item() / torch.log(torch.tensor(2.0)).item(), rel=1e-4)
    assert scores["loss"] < 2.0  # far below log(vocab) for this repetitive text

    # generate continues the prompt; greedy by hand from full forward passes must agree
    prompt = "to be or"
    assert main(["generate", str(run), prompt, "--max-len", "10"]) == 0
    printed = capsys.readouterr().out.splitlines()[0]
    tokens = loaded.tgt_tok.encode(prompt)
    with torch.no_grad():
        for _ in range(10):
            tokens.append(int(loaded.model(torch.tensor([tokens])).logits[0, -1].argmax()))
    assert printed == prompt + loaded.tgt_tok.decode(tokens[len(loaded.tgt_tok.encode(prompt)) :])

    # --no-repeat-ngram 3: the same by hand, each step's banned tokens (of the continuation) removed first
    from qkv.decoding.repeats import repeated_ngram_bans

    assert main(["generate", str(run), prompt, "--max-len", "15", "--no-repeat-ngram", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()[0]
    start = len(loaded.tgt_tok.encode(prompt))
    tokens = loaded.tgt_tok.encode(prompt)
    with torch.no_grad():
        for _ in range(15):
            logits = loaded.model(torch.tensor([tokens])).logits[0, -1]
            logits[repeated_ngram_bans(tokens[start:], 3)] = float("-inf")
            tokens.append(int(logits.argmax()))
    assert printed == (prompt + loaded.tgt_tok.decode(tokens[start:])).splitlines()[0]
    assert main(["generate", str(run), prompt, "--no-repeat-ngram", "-1"]) == 2
    assert main(["evaluate", str(run), "--no-repeat-ngram", "3"]) == 2  # an LM is scored, not decoded
    assert "teacher-forced" in capsys.readouterr().err


def test_resume_says_when_the_recipe_was_edited_since_the_run_started(tmp_path: Path, capsys) -> None:
    """``--resume`` trains with the run's saved config; an edited YAML is not silently ignored."""
    recipe, run = tmp_path / "reverse.yaml", tmp_path / "run"
    recipe.write_text(SEQ2SEQ.replace("max_steps: 60", "max_steps: 4"))
    assert main(["train", str(recipe), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    recipe.write_text(SEQ2SEQ.replace("max_steps: 60", "max_steps: 6").replace("lr: 0.005", "lr: 0.001"))
    assert main(["train", str(recipe), "--out", str(run), "--no-progress", "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"continuing with the run's own config {run / 'config.yaml'}" in err
    assert "optim.lr (0.005 in the run, 0.001 in" in err and "training.max_steps (4 in the run, 6 in" in err
    # the run's config won: it was complete at 4 steps, so nothing was trained
    assert json.loads((run / "checkpoints" / "last.json").read_text())["step"] == 4
    # the documented way to change it: --max-steps; and an unchanged recipe gives no warning
    recipe.write_text(SEQ2SEQ.replace("max_steps: 60", "max_steps: 4"))
    assert main(["train", str(recipe), "--out", str(run), "--no-progress", "--resume", "--max-steps", "6"]) == 0
    assert "continuing with the run's own config" not in capsys.readouterr().err
    assert json.loads((run / "checkpoints" / "last.json").read_text())["step"] == 6
