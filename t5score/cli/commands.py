"""The Lightning-backed subcommands: each builds a LightningCLI (``run=False``) and hands it to the runner."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI

TRAINER_DEFAULTS = {
    "logger": False,
    "devices": 1,
    "enable_checkpointing": False,
    "enable_model_summary": False,
}


for _pattern in (
    ".*LightningCLI's args parameter is intended.*",  # main() passes args and keeps sys.argv for DDP relaunch
    ".*Couldn't infer the batch indices.*",  # batches carry their own global index
    ".*isinstance\\(treespec, LeafSpec\\).*",
    ".*does not have many workers.*",
):
    warnings.filterwarnings("ignore", message=_pattern)


# Lightning's start-up banner ("GPU available...", tips) would sit between the user and a one-line error
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
# transformers' "sequence longer than the maximum" note: t5score truncates itself and flags `truncated`
logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)


class T5ScoreCLI(LightningCLI):
    """LightningCLI with the run-level options every t5score run has."""

    default_output_dir = "reports/predict"

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--output_dir",
            type=str,
            default=self.default_output_dir,
            help="Folder for the run's Parquet table, summary.json, run.json, report.md, figures.",
        )
        parser.add_argument(
            "--resume", action="store_true", help="Continue an interrupted run in --output_dir."
        )
        parser.add_argument(
            "--overwrite", action="store_true", help="Replace an earlier run in --output_dir."
        )


def build_cli(module_cls, datamodule_cls, args: list[str], output_dir: str) -> T5ScoreCLI:
    command = output_dir.rsplit("/", 1)[-1]
    cli_cls = type("CLI", (T5ScoreCLI,), {"default_output_dir": output_dir})
    return cli_cls(
        module_cls,
        datamodule_cls,
        args=args,
        run=False,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_callback=None,
        seed_everything_default=False,
        auto_configure_optimizers=False,  # inference only: no --optimizer / --lr_scheduler
        subclass_mode_model=False,
        subclass_mode_data=False,
        parser_kwargs={"prog": f"t5score {command}"},
    )


def config_parser(module_cls, datamodule_cls):
    """A parser for ``-c`` files with the same keys as the subcommand, without instantiating anything."""
    from jsonargparse import ActionConfigFile, ArgumentParser
    from lightning import Trainer

    parser = ArgumentParser(prog="t5score", exit_on_error=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile)
    parser.add_class_arguments(module_cls, "model")
    parser.add_class_arguments(datamodule_cls, "data")
    parser.add_class_arguments(Trainer, "trainer")
    parser.add_argument("--seed_everything", type=bool | int, default=True)
    T5ScoreCLI.add_arguments_to_parser(T5ScoreCLI.__new__(T5ScoreCLI), parser)
    return parser


def run_config(cli) -> dict[str, Any]:
    """The parts of the resolved config that must not change between a run and its resume."""
    cfg = cli.config.as_dict()
    return {"model": cfg.get("model"), "data": cfg.get("data"), "output_dir": cfg.get("output_dir")}


def _run(module_cls, datamodule_cls, args: list[str], name: str, read_input, make_spec) -> int:
    """Parse, read the input (file-level errors first), load the model, then run into --output_dir."""
    from t5score.runs.runner import run

    cli = build_cli(module_cls, datamodule_cls, args, f"reports/{name}")
    rows = read_input(cli.datamodule)  # file-level problems surface before the model loads
    cli.model.configure_model()  # a bad model path fails before the output folder is made
    spec = make_spec(rows, cli.model)
    out = Path(cli.config.output_dir)
    report = run(
        cli.trainer,
        cli.model,
        cli.datamodule,
        spec,
        out,
        run_config(cli),
        cli.config.resume,
        cli.config.overwrite,
    )
    if report is not None:
        print(f"t5score: {len(rows)} rows -> {out / spec.output_name}; report: {report}")
    return 0


def predict(args: list[str]) -> int:
    from t5score.data.modules import TextDataModule
    from t5score.runs.predict import Seq2SeqPredictor
    from t5score.runs.predict_finish import predict_spec

    return _run(Seq2SeqPredictor, TextDataModule, args, "predict", lambda dm: dm.load_rows(), predict_spec)


def score(args: list[str]) -> int:
    from t5score.runs.score import ScoreDataModule, Seq2SeqScorer, score_spec

    return _run(
        Seq2SeqScorer,
        ScoreDataModule,
        args,
        "score",
        lambda dm: dm.load_rows(),
        lambda rows, _: score_spec(rows),
    )


def rerank(args: list[str]) -> int:
    from t5score.runs.rerank import CandidateReranker, CandidatesDataModule, rerank_spec

    return _run(
        CandidateReranker, CandidatesDataModule, args, "rerank", lambda dm: dm.load_frame(), rerank_spec
    )


COMMANDS = {"predict": predict, "score": score, "rerank": rerank}
