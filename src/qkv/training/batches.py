"""Training batches that can be resumed exactly and split across processes.

Two streams, one per task kind:

- :class:`Seq2SeqStream`: token-budget batches of (source, target) pairs from
  :class:`qkv.data.TokenBudgetBatcher` (batching by length, Vaswani et al. 2017, section 5.1).
- :class:`LMStream`: ``batch_size`` random windows of ``context + 1`` tokens from one long token stream
  (the sampling of nanoGPT's ``get_batch``), drawn with a private ``torch.Generator``.
- :class:`LMSegmentStream`: truncated backpropagation through time for recurrent language models
  (Zaremba et al. 2014): the token stream cut into ``batch_size`` parallel streams, read in consecutive
  segments, with the recurrent state carried (detached) from one step to the next.

Every process computes the same *global* batch and keeps the rows ``rank::world``; it also knows the
global number of target tokens, so each process can scale its summed loss such that DDP's gradient
average equals the per-token mean over the whole global batch. That is what makes N processes equal one
process with the same global batch. ``state_dict()`` is JSON-able data plus tensors: the data position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from qkv.data.batching import TokenBudgetBatcher, make_batch, seq2seq_lengths


@dataclass
class StepBatch:
    """One process's share of a global batch.

    ``src (B, T_s) | None``; ``tgt (B, T_t)`` (seq2seq: BOS ... EOS padded; lm: a window of T+1 tokens);
    ``global_tokens``: target tokens in the whole global batch; ``weight``: 0 when this process got no
    real rows (it then runs one dummy row so DDP still sees every parameter's gradient).

    Truncated BPTT (:class:`LMSegmentStream`) only: ``carried`` says the segment continues the previous
    one, and ``state`` is the recurrent state to start from (``None``: the zero state); the loss function
    sets ``final_state`` (detached) after the forward pass, for the stream to carry into the next step.
    """

    src: torch.Tensor | None
    tgt: torch.Tensor
    global_tokens: int
    weight: float = 1.0
    carried: bool = False
    state: Any = None
    final_state: Any = None


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


class LMSegmentStream:
    """Consecutive segments of ``batch_size`` parallel token streams, for truncated BPTT.

    The training tokens are cut into ``B = batch_size`` contiguous streams of ``n = len(ids) // B`` tokens
    (row ``b`` holds tokens ``b n .. (b + 1) n - 1``), and step ``k`` of an epoch reads tokens
    ``k T .. k T + T`` of every row (``T = context``: ``T`` inputs, their ``T`` next tokens as targets).
    The next segment starts where this one's inputs ended, so after each step the model's final state is
    handed back with :meth:`carry` and becomes the next segment's starting state: gradients flow through
    ``T`` steps, the state through the whole epoch (Zaremba et al. 2014, section 4: "we unroll the LSTM for
    35 steps" and initialise each minibatch's state with the previous one's final state). A new epoch
    starts again from the first token with the zero state. The order is fixed, so there is no generator:
    the position and the carried state are the whole data state (both are checkpointed).
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, context: int) -> None:
        self.batch_size, self.context = batch_size, context
        per_row = len(ids) // batch_size
        if per_row < context + 1:
            from qkv.errors import UserError

            raise UserError(
                f"training text has {len(ids)} tokens: cut into training.batch_size = {batch_size} streams, each"
                f" has {per_row}, fewer than training.context + 1 = {context + 1}"
            )
        self.rows = ids[: batch_size * per_row].view(batch_size, per_row)  # (B, n): B contiguous streams
        self.segments_per_epoch = (per_row - 1) // context
        self.segments_read = 0  # over all epochs
        self.state: Any = None  # the state after the last segment read (None: start from zeros)

    def next(self) -> StepBatch:
        index = self.segments_read % self.segments_per_epoch
        if index == 0:  # a new epoch starts from the first token, with the zero state
            self.state = None
        start = index * self.context
        segment = self.rows[:, start : start + self.context + 1]  # (B, T + 1)
        self.segments_read += 1
        return StepBatch(None, segment, self.batch_size * self.context, carried=True, state=self.state)

    def carry(self, final_state: Any) -> None:
        """The state the model ended the last segment with: the next segment starts from it."""
        self.state = final_state

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        tensors = {}
        if self.state is not None:
            tensors["data.carry.hidden"] = self.state.hidden
            if self.state.cell is not None:
                tensors["data.carry.cell"] = self.state.cell
        return {"segments_read": self.segments_read, **self._geometry()}, tensors

    def load_state_dict(self, data: dict, tensors: dict[str, torch.Tensor]) -> None:
        from qkv.models.recurrent_decoder import RecurrentState

        for key, value in self._geometry().items():  # the position and the carried state only mean something in these
            if key in data and data[key] != value:
                raise ValueError(
                    f"the carried state was saved for {key} = {data[key]}, this run has {value}: a truncated-BPTT run "
                    "cannot change training.batch_size, training.context or its training text when it resumes"
                )
        self.segments_read = int(data["segments_read"])
        hidden = tensors.get("data.carry.hidden")
        self.state = None if hidden is None else RecurrentState(hidden=hidden, cell=tensors.get("data.carry.cell"))

    def _geometry(self) -> dict[str, int]:
        """What the position and the carried state are relative to (saved, and checked on resume)."""
        return {"batch_size": self.batch_size, "context": self.context, "row_tokens": self.rows.size(1)}

    @property
    def epoch(self) -> float:
        return self.segments_read / self.segments_per_epoch
