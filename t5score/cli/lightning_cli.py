"""The LightningCLI behind ``predict``, ``score`` and ``rerank``: the parser, its run-level options and
the Trainer defaults every t5score run starts from."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LightningCLI

TRAINER_DEFAULTS = {
    "logger": False,
    "devices": 1,
    "enable_checkpointing": False,
    "enable_model_summary": False,
}


class T5ScoreCLI(LightningCLI):
    """LightningCLI with the run-level options every t5score run has."""

    default_output_dir = "reports/predict"

    def add_arguments_to_parser(self, parser) -> None:
        """``--output_dir``, ``--resume`` and ``--overwrite``."""
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


def build_cli(module_cls: type, datamodule_cls: type, args: list[str], output_dir: str) -> T5ScoreCLI:
    """Parse ``args`` into the module, data module and Trainer (``run=False``: nothing runs yet)."""
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


def config_parser(module_cls: type, datamodule_cls: type) -> Any:
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


def run_config(cli: LightningCLI) -> dict[str, Any]:
    """The parts of the resolved config that must not change between a run and its resume."""
    cfg = cli.config.as_dict()
    return {"model": cfg.get("model"), "data": cfg.get("data"), "output_dir": cfg.get("output_dir")}
