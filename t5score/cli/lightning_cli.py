"""The LightningCLI behind ``predict``, ``score`` and ``rerank``: the parser, its run-level options and
the Trainer defaults every t5score run starts from."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LightningCLI

from t5score.data.io import InputError

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
        """``--output_dir``, ``--resume``, ``--overwrite`` and ``--threads``."""
        parser.add_argument(
            "--output_dir",
            type=str | None,
            default=None,
            help=(
                "Folder for the run's Parquet table, summary.json, run.json, report.md, figures; default: a "
                f"new numbered folder {self.default_output_dir}/run_NNN for each run (the last line says which)."
            ),
        )
        parser.add_argument(
            "--resume",
            action="store_true",
            help="Continue an interrupted run in --output_dir (default: the latest numbered run folder).",
        )
        parser.add_argument(
            "--overwrite", action="store_true", help="Replace an earlier run in --output_dir."
        )
        parser.add_argument(
            "--threads",
            type=int | None,
            default=None,
            help=(
                "CPU threads for torch (wins over OMP_NUM_THREADS); default: OMP_NUM_THREADS when set, else "
                "the CPUs this process may use (affinity mask, cgroup CPU quota)."
            ),
        )

    def before_instantiate_classes(self) -> None:
        """Refuse Trainer options a t5score run cannot honour before the Trainer is built."""
        check_trainer_options(self.config.get("trainer") or {})

    def instantiate_trainer(self, **kwargs: Any):
        """The Trainer; its configuration errors (a MisconfigurationException, or the TypeError / ValueError
        Lightning raises for a value such as ``--trainer.devices x,y``) become one line."""
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        try:
            return super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, TypeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(f"--trainer options: {first}") from None


PARTIAL_RUN = (
    "a t5score run decodes every input row, and the run's merge refuses a partial one; drop the option "
    "(to try a few rows, give --data.path a smaller file)"
)


def check_trainer_options(trainer: Any) -> None:
    """An InputError naming the option for an accelerator this machine lacks, and for
    ``limit_predict_batches`` (other than 1.0) and ``fast_dev_run``, which decode part of the input."""
    limit, fast = trainer.get("limit_predict_batches"), trainer.get("fast_dev_run")
    if limit is not None and not (isinstance(limit, float) and limit == 1.0):
        raise InputError(f"--trainer.limit_predict_batches {limit}: {PARTIAL_RUN}")
    if fast:
        raise InputError(f"--trainer.fast_dev_run {str(fast).lower()}: {PARTIAL_RUN}")
    accelerator = trainer.get("accelerator")
    if isinstance(accelerator, str) and (missing := _missing_accelerator(accelerator.lower())):
        raise InputError(f"--trainer.accelerator {accelerator}: {missing}; use --trainer.accelerator cpu")


def _missing_accelerator(name: str) -> str | None:
    """Why ``name`` ("gpu", "cuda", "mps") cannot run here, or None."""
    import torch
    from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

    cuda = None if CUDAAccelerator.is_available() else "this torch build has no CUDA"
    if cuda and torch.version.cuda is not None:
        cuda = "this machine has no CUDA device"
    mps = None if MPSAccelerator.is_available() else "this machine has no MPS (Apple GPU) device"
    if name == "gpu":
        return f"{cuda} and {mps}" if cuda and mps else None
    return {"cuda": cuda, "mps": mps}.get(name)


def cli_settings(command: str) -> dict[str, Any]:
    """The LightningCLI arguments of ``t5score COMMAND`` besides the classes and ``args``: nothing runs
    (``run=False``), parse errors raise (one line in :func:`build_cli`) instead of printing the usage, and
    options are never abbreviated (``--out`` is not ``--output_dir``)."""
    return dict(
        run=False,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_callback=None,
        seed_everything_default=False,
        auto_configure_optimizers=False,  # inference only: no --optimizer / --lr_scheduler
        subclass_mode_model=False,
        subclass_mode_data=False,
        parser_kwargs={"prog": f"t5score {command}", "exit_on_error": False, "allow_abbrev": False},
    )


def build_cli(module_cls: type, datamodule_cls: type, args: list[str], output_dir: str) -> T5ScoreCLI:
    """Parse ``args`` into the module, data module and Trainer (``run=False``: nothing runs yet); a parse
    error (an unknown option, a value of the wrong type) raises InputError, one line naming the option."""
    from argparse import ArgumentError

    from t5score.cli.option_errors import parse_error_line

    command = output_dir.rsplit("/", 1)[-1]
    cli_cls = type("CLI", (T5ScoreCLI,), {"default_output_dir": output_dir})
    try:
        return cli_cls(module_cls, datamodule_cls, args=args, **cli_settings(command))
    except ArgumentError as err:
        raise InputError(parse_error_line(command, str(err))) from None


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


def run_config(cli: LightningCLI, output_dir: str) -> dict[str, Any]:
    """The values in force (defaults resolved: the data module's id column, source length and default
    input, the model's generation length) that must not change between a run and its resume."""
    cfg = cli.config.as_dict()
    data = dict(cfg.get("data") or {})
    for key in data:
        value = getattr(cli.datamodule, key, data[key])
        options = getattr(cli.datamodule, "options", {})  # the candidates module keeps its reader options
        data[key] = options.get(key, value) if key in options else value
    model = dict(cfg.get("model") or {})
    generation = getattr(cli.model, "generation", None)
    if "max_new_tokens" in model and generation is not None:
        model["max_new_tokens"] = generation.max_new_tokens
    return {"model": model, "data": data, "output_dir": output_dir}
