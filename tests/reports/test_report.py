"""report.md and its figures: links resolve to real PNGs, problem rows are listed, optional columns may be missing."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from t5score.functional.uncertainty import prr
from t5score.reports import figures
from t5score.reports.report import UNCERTAINTY_MEANING, write_report
from t5score.runs.uncertainty import UNCERTAINTY_SCORES, add_uncertainty

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


#: figure file name -> (height, width) in pixels: figsize (inches) x 100 dpi, as figures.py draws them
FIGURE_SIZES = {
    "calibration": (500, 600),  # the three reliability diagrams
    "reliability": (500, 600),
    "ref_reliability": (500, 600),
    "token_entropy": (400, 600),
    "mean_logprob": (400, 600),
    "risk_coverage": (450, 600),
    "confidence_quality": (450, 600),
    "entropy_by_position": (450, 650),
    "output_length": (400, 600),
}


def assert_real_png(path: Path, size: tuple[int, int] | None = None) -> None:
    """A PNG that decodes, has the expected (height, width) and shows a drawing, not a blank canvas."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    pixels = matplotlib.image.imread(path)
    expected = size or FIGURE_SIZES[path.stem]
    assert pixels.ndim == 3 and pixels.shape[:2] == expected, (path, pixels.shape)
    assert float(pixels[..., :3].std()) > 0.01  # something was drawn


def predictions_frame(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(1, 8))
        lp = np.minimum(rng.normal(-1.0, 0.5, k), 0.0)
        ent = rng.gamma(2.0, 0.5, k)
        error = "empty source" if i == 7 else None
        rows.append(
            {
                "id": f"ex{i}",
                "source": f"source text {i} | with a pipe\nand a newline",
                "prediction": None if error else f"prediction {i}",
                "target": f"target {i}" if i % 3 == 0 else None,
                "token_ids": [] if error else list(range(k)),
                "token_logprobs": [] if error else lp.tolist(),
                "token_entropies": [] if error else ent.tolist(),
                "num_tokens": 0 if error else k,
                "sum_logprob": None if error else float(lp.sum()),
                "mean_logprob": None if error else float(lp.mean()),
                "mean_entropy": None if error else float(ent.mean()),
                "max_entropy": None if error else float(ent.max()),
                "finished": i not in (4, 11),
                "truncated": i == 3,
                "error": error,
                "rougeL": None if error else float(np.exp(lp.mean()) + rng.normal(scale=0.1)),
            }
        )
    return pd.DataFrame(rows)


def roundtrip(df: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """As the report sees it: through parquet, like the real predictions file."""
    df.to_parquet(tmp_path / "in.parquet")
    return pd.read_parquet(tmp_path / "in.parquet")


def calibration_bins() -> list[dict]:
    conf = np.linspace(0.05, 0.95, 10)
    return [{"confidence": c, "accuracy": c * 0.8, "count": int(5 + 10 * c)} for c in conf]


def columnar_bins() -> dict:
    """Reliability bins as ``t5score.runs.corpus_summary.summarize_records`` writes them: per-bin lists, None when empty."""
    edges = np.linspace(0, 1, 6)
    return {
        "lower": edges[:-1].tolist(),
        "upper": edges[1:].tolist(),
        "confidence": [None, 0.3, 0.5, 0.7, 0.9],
        "accuracy": [None, 0.2, 0.5, 0.6, 0.95],
        "count": [0, 4, 10, 20, 40],
    }


def linked_images(report: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text(encoding="utf-8"))


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_full_predict_report(tmp_path: Path) -> None:
    df = roundtrip(predictions_frame(), tmp_path)
    summary = {
        "ece": 0.12,
        "num_tokens": 99,
        "calibration": {"ece": 0.12, "bins": calibration_bins()},
        "ref_reliability": columnar_bins(),
    }
    run_info = {
        "command": ["t5score", "predict", "-c", "cfg.yaml"],
        "model": "tiny-t5",
        "data": "in.jsonl",
        "config": {"model": {"name_or_path": "tiny-t5"}},
    }
    out = tmp_path / "run"
    uncertainties = add_uncertainty(summary, df)  # the run computes, the report renders
    given = copy.deepcopy(summary)
    report = write_report(out, df, summary, run_info, kind="predict", uncertainties=uncertainties)
    assert summary == given  # the report changes nothing it is given
    text = report.path.read_text(encoding="utf-8")
    links = linked_images(report.path)
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert sorted(links) == pngs  # every figure is linked, every link exists
    names = ["calibration", "confidence_quality", "entropy_by_position", "mean_logprob", "output_length"]
    names += ["ref_reliability", "risk_coverage", "token_entropy"]
    assert pngs == [f"figures/{name}.png" for name in names]
    for rel in links:
        assert_real_png(out / rel)
    assert sorted(report.figures.values()) == pngs
    assert report.figures["Risk-coverage curve"] == "figures/risk_coverage.png"
    assert "t5score predict -c cfg.yaml" in text and "tiny-t5" in text and "in.jsonl" in text

    # PRR/AURC went into the summary and the page, equal to the function applied directly
    ok = df["rougeL"].notna()
    expected = prr(-df.loc[ok, "sum_logprob"], df.loc[ok, "rougeL"])
    assert summary["uncertainty"]["scores"]["msp"]["prr"] == pytest.approx(expected)
    uncertainty = section(text, "Uncertainty quality")
    assert f"{expected:.4g}" in uncertainty and "by `rougeL`" in uncertainty
    for name, entry in summary["uncertainty"]["scores"].items():
        assert (
            f"| {name} | {entry['prr']:.4g} | {entry['aurc']:.4g} | {entry['aurc_oracle']:.4g} |"
            in uncertainty
        )

    # headline numbers are the column means
    head = section(text, "Headline")
    ok_rows = df[df["error"].isna()]  # means over the rows without an error
    assert f"| mean log-probability | {ok_rows['mean_logprob'].mean():.4g} |" in head
    assert f"| perplexity (mean over rows) | {np.exp(-ok_rows['mean_logprob']).mean():.4g} |" in head
    assert "| ECE | 0.12 | expected calibration error" in head
    assert "| errors | 1 |" in head and "| unfinished | 2 |" in head and "| truncated | 1 |" in head
    every = section(text, "Every number of summary.json")
    assert "| num_tokens | 99 | tokens in total |" in every  # summary.json numbers keep their own meaning
    assert "| ece | 0.12 | expected calibration error" in every and "| calibration.ece | 0.12 |" in every

    # most / least confident examples in order, error row never among them
    examples = section(text, "Examples")
    least = examples.split("### Least confident")[1].split("###")[0]
    most = examples.split("### Most confident")[1].split("###")[0]
    ranked = df[df["error"].isna()]
    assert re.findall(r"\| (ex\d+) \|", most) == ranked.nlargest(5, "mean_logprob")["id"].tolist()
    assert re.findall(r"\| (ex\d+) \|", least) == ranked.nsmallest(5, "mean_logprob")["id"].tolist()

    problems = section(text, "Rows with errors, truncation or no EOS")
    assert "| ex7 | empty source |" in problems
    assert "| ex3 | source text 3 \\| with a pipe and a newline |" in problems
    assert "| ex4 |" in problems and "| ex11 |" in problems  # no EOS


def test_score_run_without_prediction_targets_or_calibration(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    df = pd.DataFrame(
        {
            "id": [str(i) for i in range(12)],
            "source": [f"s{i}" for i in range(12)],
            "target": [f"t{i}" for i in range(12)],
            "num_tokens": rng.integers(1, 9, 12),
            "sum_logprob": rng.normal(-5, 1, 12),
            "mean_logprob": rng.normal(-1, 0.3, 12),
        }
    )
    summary: dict = {"mean_logprob": float(df["mean_logprob"].mean())}
    add_uncertainty(summary, df)
    report = write_report(tmp_path, df, summary, {}, kind="score")
    text = report.path.read_text(encoding="utf-8")
    assert linked_images(report.path) == ["figures/mean_logprob.png"]
    assert report.figures == {"Mean log-probability per sequence": "figures/mean_logprob.png"}
    assert_real_png(tmp_path / "figures/mean_logprob.png")
    assert "uncertainty" not in summary
    assert "no calibration bins" in text and "no per-row quality column" in text
    assert "None: every row was processed in full." in text
    assert "| target |" in section(text, "Examples")  # target stands in for prediction


def test_bare_frame_and_bad_input(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": ["a", "b"], "source": ["x", ""], "error": [None, "empty source"]})
    text = write_report(tmp_path / "r", df, {}, {}, kind="rerank").path.read_text(encoding="utf-8")
    assert "| b | empty source |" in text and "(no reference: groups are listed" in text
    assert not list((tmp_path / "r").rglob("*.png"))
    with pytest.raises(ValueError, match="kind must be one of predict, score, rerank"):
        write_report(tmp_path, df, {}, {}, kind="train")
    with pytest.raises(ValueError, match="per-bin lists differ in length"):
        write_report(tmp_path, df, {"reliability": {"confidence": [0.5], "accuracy": [], "count": [1]}}, {})
    with pytest.raises(ValueError, match="calibration bin 1 lacks field"):
        write_report(
            tmp_path, df, {"calibration": {"bins": [{"confidence": 1, "accuracy": 1, "count": 1}, {}]}}, {}
        )


def test_figure_functions_write_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    q = rng.uniform(size=80)
    drawn = [
        (figures.reliability_diagram(calibration_bins(), tmp_path / "a/rel.png"), (500, 600)),
        (figures.reliability_diagram(columnar_bins(), tmp_path / "a/rel2.png"), (500, 600)),
        (figures.token_entropy_histogram([rng.gamma(2, 1, 5), None, []], tmp_path / "ent.png"), (400, 600)),
        (figures.mean_logprob_histogram(rng.normal(-1, 0.3, 50), tmp_path / "lp.png"), (400, 600)),
        (
            figures.risk_coverage_figure({"random": rng.normal(size=80), "good": -q}, q, tmp_path / "rc.png"),
            (450, 600),
        ),
    ]
    compare = pd.DataFrame(
        {
            "metric": ["m", "m"],
            "run": ["a", "b"],
            "delta": [np.nan, 0.2],
            "ci_low": [np.nan, 0.1],
            "ci_high": [np.nan, 0.3],
        }
    )
    drawn.append((figures.compare_figure(compare, tmp_path / "cmp.png"), (200, 700)))  # 1 metric: 7 x 2 in
    for path, size in drawn:
        assert_real_png(path, size)


def test_uncertainty_without_per_row_scores_says_so(tmp_path: Path) -> None:
    df = predictions_frame()
    summary: dict = {}
    add_uncertainty(summary, df)
    report = write_report(tmp_path, df, summary, {})
    text = report.path.read_text(encoding="utf-8")
    assert "Risk-coverage curve" not in report.figures and "no per-row uncertainty scores" in text
    assert f"{summary['uncertainty']['scores']['msp']['prr']:.4g}" in section(text, "Uncertainty quality")


def test_every_uncertainty_score_has_a_meaning() -> None:
    assert list(UNCERTAINTY_MEANING) == list(UNCERTAINTY_SCORES)
