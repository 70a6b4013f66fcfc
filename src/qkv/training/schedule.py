"""Learning-rate schedules as pure functions of the step.

- ``noam``: linear warmup, then inverse-square-root decay -- Vaswani et al. 2017, "Attention Is All You
  Need", section 5.3: ``lr = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)``. Here it is written with
  the peak learning rate made explicit (the peak is reached at ``step == warmup``), which is the same
  curve scaled so that recipes set the peak directly::

      lr(step) = peak * min(step / warmup, sqrt(warmup / step))

- ``cosine``: linear warmup, then half a cosine from ``peak`` down to ``min_lr`` at ``max_steps``
  (Loshchilov & Hutter 2017, "SGDR"; the schedule nanoGPT uses).
- ``constant``: linear warmup, then ``peak``.
- ``step``: linear warmup, then ``peak`` until step ``decay_start``, multiplied by ``decay`` every
  ``decay_every`` steps after it -- Zaremba et al. 2014, "Recurrent Neural Network Regularization": SGD at
  lr 1 for 4 epochs, then halved every epoch (``decay_start`` = 4 epochs, ``decay_every`` = 1 epoch)::

      lr(step) = peak * decay ** ceil((step - decay_start) / decay_every)    (step > decay_start)

Steps count from 1 (the first optimizer update). The loop sets ``group["lr"] = lr(step)`` itself, so
there is no scheduler object whose state must be saved: the step number is the whole state.
"""

from __future__ import annotations

import math

from qkv.training.config import ScheduleConfig


def learning_rate(step: int, peak: float, schedule: ScheduleConfig, max_steps: int) -> float:
    """The learning rate for optimizer step ``step`` (1-based)."""
    step = max(step, 1)
    warmup = schedule.warmup_steps
    if warmup and step < warmup:
        return peak * step / warmup
    if schedule.kind == "noam":
        return peak * math.sqrt(warmup / step) if warmup else peak / math.sqrt(step)
    if schedule.kind == "cosine":
        span = max(max_steps - warmup, 1)
        progress = min((step - warmup) / span, 1.0)
        return schedule.min_lr + 0.5 * (peak - schedule.min_lr) * (1.0 + math.cos(math.pi * progress))
    if schedule.kind == "step" and step > schedule.decay_start:
        decays = (step - schedule.decay_start - 1) // schedule.decay_every + 1  # ceil(past / decay_every)
        return peak * schedule.decay**decays
    return peak
