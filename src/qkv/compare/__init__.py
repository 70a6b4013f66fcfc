"""`qkv compare`: Transformer and recurrent models on one task, side by side, in one report.

- :mod:`.study` -- the orchestration (sections, checkpoints, Ctrl-C), :func:`.study.run_study`;
- :mod:`.budget` -- equal budgets (seconds, steps, tokens) and the default plans;
- :mod:`.budgeted` -- one model trained under a budget with qkv's own training loop;
- :mod:`.recipes` -- model sizes and per-family optimizer settings;
- :mod:`.cost` and :mod:`.memory` -- parameters, latency, throughput, peak memory;
- :mod:`.scaling` -- step time, memory and sequential steps against sequence length;
- :mod:`.probes` -- accuracy against dependency distance (assoc-recall, copy);
- :mod:`.figures` and :mod:`.report` -- plots as pure functions; HTML, Markdown and JSON output.

See ``docs/compare.md``.
"""
