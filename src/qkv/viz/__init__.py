"""Looking inside attention: heatmaps, the step-by-step Q/K/V walkthrough, head analysis, attention as
search, and the browser explorer.

- :mod:`.capture` -- forward hooks that record every :class:`~qkv.attention.MultiHeadAttention` call.
- :mod:`.walkthrough` -- one token, one head: ``x -> q, k_j, v_j -> q·k_j -> /√d_k -> softmax -> Σ w_j v_j
  -> concat -> out_proj``, recomputed from the module's weights and checked against the forward pass.
- :mod:`.heatmaps` -- plots as pure functions (data in, matplotlib Figure out).
- :mod:`.heads` -- entropy, attention distance, positional shares, importance by ablation.
- :mod:`.search` -- attention as search over sentence embeddings (MiniLM).
- :mod:`.inspector` -- one interface over trained runs and pretrained checkpoints: text in, attention out.
- :mod:`.html` -- self-contained HTML pages; :mod:`.server` -- the explorer.
"""
