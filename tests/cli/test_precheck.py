"""Mistakes told before torch, Lightning and transformers load (t5score/cli/precheck.py): fast, one line,
the same line the real checks print, and nothing refused that the real parser accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import ArgumentError
from pathlib import Path

import pytest

from t5score.cli import precheck
from t5score.cli.options_gen import real_parser
from t5score.data.io import InputError
from tests.helpers.cli import assert_user_error

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": i, "source": f"s {i}", "target": "t"}) + "\n" for i in "ab"))
    return path


def _driven(argv: list[str]) -> subprocess.CompletedProcess:
    """``t5score argv`` in a fresh interpreter; prints the seconds main() took and which heavy modules
    it imported."""
    code = (
        "import sys, time; from t5score.cli.main import main; t = time.perf_counter(); rc = main(sys.argv[1:]); "
        "print(round(time.perf_counter() - t, 3), [m in sys.modules for m in ('torch', 'lightning', "
        "'transformers')]); sys.exit(rc)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.mark.parametrize(
    "argv,match",
    [
        (["predict", "--data.path", "{tmp}/missing.jsonl"], "missing.jsonl: no such file"),
        (["predict", "--data.path", "{rows}", "--data.source_column", "src"], "no column 'src'"),
        (["score", "--data.path", "{rows}", "--data.target_column", "tgt"], "no column 'tgt'"),
        (["rerank", "--data.path", "{rows}"], "no column 'candidates'"),
        (["predict", "--data.sourc_column", "x"], "did you mean --data.source_column"),
    ],
)
def test_refused_in_well_under_two_seconds_without_the_heavy_imports(tmp_path, rows, argv, match):
    """Before: 7 s here (45 s on a loaded machine), after torch, Lightning and transformers loaded."""
    argv = [a.format(tmp=tmp_path, rows=rows) for a in argv]
    proc = _driven(argv)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and match in lines[0], proc.stderr
    seconds, imported = proc.stdout.split(" ", 1)
    assert imported.strip() == "[False, False, False]"
    assert float(seconds) < 1.0


def test_the_unknown_option_line(capsys):
    line = assert_user_error(capsys, ["predict", "--data.sourc_column", "x"], "unknown option")
    assert line == (
        "t5score: error: unknown option --data.sourc_column (did you mean --data.source_column?); "
        "see 't5score predict --help'"
    )


@pytest.mark.parametrize(
    "argv,match",
    [
        (
            ["predict", "--data.batch_size", "abc"],
            r"^t5score: error: --data.batch_size 'abc': expected an integer;",
        ),
        (["predict", "--data.max_source_length", "None"], r"'None': expected an integer or null"),
        (["predict", "--model.temperature", "warm"], r"--model.temperature 'warm': expected a number"),
        (["predict", "--model.compile", "1"], r"--model.compile '1': expected true or false"),
        (
            ["predict", "--model.capture", "ful"],
            r"--model.capture 'ful': capture must be one of stats, full \(did you mean full\?\)",
        ),
        (
            ["rerank", "--model.rank_by", "f"],
            r"rank_by must be one of src->hyp, .*harm_F \(did you mean F\?\)",
        ),
        (["predict", "--data.batch_size"], r"--data.batch_size: needs a value \(an integer\)"),
        (
            ["predict", "--out", "x"],
            r"unknown option --out \(did you mean --output_dir\?\)",
        ),  # no abbreviations
        (["predict", "rows.jsonl"], r"unexpected argument 'rows.jsonl' \(options start with --\)"),
        (["predict", "-c", "missing.yaml"], r"missing.yaml: no such config file \(-c\)"),
        (["predict", "--data.batch_size", "0"], r"batch_size must be >= 1, got 0 \(--data.batch_size\)"),
    ],
)
def test_option_mistakes(capsys, argv, match):
    assert_user_error(capsys, argv, match)


def test_a_config_files_unknown_key(capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  max_new_tokns: 5\n")
    line = assert_user_error(capsys, ["predict", "-c", str(config)], "unknown key")
    assert line.endswith(
        "unknown key model.max_new_tokns (did you mean model.max_new_tokens?); see 't5score predict --help'"
    )
    with pytest.raises(ArgumentError, match="max_new_tokns"):  # the real parser refuses it too
        real_parser("predict").parse_args(["-c", str(config)])


# -- the same line as the real checks --------------------------------------------------------------


def _real_error(call) -> str:
    with pytest.raises((InputError, FileNotFoundError)) as caught:
        call()
    return str(caught.value)


def _our_error(command: str, argv: list[str]) -> str:
    with pytest.raises(InputError) as caught:
        precheck.check(command, argv)
    return str(caught.value)


def test_file_problems_read_as_the_readers(tmp_path, rows):
    from t5score.data.io import read_records

    (tmp_path / "rows.txt").write_text("x")
    for path in (tmp_path / "missing.jsonl", tmp_path, tmp_path / "rows.txt"):
        assert _our_error("predict", ["--data.path", str(path)]) == _real_error(
            lambda p=path: read_records(p)
        )


@pytest.mark.parametrize("layout", ["csv", "tsv", "jsonl", "parquet"])
@pytest.mark.parametrize("option", ["source_column", "target_column", "id_column"])
def test_missing_columns_read_as_the_data_modules(tmp_path, layout, option):
    import pandas as pd

    from t5score.data.modules import TextDataModule

    frame = pd.DataFrame({"id": ["a", "b"], "source": ["x", "y"], "target": ["t", "u"]})
    path = tmp_path / f"rows.{layout}"
    {
        "csv": lambda: frame.to_csv(path, index=False),
        "tsv": lambda: frame.to_csv(path, sep="\t", index=False),
        "jsonl": lambda: frame.to_json(path, orient="records", lines=True),
        "parquet": lambda: frame.to_parquet(path),
    }[layout]()
    given = {"source_column": "source", "target_column": "target", "id_column": "id", option: "idd"}
    argv = ["--data.path", str(path), *(x for k, v in given.items() for x in (f"--data.{k}", v))]
    real = _real_error(lambda: TextDataModule(path=str(path), **given).load_rows())
    assert _our_error("predict", argv) == real and "did you mean 'id'" in real


def test_a_jsonl_column_seen_only_in_a_later_row_is_found(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"source": "a"}\n\n{"source": "b", "target": "t"}\n')
    precheck.check("predict", ["--data.path", str(path), "--data.target_column", "target"])


def test_rerank_columns_read_as_its_reader(tmp_path):
    from t5score.data.modules import CandidatesDataModule

    path = tmp_path / "long.jsonl"
    path.write_text('{"id": "g", "source": "s", "prediction": "p"}\n')
    real = _real_error(lambda: CandidatesDataModule(path=str(path), group_column="id").load_rows())
    argv = ["--data.path", str(path), "--data.group_column", "id"]
    assert _our_error("rerank", argv) == real and "'candidate'" in real


def test_value_checks_read_as_the_data_modules(rows):
    from t5score.data.modules import ScoreDataModule, TextDataModule

    cases = [
        ("predict", ["--data.batch_size", "-3"], lambda: TextDataModule(batch_size=-3)),
        ("predict", ["--data.max_source_length", "0"], lambda: TextDataModule(max_source_length=0)),
        ("score", ["--data.path", str(rows)], lambda: ScoreDataModule(path=str(rows))),
    ]
    for command, argv, real in cases:
        assert _our_error(command, argv) == _real_error(real)


def test_a_model_folder_without_config_reads_as_the_loader(tmp_path):
    from t5score.engine.modeling import load_model_and_tokenizer

    for name in (str(tmp_path), "./no-such-model"):
        real = _real_error(lambda n=name: load_model_and_tokenizer(n))
        assert _our_error("predict", ["--model.name_or_path", name]) == real


# -- never refusing what the real parser accepts ----------------------------------------------------

SAMPLES = {
    "data.batch_size": [
        "3",
        "+3",
        " 3",
        "0x10",
        "1_000",
        "010",
        "٣",
        "3.0",
        "1e3",
        "0o7",
        "null",
        "true",
        "x",
    ],
    "model.temperature": ["1e-1", ".5", "1", "0x1", "1_0.5", "inf", "nan", "null", "true", "1,5"],
    "data.max_source_length": ["3", "null", "Null", "~", "none", "None", "", "3.0", "true"],
    "data.sort_by_length": ["true", "True", "TRUE", "yes", "no", "on", "off", "1", "0", "y", "null"],
    "model.capture": ["stats", "full", "Full"],
}


@pytest.mark.parametrize("dest", sorted(SAMPLES))
def test_values_are_judged_as_the_real_parser_judges_them(dest):
    """Refused here exactly when jsonargparse refuses the value (choices: when the module refuses it)."""
    from t5score.engine.options import CAPTURE_MODES

    parser = real_parser("predict")
    for text in SAMPLES[dest]:
        try:
            parsed = parser.parse_args([f"--{dest}", text])
            real_ok = dest != "model.capture" or parsed.model.capture in CAPTURE_MODES
        except ArgumentError:
            real_ok = False
        try:
            precheck.scan("predict", [f"--{dest}", text])
            ours_ok = True
        except InputError:
            ours_ok = False
        assert ours_ok == real_ok, (dest, text)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_the_shipped_configs_pass(path):
    """Their options and values (the files they name are the user's to make)."""
    command = next((c for c in ("score", "rerank") if path.stem.startswith(c)), "predict")
    args = precheck.scan(command, ["-c", str(path)])
    assert args.values and not args.opaque


def test_options_and_config_files_in_the_order_given(tmp_path, rows):
    """As jsonargparse: a later option or file overrides an earlier one (compared with its result)."""
    config, section = tmp_path / "c.yaml", tmp_path / "data.yaml"
    config.write_text(f"data:\n  path: {tmp_path / 'missing.jsonl'}\n  batch_size: 4\n")
    section.write_text("batch_size: 4\n")  # --data FILE: the data section alone
    parser = real_parser("predict")
    for argv in (
        ["-c", str(config)],
        ["-c", str(config), "--data.path", str(rows)],
        ["--data.path", str(rows), "-c", str(config)],
        ["--data", json.dumps({"path": str(rows)}), "--data.batch_size=2"],
        ["--data.batch_size", "2", "--data", str(section)],
    ):
        ours = precheck.scan("predict", argv).values
        real = parser.parse_args(argv).data
        assert ours.get("data.path") == real.path and int(ours.get("data.batch_size", 16)) == real.batch_size
    assert "missing.jsonl: no such file" in _our_error("predict", ["-c", str(config)])
    precheck.check("predict", ["-c", str(config), "--data.path", str(rows)])


def test_hidden_trainer_options_are_still_accepted(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("trainer:\n  max_epochs: 3\n  gradient_clip_val: 0.5\n")
    argv = ["-c", str(config), "--trainer.max_epochs", "4", "--trainer.logger.init_args.save_dir", "x"]
    precheck.check("predict", argv[:4])
    precheck.scan("predict", argv)
    assert real_parser("predict").parse_args(argv[:4]).trainer.max_epochs == 4


def test_what_the_real_parser_still_refuses_is_one_line_too(capsys, rows):
    """Past the checks (values of class types): the parser's multi-line message becomes one line."""
    line = assert_user_error(
        capsys, ["predict", "--data.path", str(rows), "--trainer.logger.save_dir", "x"], "trainer.logger"
    )
    assert line.startswith("t5score: error: --trainer.logger.save_dir 'x': --trainer.logger takes Logger")


def test_a_trainer_value_lightning_refuses_is_one_line(capsys, rows, tmp_path):
    """Before: a TypeError traceback from Lightning's CPU accelerator."""
    argv = [
        "predict",
        "--data.path",
        str(rows),
        "--trainer.devices",
        "x,y",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    assert_user_error(capsys, argv, r"^t5score: error: --trainer options: `devices` selected with")
