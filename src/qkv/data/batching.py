"""Batching: length-bucketed batches under a token budget, padding, and resumable epochs.

Examples of similar length share a batch so padding stays small (the token-based batching of
Vaswani et al. 2017, "Attention Is All You Need", §5.1: "sentence pairs were batched together by
approximate sequence length"). A batch's cost is ``len(batch) * max(length in batch)`` — the padded
tokens it occupies — and never exceeds ``max_tokens``. The order is a pure function of
``(seed, epoch)``, so a run that saves ``state_dict()`` mid-epoch resumes with exactly the batches
it had left.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from qkv.errors import UserError
from qkv.special import BOS_ID, EOS_ID, PAD_ID


class TokenBudgetBatcher:
    """Yields lists of example indices; each list's padded size ``len * max_len`` is ``<= max_tokens``.

    ``lengths[i]`` is example ``i``'s cost in tokens (for seq2seq, the longer of its padded source and
    target). Each epoch: sort by length (ties broken by a seeded shuffle), cut greedily into batches
    under the budget, shuffle the batch order (when ``shuffle``). Iterating yields the rest of the
    current epoch and then moves to the next one.
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int = 0, shuffle: bool = True) -> None:
        if not lengths:
            raise UserError("cannot batch an empty split (no examples)")
        longest = max(range(len(lengths)), key=lambda i: lengths[i])
        if lengths[longest] > max_tokens:
            raise UserError(
                f"example {longest} has {lengths[longest]} tokens, more than the batch budget max_tokens="
                f"{max_tokens}; raise max_tokens or lower the maximum length"
            )
        self.lengths = list(lengths)
        self.max_tokens = max_tokens
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        self._cache: tuple[int, list[list[int]]] | None = None

    def batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch``, in the order they are yielded."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = random.Random(self.seed * 1_000_003 + epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        order.sort(key=lambda i: self.lengths[i])  # stable: the shuffle breaks ties
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i in order:
            new_longest = max(longest, self.lengths[i])
            if current and new_longest * (len(current) + 1) > self.max_tokens:
                batches.append(current)
                current, new_longest = [], self.lengths[i]
            current.append(i)
            longest = new_longest
        if current:
            batches.append(current)
        if self.shuffle:
            rng.shuffle(batches)
        self._cache = (epoch, batches)
        return batches

    def __len__(self) -> int:
        """Number of batches in the current epoch (including those already handed out)."""
        return len(self.batches(self.epoch))

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1
            yield batch
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "num_examples": len(self.lengths),
            "shuffle": int(self.shuffle),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key, mine in (
            ("seed", self.seed),
            ("max_tokens", self.max_tokens),
            ("num_examples", len(self.lengths)),
            ("shuffle", int(self.shuffle)),
        ):
            if state.get(key) != mine:
                raise UserError(f"batcher state has {key}={state.get(key)}, but this run has {key}={mine}")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])


def collate(seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> torch.Tensor:
    """Right-pad token id lists into one ``LongTensor`` of shape ``(B, T)``, ``T`` = longest."""
    width = max((len(s) for s in seqs), default=0)
    rows = [list(s) + [pad_id] * (width - len(s)) for s in seqs]
    return torch.tensor(rows, dtype=torch.long).reshape(len(seqs), width)  # (B, T)


@dataclass
class Batch:
    """One batch: ``src (B, T_s)`` = tokens + EOS (``None`` for LMs), ``tgt (B, T_t)`` = BOS + tokens + EOS,
    right-padded with PAD; ``index`` = the example indices, in row order."""

    src: torch.Tensor | None
    tgt: torch.Tensor
    index: list[int]

    @property
    def src_mask(self) -> torch.Tensor | None:
        """``(B, T_s)`` boolean, True at real (non-pad) source tokens."""
        return None if self.src is None else self.src != PAD_ID

    @property
    def tgt_mask(self) -> torch.Tensor:
        """``(B, T_t)`` boolean, True at real (non-pad) target tokens."""
        return self.tgt != PAD_ID


def seq2seq_lengths(src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]) -> list[int]:
    """Per-example batching cost: the longer of ``len(src) + 1`` (EOS) and ``len(tgt) + 2`` (BOS, EOS)."""
    return [max(len(s) + 1, len(t) + 2) for s, t in zip(src_ids, tgt_ids, strict=True)]


def make_batch(
    index: Sequence[int],
    src_ids: Sequence[Sequence[int]] | None,
    tgt_ids: Sequence[Sequence[int]],
) -> Batch:
    """Build a :class:`Batch` of examples ``index`` from pre-encoded ids (no specials in the inputs)."""
    src = None if src_ids is None else collate([list(src_ids[i]) + [EOS_ID] for i in index])
    tgt = collate([[BOS_ID, *tgt_ids[i], EOS_ID] for i in index])
    return Batch(src=src, tgt=tgt, index=list(index))


def lm_windows(ids: Sequence[int], block_size: int, stride: int | None = None) -> torch.Tensor:
    """Cut a token stream into windows of ``block_size + 1`` tokens, ``(N, block_size + 1)``: inputs are
    ``[:, :-1]`` and next-token targets ``[:, 1:]``. Windows start every ``stride`` tokens (default
    ``block_size``: non-overlapping); a final partial window is dropped."""
    stride = stride or block_size
    n = (len(ids) - 1 - block_size) // stride + 1 if len(ids) > block_size else 0
    if n < 1:
        raise UserError(f"text has {len(ids)} tokens, fewer than one window of {block_size + 1}")
    t = torch.as_tensor(ids[: (n - 1) * stride + block_size + 1], dtype=torch.long)
    return t.unfold(0, block_size + 1, stride)  # (N, block_size + 1)
