"""One recipe trained under several seeds: the spread that a single run's interval cannot show.

A row's 95% interval on ``docs/results.md`` is a bootstrap over its test examples: how far the score of
*that trained model* would move on another test set of the same size. Training again under another seed
(another initialisation and batch order) moves the score too, and a gap to a published number smaller than
that movement is no gap (Reimers & Gurevych 2017, "Reporting Score Distributions Makes a Difference").

Result folders whose resolved configs (``config.yaml``) are equal except for ``training.seed``, scored on
the same split from the same kind of checkpoint, are one recipe under several seeds. For each published
anchor of the recipe, :func:`summarize` gathers every seed's score, their mean and sample standard
deviation, and says whether every seed reaches the published number, every seed is behind it, or it lies
between the seeds (for error rates, reaching it means a rate at or below it).
``qkv results seeds A B ...`` prints that for named folders; ``qkv results page`` adds a section for every
such group under ``results/``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qkv.errors import UserError
from qkv.results.anchors import ANCHORS, Anchor, compared_scores
from qkv.results.collect import RESULT_FILE, ResultRecord, read_record
from qkv.results.paired import LOWER_IS_BETTER

CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class SeedRun:
    """One result folder of a seed group: its seed and its record."""

    seed: int
    folder: Path
    record: ResultRecord


@dataclass(frozen=True)
class SeedSummary:
    """``metric`` (under ``decoding``) across the runs of one recipe, beside the published ``anchor``."""

    metric: str
    decoding: str
    recipes: tuple[str, ...]
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    higher_is_better: bool
    anchor: Anchor | None = None

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1 in the denominator): the spread another seed would show."""
        return statistics.stdev(self.values)

    @property
    def gap(self) -> float | None:
        """How far the mean is past the anchor (negative: behind it), in the metric's better direction."""
        if self.anchor is None:
            return None
        delta = self.mean - self.anchor.value
        return delta if self.higher_is_better else -delta

    def verdict(self) -> str:
        """Where the published number lies against the seeds: past all of them, short of all, or between."""
        if self.anchor is None:
            return "no published anchor"
        gap = self.gap
        assert gap is not None
        past = [(v >= self.anchor.value) if self.higher_is_better else (v <= self.anchor.value) for v in self.values]
        mean = f"mean {gap:+.2f}"
        if all(past):
            return f"**every seed reaches it** ({mean})"
        if not any(past):
            return f"**every seed is behind** ({mean})"
        return f"**level**: the published number lies between the seeds ({mean})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "decoding": self.decoding,
            "recipes": list(self.recipes),
            "seeds": list(self.seeds),
            "values": list(self.values),
            "mean": self.mean,
            "std": self.std,
            "higher_is_better": self.higher_is_better,
            "published": None if self.anchor is None else self.anchor.value,
            "gap": self.gap,
            "verdict": self.verdict(),
        }

    def summary(self) -> str:
        per_seed = ", ".join(f"seed {s} {v:.2f}" for s, v in zip(self.seeds, self.values, strict=True))
        published = "" if self.anchor is None else f" against the published {self.anchor.value:g}"
        verdict = self.verdict().replace("**", "")
        return (
            f"{self.metric} ({self.decoding}) over {len(self.values)} seeds: {per_seed}; mean {self.mean:.2f} "
            f"± {self.std:.2f} (sample sd){published}: {verdict}"
        )


def _resolved_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{folder}: no {CONFIG_FILE} (a folder written by `qkv results collect` for a trained run)")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UserError(f"{path}: not a YAML config ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("training"), dict):
        raise UserError(f"{path}: not a resolved run config (no `training` section)")
    return config


def _seed_and_rest(folder: Path) -> tuple[int, dict[str, Any]]:
    """``(training.seed, the resolved config without it)`` of a result folder; the seed must be an integer."""
    config = _resolved_config(folder)
    training = dict(config["training"])
    seed = training.pop("seed", None)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"{folder / CONFIG_FILE}: training.seed is {seed!r}, where a resolved config names an integer")
    return seed, {**config, "training": training}


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"d_model": 128}}`` -> ``{"model.d_model": 128}``."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """``key (A vs B)`` for every dotted key whose value differs between two configs."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    return [
        f"{key} ({flat_a.get(key, '(absent)')!r} vs {flat_b.get(key, '(absent)')!r})"
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key, "(absent)") != flat_b.get(key, "(absent)")
    ]


def _record_mismatch(a: ResultRecord, b: ResultRecord) -> str | None:
    """Why two records of equal configs are still not comparable across seeds (another split or checkpoint)."""
    if a.split != b.split:
        return f"scored on {a.split} and {b.split}"
    if a.checkpoint != b.checkpoint:
        return f"scored from the {a.checkpoint or 'unrecorded'} and {b.checkpoint or 'unrecorded'} checkpoints"
    return None


def load_seed_runs(folders: Sequence[str | Path]) -> list[SeedRun]:
    """The named result folders as one recipe under several seeds, sorted by seed; exit 2 (naming the keys)
    when their configs differ in anything but ``training.seed``, or when they were scored differently."""
    if len(folders) < 2:
        raise UserError("name at least two result folders (one recipe trained under different seeds)")
    runs, configs = [], []
    for name in folders:
        folder = Path(name)
        record = read_record(folder)
        seed, config = _seed_and_rest(folder)
        runs.append(SeedRun(seed, folder, record))
        configs.append(config)
    first = runs[0]
    for run, config in zip(runs[1:], configs[1:], strict=True):
        differences = _differences(configs[0], config)
        if differences:
            more = f" and {len(differences) - 5} more keys" if len(differences) > 5 else ""
            raise UserError(
                f"{first.folder} and {run.folder} are not one recipe under two seeds: their configs differ in "
                + ", ".join(differences[:5])
                + more
            )
        mismatch = _record_mismatch(first.record, run.record)
        if mismatch:
            raise UserError(
                f"{first.folder} and {run.folder} are {mismatch}: their scores are not comparable",
                hint="folders collected before 2026-12-07 record no checkpoint; if its notes say which weights "
                'were scored, add that (best, last or averaged) as "checkpoint" to its result.json'
                if "unrecorded" in mismatch
                else None,
            )
    seeds = [run.seed for run in runs]
    if len(set(seeds)) < len(seeds):
        raise UserError(f"seeds {seeds}: the same seed twice is the same run, not another sample")
    return sorted(runs, key=lambda run: run.seed)


def summarize(runs: list[SeedRun], metric: str | None = None, decoding: str | None = None) -> list[SeedSummary]:
    """One summary per published anchor of the runs' recipe (the first run's recipe that has anchors), or of
    ``metric`` under ``decoding``, which default to the anchor's, else the headline decoding's first metric."""
    first = runs[0].record
    published = next((ANCHORS[run.record.recipe] for run in runs if run.record.recipe in ANCHORS), [])
    anchors: list[Anchor | None] = [
        anchor
        for anchor in published
        if metric in (None, anchor.metric) and decoding in (None, compared_scores(first, anchor)[2])
    ]
    summaries = []
    for anchor in anchors or [None]:
        name = metric or (anchor.metric if anchor else next(iter(first.metrics), ""))
        used = decoding or compared_scores(first, anchor)[2]
        values = []
        for run in runs:
            scores = run.record.metrics if used == run.record.decoding else run.record.other_decodings.get(used, {})
            if name not in scores:
                raise UserError(
                    f"{run.folder / RESULT_FILE}: no {name!r} under the {used} decoding "
                    f"(it has {', '.join([run.record.decoding, *run.record.other_decodings])})"
                )
            values.append(scores[name])
        summaries.append(
            SeedSummary(
                metric=name,
                decoding=used,
                recipes=tuple(run.record.recipe for run in runs),
                seeds=tuple(run.seed for run in runs),
                values=tuple(values),
                higher_is_better=anchor.higher_is_better if anchor else name not in LOWER_IS_BETTER,
                anchor=anchor,
            )
        )
    return summaries


def find_seed_groups(root: str | Path) -> list[list[SeedRun]]:
    """Every group of two or more folders under ``root`` that are one recipe under different seeds, each
    sorted by seed, the groups by their first recipe's name. Folders without a config (extractive
    baselines) stay out, and so do groups repeating a seed (one run collected twice is not two samples)."""
    groups: dict[str, list[SeedRun]] = {}
    for path in sorted(Path(root).glob(f"*/{RESULT_FILE}")):
        folder = path.parent
        if not (folder / CONFIG_FILE).is_file():
            continue
        record = read_record(folder)
        seed, config = _seed_and_rest(folder)
        key = repr((sorted(_flatten(config).items(), key=lambda item: item[0]), record.split, record.checkpoint))
        groups.setdefault(key, []).append(SeedRun(seed, folder, record))
    found = [
        sorted(runs, key=lambda run: run.seed)
        for runs in groups.values()
        if len({run.seed for run in runs}) == len(runs) > 1
    ]
    return sorted(found, key=lambda runs: runs[0].record.recipe)
