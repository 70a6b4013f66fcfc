"""Score a finished run and write its evidence folder ``results/<recipe>/``.

The folder holds small text files only (never checkpoints):

- ``config.yaml`` -- the run's resolved config (what was trained);
- ``metrics.jsonl`` -- the training log (loss, learning rate, validation scores by step);
- ``samples.txt`` -- the first test inputs, references and the model's outputs (seq2seq), or a sampled
  continuation (language models);
- ``hypotheses.jsonl`` -- every output of a trained model's headline decoding (seq2seq), one JSON string a line in the
  split's order, so any score can be recomputed against the references in ``QKV_DATA`` (another BLEU
  tokenization, a paired test against another row) after the run's checkpoints are gone; the sources
  and references stay in the dataset (only ``samples.txt`` quotes a few);
- ``result.json`` -- a :class:`ResultRecord`: recipe, task, model, split, decoding, metrics, training time,
  threads, machine, the command that trained it and the git commit.

Translation adds lowercased sacreBLEU (``bleu_lowercase``, comparable with bentrevett's lowercased
token BLEU) and, on Multi30k, tokenized BLEU on lowercased Moses tokens (``bleu_moses_lowercase``,
:func:`qkv.data.metrics.moses_bleu`: what fairseq-generate prints for Wu et al. 2021's tokenized test set),
with their signatures; every seq2seq metric gets its 95% bootstrap interval
(:mod:`qkv.compare.significance`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qkv.atomic import atomic_write, atomic_write_text
from qkv.errors import UserError

if TYPE_CHECKING:
    from qkv.data.summarization import SummarizationTask
    from qkv.data.tasks import Example
    from qkv.decoding.rules import OutputRules
    from qkv.training.run import Run

RESULT_FILE = "result.json"
HYPOTHESES_FILE = "hypotheses.jsonl"


def results_root() -> Path:
    """The repository's ``results/`` folder, or ``$QKV_RESULTS`` when that is set (tests point it elsewhere)."""
    return Path(os.environ.get("QKV_RESULTS") or Path(__file__).resolve().parents[3] / "results")


N_SAMPLES = 20


@dataclass
class ResultRecord:
    """One reference result (the schema of ``result.json``)."""

    recipe: str
    task: str
    model: str
    split: str
    decoding: str  # "greedy", "beam5", or "teacher-forced" for language models
    metrics: dict[str, float]
    train_seconds: float
    train_steps: int
    threads: int
    machine: str
    command: str
    commit: str
    examples: int | None = None
    params: int = 0
    intervals: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {value, low, high}
    signatures: dict[str, str] = field(default_factory=dict)
    other_decodings: dict[str, dict[str, float]] = field(default_factory=dict)  # e.g. {"beam5": {...}}
    notes: str = ""
    checkpoint: str = ""  # the weights scored: "best", "last" or "averaged" ("" in folders collected before 2026-12-07)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _training_log(run_dir: Path) -> tuple[float, int]:
    """``(training seconds, steps)`` from the run's metrics log (the last training record). A missing log, a
    line that is not a JSON object, or a time or step that is not a number is a UserError naming the file
    (:func:`qkv.training.metrics_log.read_metrics` drops only a last line torn by a kill)."""
    from qkv.training.metrics_log import read_metrics

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: no training log (every run `qkv train` wrote has one; is {run_dir} a run?)")
    seconds, steps = 0.0, 0
    for record in read_metrics(run_dir):
        if record.get("split") != "train":
            continue
        try:
            seconds, steps = float(record.get("time", seconds)), int(record.get("step", steps))
        except (TypeError, ValueError):
            raise UserError(f"{path}: a training record's time or step is not a number: {record}") from None
    return seconds, steps


def _translation_extras(
    hyps: list[str], examples: list, moses_lang: str | None
) -> tuple[dict[str, float], dict[str, str]]:
    """Lowercased sacreBLEU and, when ``moses_lang`` names the target language, lowercased Moses-tokenized BLEU."""
    from sacrebleu.metrics import BLEU

    from qkv.data.metrics import moses_bleu, reference_streams

    refs = [e.references for e in examples]
    metric = BLEU(lowercase=True)
    score = metric.corpus_score(hyps, reference_streams(refs))
    metrics, signatures = {"bleu_lowercase": score.score}, {"bleu_lowercase": str(metric.get_signature())}
    if moses_lang:
        tokenized = moses_bleu(hyps, refs, moses_lang)
        metrics["bleu_moses_lowercase"], signatures["bleu_moses_lowercase"] = tokenized.value, tokenized.signature
    return metrics, signatures


def collect_run(
    run_dir: str | Path,
    recipe: str,
    out_root: str | Path,
    *,
    command: str,
    threads: int,
    split: str = "test",
    beams: tuple[int, ...] = (1, 5),
    checkpoint: str = "best",
    notes: str = "",
    rules: OutputRules | None = None,
    lm_stride: int | None = None,
) -> ResultRecord:
    """Evaluate ``run_dir`` on ``split`` and write ``out_root/recipe/``; returns the record.

    Every beam size in ``beams`` is one decoding (``greedy``, ``beam5``); with active ``rules``
    (:mod:`qkv.decoding.rules`) each is also decoded under them (``greedy-norepeat3-min5``), and the first
    of those is the headline, the plain decodings staying beside it. A language model is scored in windows
    sliding by ``lm_stride`` tokens (default: the run's ``eval.lm_stride``; :func:`qkv.training.evaluate.lm_nll`)."""
    from qkv.compare.cost import count_params
    from qkv.compare.significance import SUPPORTED, bootstrap_interval, task_example_stats
    from qkv.data.tasks import is_lm, is_seq2seq
    from qkv.data.translation import TranslationTask
    from qkv.decoding.rules import NO_RULES
    from qkv.machine import machine_info
    from qkv.training.evaluate import evaluate_lm, evaluate_seq2seq, lm_scoring_label
    from qkv.training.evaluate import lm_stride as resolve_lm_stride
    from qkv.training.run import load_run, split_examples, split_name, split_text

    rules = rules or NO_RULES
    run_dir = Path(run_dir)
    run = load_run(run_dir, checkpoint)
    task, config = run.task, run.config
    if rules.active and not is_seq2seq(task):
        raise UserError(
            f"--no-repeat-ngram and --min-len apply to decoded outputs; {task.name} is scored teacher-forced"
        )
    stride = resolve_lm_stride(config, lm_stride, is_lm(task))  # the flag on a decoded task: exit 2
    name = split_name(task, split)
    machine = machine_info(next(run.model.parameters()).device)
    seconds, steps = _training_log(run_dir)
    out = Path(out_root) / recipe
    out.mkdir(parents=True, exist_ok=True)
    record = ResultRecord(
        recipe=recipe,
        task=task.name,
        model=config.model.name,
        split=name,
        decoding="greedy",
        metrics={},
        train_seconds=round(seconds, 1),
        train_steps=steps,
        threads=threads,
        machine=f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}",
        command=command,
        commit=git_commit(Path(__file__).resolve().parents[3]),
        params=count_params(run.model),
        notes=notes,
        checkpoint=checkpoint,
    )
    samples, headline_hyps = "", None
    if is_lm(task):
        text = split_text(task, name, None)
        carried = config.training.carry_state  # truncated BPTT: scored with the state carried through the text
        record.decoding = lm_scoring_label(config, stride)
        record.metrics = evaluate_lm(
            run.model, task, text, run.tgt_tok, config.training.context, len(text), carry_state=carried, stride=stride
        )
        samples = _lm_sample(run)
    elif is_seq2seq(task):
        data = split_examples(task, name, None)
        record.examples = len(data)
        decodings = [(beam, NO_RULES) for beam in beams]
        if rules.active:
            decodings = [(beam, rules) for beam in beams] + decodings
        for beam, rule in decodings:
            metrics, hyps = evaluate_seq2seq(
                run.model,
                task,
                data,
                run.src_tok,
                run.tgt_tok,
                beam=beam,
                max_len=config.eval.max_len,
                rules=rule,
            )
            if task.name == "translation":
                moses_lang = task.tgt_lang if isinstance(task, TranslationTask) and task.multi30k else None
                extra, signatures = _translation_extras(hyps, data, moses_lang)
                metrics.update(extra)
                record.signatures.update(signatures, **getattr(task, "signatures", {}))
            label = ("greedy" if beam == 1 else f"beam{beam}") + rule.label
            if (beam, rule) == decodings[0]:
                record.decoding = label
                record.metrics = metrics
                record.intervals = {
                    m: bootstrap_interval(task_example_stats(task, m, hyps, data)).to_dict()
                    for m in metrics
                    if m in SUPPORTED
                }
                samples, headline_hyps = _seq2seq_samples(data, hyps), hyps
            else:
                record.other_decodings[label] = metrics
    for name in ("config.yaml", "metrics.jsonl"):  # (a crash mid-copy must not leave half a file as evidence)
        atomic_write(out / name, (run_dir / name).read_bytes())
    atomic_write_text(out / "samples.txt", samples)
    if headline_hyps is not None:
        write_hypotheses(out, headline_hyps)
    atomic_write_text(out / RESULT_FILE, json.dumps(record.to_dict(), indent=1) + "\n")
    return record


def write_hypotheses(out: Path, hyps: list[str]) -> None:
    """``out/hypotheses.jsonl``: one JSON string a line (an output may hold any character, newlines included)."""
    atomic_write_text(out / HYPOTHESES_FILE, "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in hyps))


def read_hypotheses(folder: str | Path) -> list[str]:
    """The outputs :func:`write_hypotheses` wrote, in order; a malformed line is a :class:`UserError` naming it."""
    path = Path(folder) / HYPOTHESES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    hyps = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            hyp = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: not a JSON string ({error.msg})") from None
        if not isinstance(hyp, str):
            raise UserError(f"{path}:{number}: expected a JSON string, got {type(hyp).__name__}")
        hyps.append(hyp)
    return hyps


def collect_baseline(
    task: SummarizationTask,
    split: str,
    method: str,
    n: int,
    out_root: str | Path,
    *,
    command: str,
    skip_greeting: bool = True,
) -> ResultRecord:
    """Score an extractive baseline (:mod:`qkv.data.baselines`) on ``split`` and write
    ``out_root/<dataset>-<method><n>/`` like a trained run's folder: the row every neural summarizer
    must beat. Nothing is trained, so ``train_seconds`` and ``train_steps`` are 0."""
    from qkv.compare.significance import SUPPORTED, bootstrap_interval, task_example_stats
    from qkv.data.baselines import run_baseline
    from qkv.machine import machine_info

    metrics, hyps = run_baseline(task, split, method, n, skip_greeting=skip_greeting)
    examples = task.examples(split)
    recipe = f"{task.dataset}-{method}{n}"
    machine = machine_info("cpu")
    record = ResultRecord(
        recipe=recipe,
        task=task.name,
        model=f"{method}-{n} (extractive baseline)",
        split=split,
        decoding="extractive",
        metrics=metrics,
        train_seconds=0.0,
        train_steps=0,
        threads=1,
        machine=f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}",
        command=command,
        commit=git_commit(Path(__file__).resolve().parents[3]),
        examples=len(examples),
        intervals={
            m: bootstrap_interval(task_example_stats(task, m, hyps, examples)).to_dict()
            for m in metrics
            if m in SUPPORTED
        },
        notes="" if task.dataset != "aeslc" else f"leading salutation {'skipped' if skip_greeting else 'kept'}",
    )
    out = Path(out_root) / recipe
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "samples.txt", _seq2seq_samples(examples, hyps))
    # no hypotheses.jsonl: an extractive baseline's outputs are the dataset's own sentences, which stay out of
    # the repo; `qkv results paired` extracts them again from the recorded command
    atomic_write_text(out / RESULT_FILE, json.dumps(record.to_dict(), indent=1) + "\n")
    return record


def _seq2seq_samples(examples: list[Example], hyps: list[str]) -> str:
    blocks = [f"src: {e.src}\nref: {e.tgt}\nhyp: {h}\n" for e, h in zip(examples[:N_SAMPLES], hyps, strict=False)]
    return "\n".join(blocks)


def _lm_sample(run: Run) -> str:
    """A sampled continuation of a fixed prompt (temperature 0.8, seed 0), as a reader would try it."""
    from qkv.training.generate import generate_texts

    prompt = "ROMEO:" if run.task.name == "lm" and getattr(run.task, "level", None) == "char" else "the"
    text = generate_texts(run, [prompt], max_len=60, sample=True, temperature=0.8, seed=0)[0]
    return f"prompt: {prompt}\nsample (temperature 0.8, seed 0): {text}\n"


def read_record(folder: Path) -> ResultRecord:
    """The record in ``folder/result.json``; exit 2 naming the file when there is none or it is malformed."""
    path = folder / RESULT_FILE
    if not path.is_file():
        raise UserError(f"{folder}: no {RESULT_FILE} (a folder written by `qkv results collect`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        record = ResultRecord.from_dict(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as error:
        raise UserError(f"{path}: not a result record ({error})") from None
    if not isinstance(record.command, str) or not isinstance(record.metrics, dict):
        raise UserError(f"{path}: not a result record (command must be a string, metrics an object)")
    if not isinstance(record.other_decodings, dict) or not all(
        isinstance(scores, dict) for scores in record.other_decodings.values()
    ):
        raise UserError(f"{path}: not a result record (other_decodings must map decodings to metric objects)")
    for decoding, scores in [(record.decoding, record.metrics), *record.other_decodings.items()]:
        for name, value in scores.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"{path}: {decoding} metric {name!r} is {value!r}, not a number")
    return record


def load_results(root: str | Path) -> list[ResultRecord]:
    """Every ``root/*/result.json``, sorted by recipe name."""
    records = []
    for path in sorted(Path(root).glob(f"*/{RESULT_FILE}")):
        records.append(read_record(path.parent))  # checked: a damaged file is a message naming it
    return records
