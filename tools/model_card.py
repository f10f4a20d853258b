"""The model card (``README.md``) of the embedded default model, from the numbers in its ``training.json``.

The text is ``tools/model_card_template.md`` (``string.Template``: ``${name}`` placeholders); this module
only turns the recorded training metadata into the placeholders' values. Standard library only, so the
card can be checked and rewritten without torch (``python tools/train_default_model.py --card-only``).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).with_name("model_card_template.md")


def _example_rows(info: dict[str, Any]) -> tuple[str, str]:
    """The two example tables' rows: the first test rows, and the best ones with their ROUGE-L."""
    examples = "\n".join(
        f"| `{e['id']}` | {e['reference']} | {e['prediction']} |" for e in info["examples"][:6]
    )
    best = "\n".join(
        f"| `{e['id']}` | {e['reference']} | {e['prediction']} | {e['rougeL_f']:.2f} |"
        for e in info.get("best_examples", [])
    )
    return examples, best


def card_fields(info: dict[str, Any]) -> dict[str, str]:
    """The template's placeholder values from ``training.json``'s dict (numbers formatted as in the card)."""
    cfg, data, args = info["model_config"], info["data"], info["arguments"]
    validation, test = info["validation"], info["test"]
    examples, best = _example_rows(info)
    fields: dict[str, Any] = {
        "num_parameters": f"{info['num_parameters']:,}",
        "size_mb": f"{info['size_on_disk_mb']:.1f}",
        "python_version": info["versions"]["python"],
        "train_rows": data["train"],
        "validation_rows": data["validation"],
        "test_rows": data["test"],
        **{key: cfg[key] for key in ("d_model", "d_ff", "num_layers", "num_heads", "d_kv", "vocab_size")},
        "isolate_space_note": "" if args["isolate_space"] else " (not in this build)",
        **{
            key: args[key]
            for key in (
                "max_source_length",
                "max_target_length",
                "optimizer",
                "learning_rate",
                "weight_decay",
                "warmup_steps",
                "batch_size",
                "dropout",
                "num_candidate_sources",
                "num_candidates",
            )
        },
        "torch_threads": info["torch_threads"],
        "seed": info["seed"],
        "epochs_completed": info["epochs_completed"],
        "optimizer_steps": info["optimizer_steps"],
        "train_minutes": f"{info['train_wall_seconds'] / 60:.1f}",
        "validation_loss": f"{validation['loss']:.3f}",
        "validation_rougeL": f"{validation['rougeL_f']:.3f}",
        "validation_loss_shuffled": f"{validation['loss_with_shuffled_sources']:.3f}",
        "test_rougeL": f"{test['rougeL_f']:.3f}",
        "distinct_greedy_outputs": test["distinct_greedy_outputs"],
        "rows_with_overlap": test.get("rows_with_rougeL_above_0", "-"),
        "examples": examples,
        "best_examples": best,
    }
    return {key: str(value) for key, value in fields.items()}


def render_model_card(info: dict[str, Any], template: Path = TEMPLATE) -> str:
    """The model card's text; a placeholder without a value raises ``KeyError``."""
    return string.Template(template.read_text(encoding="utf-8")).substitute(card_fields(info))


def write_model_card(info: dict[str, Any], path: Path) -> None:
    """Write the model card (``README.md`` next to the weights) from the numbers in ``training.json``."""
    path.write_text(render_model_card(info), encoding="utf-8")
