"""The top-level command: help, unknown subcommands, and `compare` routed without Lightning."""

from __future__ import annotations

import subprocess
import sys

from t5score.cli import main


def test_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("predict", "score", "rerank", "compare"):
        assert name in out


def test_unknown_subcommand_suggests_the_close_one(capsys):
    assert main(["predcit"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t5score: error:") and "'predict'" in err and len(err.splitlines()) == 1


def test_compare_is_routed_and_starts_without_lightning(tmp_path):
    code = (
        "import sys; from t5score.cli.main import main; rc = main(sys.argv[1:]); "
        "print('lightning' in sys.modules, 'torch' in sys.modules); sys.exit(rc)"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "compare",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == "False False"


def test_no_arguments_prints_the_usage_and_exits_0(capsys):
    """Nothing asked for but the help screen (as pip, cargo, kubectl); before: exit 2."""
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("usage: t5score {predict,score,rerank,compare,report}")


def test_version_names_t5score_and_its_stack_without_importing_them():
    from importlib.metadata import version

    code = (
        "import sys; from t5score.cli.main import main; rc = main(sys.argv[1:]); "
        "print(any(m in sys.modules for m in ('torch', 'lightning', 'transformers'))); sys.exit(rc)"
    )
    for flag in ("--version", "-V"):
        proc = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, timeout=60)
        line, imported = proc.stdout.strip().splitlines()
        assert proc.returncode == 0 and imported == "False", proc.stderr
        assert line.startswith(f"t5score {version('t5score')} (")
        for name in ("torch", "transformers", "lightning"):
            assert f"{name} {version(name)}" in line
