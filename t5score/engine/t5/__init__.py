"""Fast T5-family kernels: one decoder step with a preallocated cache, and teacher-forced whole targets."""
