"""`qkv results paired A B`: two result folders tested example by example (paired bootstrap, Koehn 2004).

Expected values are worked by hand or come from scipy's binomial distribution: when A is right wherever
B is, and on some more, a bootstrap resample's difference in exact match is 100 * Binomial(n, share of
examples where only A is right) / n, so the interval of the difference (and bounds on the p-value) are known
without resampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import binom

from qkv.cli import main
from qkv.compare.significance import example_stats, paired_test
from qkv.data.tasks import get_task
from qkv.errors import UserError
from qkv.results.collect import HYPOTHESES_FILE, ResultRecord, read_hypotheses, write_hypotheses

TASK = {"name": "reverse", "options": {"length": 6, "num_examples": 300, "num_eval_examples": 12, "vocab_size": 6}}


def _references() -> list[str]:
    return [e.tgt for e in get_task(TASK["name"], **TASK["options"]).examples("test")]


def _write_folder(root: Path, recipe: str, task: dict, metrics: dict[str, float], hyps: list[str]) -> Path:
    """A result folder as `qkv results collect` writes it: the task's config, the record, the outputs."""
    folder = root / recipe
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"task: {json.dumps(task)}\n")
    record = ResultRecord(
        recipe=recipe,
        task=task["name"],
        model="transformer",
        split="test",
        decoding="greedy",
        metrics=metrics,
        train_seconds=1.0,
        train_steps=1,
        threads=1,
        machine="test",
        command=f"qkv train {task['name']}.yaml",
        commit="0" * 40,
    )
    (folder / "result.json").write_text(json.dumps(record.to_dict()))
    write_hypotheses(folder, hyps)
    return folder


def _folder(root: Path, recipe: str, hyps: list[str], exact_match: float | None = None) -> Path:
    """A result folder for outputs ``hyps`` of the reverse task's test split."""
    refs = _references()
    score = 100.0 * sum(h == r for h, r in zip(hyps, refs, strict=False)) / len(refs)  # short lists: a broken folder
    return _write_folder(root, recipe, TASK, {"exact_match": score if exact_match is None else exact_match}, hyps)


def _paired(capsys: pytest.CaptureFixture, a: Path, b: Path, *extra: str) -> dict:
    assert main(["results", "paired", str(a), str(b), *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _wrong(text: str) -> str:
    return text + " 1"


def test_a_system_right_everywhere_against_one_wrong_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture):
    refs = _references()
    result = _paired(capsys, _folder(tmp_path, "right", refs), _folder(tmp_path, "wrong", [_wrong(r) for r in refs]))
    # every resample differs by exactly 100: none is as far from the mean as 100, so p = 1 / (1000 + 1)
    assert (result["score_a"], result["score_b"], result["delta"]) == (100.0, 0.0, 100.0)
    assert (result["low"], result["high"]) == (100.0, 100.0)
    assert result["p_value"] == pytest.approx(1 / 1001)
    assert result["better"] == "right" and result["examples"] == 12


def test_the_same_outputs_show_no_difference(tmp_path: Path, capsys: pytest.CaptureFixture):
    hyps = [r if i % 2 else _wrong(r) for i, r in enumerate(_references())]
    result = _paired(capsys, _folder(tmp_path, "a", hyps), _folder(tmp_path, "b", list(hyps)))
    assert result["delta"] == 0.0 and result["p_value"] == 1.0 and result["better"] is None


def test_p_value_and_interval_follow_the_binomial_law(tmp_path: Path, capsys: pytest.CaptureFixture):
    refs = _references()
    n, only_a = len(refs), 3  # A is right on examples 0-5, B on 0-2: they differ on 3 of 12
    a = [r if i < 6 else _wrong(r) for i, r in enumerate(refs)]
    b = [r if i < 3 else _wrong(r) for i, r in enumerate(refs)]
    result = _paired(capsys, _folder(tmp_path, "a", a), _folder(tmp_path, "b", b))
    assert result["delta"] == pytest.approx(100 * only_a / n)  # 50 - 25
    # consistency: the same as the tested paired_test on statistics built straight from the outputs
    direct = paired_test(*(example_stats("exact_match", h, [[r] for r in refs]) for h in (a, b)))
    assert (result["p_value"], result["low"], result["high"]) == (direct.p_value, direct.low, direct.high)
    # a resampled difference is 100 k / n with k ~ Binomial(n, 3/12), centred on ~25; |100 k / n - 25| >= 25
    # for k = 0 and k >= 6, where k = 0 and k = 6 lie on the boundary (in or out with the resampled mean)
    law = binom(n, only_a / n)
    slack = 0.03  # 1,000 resamples: standard error below 0.009
    assert law.sf(6) - slack <= result["p_value"] <= law.pmf(0) + law.sf(5) + slack
    step = 100 / n
    assert result["low"] == pytest.approx(100 * law.ppf(0.025) / n, abs=step)
    assert result["high"] == pytest.approx(100 * law.ppf(0.975) / n, abs=step)
    assert result["better"] is None  # p ~ 0.05-0.09: three examples are not enough


def test_a_baseline_is_extracted_again_from_its_recorded_command(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    """An extractive baseline's folder keeps no outputs (they would be the dataset's own sentences): `paired`
    re-runs the `qkv baseline` command its record names, on the dataset under QKV_DATA."""
    from test_baselines import EMAILS, _aeslc, _expected

    _aeslc(tmp_path)
    monkeypatch.setenv("QKV_DATA", str(tmp_path))
    results = tmp_path / "results"
    assert main(["baseline", "lead", "--task", "aeslc", "--out", str(tmp_path / "o"), "--results", str(results)]) == 0
    baseline = results / "aeslc-lead1"
    assert not (baseline / HYPOTHESES_FILE).exists()
    # a model that writes every subject line exactly
    subjects = [subject for _, subject, _ in EMAILS.values()]
    model = tmp_path / "model"
    model.mkdir()
    # the model's recipe cuts its sources to 40 characters, as the summarization recipes cut theirs (the
    # baseline reads them whole): the same examples all the same, since the references are the same
    assert all(len(body) > 40 for body, _, _ in EMAILS.values())
    options = "{dataset: aeslc, max_src_chars: 40, truncate: true}"
    (model / "config.yaml").write_text(f"task: {{name: summarization, options: {options}}}\n")
    record = json.loads((baseline / "result.json").read_text())
    record.update(recipe="aeslc-model", model="transformer", decoding="greedy", command="qkv train aeslc.yaml")
    record["metrics"] = {"rouge1": 100.0, "rougeL": 100.0}
    (model / "result.json").write_text(json.dumps(record))
    write_hypotheses(model, subjects)
    capsys.readouterr()

    result = _paired(capsys, model, baseline)
    lead = [  # each body's first sentence after its greeting, by hand
        "Please review the attached gas contract by Friday.",
        "The fire drill is scheduled for Tuesday at 10 am.",
        "Mr. Lay will speak at the offsite.",
    ]
    assert result["score_a"] == 100.0
    assert result["metric"] == "rougeL" and result["examples"] == 3  # the task's primary metric
    assert result["score_b"] == pytest.approx(_expected(lead, [[s] for s in subjects])["rougeL"])  # rouge-score
    assert _paired(capsys, model, baseline, "--metric", "rouge1")["score_a"] == 100.0

    record["command"] = "qkv train something.yaml"
    record.update(decoding="extractive")
    (model / "result.json").write_text(json.dumps(record))  # claims to be a baseline, names no baseline command
    assert main(["results", "paired", str(model), str(baseline)]) == 2
    assert "cannot be extracted again" in capsys.readouterr().err
    record["command"] = "qkv baseline lead --split test"  # --task missing: one line, no argparse usage
    (model / "result.json").write_text(json.dumps(record))
    assert main(["results", "paired", str(model), str(baseline)]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --task" in err and "usage:" not in err
    assert len(err.strip().splitlines()) == 1


def test_outputs_that_do_not_reproduce_the_record_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture):
    refs = _references()
    tampered = _folder(tmp_path, "tampered", refs, exact_match=91.7)
    assert main(["results", "paired", str(tampered), str(_folder(tmp_path, "b", refs))]) == 2
    err = capsys.readouterr().err
    assert "exact_match 100.0000" in err and "records 91.7000" in err


def test_clear_errors_for_folders_that_cannot_be_paired(tmp_path: Path, capsys: pytest.CaptureFixture):
    refs = _references()
    a = _folder(tmp_path, "a", refs)
    short = _folder(tmp_path, "short", refs[:5])
    assert main(["results", "paired", str(a), str(short)]) == 2
    assert "5 outputs for 12 test examples" in capsys.readouterr().err

    old = _folder(tmp_path, "old", refs)
    (old / HYPOTHESES_FILE).unlink()  # a folder collected before outputs were kept
    assert main(["results", "paired", str(a), str(old)]) == 2
    assert f"no {HYPOTHESES_FILE}" in capsys.readouterr().err

    other = _folder(tmp_path, "other", refs)
    record = json.loads((other / "result.json").read_text())
    (other / "result.json").write_text(json.dumps({**record, "split": "dev"}))
    assert main(["results", "paired", str(a), str(other)]) == 2
    assert "same test examples" in capsys.readouterr().err

    (other / "config.yaml").unlink()
    (other / "result.json").write_text(json.dumps(record))
    assert main(["results", "paired", str(a), str(other)]) == 2
    assert "no config.yaml naming the task" in capsys.readouterr().err

    (a / HYPOTHESES_FILE).write_text('"ok"\n[1, 2]\n')
    with pytest.raises(UserError, match=r"hypotheses.jsonl:2: expected a JSON string, got list"):
        read_hypotheses(a)
    (a / HYPOTHESES_FILE).write_text('"ok"\nnot json\n')
    assert main(["results", "paired", str(a), str(short)]) == 2
    assert "hypotheses.jsonl:2: not a JSON string" in capsys.readouterr().err
    (a / HYPOTHESES_FILE).write_bytes(b'"\xff"\n')
    assert main(["results", "paired", str(a), str(short)]) == 2
    assert "hypotheses.jsonl: not UTF-8 text" in capsys.readouterr().err
    (a / "result.json").write_text("[1, 2]")
    assert main(["results", "paired", str(a), str(short)]) == 2
    assert "not a result record (expected a JSON object, got list)" in capsys.readouterr().err
    assert main(["results", "paired", str(short), str(short), "--metric", "bleurt"]) == 2
    assert "metric 'bleurt' has no per-example statistics" in capsys.readouterr().err
    assert main(["results", "paired", str(tmp_path / "missing"), str(short)]) == 2
    assert "no result.json" in capsys.readouterr().err


def test_different_examples_under_one_task_name_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture):
    """Two reverse-task folders with different data options: same task name, split and count, other examples."""
    refs = _references()
    a = _folder(tmp_path, "a", refs)
    other_options = {**TASK["options"], "vocab_size": 7}  # another vocabulary: other sequences
    other_refs = [e.tgt for e in get_task("reverse", **other_options).examples("test")]
    assert other_refs != refs and len(other_refs) == len(refs)
    b = _folder(tmp_path, "b", other_refs, exact_match=100.0)  # right on its own examples
    (b / "config.yaml").write_text(f"task: {json.dumps({**TASK, 'options': other_options})}\n")
    assert main(["results", "paired", str(a), str(b)]) == 2
    assert "scored on different test examples" in capsys.readouterr().err


def test_outputs_survive_any_character(tmp_path: Path):
    hyps = ["line\nbreak", 'quote " and tab\t', "ümlaut", ""]
    write_hypotheses(tmp_path, hyps)
    assert read_hypotheses(tmp_path) == hyps
    assert len((tmp_path / HYPOTHESES_FILE).read_text(encoding="utf-8").splitlines()) == len(hyps)


def _translation_folder(root: Path, recipe: str, tokenizer: str, hyps: list[str], metrics: dict[str, float]) -> Path:
    """A Multi30k-layout translation result folder (data under ``root / "data"``) for outputs ``hyps``."""
    task = {"name": "translation", "options": {"data_dir": str(root / "data"), "tokenizer": tokenizer}}
    return _write_folder(root, recipe, task, metrics, hyps)


def test_a_lowercased_model_pairs_with_a_cased_one_on_lowercased_bleu(tmp_path: Path, capsys: pytest.CaptureFixture):
    """A model trained on lowercased text (tokenizer lowercase-bpe: its task lowercases the references) and one
    trained on cased text share their test examples up to case: on bleu_lowercase they pair, each scoring what
    sacreBLEU's lowercased BLEU gives on the raw references; on cased BLEU they are refused (other examples)."""
    import gzip

    import sacrebleu

    german = [f"Ein Hund Nummer {i} läuft über die Wiese ." for i in range(12)]
    english = [f"A Dog number {i} runs across the Meadow ." for i in range(12)]
    for split in ("train", "val", "test_2016_flickr"):
        for lang, lines in (("de", german), ("en", english)):
            path = tmp_path / "data" / "multi30k" / f"{split}.{lang}.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    cased_hyps = [e if i % 3 else e.replace("runs", "walks") for i, e in enumerate(english)]
    lower_hyps = [e.lower() if i % 4 else e.lower().replace("meadow", "grass") for i, e in enumerate(english)]

    def lowercased_bleu(hyps: list[str]) -> float:
        return sacrebleu.corpus_bleu(hyps, [english], lowercase=True).score

    cased = _translation_folder(
        tmp_path,
        "cased",
        "bpe",
        cased_hyps,
        {"bleu": sacrebleu.corpus_bleu(cased_hyps, [english]).score, "bleu_lowercase": lowercased_bleu(cased_hyps)},
    )
    score = lowercased_bleu(lower_hyps)  # = its task's own BLEU: references lowercased
    lower = _translation_folder(
        tmp_path, "lower", "lowercase-bpe", lower_hyps, {"bleu": score, "bleu_lowercase": score}
    )
    result = _paired(capsys, lower, cased, "--metric", "bleu_lowercase")
    assert result["score_a"] == pytest.approx(score) and result["score_b"] == pytest.approx(lowercased_bleu(cased_hyps))
    assert result["examples"] == 12
    assert main(["results", "paired", str(lower), str(cased), "--metric", "bleu"]) == 2
    assert "scored on different test examples" in capsys.readouterr().err
