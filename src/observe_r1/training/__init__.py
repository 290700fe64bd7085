"""Training: one GRPO run from its config (`train`), the TRL trainer subclass (`trainer`) and
its extensions: advantage shaping, shared-prompt forward, dynamic sampling, validation, logs."""
