"""Offline model zoo: named models and datasets resolved to local Hugging Face folders.

``from model_zoo import resolve`` is cheap; processors live in :mod:`model_zoo.processors`.
"""

from model_zoo.registry import ZOO, resolve

__all__ = ["ZOO", "resolve"]
