"""Looking inside attention: heatmaps, the step-by-step Q/K/V walkthrough, head analysis, attention as
search, and the browser explorer.

- :mod:`.capture` -- forward hooks that record every :class:`~qkv.attention.MultiHeadAttention` call.
- :mod:`.walkthrough` -- one token, one head: ``x -> q, k_j, v_j -> q·k_j -> /√d_k -> softmax -> Σ w_j v_j
  -> concat -> out_proj``, recomputed from the module's weights and checked against the forward pass.
- :mod:`.heatmaps` -- plots as pure functions (data in, matplotlib Figure out).
- :mod:`.heads` -- entropy, attention distance, positional shares, importance by ablation.
- :mod:`.search` -- attention as search over sentence embeddings (MiniLM).
- :mod:`.inspector` -- one interface over trained runs and pretrained checkpoints: text in, attention out.
- :mod:`.recurrent_walkthrough` -- the same for Bahdanau / Luong attention (additive score step by step).
- :mod:`.next_token` -- a language model's next-token probabilities (temperature, top-k).
- :mod:`.inputs` -- example inputs per task, G2P normalisation.
- :mod:`.html` -- self-contained HTML pages; :mod:`.server` -- the explorer.
- :mod:`.notebook` -- the views in Jupyter: ``qkv.viz.head_view(model, text)``, ``qkv.viz.model_view(...)``.
"""

from qkv.viz.notebook import head_view, model_view

__all__ = ["head_view", "model_view"]
