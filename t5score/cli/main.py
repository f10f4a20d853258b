"""The ``t5score`` command: ``predict``, ``score``, ``rerank`` (LightningCLI) and ``compare``.

Answered without importing torch or Lightning: the top level (``t5score``, ``--help``, ``--version``),
``compare``, ``SUBCOMMAND --help`` (:mod:`t5score.cli.help`) and the mistakes :mod:`t5score.cli.precheck`
can tell (unknown options, values of the wrong type, a missing input file or column). User mistakes print
one line, ``t5score: error: ...``, and exit 2; set ``T5SCORE_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import errno
import os
import sys

USAGE = """usage: t5score {predict,score,rerank,compare,report} [options]

Decode, score and evaluate seq2seq models with the logits kept.

subcommands:
  predict   greedy (or sampled) decoding with per-token log-probabilities, entropies and top-k;
            writes predictions.parquet, summary.json, report.html (+ .md) (default: the shipped
            tiny model on the shipped test split, into reports/predict)
  score     teacher-forced scores of given texts (BARTScore-style directions) -> scores.parquet
  rerank    score candidate summaries and rank them -> reranked.parquet
  compare   put finished runs side by side: t5score compare RUN_DIR RUN_DIR [...] --output_dir D
  report    render a finished run's report.md and report.html again: t5score report RUN_DIR [--ids ID]

Run 't5score SUBCOMMAND --help' for the options of one subcommand (-c FILE.yaml reads a config);
't5score --version' for the versions in use.
"""

SUBCOMMANDS = ("predict", "score", "rerank", "compare", "report")


def _say(text: str) -> int:
    """Print ``text`` (a help screen) and return 0, also when the reader left early (``| head``)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:  # as the Python docs advise: no traceback, no second error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _fail(message: str) -> int:
    print(f"t5score: error: {message}", file=sys.stderr)
    return 2


def _user_errors() -> tuple[type[BaseException], ...]:
    from t5score.data.io import InputError

    return (InputError, FileNotFoundError, ValueError, KeyError)


#: errno -> what to say; OSErrors with other numbers are bugs, shown with their traceback
OS_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a file where a folder was expected",
}


def _os_error_line(err: OSError) -> str | None:
    """One line for an OSError a user can act on (disk full, no permission...), else None."""
    number = err.errno
    if number is None and "No space left on device" in str(err):  # pyarrow's IO errors carry no errno
        number = errno.ENOSPC
    if number not in OS_ERRORS:
        return None
    where = f"{err.filename}: " if getattr(err, "filename", None) else ""
    hint = "; free some space, then rerun with --resume" if number in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{where}{OS_ERRORS[number]}{hint}"


#: distributions whose versions ``--version`` reports besides t5score's
VERSIONS_OF = ("torch", "transformers", "lightning")


def version_line() -> str:
    """``t5score 0.1.0 (torch 2.x, transformers 5.x, lightning 2.x, Python 3.x)``, from the installed
    packages' metadata: nothing is imported."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    try:
        own = version("t5score")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from t5score import __version__ as own
    others = ", ".join(f"{name} {of(name)}" for name in VERSIONS_OF)
    return f"t5score {own} ({others}, Python {sys.version.split()[0]})"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from t5score.threads import prepare_threads

    prepare_threads(argv)  # before torch loads: the OpenMP wait policy is read once, at load
    if not argv or argv[0] in ("-h", "--help"):
        return _say(USAGE)  # no arguments asks for nothing else: the help, exit 0 (as pip, cargo, kubectl)
    if argv[0] in ("-V", "--version"):
        return _say(version_line())
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        from t5score.data.io import suggest

        return _fail(
            f"unknown subcommand {command!r}{suggest(command, list(SUBCOMMANDS))}; see 't5score --help'"
        )
    if command == "compare":
        from t5score.cli.compare import main as compare_main

        return compare_main(rest)
    if command == "report":
        from t5score.cli.report import main as report_main

        return report_main(rest)
    if "-h" in rest or "--help" in rest:
        from t5score.cli.help import render

        return _say(render(command))
    debug = os.environ.get("T5SCORE_DEBUG") == "1"
    try:
        from t5score.cli.precheck import check

        check(command, rest)  # before torch and Lightning load: seconds, not tens of seconds
        from t5score.cli.commands import COMMANDS

        return COMMANDS[command](rest)
    except _user_errors() as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        return _fail(str(message).splitlines()[0] if str(message) else type(err).__name__)
    except OSError as err:
        line = None if debug else _os_error_line(err)
        if line is None:
            raise
        return _fail(line)
    except KeyboardInterrupt:  # before the run started, or a second Ctrl-C outside the decoding loop
        print("t5score: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
