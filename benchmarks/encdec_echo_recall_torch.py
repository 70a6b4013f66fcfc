"""Is the encoder-decoder's failure on echoed multi-query recall qkv's, or the architecture's? PyTorch's own
``nn.Transformer`` on the same data, three ways.

The probe (``qkv probe --task assoc-recall --pairs 8 --queries 4 --echo-keys``, T = 31) answers
``ka va kb vb ...``: the decoder reads each echoed key and must output the value that follows that key in
the source. qkv's encoder-decoder stays at keys-right, values-at-chance (docs/compare.md, "Multi-query
recall"). This trains ``torch.nn.Transformer`` (2 + 2 layers, pre-norm, learned positions, 4 heads,
``d_ff = 2 d``, no dropout; Adam 3e-3, batches of 64 drawn from the probe's 50,000 training examples)
with:

- ``bidirectional``: the usual encoder (Vaswani et al. 2017);
- ``causal``: the encoder's self-attention masked causally, each token sees only the ones before it;
- ``previous-token``: bidirectional, but each source token's embedding also gets (a learned embedding
  of) the token before it -- the step a lookup needs handed to the model, a diagnosis, not a model;
- ``local-bias``: bidirectional, with a fixed additive score bias ``-|i - j|`` on every encoder head (ALiBi's
  distance penalty, Press et al. 2022, made symmetric): at initialisation each state is then mostly its
  neighbours, so nearby tokens leave position-specific traces, without the causal mask.

It prints held-out key and value accuracy (300 test examples, teacher-forced) every ``--eval-every`` steps.

    QKV_DATA=../shared/data python benchmarks/encdec_echo_recall_torch.py --steps 2500
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qkv.compare.probes import probe_specs
from qkv.data import get_task
from qkv.data.probes import ProbeTask
from qkv.special import BOS_ID, EOS_ID

ENCODERS = ("bidirectional", "causal", "previous-token", "local-bias")
N_SPECIAL = 4  # pad, bos, eos, unk come first, as in qkv's vocabularies


class EchoRecallData:
    """The probe's examples as id tensors: sources ``(N, T_s)`` and targets ``BOS ka va ... EOS (N, 2Q + 2)``."""

    def __init__(self, length: int) -> None:
        (spec,) = probe_specs("assoc-recall", [length], 50_000, 300, pairs=8, queries=4, echo_keys=True)
        task = get_task(spec.probe, **spec.options)
        assert isinstance(task, ProbeTask)
        train, test = task.examples("train"), task.examples("test")
        symbols = sorted({w for e in train + test for w in f"{e.src} {e.tgt}".split()})
        self.ids = {s: N_SPECIAL + i for i, s in enumerate(symbols)}
        self.vocab = N_SPECIAL + len(symbols)
        self.train_src, self.train_tgt = self._tensors(train)
        self.test_src, self.test_tgt = self._tensors(test)

    def _tensors(self, examples: list) -> tuple[Tensor, Tensor]:
        src = torch.tensor([[self.ids[w] for w in e.src.split()] for e in examples])  # (N, T_s): one length
        tgt = torch.tensor([[BOS_ID, *(self.ids[w] for w in e.tgt.split()), EOS_ID] for e in examples])  # (N, 2Q+2)
        return src, tgt


class TorchEncoderDecoder(nn.Module):
    """``nn.Transformer`` with token and learned position embeddings and an output layer."""

    def __init__(self, vocab: int, d_model: int, encoder: str, max_len: int = 64) -> None:
        super().__init__()
        self.encoder_kind = encoder
        self.src_tokens, self.tgt_tokens = nn.Embedding(vocab, d_model), nn.Embedding(vocab, d_model)
        self.previous = nn.Embedding(vocab, d_model) if encoder == "previous-token" else None
        self.positions = nn.Embedding(max_len, d_model)
        self.transformer = nn.Transformer(d_model, 4, 2, 2, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True)
        self.out = nn.Linear(d_model, vocab)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """``src (B, T_s)``, ``tgt_in (B, T_t)`` -> logits ``(B, T_t, V)``."""
        t_s, t_t = src.shape[1], tgt_in.shape[1]
        x = self.src_tokens(src) + self.positions.weight[:t_s]  # (B, T_s, E)
        if self.previous is not None:  # token i also gets token i - 1's previous-token embedding
            x = x + F.pad(self.previous(src), (0, 0, 1, 0))[:, :-1]  # (B, T_s + 1, E) -> (B, T_s, E)
        y = self.tgt_tokens(tgt_in) + self.positions.weight[:t_t]  # (B, T_t, E)
        encoder_mask = None
        if self.encoder_kind == "causal":
            encoder_mask = nn.Transformer.generate_square_subsequent_mask(t_s)  # (T_s, T_s): -inf above the diagonal
        elif self.encoder_kind == "local-bias":
            offsets = torch.arange(t_s)
            encoder_mask = -(offsets[:, None] - offsets[None, :]).abs().float()  # (T_s, T_s): -|i - j|
        causal_tgt = nn.Transformer.generate_square_subsequent_mask(t_t)
        hidden = self.transformer(x, y, src_mask=encoder_mask, tgt_mask=causal_tgt, tgt_is_causal=True)
        return self.out(hidden)  # (B, T_t, V)


def train_one(data: EchoRecallData, encoder: str, args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(args.seed)
    model = TorchEncoderDecoder(data.vocab, args.d_model, encoder)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98))
    draw = torch.Generator().manual_seed(args.seed)
    curve, start = [], time.perf_counter()
    params = sum(p.numel() for p in model.parameters())
    print(f"{encoder} encoder: {params:,} parameters", flush=True)
    for step in range(1, args.steps + 1):
        rows = torch.randint(len(data.train_src), (args.batch,), generator=draw)
        tgt = data.train_tgt[rows]
        logits = model(data.train_src[rows], tgt[:, :-1])  # (B, T_t, V)
        loss = F.cross_entropy(logits.reshape(-1, data.vocab), tgt[:, 1:].reshape(-1))  # (B*T_t, V)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % args.eval_every == 0:
            model.eval()
            with torch.no_grad():
                predicted = model(data.test_src, data.test_tgt[:, :-1]).argmax(-1)  # (N, T_t)
            model.train()
            gold = data.test_tgt[:, 1:]
            keys = (predicted[:, 0:-1:2] == gold[:, 0:-1:2]).float().mean().item()  # answer tokens 0, 2, 4, 6
            values = (predicted[:, 1:-1:2] == gold[:, 1:-1:2]).float().mean().item()  # answer tokens 1, 3, 5, 7
            row = {"step": step, "loss": loss.item(), "key_accuracy": keys, "value_accuracy": values}
            curve.append(row)
            print(
                f"  step {step:>5}  loss {row['loss']:.3f}  keys {keys:.2f}  values {values:.2f}"
                f"  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", default=",".join(ENCODERS), help=f"comma-separated, of {', '.join(ENCODERS)}")
    parser.add_argument("--length", type=int, default=32, help="probe length (the source has length - 1 tokens)")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    if bad := [e for e in encoders if e not in ENCODERS]:
        parser.error(f"--encoders: unknown {', '.join(bad)}; choose from {', '.join(ENCODERS)}")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="enable_nested_tensor")  # nn.Transformer's note on pre-norm
    # Evaluation runs the model as trained: PyTorch's inference fast path for encoder layers (taken in eval mode
    # without gradients) scored the local-bias encoder at 0.17 on the values while its training loss was 0.000.
    # The fast path's handling of additive attention biases is a known weak spot (pytorch/pytorch#118628).
    torch.backends.mha.set_fastpath_enabled(False)
    data = EchoRecallData(args.length)
    for encoder in encoders:
        train_one(data, encoder, args)


if __name__ == "__main__":
    main()
