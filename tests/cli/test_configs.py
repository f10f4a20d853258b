"""Every shipped config parses against the options of its subcommand (no model is loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from t5score.cli.lightning_cli import config_parser
from t5score.data.modules import TextDataModule
from t5score.runs.predict import Seq2SeqPredictor
from t5score.runs.rerank import CandidateReranker, CandidatesDataModule
from t5score.runs.score import ScoreDataModule, Seq2SeqScorer

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
PARSERS = {
    "predict": (Seq2SeqPredictor, TextDataModule),
    "score": (Seq2SeqScorer, ScoreDataModule),
    "rerank": (CandidateReranker, CandidatesDataModule),
}


def _kind(path: Path) -> str:
    return next((k for k in PARSERS if path.stem.startswith(k)), "predict")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses(path):
    parser = config_parser(*PARSERS[_kind(path)])
    cfg = parser.parse_args(["-c", str(path)])
    assert cfg.model.name_or_path


def test_every_key_is_commented():
    for path in CONFIGS:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
                assert "#" in line, f"{path.name}:{number}: uncommented key: {line.strip()}"


def test_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  max_new_tokns: 5\n")
    with pytest.raises(Exception, match="max_new_tokns"):
        config_parser(Seq2SeqPredictor, TextDataModule).parse_args(["-c", str(bad)])


def test_default_config_is_the_plain_main_job():
    """configs/default.yaml says it is the same as plain `t5score predict`: every option it sets is the default
    (target_column / id_column name the shipped split's columns, which the defaults pick for it)."""
    parser = config_parser(Seq2SeqPredictor, TextDataModule)
    plain = parser.parse_args([]).as_dict()
    shipped = parser.parse_args(["-c", str(Path(__file__).parents[2] / "configs" / "default.yaml")]).as_dict()
    for section in ("model", "data", "trainer"):
        for key, value in shipped[section].items():
            if (section, key) in {("data", "target_column"), ("data", "id_column")}:
                continue
            if (section, key) == ("trainer", "precision") and plain[section][key] is None:
                assert value == "32-true"  # Lightning's default precision
                continue
            assert value == plain[section][key], (
                f"{section}.{key}: {value!r} != default {plain[section][key]!r}"
            )
    assert shipped.get("output_dir", plain.get("output_dir")) == plain.get("output_dir")
