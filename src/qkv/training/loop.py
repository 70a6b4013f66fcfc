"""The training loop: plain PyTorch, read top to bottom.

One optimizer step is: set the learning rate (Noam warmup + inverse square root from Vaswani et al. 2017,
section 5.3, or cosine) -> for each of ``grad_accum`` micro-batches, forward, label-smoothed
cross-entropy (Szegedy et al. 2016; Vaswani et al. section 5.4), backward -> clip the gradient norm ->
AdamW (Loshchilov & Hutter 2019). Every ``eval.every`` steps the model is scored with the task's metric;
the best weights go to ``checkpoints/best``, everything needed to resume to ``checkpoints/last``, and
training stops early after ``eval.patience`` evaluations without improvement.

The loss of a step is the mean over all target tokens of the *global* batch, so gradient accumulation
and N processes under DistributedDataParallel give the same update as one process with one big batch.
Resuming restores weights, AdamW moments, every RNG and the data position, so on CPU a run that was
killed and resumed ends with the same weights, bit for bit, as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qkv.data.tasks import cap as random_subset
from qkv.errors import UserError
from qkv.special import PAD_ID
from qkv.training import checkpoint as ckpt
from qkv.training import distributed, rng
from qkv.training.batches import LMStream, Seq2SeqStream, StepBatch
from qkv.training.config import Config, save_config
from qkv.training.evaluate import evaluate_lm, evaluate_seq2seq, primary
from qkv.training.interrupt import StopRequest
from qkv.training.metrics_log import MetricsLog
from qkv.training.run import CONFIG_FILE, open_task, split_data
from qkv.training.schedule import learning_rate


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def train(config: Config, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train one run into directory ``out``; returns the final evaluation and the best result."""
    out = Path(out)
    dist = distributed.setup(config.training.device)
    try:
        return _train(config, out, resume, progress, dist)
    finally:
        distributed.teardown(dist)


def _train(config: Config, out: Path, resume: bool, progress: bool, dist: distributed.Dist) -> dict[str, Any]:
    tc, ec = config.training, config.eval
    last_path, best_path = out / "checkpoints" / "last.safetensors", out / "checkpoints" / "best.safetensors"
    if last_path.exists() and not resume:
        raise UserError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    if resume and not last_path.exists():
        raise UserError(f"--resume: {last_path} does not exist (nothing to resume)")

    # ---- data and tokenizers ----------------------------------------------------------------------
    rng.seed_everything(tc.seed)
    task = open_task(config.task)
    train_data = split_data(task, "train", config.task.max_train_examples)
    valid_data = split_data(task, "valid", config.task.max_eval_examples)
    src_tok, tgt_tok = _tokenizers(task, train_data, out, resume)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / CONFIG_FILE)
        src_tok.save(out / "tokenizer" / "src")
        tgt_tok.save(out / "tokenizer" / "tgt")

    if task.kind == "lm":
        train_ids = torch.tensor(tgt_tok.encode(train_data), dtype=torch.long)
        stream: Seq2SeqStream | LMStream = LMStream(
            train_ids, tc.batch_size, tc.context, tc.seed, dist.rank, dist.world
        )
    else:
        src_ids, tgt_ids = _encode_pairs(train_data, src_tok, tgt_tok, config)
        stream = Seq2SeqStream(src_ids, tgt_ids, tc.max_tokens, tc.seed, dist.rank, dist.world)

    # ---- model and optimizer ------------------------------------------------------------------------
    from qkv.models.builder import build_model

    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size).to(dist.device)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.optim.lr, betas=tuple(config.optim.betas), eps=config.optim.eps,
    )
    if dist.enabled:  # different dropout masks per process, identical initial weights (seeded above)
        torch.manual_seed(tc.seed + dist.rank)

    state = {"step": 0, "tokens": 0, "best": None, "bad_evals": 0, "elapsed": 0.0}
    if resume:
        state = _restore(last_path, model, optimizer, stream, dist)
    log = MetricsLog(out, enabled=dist.is_main, truncate_after=state["step"] if resume else 0)

    train_model: nn.Module = model
    if tc.compile:
        train_model = torch.compile(train_model)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.device.index] if dist.device.type == "cuda" else None
        train_model = DistributedDataParallel(train_model, device_ids=ids)
    use_bf16 = dist.device.type == "cuda" and tc.precision in ("auto", "bf16")
    if tc.precision == "bf16" and dist.device.type != "cuda":
        raise UserError("training.precision=bf16 needs a CUDA device (use fp32 or auto on CPU)")

    # ---- the loop -----------------------------------------------------------------------------------
    bar = _progress_bar(tc.max_steps, state["step"], enabled=progress and dist.is_main)
    step, result = state["step"], {}
    window_tokens, window_start = 0, time.perf_counter()
    started = time.perf_counter() - state["elapsed"]
    with StopRequest() as stop_request:  # Ctrl-C / SIGTERM: finish this step, save, then stop
        while step < tc.max_steps:
            step += 1
            lr = learning_rate(step, config.optim.lr, config.schedule, tc.max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr

            micro = [stream.next() for _ in range(tc.grad_accum)]
            step_tokens = sum(m.global_tokens for m in micro)
            loss_value = 0.0
            for i, mb in enumerate(micro):
                sync = i == len(micro) - 1 or not dist.enabled
                with (contextlib.nullcontext() if sync else train_model.no_sync()), \
                        torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                    loss_sum = _loss_sum(train_model, mb, task.kind, config.optim.label_smoothing, dist.device)
                    loss = loss_sum * (dist.world * mb.weight / step_tokens)
                loss.backward()
                loss_value += loss.item() / dist.world
            loss_value = dist.sum(loss_value)
            if not math.isfinite(loss_value):
                bar.close()
                kept = f"{last_path} (step {_saved_step(last_path)})" if last_path.exists() else "no checkpoint yet"
                raise TrainingDiverged(
                    f"loss is {loss_value} at step {step}; training stopped. Last good checkpoint: {kept}",
                    hint="lower optim.lr, raise schedule.warmup_steps or set optim.clip_norm",
                )
            grad_norm = None
            if config.optim.clip_norm is not None:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.clip_norm))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            state["tokens"] += step_tokens
            window_tokens += step_tokens
            if step % tc.log_every == 0 or step == tc.max_steps:
                now = time.perf_counter()
                speed = window_tokens / max(now - window_start, 1e-9)
                window_tokens, window_start = 0, now
                log.write({"step": step, "split": "train", "loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                           "tokens_per_s": speed, "tokens": state["tokens"], "epoch": stream.epoch,
                           "time": now - started})
                bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{speed:,.0f}", lr=f"{lr:.2e}")
            bar.update(1)

            evaluate_now = step % ec.every == 0 or step == tc.max_steps
            stop = False
            if evaluate_now:
                if dist.is_main:
                    result = _evaluate(model, task, valid_data, src_tok, tgt_tok, config, out, step)
                    log.write({"step": step, "split": "valid", **result["metrics"]})
                    stop = _track_best(state, result, step, ec.patience, model, best_path)
                    bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items()))
                stop = dist.broadcast_flag(stop)
            interrupted = dist.broadcast_flag(stop_request.requested)
            if dist.is_main and (evaluate_now or interrupted or (tc.save_every and step % tc.save_every == 0)):
                state["step"], state["elapsed"] = step, time.perf_counter() - started
                _save(last_path, model, optimizer, stream, state, tc.average_last)
            dist.barrier()
            if interrupted:
                bar.close()
                if dist.is_main:
                    print(f"interrupted at step {step}: saved {last_path}; continue with "
                          f"`qkv train {out} --out {out} --resume`", file=sys.stderr)
                raise KeyboardInterrupt
            if stop:
                bar.write(f"early stopping at step {step}: no improvement in {ec.patience} evaluations")
                break
    bar.close()

    if dist.is_main and tc.average_last > 1:
        steps = sorted((out / "checkpoints").glob("step-*.safetensors"))[-tc.average_last :]
        ckpt.save_checkpoint(out / "checkpoints" / "averaged.safetensors", ckpt.average_checkpoints(steps))
    log.close()
    return {"step": step, "best": state["best"], "metrics": result.get("metrics", {})}


# ---- pieces of a step ---------------------------------------------------------------------------------


def _loss_sum(model: nn.Module, mb: StepBatch, kind: str, smoothing: float, device: torch.device) -> torch.Tensor:
    """Summed (label-smoothed) cross-entropy over the target tokens of one micro-batch."""
    tgt = mb.tgt.to(device, non_blocking=True)
    if kind == "lm":
        logits = model(tgt[:, :-1]).logits  # (B, T, V)
    else:
        logits = model(mb.src.to(device, non_blocking=True), tgt[:, :-1]).logits  # (B, T_t - 1, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), tgt[:, 1:].flatten(), ignore_index=PAD_ID,
                           label_smoothing=smoothing, reduction="sum")


def _evaluate(model, task, valid_data, src_tok, tgt_tok, config: Config, out: Path, step: int) -> dict:
    ec = config.eval
    if task.kind == "lm":
        metrics = evaluate_lm(model, task, valid_data, tgt_tok, config.training.context, ec.lm_tokens)
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
    """A few continuations of a newline prompt, drawn with a private generator (global RNG untouched)."""
    if n == 0:
        return []
    from qkv.decoding import sample

    prompt_ids = tok.encode("\n") or [0]
    prompt = torch.tensor([prompt_ids] * n, device=next(model.parameters()).device)  # (n, P)
    generator = torch.Generator(device=prompt.device).manual_seed(0)
    hyps = sample(model, None, max_len=min(context - len(prompt_ids), 100), temperature=1.0, top_k=None, top_p=None,
                  generator=generator, prompt=prompt)
    return [tok.decode(ids) for ids in hyps.tokens]


def _track_best(state: dict, result: dict, step: int, patience: int, model: nn.Module, best_path: Path) -> bool:
    """Update the best result (saving best weights); return True when early stopping should stop."""
    name, value, higher = result["primary"]
    best = state["best"]
    if best is None or (value > best["value"] if higher else value < best["value"]):
        state["best"], state["bad_evals"] = {"metric": name, "value": value, "step": step}, 0
        ckpt.save_checkpoint(best_path, model.state_dict())
        return False
    state["bad_evals"] += 1
    return patience > 0 and state["bad_evals"] >= patience


def _save(path: Path, model: nn.Module, optimizer, stream, state: dict, average_last: int) -> None:
    optim_tensors, optim_data = ckpt.optimizer_to_saveable(optimizer)
    rng_tensors, rng_data = rng.capture()
    data_json, data_tensors = stream.state_dict()
    full = {**state, "optimizer": optim_data, "rng": rng_data, "data": data_json}
    ckpt.save_checkpoint(path, model.state_dict(), {**optim_tensors, **rng_tensors, **data_tensors}, full)
    if average_last > 0:
        ckpt.save_checkpoint(path.parent / f"step-{state['step']:08d}.safetensors", model.state_dict())
        for old in sorted(path.parent.glob("step-*.safetensors"))[:-average_last]:
            old.unlink()


def _restore(path: Path, model: nn.Module, optimizer, stream, dist: distributed.Dist) -> dict:
    weights, tensors, full = ckpt.load_checkpoint(path)
    if full is None:
        raise UserError(f"{path}: holds weights only, no training state to resume from")
    model.load_state_dict(weights)
    ckpt.optimizer_from_saveable(optimizer, tensors, full["optimizer"])
    stream.load_state_dict(full["data"], tensors)
    rng.restore(tensors, full["rng"])
    if dist.enabled:
        torch.manual_seed(int(full.get("step", 0)) * 7919 + dist.rank)
    return {k: full[k] for k in ("step", "tokens", "best", "bad_evals", "elapsed")}


def _saved_step(path: Path) -> int | str:
    try:
        return json.loads(path.with_suffix(".json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return "?"


# ---- setup helpers ------------------------------------------------------------------------------------


def _tokenizers(task, train_data, out: Path, resume: bool):
    if resume and (out / "tokenizer" / "tgt").exists():
        from qkv.data.tokenizers import load_tokenizer

        return load_tokenizer(out / "tokenizer" / "src"), load_tokenizer(out / "tokenizer" / "tgt")
    return task.build_tokenizers(train_data)


def _encode_pairs(examples, src_tok, tgt_tok, config: Config) -> tuple[list[list[int]], list[list[int]]]:
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
