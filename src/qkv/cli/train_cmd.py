"""`qkv train CONFIG.yaml [--set key=value ...] [--out DIR] [--resume]`: one training run from a recipe."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "train one model from a YAML recipe (configs/<task>-<model>.yaml)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        help="recipe YAML, e.g. configs/g2p-transformer.yaml (with --resume: "
        "may be the run directory; the run's own config.yaml is used)",
    )
    parser.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set optim.lr=3e-4 (repeatable; YAML values)",
    )
    parser.add_argument("--max-steps", type=int, help="same as --set training.max_steps=N")
    parser.add_argument("--seed", type=int, help="same as --set training.seed=S")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from checkpoints/last (a complete run: nothing to do; "
        "one stopped before its first checkpoint: start it from the beginning)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


def run(args: argparse.Namespace) -> int:
    from qkv.training.config import load_config
    from qkv.training.loop import train
    from qkv.training.run import CONFIG_FILE

    config_path = Path(args.config)
    out = Path(args.out) if args.out else (config_path if config_path.is_dir() else Path("runs") / config_path.stem)
    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    if args.seed is not None:
        overrides.append(f"training.seed={args.seed}")
    if args.resume and (out / CONFIG_FILE).is_file() and (out / CONFIG_FILE).resolve() != config_path.resolve():
        if os.environ.get("RANK", "0") == "0":  # under torchrun, said once
            _warn_if_the_recipe_changed(config_path, out / CONFIG_FILE, overrides)
        config_path = out / CONFIG_FILE  # the run's resolved config is the truth when resuming
    own = args.resume and config_path.resolve() == (out / CONFIG_FILE).resolve()
    config = load_config(config_path, overrides, every_section=own)  # a run's own config: cut short is an error
    result = train(config, out, resume=args.resume, progress=not args.no_progress)
    best = result.get("best")
    summary = {
        "run": str(out),
        "step": result["step"],
        **({"best": best} if best else {}),
        **({"complete": result["complete"]} if "complete" in result else {}),
    }
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line
        print(json.dumps(summary))
    return 0


def _warn_if_the_recipe_changed(recipe: Path, saved: Path, overrides: list[str]) -> None:
    """``--resume`` trains with the run's own saved config: say so when the recipe named on the command line
    now differs from it (an edited YAML is ignored; ``--set``/``--max-steps`` are how to change a run)."""
    from qkv.errors import UserError
    from qkv.training.config import load_config, to_dict

    if recipe.is_dir():
        return
    try:
        now, then = _flatten(to_dict(load_config(recipe, overrides))), _flatten(to_dict(load_config(saved, overrides)))
    except UserError:  # an unreadable recipe: the run's own config is used anyway (and reports its own errors)
        return
    changed = [
        f"{key} ({then.get(key)!r} in the run, {now.get(key)!r} in {recipe})"
        for key in sorted(now.keys() | then.keys())
        if now.get(key) != then.get(key)
    ]
    if changed:
        print(
            f"qkv train --resume: continuing with the run's own config {saved}, not {recipe}, which now differs in "
            + "; ".join(changed[:5])
            + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            + " -- pass --set KEY=VALUE (or --max-steps N) to change a resumed run",
            file=sys.stderr,
        )


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
