"""The tokenizer of the embedded default model: a SentencePiece unigram vocabulary saved for Hugging Face.

Part of ``tools/train_default_model.py`` (see its docstring).
"""

from __future__ import annotations

import io
from pathlib import Path

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoTokenizer, T5Tokenizer


def train_tokenizer(
    rows: list[dict], vocab_size: int, out_dir: Path, isolate_space: bool = True, model_max_length: int = 512
) -> T5Tokenizer:
    """Train a SentencePiece unigram model (T5 ids: pad 0, eos 1, unk 2; no sentinels) and save it for HF.

    With ``isolate_space`` the word-boundary mark ``▁`` is a piece of its own, so a word is spelled with
    the same pieces in prose (``▁ content``) and inside an identifier (``get_content_type``): copying a
    name's words into the summary is then an identity map, which a tiny model learns much faster.
    """
    texts = [" ".join(r["source"].split()) for r in rows] + [r["target"] for r in rows]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        max_sentence_length=8192,
        minloglevel=2,
        user_defined_symbols=["▁"] if isolate_space else [],
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(buf.getvalue())
    tokenizer = T5Tokenizer(
        vocab=[(p.piece, p.score) for p in proto.pieces],
        extra_ids=0,
        _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap,
        model_max_length=model_max_length,  # the source length the model was trained with
    )
    tokenizer.save_pretrained(out_dir)
    loaded = AutoTokenizer.from_pretrained(out_dir)  # check what users will load, not the in-memory object
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    for r in rows[:500]:
        ids = loaded(r["target"])["input_ids"]
        if ids[:-1] != sp.encode(r["target"]) or loaded.decode(ids, skip_special_tokens=True) != r["target"]:
            raise RuntimeError(f"tokenizer does not round-trip {r['target']!r}")
    return loaded
