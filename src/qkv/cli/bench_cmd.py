"""`qkv bench attention|train|generate|decode|quality`: performance measurements, printed and saved as JSON."""

from __future__ import annotations

import argparse
import importlib

HELP = "performance measurements (attention, train, generate, decode, quality), printed and saved as JSON"

# name -> module exposing add_arguments(parser) and run(args)
BENCHMARKS = {
    "attention": ("qkv.bench.attention", "time and peak memory of reference vs fused attention over lengths"),
    "train": ("qkv.bench.train", "training throughput (tokens/s) and model FLOPs utilisation"),
    "generate": ("qkv.bench.generate", "decoding latency and tokens/s, cached vs uncached"),
    "quality": ("qkv.bench.quality", "wall-clock time to reach a validation target (loss, BLEU, WER)"),
    "decode": ("qkv.bench.decode", "greedy and beam decoding tokens/s against Hugging Face generate, same weights"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_bench_run=module.run)


def run(args: argparse.Namespace) -> int:
    return args._bench_run(args)
