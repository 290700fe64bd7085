"""``python -m eager_llm.cli``: the ``eager-llm`` app (what ``accelerate launch -m`` runs)."""

from eager_llm.cli import app

app(prog_name="eager-llm")
