"""Build the code-summarisation data set shipped with t5score from the local Python standard library.

Each row is one function or method with a docstring:

* ``source``: the function's code as ``ast.unparse`` prints it, with the docstring removed. ``ast.unparse``
  normalises the code (4-space indentation, no comments, canonical quotes), so the shipped text is exactly
  what the model was trained on and needs no preprocessing at inference.
* ``target``: the first sentence of the docstring, on one line.
* ``id``: ``"<module>:<qualname>"``, e.g. ``"json.decoder:JSONDecoder.decode"``.

Rows are filtered (targets of 3-30 words, sources of at most 60 lines / 2000 characters, non-empty bodies)
and deduplicated by source. The split is by *module family* (the top-level package or module, leading
underscores stripped, so ``email.message`` and ``email.parser`` land in the same split): test modules are
never seen in training. Families are ordered by a salted SHA-256 hash and assigned greedily to test, then
validation, until each reaches its target size; the rest is training data. Everything is deterministic.

Outputs: ``t5score/assets/data/code_summary_{test,validation}.jsonl`` (shipped) and
``build/code_summary/code_summary_train.jsonl`` (not shipped; rebuild it with this script).

Usage: ``python tools/build_code_summary_data.py [--stdlib DIR] [--out-dir DIR] [--train-dir DIR]``
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import re
import sysconfig
import warnings
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SALT = "t5score-code-summary-v1"
MIN_WORDS, MAX_WORDS = 3, 30
MAX_SOURCE_LINES, MAX_SOURCE_CHARS = 60, 2000
TEST_ROWS, VALIDATION_ROWS = 300, 200
MAX_FAMILY_ROWS_HELD_OUT = 60  # keep big packages in training so held-out splits cover many families
SKIP_PARTS = {"site-packages", "test", "tests", "idle_test", "__pycache__", "turtledemo", "encodings"}
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.")


def first_sentence(docstring: str) -> str:
    """Return the first sentence of the first paragraph of ``docstring``, on one line."""
    paragraph = re.split(r"\n\s*\n", docstring.strip(), maxsplit=1)[0]
    text = " ".join(paragraph.split())
    start = 0
    while True:
        match = re.search(r"[.!?](\s|$)", text[start:])
        if match is None:
            return text
        end = start + match.start() + 1
        if not text[:end].lower().endswith(_ABBREVIATIONS):
            return text[:end]
        start = end


def keep_target(target: str) -> bool:
    """Whether a first sentence is a usable summary: 3-30 words, prose, not a doctest or a heading."""
    words = target.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if target.endswith(":") or ">>>" in target or target.startswith(("XXX", "TODO", "Deprecated")):
        return False
    letters = sum(c.isalpha() for c in target)
    return letters >= 0.6 * len(target.replace(" ", ""))


def iter_functions(tree: ast.Module):
    """Yield ``(qualname, node)`` for module-level functions and methods of module-level classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item


def function_rows(path: Path, module: str) -> list[dict[str, str]]:
    """Extract the candidate rows of one source file (unfiltered by split)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            return []
    rows = []
    for qualname, node in iter_functions(tree):
        docstring = ast.get_docstring(node)
        if not docstring:
            continue
        target = first_sentence(docstring)
        if not keep_target(target):
            continue
        body = node.body[1:]
        if not body:
            continue
        stripped = copy.copy(node)
        stripped.body = body
        source = ast.unparse(stripped)
        if source.count("\n") + 1 > MAX_SOURCE_LINES or len(source) > MAX_SOURCE_CHARS:
            continue
        rows.append({"id": f"{module}:{qualname}", "source": source, "target": target})
    return rows


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def family(row_id: str) -> str:
    """The split unit of a row: its top-level module or package, leading underscores stripped."""
    return row_id.split(":", 1)[0].split(".", 1)[0].lstrip("_")


def collect(stdlib: Path) -> list[dict[str, str]]:
    """All filtered rows of the standard library, deduplicated by source, in a fixed order."""
    rows = []
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib).parts
        if any(p in SKIP_PARTS or p.startswith("config-") for p in rel):
            continue
        rows.extend(function_rows(path, module_name(path, stdlib)))
    seen, unique = set(), []
    for row in sorted(rows, key=lambda r: r["id"]):
        if row["source"] in seen:  # ast.unparse is canonical, so copies (e.g. _pyio vs io) match exactly
            continue
        seen.add(row["source"])
        unique.append(row)
    return unique


def split(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Assign whole module families to test, then validation, by salted hash order; the rest is train."""
    by_family = defaultdict(list)
    for row in rows:
        by_family[family(row["id"])].append(row)
    order = sorted(by_family, key=lambda f: hashlib.sha256(f"{SALT}:{f}".encode()).hexdigest())
    splits = {"test": [], "validation": [], "train": []}
    for fam in order:
        members = by_family[fam]
        for name, limit in (("test", TEST_ROWS), ("validation", VALIDATION_ROWS)):
            if len(members) <= MAX_FAMILY_ROWS_HELD_OUT and len(splits[name]) + len(members) <= limit:
                splits[name].extend(members)
                break
        else:
            splits["train"].extend(members)
    return splits


def write_jsonl(rows: list[dict[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--out-dir", type=Path, default=REPO / "t5score" / "assets" / "data")
    parser.add_argument("--train-dir", type=Path, default=REPO / "build" / "code_summary")
    args = parser.parse_args(argv)
    splits = split(collect(args.stdlib))
    write_jsonl(splits["test"], args.out_dir / "code_summary_test.jsonl")
    write_jsonl(splits["validation"], args.out_dir / "code_summary_validation.jsonl")
    write_jsonl(splits["train"], args.train_dir / "code_summary_train.jsonl")
    for name, rows in splits.items():
        families = sorted({family(r["id"]) for r in rows})
        print(f"{name}: {len(rows)} rows from {len(families)} module families")


if __name__ == "__main__":
    main()
