"""Data for qkv: the task registry, dataset loaders, tokenizers, batching and metrics.

Start with :func:`get_task` (``list_tasks()`` names them); see ``docs/data.md``.
"""

from qkv.data.tasks import Example, canonical_split, get_task, list_tasks

__all__ = ["Example", "canonical_split", "get_task", "list_tasks"]
