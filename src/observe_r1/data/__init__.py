"""Data: the canonical row and its JSONL files (`rows`), importers from other formats, the
procedural source (`synth`) and the prompts a row is asked with."""
