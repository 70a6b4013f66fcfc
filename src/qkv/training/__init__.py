"""Training, evaluation and run directories: typed recipes, the plain training loop, exact resume.

``load_run(RUN) -> Run(model, config, src_tok, tgt_tok, task)`` is how every command opens a run.
"""

from qkv.training.config import Config, load_config
from qkv.training.run import Run, load_run

__all__ = ["Config", "Run", "load_config", "load_run", "train"]


def train(*args, **kwargs):
    """:func:`qkv.training.loop.train` (imported lazily: the loop pulls in models and data)."""
    from qkv.training.loop import train as _train

    return _train(*args, **kwargs)
