"""Progress of one long operation, from deep inside it to whoever shows it.

A sampler calls :func:`report` as it goes (bars written, Gibbs rounds, frames); the command
that started it shows a bar through :func:`reporting`. Without a listener, :func:`report`
costs a context-variable lookup."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from contextlib import contextmanager

_LISTENER: contextvars.ContextVar[Callable[[float, float, str], None] | None] = contextvars.ContextVar(
    "tunesmith_progress", default=None)


def report(done: float, total: float, unit: str) -> None:
    fn = _LISTENER.get()
    if fn is not None and total:
        fn(done, total, unit)


@contextmanager
def reporting(fn: Callable[[float, float, str], None]):
    token = _LISTENER.set(fn)
    try:
        yield
    finally:
        _LISTENER.reset(token)


@contextmanager
def progress_bar(desc: str, pieces: int = 1, enabled: bool = True):
    """A tqdm bar over ``pieces`` pieces fed by :func:`report`; yields a function to call with
    the index of the piece that starts."""
    if not enabled:
        yield lambda i: None
        return
    from tqdm import tqdm

    bar = tqdm(total=pieces, desc=desc, unit="piece", dynamic_ncols=True, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}")
    at = [0]

    def listen(done, total, unit):
        bar.n = at[0] + min(done, total) / total
        bar.set_postfix_str(f"{unit} {int(done)}/{int(total)}" + (f", piece {at[0] + 1}/{pieces}" if pieces > 1
                                                                    else ""), refresh=False)
        bar.refresh()

    def start(i):
        at[0] = i
        bar.n = i
        bar.refresh()

    with reporting(listen):
        try:
            yield start
        finally:
            bar.close()
