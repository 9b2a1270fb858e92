"""One exception hierarchy for everything a user can get wrong.

The CLI turns any :class:`TunesmithError` into one line on stderr and a
non-zero exit status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class TunesmithError(Exception):
    """A problem the user can fix (bad file, bad option, missing model)."""


class BadInputError(TunesmithError):
    """A file that cannot be read as music: names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OptionError(TunesmithError):
    """An option outside its allowed range, named as the user typed it."""

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")


class ParameterError(OptionError):
    """A library parameter outside its allowed values, named as the Python API spells it
    (``top_k``); the CLI shows it as its flag (``--top-k``)."""

    def __init__(self, parameter: str, problem: str):
        self.parameter = parameter
        super().__init__("--" + parameter.replace("_", "-"), problem)
        self.args = (f"{parameter}: {problem}",)

    def cli_message(self) -> str:
        return f"{self.option}: {self.problem}"
