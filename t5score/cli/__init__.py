"""The ``t5score`` command line: dispatch (:mod:`~t5score.cli.main`) and the LightningCLI subcommands."""

from t5score.cli.main import main

__all__ = ["main"]
