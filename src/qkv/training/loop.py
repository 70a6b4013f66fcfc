"""The training loop: plain PyTorch, read top to bottom.

One optimizer step is: set the learning rate (Noam warmup + inverse square root from Vaswani et al. 2017,
section 5.3, or cosine) -> for each of ``grad_accum`` micro-batches, forward, label-smoothed
cross-entropy (Szegedy et al. 2016; Vaswani et al. section 5.4), backward -> clip the gradient norm ->
AdamW (Loshchilov & Hutter 2019). Every ``eval.every`` steps the model is scored with the task's metric;
the best weights go to ``checkpoints/best``, everything needed to resume to ``checkpoints/last``, and
training stops early after ``eval.patience`` evaluations without improvement.

The loss of a step is the mean over all target tokens of the *global* batch, so gradient accumulation
and N processes under DistributedDataParallel give the same update as one process with one big batch.
Resuming restores weights, the optimizer state (AdamW moments, SGD momentum), every RNG and the data
position, so on CPU a run that was killed and resumed ends with the same weights, bit for bit, as one
that was never interrupted.
``checkpoints/last`` is also written every ``training.save_every`` steps and every
``training.save_every_seconds`` of wall-clock time, so a crash loses little; the previous ``last`` is kept
as ``checkpoints/previous`` (a hard link, no extra copy), for the case that the newest proves bad.

What ``--resume`` does (docs/reliability.md lists every case with its test):

- a run whose last checkpoint records that it is complete (``max_steps`` reached, or early stopped) does
  nothing and says so;
- a run that stopped before its first checkpoint starts again from the beginning, exactly like a fresh run;
- after a NaN/inf loss or gradient (or non-finite weights), ``last`` is a checkpoint known to be good --
  finite weights, from which the next step's loss and gradients were finite -- so resuming with a lower
  learning rate works.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qkv.data.tasks import cap as random_subset
from qkv.data.tokenizers import vocabulary_fingerprint
from qkv.errors import UserError
from qkv.training import checkpoint as ckpt
from qkv.training import distributed, rng
from qkv.training.batches import LMSegmentStream, LMStream, Seq2SeqStream, StepBatch
from qkv.training.config import Config, save_config
from qkv.training.evaluate import evaluate_lm, evaluate_seq2seq, primary
from qkv.training.interrupt import StopRequest
from qkv.training.losses import token_cross_entropy
from qkv.training.metrics_log import MetricsLog
from qkv.training.run import CONFIG_FILE, open_task, split_data
from qkv.training.schedule import learning_rate


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def train(config: Config, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train one run into directory ``out``; returns the final evaluation and the best result (and
    ``complete``, saying why, when ``resume`` finds the run already complete: then nothing is trained)."""
    return _run(config, Path(out), resume, progress, None)


def train_until(
    config: Config, out: str | Path, stop: Callable[[int, dict[str, float]], bool], *, progress: bool = True
) -> dict[str, Any]:
    """:func:`train`, also stopping after the first evaluation for which ``stop(step, metrics)`` is True
    (after that evaluation's save; ``qkv bench quality`` stops at its target this way)."""
    return _run(config, Path(out), False, progress, stop)


def _run(config: Config, out: Path, resume: bool, progress: bool, on_eval) -> dict[str, Any]:
    dist = distributed.setup(config.training.device)
    try:
        return _train(config, out, resume, progress, dist, on_eval)
    finally:
        distributed.teardown(dist)


def _train(
    config: Config, out: Path, resume: bool, progress: bool, dist: distributed.Dist, on_eval=None
) -> dict[str, Any]:
    tc, ec = config.training, config.eval
    checkpoints = out / "checkpoints"
    last_path, best_path = checkpoints / "last.safetensors", checkpoints / "best.safetensors"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory (a run is a folder)")
    if dist.is_main:  # a kill in the middle of a save leaves its temporary file behind: clear those first
        for orphan in ckpt.remove_orphans(checkpoints):
            print(f"removed {orphan}, left by a save that was interrupted", file=sys.stderr)
    resume = _has_checkpoint_to_resume(out, last_path, resume, dist)
    last_state = _last_state(last_path) if resume else None  # (reads and verifies the whole file: once)
    if last_state is not None and dist.is_main:
        _recreate_step_checkpoint(last_path, last_state, config)
    if resume and (done := _complete(last_state, config)) is not None:
        if dist.is_main:
            print(f"{out}: the run is complete ({done['why']}); --resume has nothing to do", file=sys.stderr)
            if not (checkpoints / "averaged.safetensors").exists():  # a kill came between the last save and it
                _write_average(checkpoints, tc.average_last)
        return {"step": done["step"], "best": done["best"], "metrics": {}, "complete": done["why"]}

    if tc.carry_state and dist.enabled:  # each process would carry its own rows' state; only rank 0 saves
        raise UserError("training.carry_state runs in one process (not under torchrun)")

    # ---- data and tokenizers ----------------------------------------------------------------------
    rng.seed_everything(tc.seed)
    task = open_task(config.task)
    train_data = split_data(task, "train", config.task.max_train_examples)
    valid_data = split_data(task, "valid", config.task.max_eval_examples)
    src_tok, tgt_tok = _tokenizers(task, train_data, out, resume)
    if resume:  # the tokenizers read back (or built again) must be the ones the checkpoint was trained with
        ckpt.check_vocabulary(last_path, {"src": src_tok, "tgt": tgt_tok}, out / "tokenizer")
    vocabulary = {"src": vocabulary_fingerprint(src_tok), "tgt": vocabulary_fingerprint(tgt_tok)}
    if config.model.copy and not _same_vocabulary(src_tok, tgt_tok):
        raise UserError(
            "model.copy points at source tokens, so source and target need one vocabulary: "
            f"this task built {src_tok.vocab_size} source and {tgt_tok.vocab_size} target tokens",
            hint="summarization: set task.options.shared_vocab: true",
        )

    stream: Seq2SeqStream | LMStream | LMSegmentStream
    if task.kind == "lm" and tc.carry_state:
        train_ids = torch.tensor(tgt_tok.encode(train_data), dtype=torch.long)
        stream = LMSegmentStream(train_ids, tc.batch_size, tc.context)
    elif task.kind == "lm":
        train_ids = torch.tensor(tgt_tok.encode(train_data), dtype=torch.long)
        stream = LMStream(train_ids, tc.batch_size, tc.context, tc.seed, dist.rank, dist.world)
    else:
        src_ids, tgt_ids = encode_pairs(train_data, src_tok, tgt_tok, config)
        stream = Seq2SeqStream(src_ids, tgt_ids, tc.max_tokens, tc.seed, dist.rank, dist.world)

    # ---- model and optimizer ------------------------------------------------------------------------
    from qkv.models.builder import build_model

    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size).to(dist.device)
    optimizer = build_optimizer(model, config)
    if dist.enabled:  # different dropout masks per process, identical initial weights (seeded above)
        torch.manual_seed(tc.seed + dist.rank)

    state = {"step": 0, "tokens": 0, "best": None, "bad_evals": 0, "elapsed": 0.0}
    if resume:
        state = _restore(last_path, model, optimizer, stream, dist, out / CONFIG_FILE)
    if dist.is_main:  # only now: a resume refused above (another optimizer, model...) leaves the run as it was
        _write_run_files(out, config, src_tok, tgt_tok)
    log = MetricsLog(out, enabled=dist.is_main, truncate_after=state["step"] if resume else 0)

    train_model: nn.Module = model
    if tc.compile:
        train_model = torch.compile(train_model)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.device.index] if dist.device.type == "cuda" else None
        train_model = DistributedDataParallel(train_model, device_ids=ids)
    # auto is bf16 autocast on CUDA, fp32 on CPU: whether bf16 pays on a CPU depends on its matrix units
    # (with AMX it can be several times faster, without it 1.2-1.4x slower; docs/benchmarks.md), so a
    # CPU run asks for it with training.precision=bf16
    use_bf16 = tc.precision == "bf16" or (tc.precision == "auto" and dist.device.type == "cuda")

    # ---- the loop -----------------------------------------------------------------------------------
    bar = _progress_bar(tc.max_steps, state["step"], enabled=progress and dist.is_main)
    step, result = state["step"], {}
    window_tokens, window_start = 0, time.perf_counter()
    started = time.perf_counter() - state["elapsed"]
    saved_at = time.monotonic()

    def diverged(what: str, finite_through: int, micro: list[StepBatch] | None = None) -> TrainingDiverged:
        """Stop training: keep a checkpoint known to be good, and name it. ``micro`` are the batches of a
        step whose loss was not finite; ``last`` may be checked by running that step again from it."""
        bar.close()

        def replay(path: Path) -> bool:
            return _replay_is_finite(path, model, train_model, micro, task.kind, config, dist, use_bf16)

        can_replay = micro is not None and not dist.enabled  # (one process: the others' batches are elsewhere)
        kept = (
            _keep_good_checkpoint(checkpoints, finite_through, replay if can_replay else None)
            if dist.is_main
            else "(see rank 0)"
        )
        return _divergence_error(what, kept, out)

    with StopRequest() as stop_request:  # Ctrl-C / SIGTERM: finish this step, save, then stop
        while step < tc.max_steps:
            step += 1
            lr = learning_rate(step, config.optim.lr, config.schedule, tc.max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr

            micro = [stream.next() for _ in range(tc.grad_accum)]
            step_tokens = sum(m.global_tokens for m in micro)
            try:
                loss_value, grad_norm = train_step(
                    train_model, model, optimizer, micro, task.kind, config, dist, use_bf16, step=step
                )
            except NotFinite as err:  # err.replay: a bad loss or gradient, so the weights of step - 1 are suspect
                raise diverged(str(err), step - 1 if err.replay else step, micro if err.replay else None) from None
            if isinstance(stream, LMSegmentStream):  # truncated BPTT: the next segment starts from this state
                stream.carry(micro[-1].final_state)

            state["tokens"] += step_tokens
            window_tokens += step_tokens
            if step % tc.log_every == 0 or step == tc.max_steps:
                now = time.perf_counter()
                speed = window_tokens / max(now - window_start, 1e-9)
                window_tokens, window_start = 0, now
                log.write(
                    {
                        "step": step,
                        "split": "train",
                        "loss": loss_value,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tokens_per_s": speed,
                        "tokens": state["tokens"],
                        "epoch": stream.epoch,
                        "time": now - started,
                    }
                )
                bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{speed:,.0f}", lr=f"{lr:.2e}")
            bar.update(1)

            evaluate_now = step % ec.every == 0 or step == tc.max_steps
            stop = reached = False
            if evaluate_now:
                if dist.is_main:
                    result = _evaluate(model, task, valid_data, src_tok, tgt_tok, config, out, step)
                    log.write({"step": step, "split": "valid", **result["metrics"]})
                    stop = _track_best(state, result, step, ec.patience, model, best_path, vocabulary)
                    bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items()))
                    if on_eval is not None and on_eval(step, result["metrics"]):
                        stop = reached = True
                stop = dist.broadcast_flag(stop)
                reached = dist.broadcast_flag(reached)
            interrupted = dist.broadcast_flag(stop_request.requested)
            clock_due = dist.broadcast_flag(0 < tc.save_every_seconds <= time.monotonic() - saved_at)
            finished = "target" if reached else "early_stop" if stop else "max_steps" if step == tc.max_steps else None
            if dist.is_main and (
                evaluate_now or interrupted or clock_due or finished or (tc.save_every and step % tc.save_every == 0)
            ):
                state.update(step=step, elapsed=time.perf_counter() - started, finished=finished)
                # the averaged checkpoint reads only the scheduled saves, never one a Ctrl-C or the clock
                # made, so it does not depend on when the run was interrupted or how fast the machine is
                scheduled = bool(finished) or (step % tc.save_every == 0 if tc.save_every else evaluate_now)
                _save(last_path, model, optimizer, stream, state, tc.average_last if scheduled else 0, vocabulary)
                saved_at = time.monotonic()
            dist.barrier()
            if interrupted:
                bar.close()
                if dist.is_main:
                    print(
                        f"interrupted at step {step}: saved {last_path}; continue with "
                        f"`qkv train {out} --out {out} --resume`",
                        file=sys.stderr,
                    )
                raise KeyboardInterrupt
            if stop:
                if reached:
                    bar.write(f"stopping at step {step}: the target is reached")
                else:
                    bar.write(f"early stopping at step {step}: no improvement in {ec.patience} evaluations")
                break
    bar.close()

    if dist.is_main:
        _write_average(checkpoints, tc.average_last)
    log.close()
    return {"step": step, "best": state["best"], "metrics": result.get("metrics", {})}


def _write_run_files(out: Path, config: Config, src_tok, tgt_tok) -> None:
    """``config.yaml`` and the tokenizers, each written atomically. Called once every check of a resume has
    passed: written before, a refused ``--resume --set ...`` would leave its settings in ``config.yaml``,
    and every later plain ``--resume`` would be refused the same way."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out}: cannot create the run directory ({err.strerror})") from None
    save_config(config, out / CONFIG_FILE)
    src_tok.save(out / "tokenizer" / "src")
    tgt_tok.save(out / "tokenizer" / "tgt")


# ---- what --resume finds ------------------------------------------------------------------------------


def _has_checkpoint_to_resume(out: Path, last_path: Path, resume: bool, dist: distributed.Dist) -> bool:
    """Whether to continue from ``checkpoints/last``.

    ``--resume`` of a run that stopped before its first checkpoint (its ``config.yaml`` is there, no
    checkpoint yet) starts it again from the beginning -- what that attempt wrote is cleared, so the run
    ends exactly like one that was never interrupted. A directory with no run at all is an error. A fresh
    run (no ``--resume``) into such a directory clears that attempt too (and says so), rather than refusing:
    it was asked to train this recipe here, and already replaces the config and tokenizers; appended to, the
    old log and samples would tell two histories as one."""
    if not resume:
        if last_path.exists():
            raise UserError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if dist.is_main and _has_earlier_attempt(out):
            print(
                f"{out}: holds an attempt that left no checkpoint to resume (it stopped before its first save, "
                "or diverged); starting afresh: its metrics.jsonl, samples.txt and checkpoints are removed "
                "(a diverged checkpoint is kept)",
                file=sys.stderr,
            )
            _clear_attempt(out)
        return False
    if last_path.exists():
        return True
    if not (out / CONFIG_FILE).is_file():
        raise UserError(f"--resume: {last_path} does not exist and {out} holds no run (nothing to resume)")
    if dist.is_main:
        print(
            f"--resume: {out} has no checkpoint yet (the run stopped before its first save); "
            "starting it from the beginning",
            file=sys.stderr,
        )
        _clear_attempt(out)
    return False


def _has_earlier_attempt(out: Path) -> bool:
    """Whether ``out`` holds what an earlier ``qkv train`` wrote before it died without a checkpoint. A fresh
    run starts it clean, as ``--resume`` does: appended to, the old log would tell two histories at once."""
    return any((out / name).exists() for name in (CONFIG_FILE, "metrics.jsonl", "samples.txt"))


def _clear_attempt(out: Path) -> None:
    """Remove what an attempt that left no checkpoint wrote (log lines, samples, best weights), so that
    starting again leaves the directory as a fresh run would (a ``diverged`` checkpoint is kept)."""
    for name in ("metrics.jsonl", "samples.txt"):
        (out / name).unlink(missing_ok=True)
    folder = out / "checkpoints"
    for name in ("best", "previous", "averaged"):
        for suffix in (".safetensors", ".json"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
    for path in folder.glob("step-*.safetensors"):
        path.unlink()


def _last_state(path: Path) -> dict | None:
    """The training state in the header of ``checkpoints/last`` (None: weights only)."""
    state = ckpt.load_state(path)
    if state is not None and not isinstance(state.get("step"), int):
        raise UserError(f"{path}: the training state in its header has no integer 'step' (not written by qkv train?)")
    return state


def _complete(state: dict | None, config: Config) -> dict | None:
    """``{"step", "best", "why"}`` when the run whose last checkpoint holds ``state`` is complete, else None.

    Complete means early stopped (recorded in the checkpoint as ``finished``), or ``step`` has reached
    ``training.max_steps`` (so a larger ``--max-steps`` continues a finished run)."""
    if state is None:
        return None  # weights only: _restore says so
    step, finished = state["step"], state.get("finished")
    if "finished" not in state:  # written before completion was recorded: early stopping shows in the counter
        patience = config.eval.patience
        finished = "early_stop" if patience and state.get("bad_evals", 0) >= patience else None
    if finished == "early_stop":
        why = f"early stopped at step {step}: no improvement in {state.get('bad_evals')} evaluations"
    elif step >= config.training.max_steps:
        why = f"step {step} of max_steps {config.training.max_steps}"
    else:
        return None
    return {"step": step, "best": state.get("best"), "why": why}


# ---- one optimizer step --------------------------------------------------------------------------------


ADAMW_IMPLEMENTATIONS = ("fused", "foreach", "for-loop")


def build_optimizer(model: nn.Module, config: Config, *, implementation: str = "fused") -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices only (biases, norms and 1-d parameters are not decayed), or,
    with ``optim.name: sgd``, plain SGD (Zaremba et al. 2014's optimizer) with the same decay split.

    ``implementation``: PyTorch's ``fused`` kernel (one pass over each tensor for the whole update; the
    default, measured faster on CPU in docs/benchmarks.md), its multi-tensor ``foreach`` one, or the
    single-tensor ``for-loop`` (PyTorch's own default on CPU). All three compute the same update."""
    if implementation not in ADAMW_IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {ADAMW_IMPLEMENTATIONS}, got {implementation!r}")
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optim.name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.optim.lr,
            momentum=config.optim.momentum,
            fused=implementation == "fused",
            foreach=implementation == "foreach",
        )
    return torch.optim.AdamW(
        groups,
        lr=config.optim.lr,
        betas=tuple(config.optim.betas),
        eps=config.optim.eps,
        fused=implementation == "fused",
        foreach=implementation == "foreach",
    )


class NotFinite(Exception):
    """A step's loss, gradients or updated weights were not finite. ``replay``: the weights the step
    started from are suspect too (loss or gradients), so the step may be run again from a checkpoint."""

    def __init__(self, what: str, replay: bool) -> None:
        super().__init__(what)
        self.replay = replay


def train_step(
    train_model: nn.Module,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    micro: list[StepBatch],
    kind: str,
    config: Config,
    dist: distributed.Dist,
    use_bf16: bool = False,
    *,
    step: int = 0,
) -> tuple[float, float | None]:
    """One optimizer step over the micro-batches ``micro`` (the learning rate is already set): forward and
    backward of each, check loss and gradients are finite, clip, AdamW, check the new weights are finite.
    Returns ``(loss, grad_norm | None)``; raises :class:`NotFinite` (the loop keeps a good checkpoint)."""
    step_tokens = sum(m.global_tokens for m in micro)
    loss_value = _step_loss(train_model, micro, step_tokens, kind, config, dist, use_bf16)
    if not _finite_step(loss_value, model):  # computed from the weights of step - 1: suspect those too
        bad = f"loss is {loss_value}" if not math.isfinite(loss_value) else "the gradients are not finite"
        if math.isfinite(loss_value):
            bad += f" (loss {loss_value})"
        raise NotFinite(f"{bad} at step {step}", replay=True)
    grad_norm = None
    if config.optim.clip_norm is not None:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.clip_norm))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if not _finite(model.parameters()):  # too large a step from good weights: never save these
        raise NotFinite(f"the update of step {step} made the weights non-finite (loss {loss_value})", replay=False)
    return loss_value, grad_norm


def _step_loss(
    train_model: nn.Module,
    micro: list[StepBatch],
    step_tokens: int,
    kind: str,
    config: Config,
    dist: distributed.Dist,
    use_bf16: bool,
) -> float:
    """The loss of one optimizer step (mean over the target tokens of the global batch), from its
    micro-batches and all processes; their gradients accumulate in the parameters' ``.grad``."""
    loss_value = 0.0
    for i, mb in enumerate(micro):
        sync = i == len(micro) - 1 or not dist.enabled
        with (
            contextlib.nullcontext() if sync else train_model.no_sync(),
            torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=use_bf16),
        ):
            summed = _loss_sum(train_model, mb, kind, config.optim.label_smoothing, dist.device)
            loss = summed * (dist.world * mb.weight / step_tokens)
        loss.backward()
        loss_value += loss.item() / dist.world
    return dist.sum(loss_value)


def _finite_step(loss_value: float, model: nn.Module) -> bool:
    """Whether a step's loss and gradients are finite: then the weights it started from are good."""
    return math.isfinite(loss_value) and _finite(p.grad for p in model.parameters() if p.grad is not None)


def _finite(tensors) -> bool:
    """Whether every floating-point value of ``tensors`` is finite, read from their sums (NaN and inf carry
    through a sum): one device sync, several times faster than ``isfinite`` on every element. A sum past
    the float32 range (values near 1e38 / size, which no finite loss survives) counts as not finite."""
    sums = [t.detach().float().sum() for t in tensors if t.is_floating_point()]
    return not sums or math.isfinite(float(torch.stack(sums).double().sum()))


def loss_sum(model: nn.Module, mb: StepBatch, kind: str, smoothing: float, device: torch.device) -> torch.Tensor:
    """Summed (label-smoothed) cross-entropy over the target tokens of one micro-batch."""
    tgt = mb.tgt.to(device, non_blocking=True)
    if kind == "lm" and mb.carried:  # truncated BPTT: start from the carried state, hand on the final one
        out = model(tgt[:, :-1], state=None if mb.state is None else mb.state.to(device))
        mb.final_state = out.state.detach()
    elif kind == "lm":
        out = model(tgt[:, :-1])
    else:
        out = model(mb.src.to(device, non_blocking=True), tgt[:, :-1])
    # logits (B, T, V), scored against the next tokens (B, T)
    return token_cross_entropy(out.logits, tgt[:, 1:], label_smoothing=smoothing, normalised=out.normalised)


_loss_sum = loss_sum  # the name the step calls (the fault-injection tests replace it)


def _evaluate(model, task, valid_data, src_tok, tgt_tok, config: Config, out: Path, step: int) -> dict:
    ec = config.eval
    if task.kind == "lm":
        metrics = evaluate_lm(
            model,
            task,
            valid_data,
            tgt_tok,
            config.training.context,
            ec.lm_tokens,
            carry_state=config.training.carry_state,
            stride=ec.lm_stride,
        )
        samples = _lm_samples(model, tgt_tok, ec.samples, config.training.context)
    else:
        examples = random_subset(valid_data, ec.max_examples, seed=0)  # the same examples at every evaluation
        metrics, hyps = evaluate_seq2seq(model, task, examples, src_tok, tgt_tok, beam=ec.beam, max_len=ec.max_len)
        samples = [f"SRC: {e.src}\nREF: {e.tgt}\nHYP: {h}" for e, h in zip(examples[: ec.samples], hyps, strict=False)]
    if samples:
        with open(out / "samples.txt", "a", encoding="utf-8") as f:
            f.write(f"=== step {step}\n" + "\n\n".join(samples) + "\n\n")
    return {"metrics": metrics, "primary": primary(task, metrics)}


def _lm_samples(model: nn.Module, tok, n: int, context: int) -> list[str]:
    """A few continuations of a newline prompt, drawn with a private generator, by the model in eval mode:
    dropout off, as ``qkv generate`` samples, and the global RNG untouched (training goes on exactly as if
    no samples were drawn)."""
    if n == 0:
        return []
    was_training = model.training
    model.eval()
    try:
        return _draw_lm_samples(model, tok, n, context)
    finally:
        model.train(was_training)


def _draw_lm_samples(model: nn.Module, tok, n: int, context: int) -> list[str]:
    from qkv.decoding import sample

    prompt_ids = tok.encode("\n") or [0]
    prompt = torch.tensor([prompt_ids] * n, device=next(model.parameters()).device)  # (n, P)
    generator = torch.Generator(device=prompt.device).manual_seed(0)
    hyps = sample(
        model,
        None,
        max_len=min(context - len(prompt_ids), 100),
        temperature=1.0,
        top_k=None,
        top_p=None,
        generator=generator,
        prompt=prompt,
    )
    return [tok.decode(ids) for ids in hyps.tokens]


def _track_best(
    state: dict, result: dict, step: int, patience: int, model: nn.Module, best_path: Path, vocabulary: dict[str, str]
) -> bool:
    """Update the best result (saving best weights); return True when early stopping should stop."""
    name, value, higher = result["primary"]
    best = state["best"]
    if best is None or (value > best["value"] if higher else value < best["value"]):
        state["best"], state["bad_evals"] = {"metric": name, "value": value, "step": step}, 0
        ckpt.save_checkpoint(best_path, model.state_dict(), vocabulary=vocabulary)
        return False
    state["bad_evals"] += 1
    return patience > 0 and state["bad_evals"] >= patience


def _save(
    path: Path, model: nn.Module, optimizer, stream, state: dict, average_last: int, vocabulary: dict[str, str]
) -> None:
    """Write ``checkpoints/last``; the one it replaces stays as ``previous`` (see _keep_good_checkpoint).
    ``average_last > 0`` also keeps these weights as ``step-K`` for the checkpoint average (the loop passes
    it only for the scheduled saves: every ``save_every`` steps, else every evaluation, and the last step)."""
    if path.exists():
        ckpt.copy_checkpoint(path, path.with_name("previous.safetensors"))
    optim_tensors, optim_data = ckpt.optimizer_to_saveable(optimizer)
    rng_tensors, rng_data = rng.capture()
    data_json, data_tensors = stream.state_dict()
    full = {**state, "optimizer": optim_data, "rng": rng_data, "data": data_json}
    if average_last > 0:  # step-K before last: a kill between the two leaves last at an earlier step, which
        # the resumed run repeats (rewriting step-K), never a last at K without its step-K
        ckpt.save_checkpoint(_step_path(path, state["step"]), model.state_dict(), vocabulary=vocabulary)
    tensors = {**optim_tensors, **rng_tensors, **data_tensors}
    ckpt.save_checkpoint(path, model.state_dict(), tensors, full, vocabulary=vocabulary)
    if average_last > 0:
        for old in sorted(path.parent.glob("step-*.safetensors"))[:-average_last]:
            old.unlink()


def _step_path(last_path: Path, step: int) -> Path:
    """``checkpoints/step-K``: the weights of scheduled save ``step``, kept for the checkpoint average."""
    return last_path.with_name(f"step-{step:08d}.safetensors")


def _recreate_step_checkpoint(last_path: Path, state: dict, config: Config) -> None:
    """Write ``step-K`` from ``last`` (whose training state is ``state``, at step K) when it is missing though
    K was a scheduled save: a run saved by an older qkv (``last`` first, then ``step-K``) and killed between
    the two. Without it the average would silently take another window of steps than an uninterrupted run's."""
    tc = config.training
    if tc.average_last <= 0:
        return
    step = state["step"]
    scheduled = bool(state.get("finished")) or step % (tc.save_every or config.eval.every) == 0  # as in the loop
    missing = _step_path(last_path, step)
    if scheduled and not missing.exists():
        ckpt.save_checkpoint(missing, ckpt.load_weights(last_path), vocabulary=ckpt.read_vocabulary(last_path))
        print(f"wrote {missing} from {last_path} (an interrupted save had left it missing)", file=sys.stderr)


_STATE_KEYS = ("step", "tokens", "best", "bad_evals", "elapsed", "optimizer", "rng", "data")


def _restore(path: Path, model: nn.Module, optimizer, stream, dist: distributed.Dist, config_path: Path) -> dict:
    """Load checkpoint ``path`` into the model, optimizer, data stream and RNGs; anything in it that does
    not fit this run (a tensor missing, extra or shaped differently, a state key missing) is a UserError."""
    weights, tensors, full = ckpt.load_checkpoint(path)
    if full is None:
        raise UserError(f"{path}: holds weights only, no training state to resume from")
    ckpt.fit_weights(model, weights, path, config_path)
    lacking = [k for k in _STATE_KEYS if k not in full]
    if lacking:
        raise UserError(f"{path}: the training state in its header lacks {', '.join(lacking)}")
    unexpected = [k for k in tensors if not k.startswith(("optim.", "rng.", "data."))]
    if unexpected:
        raise UserError(f"{path}: unexpected training tensor(s) {', '.join(ckpt.TRAIN_PREFIX + k for k in unexpected)}")
    try:
        ckpt.optimizer_from_saveable(optimizer, tensors, full["optimizer"], path)
        stream.load_state_dict(full["data"], tensors)
        rng.restore(tensors, full["rng"])
    except KeyError as err:
        raise UserError(f"{path}: the training state lacks {err} (a checkpoint of another run?)") from None
    except (ValueError, TypeError, IndexError, RuntimeError) as err:
        raise UserError(f"{path}: the training state does not fit this run ({' '.join(str(err).split())})") from None
    if dist.enabled:
        torch.manual_seed(int(full.get("step", 0)) * 7919 + dist.rank)
    return {k: full[k] for k in ("step", "tokens", "best", "bad_evals", "elapsed")}


def _write_average(checkpoints: Path, average_last: int) -> None:
    """``checkpoints/averaged``: the mean of the last ``average_last`` step checkpoints (when > 1)."""
    if average_last > 1:
        steps = sorted(checkpoints.glob("step-*.safetensors"))[-average_last:]
        vocabulary = ckpt.read_vocabulary(steps[-1]) if steps else None  # (every step checkpoint records the same)
        ckpt.save_checkpoint(
            checkpoints / "averaged.safetensors", ckpt.average_checkpoints(steps), vocabulary=vocabulary
        )


# ---- after a NaN -------------------------------------------------------------------------------------


def _keep_good_checkpoint(checkpoints: Path, finite_through: int, replay) -> str | None:
    """After a divergence, make ``checkpoints/last`` a good checkpoint; return ``"PATH (step K)"``, or None.

    The checkpoint of step k is good when its weights are finite and step k + 1, computed from them, had a
    finite loss and finite gradients (resuming would repeat both, whatever the learning rate). That is
    known when k < ``finite_through`` (the last step for which both were finite); when k == finite_through,
    ``replay(path)`` runs step k + 1 again from the checkpoint, as ``--resume`` would (a NaN that resuming
    does not repeat leaves it good). ``last`` is tried, then ``previous``; when neither is good, ``last`` is
    renamed ``diverged`` so that ``--resume`` starts from the beginning."""
    last = checkpoints / "last.safetensors"
    for path in (last, checkpoints / "previous.safetensors"):
        if not path.exists():
            continue
        step = ckpt.load_state(path)["step"]
        checked = step < finite_through or (step == finite_through and replay is not None and replay(path))
        if checked and _finite(ckpt.load_weights(path).values()):
            if path != last:
                ckpt.move_checkpoint(path, last)
            return f"{last} (step {step})"
    if last.exists():
        ckpt.move_checkpoint(last, checkpoints / "diverged.safetensors")
    return None


def _replay_is_finite(
    path: Path,
    model: nn.Module,
    train_model: nn.Module,
    micro: list[StepBatch],
    kind: str,
    config: Config,
    dist: distributed.Dist,
    use_bf16: bool,
) -> bool:
    """Whether the step after checkpoint ``path`` has a finite loss and gradients when run from it: its
    weights and RNG state, and ``micro`` (the batches that step drew, the same a resumed run draws)."""
    weights, tensors, full = ckpt.load_checkpoint(path)
    model.load_state_dict(weights)
    model.zero_grad(set_to_none=True)
    rng.restore(tensors, full["rng"])
    loss = _step_loss(train_model, micro, sum(m.global_tokens for m in micro), kind, config, dist, use_bf16)
    return _finite_step(loss, model)


def _divergence_error(what: str, kept: str | None, out: Path) -> TrainingDiverged:
    again = f"qkv train {out} --out {out} --resume --set optim.lr=LOWER"
    if kept is None:
        return TrainingDiverged(
            f"{what}; training stopped. No good checkpoint yet",
            hint=f"`{again}` starts again from the beginning with a lower learning rate "
            "(or raise schedule.warmup_steps, or set optim.clip_norm)",
        )
    return TrainingDiverged(
        f"{what}; training stopped. Last good checkpoint: {kept}",
        hint=f"resume from it with a lower learning rate: `{again}` "
        "(or raise schedule.warmup_steps, or set optim.clip_norm)",
    )


# ---- setup helpers ------------------------------------------------------------------------------------


def _tokenizers(task, train_data, out: Path, resume: bool):
    if resume and (out / "tokenizer" / "tgt").exists():
        from qkv.data.tokenizers import load_tokenizer

        return load_tokenizer(out / "tokenizer" / "src"), load_tokenizer(out / "tokenizer" / "tgt")
    return task.build_tokenizers(train_data)


def _same_vocabulary(src_tok, tgt_tok) -> bool:
    """Whether every id means the same token on both sides (a copied source id is then a target id)."""
    if src_tok is tgt_tok:
        return True
    n = src_tok.vocab_size
    return n == tgt_tok.vocab_size and all(src_tok.token(i) == tgt_tok.token(i) for i in range(n))


def encode_pairs(examples, src_tok, tgt_tok, config: Config) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of the training pairs, dropping pairs too long for the model or the batch budget."""
    src_ids = src_tok.encode_batch([e.src for e in examples])
    tgt_ids = tgt_tok.encode_batch([e.tgt for e in examples])
    limit = min(config.model.max_len, config.training.max_tokens) - 2
    max_src = min(config.task.max_src_len or limit, limit)
    max_tgt = min(config.task.max_tgt_len or limit, limit)
    keep = [i for i in range(len(src_ids)) if 0 < len(src_ids[i]) <= max_src and len(tgt_ids[i]) <= max_tgt]
    if not keep:
        raise UserError(f"no training pair fits task.max_src_len={max_src} / task.max_tgt_len={max_tgt}")
    return [src_ids[i] for i in keep], [tgt_ids[i] for i in keep]


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
