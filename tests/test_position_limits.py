"""A model with learned positions (BERT, GPT-2) has a table of ``model.max_len`` rows and no position past
it. Decoding more tokens than that, or reading a longer source, stopped ``qkv evaluate`` and ``qkv
generate`` with a traceback from inside the model (found by a review: ``qkv evaluate --max-len`` was not
checked). Now: one line naming the input or the length (exit 2); ``qkv generate``'s default length is cut
to what the model can write. The run is the tiny copy-probe run of tests/test_reliability.py with learned
positions (a 16-row table).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qkv.cli import main
from qkv.errors import UserError
from qkv.models.builder import build_model
from qkv.models.config import ModelConfig
from qkv.models.positions import learned_position_limit
from qkv.training.evaluate import translate
from qkv.training.run import load_run
from test_reliability import RECIPE

ROWS = 16  # RECIPE's model.max_len


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("learned")
    (folder / "tiny.yaml").write_text(RECIPE)
    args = ["train", str(folder / "tiny.yaml"), "--out", str(folder / "run"), "--no-progress"]
    assert main([*args, "--set", "model.positions=learned"]) == 0
    return folder / "run"


def test_the_limit_is_the_rows_of_the_learned_table() -> None:
    small = dict(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1)
    model = build_model(ModelConfig(name="transformer", positions="learned", max_len=24, **small), 10, 10)
    assert learned_position_limit(model) == 24
    assert learned_position_limit(build_model(ModelConfig(name="transformer", max_len=24, **small), 10, 10)) is None
    assert learned_position_limit(build_model(ModelConfig(name="gru-attention", d_model=16), 10, 10)) is None


def test_evaluate_refuses_a_max_len_past_the_table(learned: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", str(learned), "--max-len", str(ROWS + 1)]) == 2
    err = capsys.readouterr().err
    assert f"decoding up to {ROWS + 1} tokens" in err and f"at most {ROWS}" in err and "Traceback" not in err
    assert main(["evaluate", str(learned), "--max-len", str(ROWS)]) == 0  # the whole table is usable


def test_generate_names_a_source_longer_than_the_table(learned: Path, capsys: pytest.CaptureFixture) -> None:
    text = " ".join(["1"] * ROWS)  # 16 tokens, 17 with <eos>
    assert main(["generate", str(learned), text]) == 2
    assert f"input 1 has {ROWS + 1} tokens (with <eos>), more than the {ROWS} positions" in capsys.readouterr().err
    assert main(["generate", str(learned), " ".join(["1"] * (ROWS - 1))]) == 0  # 16 with <eos>: fits


def test_generate_cuts_its_length_to_the_table(learned: Path) -> None:
    """``translate`` refuses a length past the table; ``generate`` (default --max-len 128, more than the table)
    decodes what the table holds: the same output as asking for exactly that."""
    from qkv.training.generate import generate_texts

    run = load_run(learned)
    with pytest.raises(UserError, match=f"at most {ROWS}"):
        translate(run.model, [[5, 6]], max_len=ROWS + 1)
    assert generate_texts(run, ["1 2 3"], max_len=128) == generate_texts(run, ["1 2 3"], max_len=ROWS)
    assert main(["generate", str(learned), "1 2"]) == 0
