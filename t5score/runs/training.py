"""Fine-tuning a seq2seq model with Lightning: tokenised pairs, length-bucketed batches and a LightningModule.

Used by ``tools/train_default_model.py`` to train the embedded tiny T5, and usable for any
``AutoModelForSeq2SeqLM``::

    pairs = tokenize_pairs(tokenizer, sources, targets, max_source_length=192, max_target_length=48)
    loader = DataLoader(pairs, batch_sampler=BucketBatchSampler(lengths, 32, seed=0), collate_fn=collator)
    lightning.Trainer(max_epochs=10).fit(Seq2SeqFitModule(model), loader)
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import Sampler
from transformers.optimization import Adafactor

IGNORE_INDEX = -100  # label value the HF seq2seq loss ignores


@dataclass
class TokenizedPair:
    """One training example: source token ids and target token ids (both end with EOS)."""

    input_ids: list[int]
    labels: list[int]


def tokenize_pairs(
    tokenizer,
    sources: Sequence[str],
    targets: Sequence[str],
    max_source_length: int,
    max_target_length: int,
) -> list[TokenizedPair]:
    """Tokenise parallel lists of sources and targets, truncating each side (EOS is kept)."""
    if len(sources) != len(targets):
        raise ValueError(f"got {len(sources)} sources but {len(targets)} targets")
    src = tokenizer(list(sources), max_length=max_source_length, truncation=True)["input_ids"]
    tgt = tokenizer(list(targets), max_length=max_target_length, truncation=True)["input_ids"]
    return [TokenizedPair(s, t) for s, t in zip(src, tgt, strict=True)]


class PairCollator:
    """Pad a list of :class:`TokenizedPair` into ``input_ids``, ``attention_mask`` and ``labels`` tensors."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, pairs: list[TokenizedPair]) -> dict[str, torch.Tensor]:
        src_len = max(len(p.input_ids) for p in pairs)
        tgt_len = max(len(p.labels) for p in pairs)
        input_ids = torch.full((len(pairs), src_len), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(pairs), src_len), dtype=torch.long)
        labels = torch.full((len(pairs), tgt_len), IGNORE_INDEX, dtype=torch.long)
        for i, p in enumerate(pairs):
            input_ids[i, : len(p.input_ids)] = torch.tensor(p.input_ids)
            attention_mask[i, : len(p.input_ids)] = 1
            labels[i, : len(p.labels)] = torch.tensor(p.labels)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar source length (less padding), in a seeded random order that changes per epoch.

    Indices are shuffled, cut into pools of ``batch_size * pool_batches``, each pool is sorted by
    length and cut into batches, and the batches are shuffled. ``set_epoch`` is called by Lightning.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        pool_batches: int = 50,
        shuffle: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool_batches = pool_batches
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(range(len(self.lengths)))
        if not self.shuffle:
            indices.sort(key=lambda i: self.lengths[i])
            yield from (indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size))
            return
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        rng.shuffle(indices)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(indices), pool):
            chunk = sorted(indices[start : start + pool], key=lambda i: self.lengths[i])
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        rng.shuffle(batches)
        yield from batches


class Seq2SeqFitModule(L.LightningModule):
    """Teacher-forced cross-entropy training of a Hugging Face seq2seq model.

    Logs ``train_loss`` per step and ``val_loss`` (token-weighted mean over the whole validation set)
    per validation epoch. Linear warm-up then cosine decay to 10% of the peak rate.

    ``optimizer="adafactor"`` (default) is T5's own optimizer with parameter-scaled updates: T5 does not
    scale attention scores by 1/sqrt(d), so AdamW's fixed-size steps quickly blow up the small query
    weights and saturate attention; a tiny T5 trained from scratch with AdamW learns to ignore its
    source. ``"adamw"`` is available for models that do not have this problem.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        learning_rate: float = 5e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adafactor",
        warmup_steps: int = 100,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in ("adafactor", "adamw"):
            raise ValueError(f"optimizer must be 'adafactor' or 'adamw', got {optimizer!r}")
        self.model = model
        self.optimizer_name = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self._val_sum = 0.0
        self._val_tokens = 0
        self.val_losses: list[float] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_tokens = 0.0, 0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        tokens = int((batch["labels"] != IGNORE_INDEX).sum())
        self._val_sum += float(self(batch)) * tokens  # HF loss is the mean over non-ignored tokens
        self._val_tokens += tokens

    def on_validation_epoch_end(self) -> None:
        val_loss = self._val_sum / max(self._val_tokens, 1)
        self.val_losses.append(val_loss)
        self.log("val_loss", val_loss, prog_bar=True)

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            (no_decay if param.ndim < 2 or "layer_norm" in name else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if self.optimizer_name == "adafactor":
            optimizer = Adafactor(
                groups, lr=self.learning_rate, scale_parameter=True, relative_step=False, warmup_init=False
            )
        else:
            optimizer = torch.optim.AdamW(groups, lr=self.learning_rate)
        total = self.total_steps or self.trainer.estimated_stepping_batches
        warmup = self.warmup_steps

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
