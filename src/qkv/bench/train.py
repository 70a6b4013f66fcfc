"""`qkv bench train`: training throughput (tokens/s) and model FLOPs utilization (MFU).

MFU (Chowdhery et al. 2022, "PaLM", appendix B) is the model's useful floating-point work per second over
the hardware's peak. Here the peak is *measured*: the best fp32 rate of large square matmuls on this
machine with the current thread count, so MFU says how close training gets to what this CPU can do.
The model's work per step is counted by ``torch.utils.flop_counter.FlopCounterMode`` on one real
forward + backward (matmuls, attention, recurrent cells); the LM case also reports nanoGPT's analytic
estimate ``6 N + 12 L H D T`` FLOPs per token, the formula behind nanoGPT's own MFU printout.

Throughput comes from the real ``qkv train`` loop (``qkv.training.loop.train``) on the real data, read
from the run's metrics.jsonl, skipping the first logging window (warm-up). Cases:

- ``gpt``: nanoGPT's CPU "baby GPT" on tinyshakespeare -- 4 layers, 4 heads, 128 dims, context 64,
  batch 12, dropout 0 (``configs/tinyshakespeare-gpt.yaml``); tokens = batch x context per step.
- ``transformer`` and ``gru-attention`` on Multi30k de-en (``configs/multi30k-*.yaml``); tokens = target
  tokens (the loss is over target tokens; source tokens are reported alongside).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from qkv.machine import commit, machine_info

DEFAULT_MODELS, DEFAULT_STEPS = "gpt,transformer,gru-attention", 60
CASES = {
    "gpt": "tinyshakespeare-gpt.yaml",
    "transformer": "multi30k-transformer.yaml",
    "gru-attention": "multi30k-gru-attention.yaml",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"any of {', '.join(CASES)}")
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help="training steps per case (first window skipped); "
        "with --peers: timed steps per side and round (default 10)",
    )
    parser.add_argument(
        "--configs", default=str(Path(__file__).resolve().parents[3] / "configs"), help="directory holding the recipes"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default="runs/bench", help="writes OUT/train.json (OUT/train-peers.json with --peers)")
    peers = parser.add_argument_group("side by side with peers (--peers)")
    peers.add_argument(
        "--peers",
        nargs="?",
        const="all",
        help="train qkv and its peers (all, or a comma list: hf-gpt2, torch-transformer, nanogpt [needs $NANOGPT], "
        "hf-marian, torch-gru) on the same batches in one process, alternating; --models: gpt, transformer, gru "
        "(default all three)",
    )
    peers.add_argument("--rounds", type=int, default=5, help="alternating rounds (with --peers)")
    peers.add_argument("--warmup", type=int, default=3, help="untimed steps per side before the rounds")
    peers.add_argument("--batches", type=int, default=50, help="distinct batches drawn (cycled)")
    peers.add_argument(
        "--variant",
        action="append",
        metavar="NAME:KEY=VALUE[:...]",
        help="an extra qkv side: the recipe with overrides, e.g. compiled:training.compile=true or "
        "before:adamw=for-loop (AdamW: fused, the default, foreach or for-loop)",
    )
    peers.add_argument("--set", action="append", metavar="KEY=VALUE", help="override the recipe on every side")
    peers.add_argument("--note", help="free text saved with the result (e.g. what else the machine was running)")


def measure_peak_flops(sizes: tuple[int, ...] = (512, 1024, 2048), repeats: int = 5) -> float:
    """Best measured fp32 matmul rate (FLOP/s) on this machine: 2 n^3 per n x n product."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def flops_per_token(config, stream, model, kind: str, samples: int = 3) -> tuple[float, float]:
    """Counted forward+backward FLOPs per (target) token, and source tokens per target token."""
    from torch.utils.flop_counter import FlopCounterMode

    from qkv.training.loop import loss_sum

    total_flops, total_tokens, src_tokens = 0, 0, 0
    for _ in range(samples):
        mb = stream.next()
        with FlopCounterMode(display=False) as counter:
            loss_sum(model, mb, kind, 0.0, torch.device("cpu")).backward()
        model.zero_grad(set_to_none=True)
        total_flops += counter.get_total_flops()
        total_tokens += mb.global_tokens
        src_tokens += int((mb.src != 0).sum()) if mb.src is not None else 0
    return total_flops / total_tokens, src_tokens / total_tokens


def bench_case(name: str, recipe: Path, steps: int, peak: float) -> dict:
    from qkv.data.tokenizers import load_tokenizer
    from qkv.models.builder import build_model
    from qkv.training.batches import LMStream, Seq2SeqStream
    from qkv.training.config import load_config
    from qkv.training.loop import encode_pairs, train
    from qkv.training.metrics_log import read_metrics
    from qkv.training.run import open_task, split_data

    log_every = max(steps // 6, 1)
    overrides = [
        f"training.max_steps={steps}",
        f"training.log_every={log_every}",
        "training.device=cpu",
        f"eval.every={10 * steps}",
        "eval.max_examples=1",
        "eval.samples=0",
        "eval.max_len=4",
        "task.max_eval_examples=2000",
    ]
    config = load_config(recipe, overrides)
    config.eval.lm_tokens = config.training.context
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        train(config, run_dir, progress=False)
        rows = [r for r in read_metrics(run_dir) if r["split"] == "train"]
        # the run's own tokenizers, so the counted model has exactly the trained vocabulary sizes
        src_tok, tgt_tok = (load_tokenizer(run_dir / "tokenizer" / side) for side in ("src", "tgt"))
    speeds = [r["tokens_per_s"] for r in rows[1:]] or [rows[0]["tokens_per_s"]]
    tokens_per_s = statistics.median(speeds)

    # FLOPs per token, counted on the same kind of batches with the same model
    task = open_task(config.task)
    train_data = split_data(task, "train", 20000 if task.kind == "lm" else 2000)
    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size).train()
    if task.kind == "lm":
        ids = torch.tensor(tgt_tok.encode(train_data))
        stream = LMStream(ids, config.training.batch_size, config.training.context, 0)
    else:
        stream = Seq2SeqStream(*encode_pairs(train_data, src_tok, tgt_tok, config), config.training.max_tokens, 0)
    per_token, src_ratio = flops_per_token(config, stream, model, task.kind)
    result = {
        "case": name,
        "recipe": recipe.name,
        "model": config.model.name,
        "task": config.task.name,
        "params": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_windows": speeds,
        "flops_per_token": per_token,
        "mfu": per_token * tokens_per_s / peak,
        "source_tokens_per_target_token": src_ratio if task.kind != "lm" else None,
    }
    if task.kind == "lm":  # nanoGPT's estimate: 6N (non-embedding... nanoGPT counts all params) + attention
        m, t = config.model, config.training.context
        n_params = sum(p.numel() for p in model.parameters())
        analytic = 6 * n_params + 12 * m.n_decoder_layers * m.n_heads * (m.d_model // m.n_heads) * t
        result["flops_per_token_nanogpt_formula"] = analytic
        result["mfu_nanogpt_formula"] = analytic * tokens_per_s / peak
    return result


def run(args: argparse.Namespace) -> int:
    from qkv.errors import UserError

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peers:
        from qkv.bench import side_by_side

        if args.models == DEFAULT_MODELS:
            args.models = ",".join(side_by_side.PEER_CASES)
        if args.steps == DEFAULT_STEPS:
            args.steps = 10
        return side_by_side.run(args)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise UserError(f"--models: unknown case(s) {', '.join(unknown)} (known: {', '.join(CASES)})")
    peak = measure_peak_flops()
    print(f"measured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    results = []
    for name in names:
        result = bench_case(name, Path(args.configs) / CASES[name], args.steps, peak)
        results.append(result)
        print(
            f"{name:>14}: {result['tokens_per_s']:>9,.0f} tokens/s   MFU {100 * result['mfu']:5.1f}%   "
            f"({result['flops_per_token'] / 1e6:.2f} MFLOP/token, {result['params'] / 1e6:.2f}M params)"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "peak_flops_fp32": peak,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "results": results,
        "command": "qkv bench " + " ".join(sys.argv[2:]),
        "commit": commit(),
        "machine": machine_info("cpu"),
    }
    (out / "train.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'train.json'}")
    return 0
