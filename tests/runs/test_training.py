"""t5score.runs.training: collation, bucketed batches and the Lightning fit module on a tiny random T5."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import T5Config, T5ForConditionalGeneration

from t5score.runs.training import (
    IGNORE_INDEX,
    BucketBatchSampler,
    PairCollator,
    Seq2SeqFitModule,
    TokenizedPair,
)


def tiny_t5(seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=50,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        decoder_start_token_id=0,
        eos_token_id=1,
        pad_token_id=0,
        initializer_factor=5.0,
        dropout_rate=0.0,
    )
    return T5ForConditionalGeneration(config)


def pairs(n: int = 12, seed: int = 0) -> list[TokenizedPair]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        src = torch.randint(3, 50, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g).tolist()
        tgt = torch.randint(3, 50, (int(torch.randint(1, 5, (1,), generator=g)),), generator=g).tolist()
        out.append(TokenizedPair(src + [1], tgt + [1]))
    return out


def test_collator_pads_inputs_and_masks_labels():
    batch = PairCollator(pad_token_id=0)(
        [TokenizedPair([5, 6, 1], [7, 1]), TokenizedPair([8, 1], [9, 10, 11, 1])]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 1], [8, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[7, 1, IGNORE_INDEX, IGNORE_INDEX], [9, 10, 11, 1]]


def test_bucket_sampler_covers_every_index_once_and_is_seeded():
    lengths = [(i * 7) % 23 for i in range(103)]
    sampler = BucketBatchSampler(lengths, batch_size=8, seed=3, pool_batches=4)
    epoch0 = list(sampler)
    assert len(epoch0) == len(sampler) == 13
    assert sorted(i for b in epoch0 for i in b) == list(range(103))
    assert epoch0 == list(BucketBatchSampler(lengths, batch_size=8, seed=3, pool_batches=4))
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    # within a pool batches are length-sorted: a batch spans less length than random batches would
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in epoch0) / len(epoch0)
    assert spread < 12
    ordered = list(BucketBatchSampler(lengths, batch_size=8, shuffle=False))
    assert [lengths[i] for b in ordered for i in b] == sorted(lengths)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler([1, 2], batch_size=0)
    with pytest.raises(ValueError, match="optimizer"):
        Seq2SeqFitModule(tiny_t5(), optimizer="sgd")


def test_validation_loss_is_token_weighted_cross_entropy():
    model = tiny_t5().eval()
    data = pairs(10)
    loader = DataLoader(data, batch_size=4, collate_fn=PairCollator(0))
    module = Seq2SeqFitModule(model)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    val_loss = trainer.validate(module, loader, verbose=False)[0]["val_loss"]
    # reference: summed token cross-entropy over unpadded, one-row-at-a-time forward passes
    total, tokens = 0.0, 0
    with torch.no_grad():
        for p in data:
            labels = torch.tensor([p.labels])
            decoder_input_ids = torch.tensor([[0] + p.labels[:-1]])
            logits = model(input_ids=torch.tensor([p.input_ids]), decoder_input_ids=decoder_input_ids).logits
            total += float(F.cross_entropy(logits[0], labels[0], reduction="sum"))
            tokens += len(p.labels)
    assert val_loss == pytest.approx(total / tokens, rel=1e-5)


@pytest.mark.parametrize("optimizer", ["adafactor", "adamw"])
def test_fit_lowers_training_loss(optimizer):
    data = pairs(8, seed=1)
    collate = PairCollator(0)
    model = tiny_t5(seed=1)
    batch = collate(data)
    with torch.no_grad():
        before = float(model.eval()(**batch).loss)
    model.train()
    loader = DataLoader(
        data, batch_sampler=BucketBatchSampler([len(p.input_ids) for p in data], 4), collate_fn=collate
    )
    module = Seq2SeqFitModule(model, learning_rate=1e-2, warmup_steps=2, optimizer=optimizer)
    L.seed_everything(0)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=30,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)
    with torch.no_grad():
        after = float(model.eval()(**batch).loss)
    assert trainer.global_step == 30
    assert after < 0.7 * before
