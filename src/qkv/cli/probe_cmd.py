"""`qkv probe`: long-range dependency probes across architectures (accuracy against length and distance)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from qkv.errors import UserError

HELP = "long-range dependency probes (copy, reverse, assoc-recall, ...) across architectures"
PROBES = ("copy", "reverse", "sort", "assoc-recall", "selective-copy", "listops")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="assoc-recall", choices=PROBES, help="the probe (default: assoc-recall)")
    p.add_argument(
        "--lengths",
        default="8,16,32",
        help="comma-separated source lengths in tokens; one short training per length and model",
    )
    p.add_argument(
        "--models",
        default="transformer,prefix-lm,gru-attention,gru",
        help="comma-separated architectures (default: transformer,prefix-lm,gru-attention,gru); also "
        "transformer-causal, the encoder-decoder with a causal encoder",
    )
    p.add_argument(
        "--budget",
        default="10s",
        help="training budget per model and length: seconds (10s), steps (300steps) or tokens (50k-tokens)",
    )
    p.add_argument(
        "--params",
        type=int,
        default=None,
        help="size every architecture to about this many parameters (default 40000): equal size",
    )
    p.add_argument(
        "--width",
        type=int,
        default=None,
        help="give every architecture this width instead (Transformer d_model, recurrent hidden size; a "
        "multiple of 4): equal width, so the parameter counts differ",
    )
    p.add_argument(
        "--examples",
        type=int,
        default=50_000,
        help="training examples per length (default 50000: enough that no model can memorise them)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=2048,
        help="source + target tokens per training batch (default 2048; raise it for long lengths)",
    )
    p.add_argument(
        "--checks",
        type=int,
        default=8,
        help="test-set checks along each training run, for the learning curve and steps-to-solve (default 8)",
    )
    p.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="assoc-recall: this many key-value pairs at random places among filler, so the distance grows "
        "with the length while the memory load stays fixed (default: pairs fill the whole context)",
    )
    p.add_argument(
        "--queries",
        type=int,
        default=1,
        help="assoc-recall: keys asked per example, answered in order (multi-query recall as in Zoology, "
        "Arora et al. 2023; default 1)",
    )
    p.add_argument(
        "--echo-keys",
        action="store_true",
        help="assoc-recall: the answer says each query key before its value (k3 v1 k7 v0 ...), so every value "
        "is predicted right after its key, as in Zoology's layout (each key is a copy of the question)",
    )
    p.add_argument(
        "--mixed-lengths",
        action="store_true",
        help="assoc-recall with --pairs: training examples get a random amount of filler (lengths from the "
        "shortest that holds the pairs up to the test length), so the lookup is learnt on short ones first",
    )
    p.add_argument(
        "--solve-at",
        type=float,
        default=None,
        help="percent at which a run counts as solved: exact match for assoc-recall and listops, token "
        "accuracy for the copy-like probes (default 99)",
    )
    p.add_argument(
        "--until-solved",
        action="store_true",
        help="end each run at the first check that reaches --solve-at instead of spending the rest of "
        "its budget: the budget becomes a step cap (train until solved or the cap)",
    )
    p.add_argument(
        "--lr",
        default=None,
        help="Adam's learning rate for every model, or several (3e-4,1e-3,3e-3): a sweep, each model and "
        "length trained at each rate and the run that solves in the fewest steps kept (default: each "
        "architecture's own rate, picked by such a sweep)",
    )
    p.add_argument("--test-examples", type=int, default=300, help="test examples per length (default 300)")
    p.add_argument("--out", default="runs/probe", help="output directory (default: runs/probe)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for PyTorch (default: PyTorch's choice, one per core). On a machine shared "
        "with other jobs, 1 avoids threads waiting for each other",
    )


def _lengths(text: str) -> list[int]:
    try:
        lengths = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--lengths {text!r}: expected comma-separated integers, e.g. 8,16,32") from None
    if not lengths or min(lengths) < 2:
        raise UserError(f"--lengths {text!r}: every length must be at least 2")
    return sorted(set(lengths))


def _rates(text: str | None) -> list[float] | None:
    """``--lr``: None (each architecture's own rate), one rate, or several (a sweep), in the order given."""
    if text is None:
        return None
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--lr {text!r}: expected a rate or comma-separated rates, e.g. 1e-3 or 3e-4,1e-3") from None
    bad = [r for r in rates if not 0 < r < 1]
    if not rates or bad:
        raise UserError(f"--lr {text!r}: every rate must be between 0 and 1, e.g. 1e-3")
    return list(dict.fromkeys(rates))


def run(args: argparse.Namespace) -> int:
    from qkv.cli.compare_cmd import _set_threads
    from qkv.compare import figures
    from qkv.compare.budget import parse_budget
    from qkv.compare.probes import probe_specs, run_probe
    from qkv.compare.recipes import PROBE_VARIANTS
    from qkv.compare.report import fmt, text_table, write_json_atomic
    from qkv.compare.study import SEQ2SEQ_MODELS, resolve_device
    from qkv.machine import machine_info

    _set_threads(args.threads)
    lengths = _lengths(args.lengths)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    known = (*SEQ2SEQ_MODELS, *PROBE_VARIANTS)
    bad = [m for m in models if m not in known]
    if bad or not models:
        raise UserError(f"--models: unknown model(s) {', '.join(bad) or '(none)'}; choose from {', '.join(known)}")
    if args.params is not None and args.width is not None:
        raise UserError("--params and --width exclude each other: equal size or equal width")
    args.params = 40_000 if args.params is None else args.params
    if args.params < 1000:
        raise UserError(f"--params {args.params}: too small for any model (at least 1000)")
    if args.width is not None and not (4 <= args.width <= 4096 and args.width % 4 == 0):
        raise UserError(f"--width {args.width}: a multiple of 4 between 4 and 4096 (4 attention heads share it)")
    if args.max_tokens < 16:
        raise UserError(f"--max-tokens {args.max_tokens}: at least 16")
    from qkv.compare.probes import SOLVED, rate_text, solve_metric

    rates = _rates(args.lr)
    args.solve_at = SOLVED if args.solve_at is None else args.solve_at
    if not 0 < args.solve_at <= 100:
        raise UserError(f"--solve-at {args.solve_at}: expected a percentage in (0, 100], e.g. 99")
    if args.checks < 1:
        raise UserError(f"--checks {args.checks}: at least 1 (the end of training)")
    if args.task != "assoc-recall" and (args.pairs is not None or args.queries != 1 or args.echo_keys):
        raise UserError(f"--pairs/--queries/--echo-keys are options of --task assoc-recall, not {args.task}")
    if args.mixed_lengths and args.pairs is None:
        raise UserError("--mixed-lengths needs --pairs (the filler around the pairs is what varies)")
    if args.pairs is not None and args.pairs < 1:
        raise UserError(f"--pairs {args.pairs}: at least 1")
    if args.queries < 1 or (args.pairs is not None and args.queries > args.pairs):
        raise UserError(f"--queries {args.queries}: between 1 and the number of pairs ({args.pairs})")
    budget = parse_budget(args.budget)
    device = resolve_device(args.device)
    specs = probe_specs(
        args.task,
        lengths,
        args.examples,
        args.test_examples,
        seed=args.seed,
        pairs=args.pairs,
        queries=args.queries,
        mixed_lengths=args.mixed_lengths,
        echo_keys=args.echo_keys,
    )
    from qkv.data import get_task

    for spec in specs:  # option errors (too short for the pairs, ...) before any training
        get_task(spec.probe, **spec.options)
    out = Path(args.out)
    lengths = [spec.length for spec in specs]
    setting = f"{args.pairs} pairs among filler, " if args.pairs is not None else ""
    setting += f"{args.queries} queries per example, " if args.queries > 1 else ""
    setting += "training lengths mixed, " if args.mixed_lengths else ""
    setting += "keys echoed before their values, " if args.echo_keys else ""
    metric = solve_metric(args.task)
    until = f" (or until {args.solve_at:g}% {metric.replace('_', ' ')})" if args.until_solved else ""
    sizing = f"width {args.width} each" if args.width is not None else f"~{args.params:,} parameters each"
    print(f"probe {args.task}: lengths {', '.join(map(str, lengths))}; {setting}{budget.describe()}{until}, {sizing}")
    result = run_probe(
        specs,
        models,
        target_params=args.params,
        budget=budget,
        out_dir=out / "runs",
        max_tokens=args.max_tokens,
        seed=args.seed,
        device=device.type,
        checks=args.checks,
        lrs=rates,
        solved_at=args.solve_at,
        until_solved=args.until_solved,
        width=args.width,
        progress=lambda what: print(f"  training {what}", flush=True),
    )
    result["machine"] = machine_info(device)
    result["command"] = shlex.join(["qkv", *getattr(args, "_argv", ["probe"])])
    fig = figures.probe_accuracy({args.task: result})
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "figures" / "probe.png").write_bytes(figures.png_bytes(fig))
    learning = figures.probe_learning(result)
    (out / "figures" / "probe-learning.png").write_bytes(figures.png_bytes(learning))
    write_json_atomic(out / "results.json", result)

    header = ["model", "width", "params"] + [f"T={n}" for n in lengths]
    rows = []
    for name, runs in result["runs"].items():
        size = [str(runs[0]["width"]), fmt(result["params"].get(name))]
        rows.append([name, *size] + [fmt(r[metric], 3) + "%" for r in runs])
    print()
    print(metric.replace("_", " "), "by length:")
    print(text_table(header, rows))
    if args.task == "assoc-recall":
        header = ["model"] + [f"d={d}" for d in result["distances"]]
        rows = [[name] + [fmt(a, 2) for a in acc] for name, acc in result["accuracy"].items()]
        print(f"\naccuracy by distance ({result['distance_label']}):")
        print(text_table(header, rows))
    header = ["model"] + [f"T={n}" for n in lengths]
    rows = [
        [name]
        + [str(s) if s is not None else f"> {r['steps']}" for s, r in zip(solved, result["runs"][name], strict=True)]
        for name, solved in result["steps_to_solve"].items()
    ]
    print(
        f"\nsteps to solve ({result['solved_at']:g}% {metric.replace('_', ' ')} on the test split; "
        f"'> N': not solved in N steps):"
    )
    print(text_table(header, rows))
    if rates is not None and len(rates) > 1:
        _print_sweep(result, rates, metric, lengths)
    else:
        chosen = ", ".join(f"{name} {rate_text(rs[0])}" for name, rs in result["lr"].items())
        print(f"\nAdam's learning rate: {chosen}")
    print(f"\nresults: {out / 'results.json'}, figures: {out / 'figures'} (probe.png, probe-learning.png)")
    return 0


def _print_sweep(result: dict, rates: list[float], metric: str, lengths: list[int]) -> None:
    """The sweep's table: steps to solve (or the metric at the cap) per model, length and rate; * the kept run."""
    from qkv.compare.probe_study import study_cell
    from qkv.compare.probes import rate_text
    from qkv.compare.report import text_table

    header = ["model", "T"] + [f"lr {rate_text(r)}" for r in rates]
    rows = []
    for name, runs in result["runs"].items():
        for length, run in zip(lengths, runs, strict=True):
            cells = []
            for entry in run["lr_sweep"]:
                cell = study_cell(
                    {"steps_to_solve": entry["steps_to_solve"], "cap": entry["steps"], "final": entry[metric]}
                )
                cells.append(cell + (" *" if entry["lr"] == run["lr"] else ""))
            rows.append([name, str(length), *cells])
    print(f"\nlearning-rate sweep: steps to {result['solved_at']:g}% {metric.replace('_', ' ')} (* kept):")
    print(text_table(header, rows))
