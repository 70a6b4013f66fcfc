"""`qkv results seeds A B ...` and the page's "Across seeds" section: one recipe trained under several seeds.

Means and sample standard deviations are checked against numpy (``ddof=1``); verdicts are worked by hand
from the published numbers in :mod:`qkv.results.anchors`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from qkv.cli import main
from qkv.results import load_results
from qkv.results.anchors import ANCHORS
from qkv.results.collect import ResultRecord
from qkv.results.page import render
from qkv.results.seeds import find_seed_groups

EN_DE = "multi30k-en-de-transformer-tiny-2x"  # anchor: 41.02 bleu_lowercase, beam 5
G2P = "g2p-gru-attention"  # anchor: 23.3 WER (greedy, the run's own decoding), lower is better


def _recipe(recipe: str, seed: int) -> str:
    """Seed 1 under the recipe's own name (the one with published anchors), the others as `<recipe>-seedN`."""
    return recipe if seed == 1 else f"{recipe}-seed{seed}"


def _config(seed: int, lr: float = 0.005) -> dict:
    """A resolved config as `qkv results collect` copies it (the parts that matter here)."""
    return {
        "task": {"name": "translation", "options": {"src_lang": "en", "tgt_lang": "de"}},
        "model": {"name": "transformer", "d_model": 128},
        "optim": {"lr": lr},
        "training": {"seed": seed, "max_steps": 8000},
    }


def _folder(
    root: Path,
    recipe: str,
    seed: int,
    metrics: dict[str, float],
    beam5: dict[str, float] | None = None,
    *,
    config: dict | None = None,
    checkpoint: str = "averaged",
) -> Path:
    folder = root / recipe
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config or _config(seed)))
    record = ResultRecord(
        recipe=recipe,
        task="translation",
        model="transformer",
        split="test",
        decoding="greedy",
        metrics=metrics,
        train_seconds=60.0,
        train_steps=8000,
        threads=2,
        machine="test",
        command=f"qkv train configs/{recipe}.yaml",
        commit="0" * 40,
        other_decodings={"beam5": beam5} if beam5 else {},
        checkpoint=checkpoint,
    )
    (folder / "result.json").write_text(json.dumps(record.to_dict()))
    return folder


def _seeds(capsys: pytest.CaptureFixture, *args: str | Path) -> list[dict]:
    assert main(["results", "seeds", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_mean_and_spread_across_seeds_at_the_published_numbers_decoding(tmp_path, capsys):
    assert ANCHORS[EN_DE][0].value == 41.02 and ANCHORS[EN_DE][0].decoding == "beam5"
    beam5 = [40.87, 41.35, 40.60]
    folders = [
        _folder(tmp_path, _recipe(EN_DE, seed), seed, {"bleu_lowercase": 39.0 + seed}, {"bleu_lowercase": b})
        for seed, b in zip((3, 1, 2), beam5, strict=True)
    ]
    (summary,) = _seeds(capsys, *folders)
    assert summary["decoding"] == "beam5" and summary["metric"] == "bleu_lowercase"  # the anchor's, not greedy
    assert summary["seeds"] == [1, 2, 3]  # sorted by seed, values follow their folders
    assert summary["values"] == [41.35, 40.60, 40.87]
    assert summary["mean"] == pytest.approx(np.mean(beam5))
    assert summary["std"] == pytest.approx(np.std(beam5, ddof=1))
    assert summary["published"] == 41.02
    assert summary["gap"] == pytest.approx(np.mean(beam5) - 41.02)
    # 40.60 and 40.87 are short of 41.02, 41.35 is past it: the published number lies between the seeds
    assert summary["verdict"].startswith("**level**") and "mean -0.08" in summary["verdict"]


def test_verdicts_past_short_of_and_between_the_seeds(tmp_path, capsys):
    behind = [
        _folder(tmp_path / "a", _recipe(EN_DE, s), s, {"bleu_lowercase": 1.0}, {"bleu_lowercase": v})
        for s, v in ((1, 40.9), (2, 40.5))
    ]
    assert _seeds(capsys, *behind)[0]["verdict"] == "**every seed is behind** (mean -0.32)"
    ahead = [
        _folder(tmp_path / "b", _recipe(EN_DE, s), s, {"bleu_lowercase": 1.0}, {"bleu_lowercase": v})
        for s, v in ((1, 41.02), (2, 42.0))
    ]
    assert _seeds(capsys, *ahead)[0]["verdict"] == "**every seed reaches it** (mean +0.49)"
    # WER: lower is better, so 22.7 is past the published 23.3 and 23.7 short of it; the mean 23.2 is 0.1 past
    g2p = [_folder(tmp_path / "c", _recipe(G2P, s), s, {"wer": v, "per": 5.0}) for s, v in ((1, 22.7), (2, 23.7))]
    (summary,) = _seeds(capsys, *g2p)
    assert summary["decoding"] == "greedy" and summary["metric"] == "wer" and not summary["higher_is_better"]
    assert summary["gap"] == pytest.approx(0.1) and summary["verdict"].startswith("**level**")
    # 22.2 and 22.7 are both below the published 23.3: for an error rate that is every seed past it
    better = [_folder(tmp_path / "d", _recipe(G2P, s), s, {"wer": v}) for s, v in ((1, 22.2), (2, 22.7))]
    assert _seeds(capsys, *better)[0]["verdict"] == "**every seed reaches it** (mean +0.85)"
    worse = [_folder(tmp_path / "e", _recipe(G2P, s), s, {"wer": v}) for s, v in ((1, 23.7), (2, 24.7))]
    assert _seeds(capsys, *worse)[0]["verdict"] == "**every seed is behind** (mean -0.90)"
    # naming the decoding the anchor is compared under keeps the anchor (it names none: the run's own)
    assert _seeds(capsys, *g2p, "--decoding", "greedy")[0]["published"] == 23.3


def test_a_metric_without_an_anchor_is_summarised_without_a_verdict(tmp_path, capsys):
    folders = [_folder(tmp_path, _recipe(G2P, s), s, {"wer": 22.0 + s, "per": 5.0 + s / 10}) for s in (1, 2)]
    (summary,) = _seeds(capsys, *folders, "--metric", "per")
    assert summary["values"] == [5.1, 5.2] and summary["published"] is None
    assert summary["verdict"] == "no published anchor" and summary["std"] == pytest.approx(np.std([5.1, 5.2], ddof=1))


def test_a_language_models_loss_without_an_anchor_is_lower_is_better(tmp_path, capsys):
    folders = [_folder(tmp_path, _recipe(G2P, s), s, {"wer": 22.0 + s, "loss": 1.5 + s / 10}) for s in (1, 2)]
    (summary,) = _seeds(capsys, *folders, "--metric", "loss")
    assert summary["published"] is None and summary["higher_is_better"] is False


def test_folders_that_are_not_one_recipe_under_two_seeds_are_refused_naming_why(tmp_path, capsys):
    a = _folder(tmp_path, "a", 1, {"bleu": 1.0})
    other_lr = _folder(tmp_path, "b", 2, {"bleu": 2.0}, config=_config(2, lr=0.001))
    assert main(["results", "seeds", str(a), str(other_lr)]) == 2
    assert "configs differ in optim.lr (0.005 vs 0.001)" in capsys.readouterr().err
    same_seed = _folder(tmp_path, "c", 1, {"bleu": 2.0})
    assert main(["results", "seeds", str(a), str(same_seed)]) == 2
    assert "the same seed twice" in capsys.readouterr().err
    best = _folder(tmp_path, "d", 2, {"bleu": 2.0}, checkpoint="best")
    assert main(["results", "seeds", str(a), str(best)]) == 2
    assert "averaged and best checkpoints" in capsys.readouterr().err
    assert main(["results", "seeds", str(a)]) == 2
    assert "at least two result folders" in capsys.readouterr().err
    no_beam = _folder(tmp_path, "e", 2, {"bleu_lowercase": 2.0})
    assert main(["results", "seeds", str(a), str(no_beam), "--metric", "bleu_lowercase", "--decoding", "beam5"]) == 2
    assert f"{a / 'result.json'}: no 'bleu_lowercase' under the beam5 decoding" in capsys.readouterr().err
    baseline = tmp_path / "lead"  # an extractive baseline: a result.json and no config
    baseline.mkdir()
    (baseline / "result.json").write_text((a / "result.json").read_text())
    assert main(["results", "seeds", str(a), str(baseline)]) == 2
    assert f"{baseline}: no config.yaml" in capsys.readouterr().err
    unseeded = _folder(tmp_path, "f", 2, {"bleu": 2.0}, config={**_config(2), "training": {"seed": "two"}})
    assert main(["results", "seeds", str(a), str(unseeded)]) == 2
    assert "training.seed is 'two'" in capsys.readouterr().err
    not_a_number = _folder(tmp_path, "g", 2, {"bleu": "x"})
    assert main(["results", "seeds", str(a), str(not_a_number)]) == 2
    assert "greedy metric 'bleu' is 'x', not a number" in capsys.readouterr().err
    unrecorded = _folder(tmp_path, "h", 2, {"bleu": 2.0}, checkpoint="")  # collected before the field existed
    assert main(["results", "seeds", str(a), str(unrecorded)]) == 2
    assert 'add that (best, last or averaged) as "checkpoint"' in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text(json.dumps(json.loads((a / "result.json").read_text())))
    (tmp_path / "broken" / "config.yaml").write_text("training: [1, 2\n")
    assert main(["results", "seeds", str(a), str(tmp_path / "broken")]) == 2
    assert f"{tmp_path / 'broken' / 'config.yaml'}: not a YAML config" in capsys.readouterr().err


def test_the_page_groups_seeds_found_under_results(tmp_path):
    _folder(tmp_path, f"{EN_DE}", 1, {"bleu_lowercase": 39.66}, {"bleu_lowercase": 40.87})
    _folder(tmp_path, f"{EN_DE}-seed2", 2, {"bleu_lowercase": 40.0}, {"bleu_lowercase": 41.25})
    _folder(tmp_path, "other-lr", 3, {"bleu_lowercase": 30.0}, config=_config(3, lr=0.001))  # another recipe
    _folder(tmp_path, "best-checkpoint", 2, {"bleu_lowercase": 40.0}, checkpoint="best")  # alone in its group
    _folder(tmp_path / "twice", "x", 4, {"bleu": 1.0}, config=_config(4, lr=0.002))  # one run collected twice:
    _folder(tmp_path / "twice", "x-again", 4, {"bleu": 1.0}, config=_config(4, lr=0.002))  # not two seeds
    baseline = tmp_path / "lead"  # an extractive baseline keeps no config: never part of a group
    baseline.mkdir()
    (baseline / "result.json").write_text((tmp_path / "other-lr" / "result.json").read_text())
    groups = find_seed_groups(tmp_path)
    assert [[run.record.recipe for run in runs] for runs in groups] == [[EN_DE, f"{EN_DE}-seed2"]]
    page = render(load_results(tmp_path), groups)
    row = next(line for line in page.splitlines() if line.startswith(f"| [{EN_DE}](../results/{EN_DE}) (1), "))
    mean, sd = np.mean([40.87, 41.25]), np.std([40.87, 41.25], ddof=1)
    assert f"| bleu_lowercase, beam5 | 40.87, 41.25 | {mean:.2f} ± {sd:.2f} | 41.02 | **level**" in row
    assert "## Across seeds" not in render(load_results(tmp_path), [])
    assert find_seed_groups(tmp_path / "twice") == []
    _folder(tmp_path / "twice", "x-seed5", 5, {"bleu": 2.0}, config=_config(5, lr=0.002))
    assert find_seed_groups(tmp_path / "twice") == []  # seed 4 twice: which of the two is the sample is unknown
    # a seed collected without the published number's decoding: the row says so, the page is still written
    _folder(tmp_path / "greedy-only", EN_DE, 1, {"bleu_lowercase": 39.66}, {"bleu_lowercase": 40.87})
    _folder(tmp_path / "greedy-only", f"{EN_DE}-seed2", 2, {"bleu_lowercase": 40.0})
    page = render([], find_seed_groups(tmp_path / "greedy-only"))
    assert "| – | – | – | – | not measured: " in page and "no 'bleu_lowercase' under the beam5 decoding" in page
