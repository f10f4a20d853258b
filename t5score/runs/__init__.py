"""One module per command (``predict``, ``score``, ``rerank``, ``compare``) and what they share: the runner
(output folder, resume, the Lightning predict loop, merge, summary), the part writer and the corpus summary."""
