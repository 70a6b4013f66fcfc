"""Extractive summarization baselines (Lead-n, Longest-n): sentence splitting, greetings, utterances on
hand-written emails and dialogues, and the scores equal rouge-score called directly -- through the
function and through `qkv baseline`."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from qkv.cli import main
from qkv.data.baselines import (
    dialogue_turns,
    email_sentences,
    lead,
    longest,
    run_baseline,
    split_sentences,
    strip_greeting,
    summarize,
)
from qkv.data.tasks import get_task


def test_sentences_split_at_final_punctuation_but_not_after_abbreviations_or_initials():
    text = "Mr. Smith met Dr. Jones at 3 p.m. Friday. Did James W. Reitmeyer come?  Yes!\nSee e.g. the memo. ok"
    assert split_sentences(text) == [
        "Mr. Smith met Dr. Jones at 3 p.m. Friday.",
        "Did James W. Reitmeyer come?",
        "Yes!",
        "See e.g. the memo. ok",
    ]  # "memo. ok": no capital after the period, so one sentence
    assert split_sentences("We meet (Wed. June 6th) at noon. Bring   the slides.\n\n") == [
        "We meet (Wed. June 6th) at noon.",
        "Bring the slides.",
    ]
    assert split_sentences("") == []


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("Hi John, could you send me the draft?", "Could you send me the draft?"),
        ("Hello all! The meeting moved to 3pm.", "The meeting moved to 3pm."),
        ("Phillip,   Could you please do me a favor?", "Could you please do me a favor?"),
        ("Jeff/Brenda: Please authorize the following products.", "Please authorize the following products."),
        ("John - you may have heard this already.", "You may have heard this already."),
        ("ARNOLD, JOHN D:   Attached are the forms.", "Attached are the forms."),
        ("Hi John,", ""),
        ("Good morning everyone.", ""),
        ("Thanks for the note on Friday.", "Thanks for the note on Friday."),  # not a salutation
        ("Please call Sheila today.", "Please call Sheila today."),
        ("Highlights of the week are attached.", "Highlights of the week are attached."),  # "Hi..." inside a word
    ],
)
def test_greetings_and_addressees_are_cut_from_the_front(sentence, expected):
    assert strip_greeting(sentence) == expected


def test_lead_one_of_an_email_skips_a_greeting_line_unless_asked_to_keep_it():
    body = "Hi John,\nThe Q3 budget review moved to Tuesday. Please bring the forecast.\nThanks,"
    assert email_sentences(body) == ["The Q3 budget review moved to Tuesday.", "Please bring the forecast.", "Thanks,"]
    assert summarize(body, "aeslc") == "The Q3 budget review moved to Tuesday."
    assert summarize(body, "aeslc", skip_greeting=False) == "Hi John,"
    assert summarize(body, "aeslc", n=2) == "The Q3 budget review moved to Tuesday. Please bring the forecast."


DIALOGUE = """Amanda: I baked cookies. Do you want some?
Jerry: Sure!
Amanda: I'll bring you tomorrow :-)

Jerry: thanks a lot, see you at the office then"""


def test_dialogue_lead_and_longest_utterances_keep_speakers_and_order():
    turns = dialogue_turns(DIALOGUE)
    assert turns == [
        "Amanda: I baked cookies. Do you want some?",
        "Jerry: Sure!",
        "Amanda: I'll bring you tomorrow :-)",
        "Jerry: thanks a lot, see you at the office then",
    ]
    assert summarize(DIALOGUE, "samsum") == lead(turns, 3) == " ".join(turns[:3])  # Lead-3 by default
    assert longest(turns, 2) == f"{turns[0]} {turns[3]}"  # the two longest (8 and 9 words), in dialogue order
    assert longest(["a b", "c d", "e"], 1) == "a b"  # a tie goes to the earlier utterance
    assert summarize(DIALOGUE, "samsum", "longest", 1) == turns[3]
    with pytest.raises(ValueError, match="method"):
        summarize(DIALOGUE, "samsum", "middle")


# ---- scores: the task's ROUGE equals rouge-score called directly ---------------------------------------

EMAILS = {  # name -> (body, subject, three annotator subjects)
    "a": (
        "Hi Kim,\nPlease review the attached gas contract by Friday.\nThanks",
        "Gas contract review",
        ["review gas contract", "contract due friday", "please review contract"],
    ),
    "b": (
        "All:  The fire drill is scheduled for Tuesday at 10 am. Please use the stairs.",
        "Fire drill Tuesday",
        ["fire drill", "tuesday fire drill", "drill scheduled"],
    ),
    "c": (
        "Good morning.\nMr. Lay will speak at the offsite. Details to follow.",
        "Offsite speaker",
        ["ken lay at offsite", "offsite details", "speaker announced"],
    ),
}


def _aeslc(root: Path) -> None:
    path = root / "aeslc" / "aeslc.tar.gz"
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "dev", "test"):
            for name, (body, subject, anns) in EMAILS.items():
                text = f"{body}\n\n@subject\n{subject}\n" + "".join(f"\n@ann{i}\n{a}\n" for i, a in enumerate(anns))
                data = text.encode()
                info = tarfile.TarInfo(f"enron_subject_line/{split}/{name}.subject")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _expected(hyps: list[str], refs: list[list[str]]) -> dict[str, float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    out = {}
    for key in ("rouge1", "rouge2", "rougeL"):
        best = [max(scorer.score(r, h)[key].fmeasure for r in rs) for h, rs in zip(hyps, refs, strict=True)]
        out[key] = 100 * sum(best) / len(best)
    return out


def test_aeslc_lead_one_scores_equal_rouge_score_directly(tmp_path):
    _aeslc(tmp_path)
    task = get_task("summarization", dataset="aeslc", data_dir=str(tmp_path))
    metrics, hyps = run_baseline(task, "test")
    assert hyps == [
        "Please review the attached gas contract by Friday.",
        "The fire drill is scheduled for Tuesday at 10 am.",
        "Mr. Lay will speak at the offsite.",
    ]
    subjects = _expected(hyps, [[s] for _, s, _ in EMAILS.values()])
    annotators = _expected(hyps, [a for _, _, a in EMAILS.values()])
    for key in ("rouge1", "rouge2", "rougeL"):
        assert metrics[key] == pytest.approx(subjects[key], abs=1e-9)
        assert metrics[f"ann_{key}"] == pytest.approx(annotators[key], abs=1e-9)


def test_qkv_baseline_prints_and_writes_the_scores(tmp_path, capsys):
    _aeslc(tmp_path)
    out = tmp_path / "out"
    args = ["baseline", "lead", "--task", "aeslc", "--split", "test", "--data-dir", str(tmp_path), "--out", str(out)]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == json.loads((out / "test.json").read_text())
    assert printed["baseline"] == "lead-1" and printed["examples"] == 3 and printed["skip_greeting"] is True
    hyps = (out / "test.hyp.txt").read_text().splitlines()
    subjects = _expected(hyps, [[s] for _, s, _ in EMAILS.values()])
    assert printed["metrics"]["rouge1"] == pytest.approx(subjects["rouge1"])
    assert printed["command"] == "qkv baseline lead --task aeslc --split test --n 1"

    assert main([*args[:-2], "--out", str(tmp_path / "kept"), "--keep-greeting"]) == 0
    assert (tmp_path / "kept" / "test.hyp.txt").read_text().splitlines()[0] == "Hi Kim,"
    assert main(["baseline", "lead", "--task", "aeslc", "--n", "0", "--data-dir", str(tmp_path)]) == 2


def test_samsum_lead_three_through_the_command(tmp_path, capsys):
    rows = [{"id": "1", "dialogue": DIALOGUE, "summary": "Amanda baked cookies and will bring Jerry some tomorrow."}]
    (tmp_path / "samsum").mkdir()
    for name in ("train", "validation", "test"):
        with gzip.open(tmp_path / "samsum" / f"{name}.csv.gz", "wt", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, ["id", "dialogue", "summary"])
            writer.writeheader()
            writer.writerows(rows)
    out = tmp_path / "out"
    assert main(["baseline", "lead", "--task", "samsum", "--data-dir", str(tmp_path), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["baseline"] == "lead-3" and printed["skip_greeting"] is None
    expected = _expected([" ".join(dialogue_turns(DIALOGUE)[:3])], [[rows[0]["summary"]]])
    assert printed["metrics"] == pytest.approx(expected)


def test_baseline_reference_result_folder_feeds_the_results_page(tmp_path, capsys):
    from qkv.results.collect import load_results
    from qkv.results.page import render

    _aeslc(tmp_path)
    results = tmp_path / "results"
    args = ["baseline", "lead", "--task", "aeslc", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*args, "--results", str(results)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-2])
    (record,) = load_results(results)
    assert record.recipe == "aeslc-lead1" and record.decoding == "extractive" and record.examples == 3
    assert record.metrics == pytest.approx(printed["metrics"]) and record.command == printed["command"]
    assert record.train_seconds == 0 and record.train_steps == 0
    for key in ("rouge1", "rouge2", "rougeL"):  # the interval brackets the score it resamples
        ci = record.intervals[key]
        assert ci["low"] <= record.metrics[key] <= ci["high"] and ci["value"] == pytest.approx(record.metrics[key])
    samples = (results / "aeslc-lead1" / "samples.txt").read_text()
    assert "hyp: Please review the attached gas contract by Friday." in samples
    page = render([record])
    assert "[aeslc-lead1](../results/aeslc-lead1)" in page and "lead-1 (extractive baseline)" in page
