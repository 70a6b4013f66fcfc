"""The pointer-generator's mixture (``qkv.models.copy``), before/after, forward + backward, in one run.

See et al.'s output ``P(w) = p_gen * softmax(W h)_w + (1 - p_gen) * sum_{i: x_i = w} a_i`` is a
(batch x target x vocabulary) tensor. The first form built the pointer distribution densely too (a zero
``(B, T, V)`` tensor, ``scatter_add``, a ``log`` and a ``logaddexp`` over all ``V`` words); the present form
writes the generating term for all ``V`` words and works the mixture out only at the ``T_s`` source
positions. This script loads the *before* form from a git revision (``--before``, default the commit
before the change), gives both layers the same weights and inputs, and times the layer's forward, the
label-smoothed loss and the backward, alternating the two forms; it checks that both give the same
``log P`` and gradients. Shapes: an AESLC batch of the word-level recipes (43 emails, 12 target and 100
source words, d 128, 10k / 20k words) and a SAMSum batch of the BPE copy recipe (12 dialogues, 80
summary and 500 dialogue tokens, d 256, 8k pieces).

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/copy_mixture.py --rounds 10 \\
        --out results/bench/copy-mixture.json
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from qkv.bench.before_after import alternate, speedups, write_result
from qkv.models.copy import CopyGenerator

SHAPES = {  # name: (batch, target, source, d_model, vocabulary)
    "aeslc words 10k": (43, 12, 100, 128, 10_000),
    "aeslc words 20k": (43, 12, 100, 128, 20_000),
    "samsum bpe 8k": (12, 80, 500, 256, 8_000),
}


def load_before(revision: str) -> type[CopyGenerator]:
    """``CopyGenerator`` as it was at ``revision`` (read with ``git show``, imported from a temporary file)."""
    text = subprocess.run(
        ["git", "show", f"{revision}:src/qkv/models/copy.py"], capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "copy_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("copy_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["copy_before"] = module
    spec.loader.exec_module(module)
    return module.CopyGenerator


def inputs(batch: int, target: int, source: int, d_model: int, vocab: int) -> dict[str, torch.Tensor]:
    """Random logits, states and source ids (words repeat, the last fifth of every other row is padding)."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, min(vocab, 400), (batch, source), generator=g)  # (B, T_s): a small range repeats words
    src[::2, -source // 5 :] = 0  # padding
    return {
        "vocab_logits": torch.randn(batch, target, vocab, generator=g),
        "hidden": torch.randn(batch, target, d_model, generator=g),
        "memory": torch.randn(batch, source, d_model, generator=g),
        "src": src,
        "targets": torch.randint(4, vocab, (batch, target), generator=g),
    }


def step(layer: torch.nn.Module, x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Forward, label-smoothed loss and backward; returns ``log P`` and the inputs' gradients."""
    leaves = [x[k].clone().requires_grad_() for k in ("vocab_logits", "hidden", "memory")]
    vocab_logits, hidden, memory = leaves
    out = layer(vocab_logits, hidden, memory, x["src"] != 0, layer.source(x["src"], memory))
    loss = F.cross_entropy(out.log_probs.flatten(0, 1), x["targets"].flatten(), label_smoothing=0.1)
    grads = torch.autograd.grad(loss, leaves)
    return out.log_probs.detach(), list(grads)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", default="9f81313", help="git revision of the dense form (default 9f81313)")
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds per shape (default 10)")
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args()
    before_cls = load_before(args.before)
    results = {}
    for shape_name, (batch, target, source, d_model, vocab) in SHAPES.items():
        torch.manual_seed(0)
        after = CopyGenerator(d_model)
        before = before_cls(d_model)
        before.load_state_dict(after.state_dict())
        sides = {"dense pointer (before)": before, "mixture at the source positions (after)": after}
        x = inputs(batch, target, source, d_model, vocab)
        outputs = {name: step(layer, x) for name, layer in sides.items()}  # also the warm-up
        (log_p_before, grads_before), (log_p_after, grads_after) = outputs.values()
        seconds = alternate({name: functools.partial(step, layer, x) for name, layer in sides.items()}, args.rounds)
        results[shape_name] = {
            "shape": {"batch": batch, "target": target, "source": source, "d_model": d_model, "vocab": vocab},
            "seconds": seconds,
            **speedups(seconds),
            "max_abs_diff_log_p": (log_p_before - log_p_after).abs().max().item(),
            "max_abs_diff_grads": max(
                (a - b).abs().max().item() for a, b in zip(grads_before, grads_after, strict=True)
            ),
        }
        r = results[shape_name]
        ratios = r["speedup_rounds"]
        print(f"{shape_name}: " + ", ".join(f"{n} {statistics.median(t) * 1e3:.1f} ms" for n, t in seconds.items()))
        print(f"  speedup x{r['speedup_median']:.2f} (rounds {min(ratios):.2f} .. {max(ratios):.2f}); "
              f"max |diff| log P {r['max_abs_diff_log_p']:.1e}, gradients {r['max_abs_diff_grads']:.1e}")  # fmt: skip
    if args.out:
        benchmark = "copy mixture: forward + label-smoothed loss + backward"
        write_result(
            args.out, {"benchmark": benchmark, "settings": vars(args) | {"out": str(args.out)}, "shapes": results}
        )


if __name__ == "__main__":
    main()
