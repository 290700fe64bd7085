"""Killing a training loop in the middle, for the resume tests."""


def dies_on_call(function, n: int):
    """``function``, except that its ``n``-th call raises ``KeyboardInterrupt`` (a kill)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return wrapped
