"""The paired bootstrap now lives in `model_zoo.significance`, shared with Observe-R1; this
name stays until ``eager_llm.baselines.report`` and ``experiments/recbole_agreement.py``
import it from there."""

from model_zoo.significance import paired_bootstrap

__all__ = ["paired_bootstrap"]
