"""The engine: pure torch (no Lightning, no pandas) decoding and teacher-forced scoring with capture.

* :mod:`~t5score.engine.options`: how to decode (:class:`DecodeOptions`, :class:`Sampling`, ``ENGINES``),
  declared and validated once;
* :mod:`~t5score.engine.decode`: the greedy / sampled decoding loop (:func:`greedy_decode`);
* :mod:`~t5score.engine.forced`: teacher-forced scoring of (source, target) pairs (:func:`score_pairs`),
  its inputs planned in :mod:`~t5score.engine.forced_inputs`;
* :mod:`~t5score.engine.tokens`: texts to token ids (truncation keeping EOS) and right padding, for both;
* :mod:`~t5score.engine.stats`: per-token statistics from raw logits;
* :mod:`~t5score.engine.engines`: which engine runs a model: :mod:`~t5score.engine.hf` (the model's own
  forward, any seq2seq) or :mod:`~t5score.engine.t5` (fast T5 kernels shared by the decoder step and the
  teacher-forced decoder);
* :mod:`~t5score.engine.modeling`, :mod:`~t5score.engine.quantize`, :mod:`~t5score.engine.logits_store`:
  loading a model, opt-in int8, raw logits on disk.
"""
