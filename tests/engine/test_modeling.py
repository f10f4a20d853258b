"""Loading a saved checkpoint keeps what the architecture needs: T5 v1.1 / Flan-T5's own output layer."""

from __future__ import annotations

import json
import logging

import torch
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.engine.decode import greedy_decode
from t5score.engine.modeling import load_model_and_tokenizer
from t5score.engine.options import DecodeOptions


def test_untied_t5v11_head_is_loaded_as_saved_and_unscaled(tiny_model_dirs):
    """transformers 5 always sets T5Config.tie_word_embeddings=True; a checkpoint whose lm_head differs from
    the embeddings (all T5 v1.1 / Flan-T5 ones) must still load that head, with no output scaling."""
    folder = tiny_model_dirs["t5v1.1"]
    saved = load_file(folder / "model.safetensors")
    assert not torch.equal(saved["lm_head.weight"], saved["shared.weight"])
    assert json.loads((folder / "config.json").read_text())["scale_decoder_outputs"] is False
    model, _ = load_model_and_tokenizer(str(folder))
    torch.testing.assert_close(model.lm_head.weight, saved["lm_head.weight"], rtol=0, atol=0)
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert model.config.scale_decoder_outputs is False


def test_loaded_t5v11_decodes_like_generate(tiny_model_dirs):
    folder = tiny_model_dirs["t5v1.1"]
    model, tok = load_model_and_tokenizer(str(folder))
    reference = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    enc = AutoTokenizer.from_pretrained(folder)(
        ["open the file and read a line", "sort the list"], return_tensors="pt", padding=True
    )
    out = greedy_decode(model, enc.input_ids, enc.attention_mask, DecodeOptions(max_new_tokens=8))
    gen = reference.generate(
        **enc,
        max_new_tokens=8,
        do_sample=False,
        num_beams=1,
        output_logits=True,
        return_dict_in_generate=True,
    )
    steps = len(gen.logits)
    assert torch.equal(out.token_ids[:, :steps], gen.sequences[:, 1:])
    scores = reference.compute_transition_scores(gen.sequences, gen.logits, normalize_logits=True)
    mask = gen.sequences[:, 1:] != tok.pad_token_id
    torch.testing.assert_close(out.token_logprobs[:, :steps][mask], scores[mask], rtol=1e-4, atol=1e-5)


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())


def test_no_misleading_tie_warning_for_t5v11_but_kept_for_bart(tiny_model_dirs, tmp_path):
    """transformers 5 tells T5 v1.1 users to set ``tie_word_embeddings=False``, which its T5Config ignores;
    t5score drops that one warning for T5, and only for T5 (elsewhere it may point at a real problem)."""
    bart = AutoModelForSeq2SeqLM.from_pretrained(tiny_model_dirs["bart"])
    with torch.no_grad():
        bart.lm_head.weight = torch.nn.Parameter(bart.lm_head.weight.detach().clone() + 1.0)  # untie, differ
    bart.save_pretrained(tmp_path / "bart")
    AutoTokenizer.from_pretrained(tiny_model_dirs["bart"]).save_pretrained(tmp_path / "bart")
    seen = _Messages()
    hf_root = logging.getLogger("transformers")  # the warning propagates here unless a filter drops it
    hf_root.addHandler(seen)
    try:
        load_model_and_tokenizer(str(tiny_model_dirs["t5v1.1"]))
        t5_messages = list(seen.texts)
        load_model_and_tokenizer(str(tmp_path / "bart"))
    finally:
        hf_root.removeHandler(seen)
    assert not any("both are present in the checkpoints" in m for m in t5_messages)
    assert any("both are present in the checkpoints" in m for m in seen.texts[len(t5_messages) :])
