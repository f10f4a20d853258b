"""Fast T5-family engine: shared kernels (:mod:`.kernels`), the one-token decoder step (:mod:`.step`) and
the teacher-forced decoder over whole targets (:mod:`.forced`)."""
