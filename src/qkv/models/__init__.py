"""qkv's models: the Transformer family (encoder-decoder, decoder-only, encoder-only) and the recurrent
encoder-decoders it replaced, all behind one decoding interface (see ``docs/models.md``).

``build_model(config, src_vocab, tgt_vocab)`` turns a :class:`ModelConfig` into a model.
"""

from qkv.models.builder import build_model
from qkv.models.config import MODEL_NAMES, ModelConfig
from qkv.models.decoder_only import DecoderOnlyLM
from qkv.models.encoder_decoder import Transformer
from qkv.models.encoder_only import EncoderOnly
from qkv.models.output import Attentions, Encoded, ModelOutput
from qkv.models.transformer_stacks import DecoderState

__all__ = [
    "MODEL_NAMES",
    "Attentions",
    "DecoderOnlyLM",
    "DecoderState",
    "Encoded",
    "EncoderOnly",
    "ModelConfig",
    "ModelOutput",
    "Transformer",
    "build_model",
]
