"""The Lightning-backed subcommands: each builds a LightningCLI (``run=False``) and hands it to the runner.

Lightning's and transformers' chatter is quietened only while a command runs (:func:`quiet_run`): importing
this module changes no warning filter and no logger level.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Warnings that say nothing to a t5score user (message patterns).
IGNORED_WARNINGS = (
    ".*LightningCLI's args parameter is intended.*",  # main() passes args and keeps sys.argv for DDP relaunch
    ".*Couldn't infer the batch indices.*",  # batches carry their own global index
    ".*isinstance\\(treespec, LeafSpec\\).*",
    ".*does not have many workers.*",
    ".*Total length of `DataLoader` across ranks is zero.*",  # a resume with every batch on disk
)
PACKAGE_DIR = Path(__file__).resolve().parents[1]
_SHOW_WARNING = warnings.showwarning
#: Logger -> level while a command runs.
QUIET_LOGGERS = {
    # Lightning's start-up banner ("GPU available...", tips) would sit between the user and a one-line error
    "lightning.pytorch.utilities.rank_zero": logging.WARNING,
    # transformers' "sequence longer than the maximum" note: t5score truncates itself and flags `truncated`
    "transformers.tokenization_utils_base": logging.ERROR,
}


@contextmanager
def quiet_run() -> Iterator[None]:
    """Ignore :data:`IGNORED_WARNINGS` and set :data:`QUIET_LOGGERS` inside the block; restore both after."""
    loggers = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
    levels = {name: logger.level for name, logger in loggers.items()}
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        for pattern in IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        for name, logger in loggers.items():
            logger.setLevel(QUIET_LOGGERS[name])
        try:
            yield
        finally:
            for name, logger in loggers.items():
                logger.setLevel(levels[name])


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """t5score's own warnings as one line (``t5score: warning: ...``, no source line); others as usual."""
    if Path(filename).resolve().is_relative_to(PACKAGE_DIR):
        print(f"t5score: warning: {message}", file=file or sys.stderr)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


def _run(
    module_cls: type,
    datamodule_cls: type,
    args: list[str],
    name: str,
    read_input: Callable[[Any], Any],
    make_spec: Callable[[Any, Any], Any],
) -> int:
    """Parse, read the input (file-level errors first), load the model, then run into --output_dir."""
    with quiet_run():
        return _parse_and_run(module_cls, datamodule_cls, args, name, read_input, make_spec)


def _parse_and_run(module_cls, datamodule_cls, args, name, read_input, make_spec) -> int:
    from t5score.cli.lightning_cli import build_cli, run_config
    from t5score.engine.tokens import source_length_limit
    from t5score.runs.output_dir import run_folder
    from t5score.runs.run_state import run_state
    from t5score.runs.runner import run
    from t5score.runs.stopping import RunStopped
    from t5score.threads import apply_threads

    cli = build_cli(module_cls, datamodule_cls, args, f"reports/{name}")
    apply_threads(cli.config.threads)  # --threads, else OMP_NUM_THREADS, else the CPUs this process may use
    rows = read_input(cli.datamodule)  # file-level problems surface before the model loads
    cli.model.configure_model()  # a bad model path or option fails before the output folder is made
    dm = cli.datamodule
    dm.max_source_length = source_length_limit(cli.model.tokenizer, dm.max_source_length)
    spec = make_spec(rows, cli.model)
    out = run_folder(cli.config.output_dir, Path("reports") / name, cli.config.resume)
    state = run_state(run_config(cli, str(out)), cli.trainer, cli.model, rows)
    try:
        result = run(
            cli.trainer,
            cli.model,
            cli.datamodule,
            spec,
            out,
            state,
            rows,
            cli.config.resume,
            cli.config.overwrite,
        )
    except RunStopped as stop:
        again = "--resume" if cli.config.output_dir else f"--resume --output_dir {out}"
        print(
            f"t5score: {stop}; the finished batches are in {out}: "
            f"run the same command with {again} to continue",
            file=sys.stderr,
        )
        return stop.exit_code
    if result is not None and result.already_complete:
        print(f"t5score: {out} is complete ({result.rows} rows in {result.output}); nothing to resume")
    elif result is not None:
        print(f"t5score: {result.rows} rows -> {result.output}; report: {result.report}")
    return 0


def predict(args: list[str]) -> int:
    """``t5score predict``: decode with logits kept (:class:`~t5score.runs.predict.Seq2SeqPredictor`)."""
    from t5score.data.modules import TextDataModule
    from t5score.runs.predict import Seq2SeqPredictor, predict_spec

    return _run(Seq2SeqPredictor, TextDataModule, args, "predict", lambda dm: dm.load_rows(), predict_spec)


def score(args: list[str]) -> int:
    """``t5score score``: teacher-forced scores of given texts (:mod:`t5score.runs.score`)."""
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
    """``t5score rerank``: score candidates and rank them (:mod:`t5score.runs.rerank`)."""
    from t5score.runs.rerank import CandidateReranker, CandidatesDataModule, rerank_spec

    return _run(
        CandidateReranker, CandidatesDataModule, args, "rerank", lambda dm: dm.load_rows(), rerank_spec
    )


COMMANDS = {"predict": predict, "score": score, "rerank": rerank}
