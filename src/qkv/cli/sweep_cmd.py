"""`qkv sweep`: pick each architecture's recipe for a comparison from a small grid, on validation data."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HELP = "train each architecture over a small grid of settings (lr, warmup, dropout, width, layers) and pick its recipe"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from qkv.compare.sweep import GRID_KEYS

    p.add_argument("--task", default="g2p", choices=["g2p", "translation", "summarization"])
    p.add_argument(
        "--models",
        default="transformer,prefix-lm,gru-attention,gru",
        help="comma-separated architectures (default: the lineup of `qkv compare`)",
    )
    p.add_argument(
        "--grid",
        default="lr=1e-3,3e-3,1e-2",
        help="axes separated by ';', values by ',', e.g. 'lr=1e-3,3e-3;warmup=20,60'. Keys: "
        + "; ".join(f"{k}: {v}" for k, v in GRID_KEYS.items())
        + " (default: lr=1e-3,3e-3,1e-2)",
    )
    p.add_argument(
        "--budget",
        default="45s",
        help="training budget per run, as in `qkv compare --budget` (default 45s: the demo's budget)",
    )
    p.add_argument(
        "--out", default="runs/sweep", help="output directory: sweep.json, sweep.md, runs/ (default runs/sweep)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-dir", default=None, help="where datasets are found (else $QKV_DATA, then ~/.cache/qkv)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per free core, as compare)")


def run(args: argparse.Namespace) -> int:
    from qkv.cli.compare_cmd import _set_threads
    from qkv.compare.budget import parse_budget
    from qkv.compare.sweep import SweepOptions, parse_grid, point_label, run_sweep

    options = SweepOptions(
        task=args.task,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        grid=parse_grid(args.grid),
        budget=parse_budget(args.budget),
        out=Path(args.out),
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        command="qkv sweep " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    )
    _set_threads(args.threads)
    results = run_sweep(options)
    for model, best in results["best"].items():
        print(f"{model}: {point_label(best['point'])} (valid {results.get('metric')} {best['valid']:.2f})")
    table, data = options.out / "sweep.md", options.out / "sweep.json"
    print(f"sweep: {table} ({data}); train with it: qkv compare --recipes {data}")
    return 0
