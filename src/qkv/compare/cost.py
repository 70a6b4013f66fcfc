"""What a model costs: parameters, inference latency and throughput, peak memory of training and decoding.

Measured, not estimated. Latency is the mean wall-clock time to decode one sequence on its own (batch 1,
greedy, incremental decoding with the KV cache or the RNN state) -- what a user waiting for one answer
sees. Throughput is generated tokens per second when the whole test set is decoded in batches. Peak
memory comes from :class:`qkv.compare.memory.PeakMemory` (CUDA allocator peak, or the peak-RSS delta on a
CPU) around one training step on a real batch and around one batched decode. Training tokens/s comes from
the training loop itself (see :mod:`qkv.compare.budgeted`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn

from qkv.compare.memory import PeakMemory
from qkv.data.batching import TokenBudgetBatcher, make_batch, seq2seq_lengths
from qkv.special import PAD_ID
from qkv.training.evaluate import translate
from qkv.training.losses import token_cross_entropy


def count_params(model: nn.Module) -> int:
    """Trainable parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_translate(
    model: nn.Module, src_ids: Sequence[Sequence[int]], *, beam: int = 1, max_len: int = 128
) -> tuple[list[list[int]], float]:
    """:func:`qkv.training.evaluate.translate`, timed: ``(hypotheses, seconds)``."""
    device = _device(model)
    _sync(device)
    start = time.perf_counter()
    hyps = translate(model, src_ids, beam=beam, max_len=max_len)
    _sync(device)
    return hyps, time.perf_counter() - start


@torch.no_grad()
def latency(model: nn.Module, src_ids: Sequence[Sequence[int]], max_len: int) -> dict[str, float]:
    """Greedy decoding of each source alone (batch 1): mean and median milliseconds per sequence."""
    times, tokens = [], 0
    translate(model, [src_ids[0]], max_len=max_len)  # warm-up (first-call allocations)
    for ids in src_ids:
        hyps, seconds = timed_translate(model, [ids], max_len=max_len)
        times.append(seconds)
        tokens += len(hyps[0]) + 1  # + EOS
    return {
        "latency_ms": 1000 * statistics.mean(times),
        "latency_median_ms": 1000 * statistics.median(times),
        "latency_sequences": len(times),
        "latency_tokens_per_s": tokens / sum(times),
    }


def _training_batch(
    model: nn.Module, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of ``max_tokens`` with the most rows (a representative full batch): ``(src, tgt)`` on the
    model's device, shapes ``(B, T_s)`` and ``(B, T_t)``."""
    batcher = TokenBudgetBatcher(seq2seq_lengths(src_ids, tgt_ids), max_tokens, seed=0)
    index = max(batcher.batches(0), key=len)
    batch = make_batch(index, src_ids, tgt_ids)
    assert batch.src is not None, "a seq2seq batch has sources"
    device = _device(model)
    return batch.src.to(device), batch.tgt.to(device)


def _forward_backward(model: nn.Module, src: torch.Tensor, tgt: torch.Tensor) -> None:
    """One training forward + backward (teacher forcing, cross-entropy over the non-pad targets)."""
    out = model(src, tgt[:, :-1])  # logits (B, T_t - 1, V)
    normalised = getattr(out, "normalised", False)  # (the loss training computes)
    token_cross_entropy(out.logits, tgt[:, 1:], reduction="mean", normalised=normalised).backward()


def train_step_memory(
    model: nn.Module, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], max_tokens: int
) -> tuple[float | None, str]:
    """Peak extra memory (MiB) of one forward + backward on the first full training batch of ``max_tokens``."""
    src, tgt = _training_batch(model, src_ids, tgt_ids, max_tokens)
    was_training = model.training
    model.train()
    with PeakMemory(_device(model)) as memory:
        _forward_backward(model, src, tgt)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return memory.mib, memory.method


def _lstm_layer_flops(x, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """``aten::mkldnn_rnn_layer`` (PyTorch's CPU LSTM layer): the two gate products at every time step,
    ``2 * T * B * 4H * (I + H)``. ``x`` is time-major ``(T, B, I)``; ``w_ih`` ``(4H, I)``, ``w_hh`` ``(4H, H)``."""
    steps, batch = x[0], x[1]
    return 2 * steps * batch * (w_ih[0] * w_ih[1] + w_hh[0] * w_hh[1])


def _lstm_layer_backward_flops(x, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """Its backward: the gradients of the input and of the weights, twice the forward."""
    return 2 * _lstm_layer_flops(x, w_ih, w_hh)


def train_flops_per_token(
    model: nn.Module, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], max_tokens: int
) -> float | None:
    """Floating-point operations of one training step (forward + backward) per target token.

    Counted, not estimated: PyTorch's :class:`torch.utils.flop_counter.FlopCounterMode` adds up the matrix
    products, convolutions and attention kernels (2 FLOPs per multiply-add) of one forward + backward on a
    full training batch of ``max_tokens``; element-wise work (activations, normalisation, the RNN gates'
    sigmoids, the optimizer) is not counted; PyTorch's CPU LSTM kernel gets its formula here. For a model
    made of linear layers this is the familiar ``6 N`` per token (Kaplan et al. 2020): 2N forward, 4N backward.
    Dropout is off, so the count is exact. Padding positions are computed, and counted, but the division is by
    real (non-pad) target tokens: with padding the figure is what a real token costs, above ``6 N``.
    ``None`` for a recurrent model off the CPU (no formula for the cuDNN RNN kernels: it would count 0).
    """
    from torch.utils.flop_counter import FlopCounterMode

    if _device(model).type != "cpu" and any(isinstance(m, nn.RNNBase) for m in model.modules()):
        return None
    src, tgt = _training_batch(model, src_ids, tgt_ids, max_tokens)
    target_tokens = int((tgt[:, 1:] != PAD_ID).sum())
    was_training = model.training
    model.eval()  # no dropout: the same operations as training, counted deterministically
    # FlopCounterMode has no formula for the CPU LSTM kernel (it would count 0): supply it
    lstm = {
        torch.ops.aten.mkldnn_rnn_layer: _lstm_layer_flops,
        torch.ops.aten.mkldnn_rnn_layer_backward: _lstm_layer_backward_flops,
    }
    with torch.enable_grad(), FlopCounterMode(display=False, custom_mapping=lstm) as counter:
        _forward_backward(model, src, tgt)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return counter.get_total_flops() / max(target_tokens, 1)


def decode_memory(model: nn.Module, src_ids: Sequence[Sequence[int]], max_len: int) -> float | None:
    """Peak extra memory (MiB) of one batched greedy decode of ``src_ids``."""
    with PeakMemory(_device(model)) as memory:
        translate(model, src_ids, max_len=max_len, batch_size=len(src_ids))
    return memory.mib
