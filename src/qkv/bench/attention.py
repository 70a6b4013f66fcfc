"""`qkv bench attention`: forward+backward time and peak memory of the attention implementations
over sequence lengths -- the explicit reference path vs PyTorch's fused kernels (and
``torch.nn.MultiheadAttention`` vs qkv's :class:`~qkv.attention.MultiHeadAttention`).

Each measurement runs in a fresh process (see :mod:`qkv.bench.attention_worker`). Results are printed
as a table and saved as JSON together with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from qkv.errors import UserError
from qkv.machine import commit, describe, machine_info

IMPLS = ("reference", "fused", "sdpa", "qkv-mha", "torch-mha")
IMPL_HELP = {
    "reference": "attend(backend='reference'): softmax(QKᵀ/√d)V, explicit",
    "fused": "attend(backend='fused'): qkv's wrapper around SDPA",
    "sdpa": "torch.nn.functional.scaled_dot_product_attention, called directly",
    "qkv-mha": "qkv MultiHeadAttention (projections + fused attention)",
    "torch-mha": "torch.nn.MultiheadAttention (projections + attention)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lengths", default="128,256,512,1024,2048,4096", help="comma-separated sequence lengths")
    parser.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated, from {', '.join(IMPLS)}")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--causal", action="store_true", help="causal self-attention")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (the best is reported)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="runs/bench", help="directory for attention.json")


def _parse_list(text: str, name: str, cast=str) -> list:
    try:
        values = [cast(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise UserError(f"--{name}: cannot parse {text!r}: {err}") from None
    if not values:
        raise UserError(f"--{name} is empty")
    return values


def _measure(spec: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]))
    proc = subprocess.run(
        [sys.executable, "-m", "qkv.bench.attention_worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": last}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x): 1 = linear growth, 2 = quadratic."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    var = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


def summarize(rows: list[dict], lengths: list[int]) -> dict:
    """The headline ratios the docs quote (None where an implementation was not measured)."""

    def get(impl: str, length: int, key: str = "time_ms") -> float | None:
        for r in rows:
            if r["impl"] == impl and r["length"] == length and key in r:
                return r[key]
        return None

    at = 1024 if 1024 in lengths else lengths[len(lengths) // 2]
    ref, fused, sdpa = get("reference", at), get("fused", at), get("sdpa", at)
    qmha, tmha = get("qkv-mha", at), get("torch-mha", at)
    long = [t for t in lengths if t >= 512] or lengths
    mem = {impl: _slope(long, [get(impl, t, "peak_mb") or 0 for t in long]) for impl in ("reference", "fused")}
    return {
        "at_length": at,
        "fused_speedup_over_reference": ref / fused if ref and fused else None,
        "fused_overhead_over_raw_sdpa": fused / sdpa - 1 if fused and sdpa else None,
        "qkv_mha_vs_torch_mha": qmha / tmha - 1 if qmha and tmha else None,
        "peak_memory_loglog_slope": mem,
    }


def format_table(rows: list[dict], lengths: list[int], impls: list[str]) -> str:
    def cell(impl: str, length: int) -> str:
        r = next((r for r in rows if r["impl"] == impl and r["length"] == length), None)
        if r is None:
            return "-"
        if "error" in r:
            return "error"
        return f"{r['time_ms']:.1f} ms / {r['peak_mb']:.0f} MB"

    header = ["impl \\ T"] + [str(t) for t in lengths]
    body = [[impl] + [cell(impl, t) for t in lengths] for impl in impls]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    lengths = _parse_list(args.lengths, "lengths", int)
    impls = _parse_list(args.impls, "impls")
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        raise UserError(f"--impls: unknown implementation(s) {unknown}; choose from {list(IMPLS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available on this machine")
    info = machine_info(args.device)
    info["threads"] = args.threads
    shape = {"batch": args.batch, "heads": args.heads, "head_dim": args.head_dim, "causal": args.causal}
    print(
        f"qkv bench attention on {describe(info)}; B={args.batch} H={args.heads} D={args.head_dim} "
        f"causal={args.causal} dtype={args.dtype}; forward+backward, best of {args.repeats}"
    )
    rows: list[dict] = []
    for length in tqdm(lengths, desc="lengths", unit="T"):
        for impl in impls:
            spec = dict(
                shape,
                impl=impl,
                length=length,
                repeats=args.repeats,
                device=args.device,
                dtype=args.dtype,
                threads=args.threads,
            )
            rows.append({"impl": impl, "length": length, **_measure(spec)})
    summary = summarize(rows, lengths)
    print(format_table(rows, lengths, impls))
    for impl in impls:
        print(f"  {impl:10s} {IMPL_HELP[impl]}")
    s = summary
    if s["fused_speedup_over_reference"]:
        print(f"fused is {s['fused_speedup_over_reference']:.1f}x faster than reference at T={s['at_length']}")
    if s["qkv_mha_vs_torch_mha"] is not None:
        print(f"qkv MultiHeadAttention vs torch.nn.MultiheadAttention: {100 * s['qkv_mha_vs_torch_mha']:+.1f}% time")
    if s["fused_overhead_over_raw_sdpa"] is not None:
        print(f"attend(fused) vs raw SDPA: {100 * s['fused_overhead_over_raw_sdpa']:+.1f}% time")
    print(f"peak-memory growth exponent (log-log slope, T>=512): {s['peak_memory_loglog_slope']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "attention",
        "machine": info,
        "config": dict(shape, dtype=args.dtype, repeats=args.repeats),
        "rows": rows,
        "summary": summary,
        "command": "qkv bench " + " ".join(sys.argv[2:]),
        "commit": commit(),
    }
    tmp = out / "attention.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out / "attention.json")
    print(f"saved {out / 'attention.json'}")
    return 0
