"""Evaluation: batched generation, scoring a model on rows (``observe-r1 eval``) and what the
scores mean: the answer prior, image ablation, resuming a stopped eval."""
