"""Training, evaluation and run directories: typed recipes, the plain training loop, exact resume.

``load_run(RUN) -> Run(model, config, src_tok, tgt_tok, task)`` is how every command opens a run;
``train(config, out, *, resume=False, progress=True)`` is :func:`qkv.training.loop.train` itself, imported on
first use (the loop pulls in models and data, which opening a config does not need).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qkv.training.config import Config, load_config
from qkv.training.run import Run, load_run

if TYPE_CHECKING:
    from qkv.training.loop import train

__all__ = ["Config", "Run", "load_config", "load_run", "train"]


def __getattr__(name: str) -> Any:  # PEP 562: `qkv.training.train` is the loop's function, signature and all
    if name == "train":
        from qkv.training.loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
