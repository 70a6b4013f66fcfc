"""`qkv evaluate RUN [--split test] [--beam N]`: decode a split and score it with the task's metric.

Writes ``RUN/eval/<split>-<checkpoint>-beam<N>.hyp.txt`` (one hypothesis per line, seq2seq) and
``RUN/eval/<split>-<checkpoint>-beam<N>.json`` (the scores), prints the scores as JSON on standard output
and where it wrote them on standard error (so the JSON line stays machine-readable).
"""

from __future__ import annotations

import argparse
import json
import sys

from qkv.cli.rules_args import add_rule_arguments, rules_from_args

HELP = "score a trained run on a split with the task's metrics (writes hypotheses and scores)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory written by `qkv train`")
    parser.add_argument("--split", default="test", help="train, dev or test (default: test)")
    parser.add_argument("--beam", type=int, default=1, help="beam size (1 = greedy)")
    add_rule_arguments(parser)
    parser.add_argument("--checkpoint", default="best", help="best (default), last, averaged, or a file")
    parser.add_argument("--max-examples", type=int, help="score only the first N examples")
    parser.add_argument("--max-len", type=int, help="longest hypothesis in tokens (default: the recipe's)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    parser.add_argument(
        "--lm-stride",
        type=int,
        metavar="N",
        help="language models: score windows sliding by N tokens (default: the recipe's eval.lm_stride)",
    )


def run(args: argparse.Namespace) -> int:
    from qkv.data.tasks import is_lm, is_seq2seq
    from qkv.errors import UserError
    from qkv.training.evaluate import evaluate_lm, evaluate_seq2seq, lm_scoring_label, lm_stride
    from qkv.training.run import load_run, split_examples, split_name, split_text

    if args.beam < 1:
        raise UserError(f"--beam must be >= 1, got {args.beam}")
    loaded = load_run(args.run, args.checkpoint, args.device)
    task, config = loaded.task, loaded.config
    rules = rules_from_args(args, decoded=is_seq2seq(task), task_name=task.name)
    split = split_name(task, args.split)  # a split the task lacks is an error (exit 2), never a substitute
    stride = lm_stride(config, args.lm_stride, is_lm(task))
    sliding = stride is not None and stride < config.training.context
    tag = f"{split}-{loaded.checkpoint.stem}-beam{args.beam}{rules.label}" + (f"-stride{stride}" if sliding else "")
    out_dir = loaded.directory / "eval"
    out_dir.mkdir(exist_ok=True)
    examples: int | None = None
    if is_lm(task):
        text = split_text(task, split, args.max_examples)
        metrics = evaluate_lm(
            loaded.model,
            task,
            text,
            loaded.tgt_tok,
            config.training.context,
            len(text),
            carry_state=config.training.carry_state,
            stride=stride,
        )
    elif is_seq2seq(task):
        data = split_examples(task, split, args.max_examples)
        max_len = args.max_len or config.eval.max_len
        metrics, hyps = evaluate_seq2seq(
            loaded.model,
            task,
            data,
            loaded.src_tok,
            loaded.tgt_tok,
            beam=args.beam,
            max_len=max_len,
            rules=rules,
        )
        (out_dir / f"{tag}.hyp.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        examples = len(data)
    else:
        raise UserError(f"task {task.name!r} has kind {task.kind!r}: nothing to evaluate")
    result = {
        "run": str(loaded.directory),
        "split": split,
        "checkpoint": loaded.checkpoint.name,
        "beam": args.beam,
        "no_repeat_ngram": rules.no_repeat_ngram,
        "min_len": rules.min_len,
        "ban_unk": rules.ban_unk,
        "examples": examples,
        **({"scoring": lm_scoring_label(config, stride)} if is_lm(task) else {}),
        **metrics,
    }
    (out_dir / f"{tag}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result))
    written = [out_dir / f"{tag}.json"] + ([out_dir / f"{tag}.hyp.txt"] if examples is not None else [])
    print("wrote " + " and ".join(str(p) for p in written), file=sys.stderr)
    return 0
