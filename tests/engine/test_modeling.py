"""Loading a saved checkpoint keeps what the architecture needs (T5 v1.1 / Flan-T5's own output layer);
a damaged or foreign weight file fails in one line naming it."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.engine.decode import greedy_decode
from t5score.engine.modeling import load_model_and_tokenizer
from t5score.engine.options import DecodeOptions
from tests.helpers.cli import assert_user_error


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


def _damaged_copy(t5_dir, tmp_path, damage) -> str:
    folder = tmp_path / "damaged"
    shutil.copytree(t5_dir, folder)
    damage(folder)
    return str(folder)


def _bin(folder, obj=None, raw: bytes | None = None) -> None:
    (folder / "model.safetensors").unlink()
    if raw is not None:
        (folder / "pytorch_model.bin").write_bytes(raw)
    else:
        torch.save(obj, folder / "pytorch_model.bin")


def _truncate(folder) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


DAMAGES = {
    "bin holds a list": (lambda f: _bin(f, [1, 2, 3]), "pytorch_model.bin: it is not a state dict"),
    "bin holds a tensor": (lambda f: _bin(f, torch.ones(3)), "pytorch_model.bin: it is not a state dict"),
    "bin of random bytes": (lambda f: _bin(f, raw=bytes(range(256)) * 4), "pytorch_model.bin: it is not"),
    "bin empty": (lambda f: _bin(f, raw=b""), "pytorch_model.bin: it is not a state dict"),
    "safetensors truncated": (_truncate, "model.safetensors: it is damaged"),
    "safetensors of random bytes": (
        lambda f: (f / "model.safetensors").write_bytes(bytes(range(256)) * 4),
        "model.safetensors: it is damaged",
    ),
    "safetensors of another model": (
        lambda f: save_file({"x": torch.ones(2)}, f / "model.safetensors"),
        "model.safetensors holds none of the weights",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_damaged_weights_fail_in_one_line_naming_the_file(t5_dir, tmp_path, case, capfd):
    damage, match = DAMAGES[case]
    folder = _damaged_copy(t5_dir, tmp_path, damage)
    capfd.readouterr()
    with pytest.raises(ValueError) as err:
        load_model_and_tokenizer(folder)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and match in message and folder in message, message
    assert "LOAD REPORT" not in capfd.readouterr().err  # transformers' report of a refused load is held back


def test_damaged_weights_on_the_command_line(t5_dir, tmp_path, capsys):
    folder = _damaged_copy(t5_dir, tmp_path, lambda f: _bin(f, [1, 2, 3]))
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "a", "source": "open the file"}) + "\n")
    out = tmp_path / "run"
    argv = ["predict", "--model.name_or_path", folder, "--data.path", str(data), "--output_dir", str(out)]
    assert_user_error(capsys, argv, r"pytorch_model\.bin: it is not a state dict")
    assert not out.exists()


def test_load_report_of_a_partial_checkpoint_still_reaches_the_log(t5_dir, tmp_path):
    """Held messages are passed on once the model loads: a checkpoint missing one weight is reported."""

    def drop_one(folder):
        weights = load_file(folder / "model.safetensors")
        del weights["decoder.final_layer_norm.weight"]
        save_file(weights, folder / "model.safetensors")

    folder = _damaged_copy(t5_dir, tmp_path, drop_one)
    seen = _Messages()
    hf_root = logging.getLogger("transformers")
    hf_root.addHandler(seen)
    try:
        load_model_and_tokenizer(folder)
    finally:
        hf_root.removeHandler(seen)
    assert any("LOAD REPORT" in m and "decoder.final_layer_norm.weight" in m for m in seen.texts)


# -- a hub id without the hub ------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: connections are refused at once
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """The hub unreachable and an empty local cache (both read by huggingface_hub at call time)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hub"


@pytest.mark.parametrize("endpoint", ["refused", "https://no-such-host.invalid"])
def test_a_hub_id_without_the_hub_fails_in_seconds_in_one_line(no_hub, monkeypatch, capfd, endpoint):
    """Before: ~26 s of retries ('Retrying in 8s', '[Errno 111] Connection refused' / 'Name or service not
    known') before the error."""
    import time

    from huggingface_hub import constants

    if endpoint != "refused":
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as caught:
        load_model_and_tokenizer("fake-org/no-such-model")
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert f"the Hugging Face hub ({constants.ENDPOINT}) is unreachable" in message
    assert (
        "not in the local Hugging Face cache" in message and "--model.name_or_path /path/to/folder" in message
    )
    err = capfd.readouterr().err
    assert "Retrying" not in err and "Errno" not in err


def _cache_entry(cache, repo_id: str, folder) -> None:
    """``repo_id`` in a Hugging Face cache laid out as ``huggingface_hub`` writes it."""
    entry = cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(revision)
    shutil.copytree(folder, entry / "snapshots" / revision)


def test_a_model_in_the_local_cache_still_loads_without_the_hub(no_hub, t5_dir):
    """At once: before, it loaded from the cache too, after ~25 s of retries."""
    import time

    _cache_entry(no_hub, "fake-org/tiny-t5", t5_dir)
    start = time.perf_counter()
    model, tokenizer = load_model_and_tokenizer("fake-org/tiny-t5")
    assert time.perf_counter() - start < 5
    reference, reference_tokenizer = load_model_and_tokenizer(str(t5_dir))
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert tokenizer("sort the list").input_ids == reference_tokenizer("sort the list").input_ids


def test_hf_hub_offline_reads_the_cache_without_probing(no_hub, monkeypatch, t5_dir):
    from huggingface_hub import constants

    import t5score.engine.modeling as modeling

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(modeling, "hub_reachable", lambda *a: pytest.fail("probed the hub"))
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set and the model is not in the local"):
        load_model_and_tokenizer("fake-org/no-such-model")
    _cache_entry(no_hub, "fake-org/tiny-t5", t5_dir)
    assert load_model_and_tokenizer("fake-org/tiny-t5")[0].config.model_type == "t5"


def test_a_hub_id_without_the_hub_on_the_command_line(no_hub, capsys, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"source": "sort the list"}\n')
    argv = ["predict", "--model.name_or_path", "fake-org/x", "--data.path", str(rows)]
    assert_user_error(
        capsys, [*argv, "--output_dir", str(tmp_path / "out")], r"'fake-org/x': the Hugging Face hub"
    )
    assert not (tmp_path / "out").exists()
