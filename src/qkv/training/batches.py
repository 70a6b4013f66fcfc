"""Training batches that can be resumed exactly and split across processes.

Two streams, one per task kind:

- :class:`Seq2SeqStream`: token-budget batches of (source, target) pairs from
  :class:`qkv.data.TokenBudgetBatcher` (batching by length, Vaswani et al. 2017, section 5.1).
- :class:`LMStream`: ``batch_size`` random windows of ``context + 1`` tokens from one long token stream
  (the sampling of nanoGPT's ``get_batch``), drawn with a private ``torch.Generator``.

Every process computes the same *global* batch and keeps the rows ``rank::world``; it also knows the
global number of target tokens, so each process can scale its summed loss such that DDP's gradient
average equals the per-token mean over the whole global batch. That is what makes N processes equal one
process with the same global batch. ``state_dict()`` is JSON-able data plus tensors: the data position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qkv.data.batching import TokenBudgetBatcher, make_batch, seq2seq_lengths


@dataclass
class StepBatch:
    """One process's share of a global batch.

    ``src (B, T_s) | None``; ``tgt (B, T_t)`` (seq2seq: BOS ... EOS padded; lm: a window of T+1 tokens);
    ``global_tokens``: target tokens in the whole global batch; ``weight``: 0 when this process got no
    real rows (it then runs one dummy row so DDP still sees every parameter's gradient).
    """

    src: torch.Tensor | None
    tgt: torch.Tensor
    global_tokens: int
    weight: float = 1.0


class Seq2SeqStream:
    def __init__(
        self,
        src_ids: Sequence[Sequence[int]],
        tgt_ids: Sequence[Sequence[int]],
        max_tokens: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.src_ids, self.tgt_ids = src_ids, tgt_ids
        self.batcher = TokenBudgetBatcher(seq2seq_lengths(src_ids, tgt_ids), max_tokens, seed=seed)
        self.rank, self.world = rank, world
        self._it = iter(self.batcher)

    def next(self) -> StepBatch:
        index = next(self._it, None)
        if index is None:  # epoch finished: the batcher has moved on to the next one
            self._it = iter(self.batcher)
            index = next(self._it)
        global_tokens = sum(len(self.tgt_ids[i]) + 1 for i in index)  # targets: tokens + EOS
        mine, weight = index[self.rank :: self.world], 1.0
        if not mine:
            mine, weight = index[:1], 0.0
        batch = make_batch(mine, self.src_ids, self.tgt_ids)
        return StepBatch(batch.src, batch.tgt, global_tokens, weight)

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return self.batcher.state_dict(), {}

    def load_state_dict(self, data: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.batcher.load_state_dict(data)
        self._it = iter(self.batcher)

    @property
    def epoch(self) -> int:
        return self.batcher.epoch


class LMStream:
    def __init__(
        self, ids: torch.Tensor, batch_size: int, context: int, seed: int, rank: int = 0, world: int = 1
    ) -> None:
        if len(ids) < context + 2:
            from qkv.errors import UserError

            raise UserError(f"training text has {len(ids)} tokens, fewer than training.context + 2 = {context + 2}")
        self.ids, self.batch_size, self.context = ids, batch_size, context
        self.rank, self.world = rank, world
        self.generator = torch.Generator().manual_seed(seed)
        self.windows_drawn = 0

    def next(self) -> StepBatch:
        starts = torch.randint(len(self.ids) - self.context - 1, (self.batch_size,), generator=self.generator)
        self.windows_drawn += self.batch_size
        offsets = torch.arange(self.context + 1)
        windows = self.ids[starts[:, None] + offsets]  # (B, T + 1)
        mine, weight = windows[self.rank :: self.world], 1.0
        if len(mine) == 0:
            mine, weight = windows[:1], 0.0
        return StepBatch(None, mine, self.batch_size * self.context, weight)

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return {"windows_drawn": self.windows_drawn}, {"data.generator": self.generator.get_state()}

    def load_state_dict(self, data: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.windows_drawn = int(data["windows_drawn"])
        self.generator.set_state(tensors["data.generator"])

    @property
    def epoch(self) -> float:
        return self.windows_drawn * self.context / max(len(self.ids), 1)
