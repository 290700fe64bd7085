"""Observe-R1: GRPO training of multimodal reasoners, one subpackage per pipeline stage:
`data` -> `rewards` -> `evaluation` -> `ladder`, `training`; `align`, `demo` and `cli` on top."""
