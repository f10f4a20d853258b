"""The bookkeeping of one group of beams in beam search, step by step as ``generate`` keeps it.

:class:`Hyps` holds hypotheses ``[B, K]`` (sources times hypotheses): their decoder ids and, per generated
token, the statistics the output carries (:data:`HYP_FIELDS`), so a hypothesis carries its own numbers as
beams are reordered -- values per token, never a vocabulary-sized tensor. :class:`GroupState` is one group
of ``n`` beams per source: its running hypotheses and scores, its finished hypotheses (the best ``n``, with
their length-penalised scores) and the early-stop flag; :meth:`GroupState.advance` is one step of
transformers 5's ``_beam_search`` (``_get_top_k_continuations``, ``_get_running_beams_for_next_iteration``,
``_update_finished_beams``) and :meth:`GroupState.check_early_stop` its ``_check_early_stop_heuristic``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEG = -1.0e9  # generate's score of an impossible beam

#: per-token fields of a hypothesis: name -> (dtype, has a top-k dim)
HYP_FIELDS = {
    "token_logprobs": (torch.float32, False),  # raw log-probability of the token under its beam
    "token_processed_logprobs": (torch.float32, False),  # the processed score (transition score)
    "entropies": (torch.float32, False),
    "top1_probs": (torch.float32, False),
    "topk_ids": (torch.long, True),
    "topk_logprobs": (torch.float32, True),
    "nonfinite": (torch.bool, False),
    "changed": (torch.bool, False),  # a processor changed the beam's argmax at this step
    "beam_rows": (torch.long, False),  # the beam row (of B*N) whose logits gave the token: beam_indices
}
#: the fields that describe a beam's distribution at a step (independent of the chosen token)
BEAM_FIELDS = ("entropies", "top1_probs", "topk_ids", "topk_logprobs", "nonfinite", "changed", "beam_rows")


def _take(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` (``[B, K']``) along dim 1 of ``tensor`` (``[B, K, ...]``), as ``_gather_beams``."""
    while index.dim() < tensor.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(tensor, index, dim=1)


@dataclass
class Hyps:
    """Hypotheses ``[B, K]``: decoder ids ``[B, K, T+1]`` (column 0 the start token), per-token
    :data:`HYP_FIELDS` ``[B, K, T]`` (``[B, K, T, k]`` for top-k), generated length and EOS flag ``[B, K]``."""

    tokens: torch.Tensor
    fields: dict[str, torch.Tensor]
    length: torch.Tensor
    eos: torch.Tensor

    @classmethod
    def empty(cls, batch: int, size: int, steps: int, top_k: int, start: int, pad: int, device) -> Hyps:
        tokens = torch.full((batch, size, steps + 1), pad, dtype=torch.long, device=device)
        tokens[:, :, 0] = start
        fields = {
            name: torch.zeros(batch, size, steps, *((top_k,) if topk else ()), dtype=dtype, device=device)
            for name, (dtype, topk) in HYP_FIELDS.items()
        }
        zeros = torch.zeros(batch, size, dtype=torch.long, device=device)
        return cls(tokens, fields, zeros, zeros.bool())

    def take(self, index: torch.Tensor) -> Hyps:
        """The hypotheses ``index`` (``[B, K']``) of each source."""
        fields = {name: _take(t, index) for name, t in self.fields.items()}
        return Hyps(_take(self.tokens, index), fields, _take(self.length, index), _take(self.eos, index))

    def cat(self, other: Hyps) -> Hyps:
        """These hypotheses followed by ``other``'s, per source."""
        fields = {name: torch.cat((t, other.fields[name]), dim=1) for name, t in self.fields.items()}
        return Hyps(
            torch.cat((self.tokens, other.tokens), 1),
            fields,
            torch.cat((self.length, other.length), 1),
            torch.cat((self.eos, other.eos), 1),
        )


@dataclass
class BeamSettings:
    """What one beam search runs under (resolved from the options and the generation config)."""

    group_size: int  # beams per group (num_beams // num_beam_groups)
    max_length: int  # generate's max_length: the decoder start token + max_new_tokens
    eos_ids: torch.Tensor  # [E]
    length_penalty: float
    early_stopping: bool | str


class GroupState:
    """One group of ``group_size`` beams per source (see the module doc)."""

    def __init__(self, batch: int, settings: BeamSettings, top_k: int, start: int, pad: int, device):
        n, steps = settings.group_size, settings.max_length - 1
        self.settings = settings
        self.running = Hyps.empty(batch, n, steps, top_k, start, pad, device)
        self.running_scores = torch.zeros(batch, n, device=device)
        self.running_scores[:, 1:] = NEG  # only the first beam's tokens are candidates at the first step
        self.finished = Hyps.empty(batch, n, steps, top_k, start, pad, device)
        self.finished_scores = torch.full((batch, n), NEG, device=device)
        self.is_finished = torch.zeros(batch, n, dtype=torch.bool, device=device)
        self.unsatisfied = torch.ones(batch, 1, dtype=torch.bool, device=device)  # improvement possible

    def advance(
        self,
        step: int,
        processed: torch.Tensor,
        raw_logprobs: torch.Tensor,
        beam_stats: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: ``processed`` / ``raw_logprobs`` ``[B, n, V]`` (processed and raw log-probabilities of
        the group's beams), ``beam_stats`` the :data:`BEAM_FIELDS` of each beam (``[B, n]`` or
        ``[B, n, k]``). Returns, per new running beam ``[B, n]``, the beam it continues and its token, and
        whether each of the ``2n`` candidates hit a stopping criterion (EOS or the length) ``[B, 2n]``."""
        s = self.settings
        batch, n, vocab = processed.shape
        keep = max(2, 1 + len(s.eos_ids)) * n
        accumulated = (processed + self.running_scores[:, :, None]).reshape(batch, n * vocab)
        top_scores, top_index = accumulated.topk(keep)  # [B, 2n]
        source, token = top_index // vocab, top_index % vocab
        cand = self.running.take(source)
        cand.tokens[:, :, step + 1] = token
        values = {name: _take(beam_stats[name], source) for name in BEAM_FIELDS}
        values["token_logprobs"] = raw_logprobs.reshape(batch, n * vocab).gather(1, top_index)
        values["token_processed_logprobs"] = processed.reshape(batch, n * vocab).gather(1, top_index)
        for name, value in values.items():
            cand.fields[name][:, :, step] = value
        cand.length = torch.full_like(cand.length, step + 1)
        cand.eos = torch.isin(token, s.eos_ids)
        # generate's stopping criteria on the candidates' ids [.., cur_len + 1], cur_len = step + 1
        hits = cand.eos | (step + 2 >= s.max_length)

        # the best n continuations not ended by EOS continue (ended by the length at the last step, they
        # are finished below; their tokens still count for the diversity penalty of later groups)
        running_scores = top_scores + cand.eos.to(torch.float32) * NEG
        following = running_scores.topk(n)[1]  # [B, n]
        self.running = cand.take(following)
        self.running_scores = running_scores.gather(1, following)
        self._update_finished(step, cand, top_scores, hits)
        return source.gather(1, following), token.gather(1, following), hits

    def _update_finished(self, step: int, cand: Hyps, top_scores: torch.Tensor, hits: torch.Tensor) -> None:
        s, n = self.settings, self.running_scores.shape[1]
        top_n = torch.arange(hits.shape[1], device=hits.device) < n
        just_finished = hits & top_n[None, :]
        scores = top_scores / ((step + 1) ** s.length_penalty)
        full = self.is_finished.all(dim=-1, keepdim=True) & (s.early_stopping is True)
        scores = scores + full.to(torch.float32) * NEG
        scores = scores + (~self.unsatisfied).to(torch.float32) * NEG
        scores = scores + (~just_finished) * NEG
        merged_scores = torch.cat((self.finished_scores, scores), dim=1)
        best = merged_scores.topk(n)[1]
        self.finished = self.finished.cat(cand).take(best)
        self.finished_scores = merged_scores.gather(1, best)
        self.is_finished = torch.cat((self.is_finished, just_finished), dim=1).gather(1, best)

    def check_early_stop(self, cur_len: int) -> None:
        """``_check_early_stop_heuristic`` after a step, ``cur_len`` counting the start token."""
        s = self.settings
        if s.early_stopping == "never" and s.length_penalty > 0.0:
            best_length = s.max_length - 1
        else:
            best_length = cur_len - 1
        best_possible = self.running_scores[:, :1] / (best_length**s.length_penalty)
        worst = torch.where(self.is_finished, self.finished_scores.min(dim=1, keepdim=True)[0], NEG)
        self.unsatisfied = self.unsatisfied & (best_possible > worst).any(dim=-1, keepdim=True)
