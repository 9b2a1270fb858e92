"""What every CLI module shares: the argument parser (no prefix matching, suggestions
for unknown options) and the hint for renamed flags."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tunesmith.errors import OptionError

# Flags renamed so that each has one meaning across commands: old spelling → (commands, new spelling).
RENAMED = {"--max-minutes": ("train", "audio train", "--train-minutes (the training time budget; --max-minutes "
                             "is the longest input piece elsewhere)"),
           "--model": ("train", "bench nll", "--family (--model names a trained model elsewhere)")}


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if (not action.option_strings or d is None or d is False or d == [] or d == argparse.SUPPRESS
                or "default" in text or text == argparse.SUPPRESS):
            return text
        return f"{text} (default %(default)s)" if text else "default %(default)s"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """Wrapped line by line, so a description or epilog may keep its own line breaks."""
        return "\n".join(super(_Help, self)._fill_text(line, width, indent) if line.strip() else ""
                         for line in text.splitlines())


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching (``--bar`` is not ``--bars``), an unknown option
    answered with the nearest known ones, and defaults in every option's help.

    A command may have sub-commands beside a positional argument of its own
    (``evaluate FOLDER`` and ``evaluate listening CSV``): :meth:`add_subcommand` registers a
    child parser that takes over when its name is the first word after the command."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)
        self._subcommands: dict[str, argparse.ArgumentParser] = {}

    def format_help(self) -> str:
        for act in self._actions:  # argparse shows no help line (and so no default) for an option without help
            if act.option_strings and not act.help and act.default is not None and act.default is not False:
                act.help = "default %(default)s"
        return super().format_help()

    def add_subcommand(self, name: str, summary: str, **kwargs) -> Parser:
        child = Parser(prog=f"{self.prog} {name}", **kwargs)
        self._subcommands[name] = child
        self._summaries = {**getattr(self, "_summaries", {}), name: summary}
        listed = "\n".join(f"  {self.prog} {n} …: {h}" for n, h in self._summaries.items())
        self.epilog = f"sub-commands:\n{listed}\n(each has its own --help)"
        return child

    def parse_known_args(self, args=None, namespace=None):
        args = list(args or [])
        if args and args[0] in self._subcommands:
            self._delegated = self._subcommands[args[0]]
            return self._delegated.parse_known_args(args[1:], namespace)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        ns, extras = self.parse_known_args(args, namespace)
        if extras:  # answered by the (sub-)command they were given to, with its own options
            target = _chosen(self, ns)
            target.exit(2, f"{target.prog}: error: {_unknown(target, extras, _all_options(self))}\n")
        return ns

    def error(self, message: str):  # noqa: D401 - argparse's hook
        if message.startswith("unrecognized arguments:"):
            message = _unknown(self, message.split(":", 1)[1].split(), _all_options(self))
        self.exit(2, f"{self.prog}: error: {message}\n")


def _chosen(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost sub-command parser the namespace says was chosen (``tunesmith audio train``)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(ns, sub.dest, None) if sub is not None else None
        if name not in (sub.choices if sub is not None else {}):
            return getattr(parser, "_delegated", None) or parser  # a sub-command of add_subcommand
        parser = sub.choices[name]


def _unknown(parser: argparse.ArgumentParser, extras: list[str], everywhere: set[str]) -> str:
    """One line for arguments a command does not take: each unknown option with the nearest of the
    command's own options, or — where it is another command's option — a pointer to this one's help."""
    import difflib

    words = [w.split("=", 1)[0] for w in extras if w.startswith("-")]
    if not words:
        return "unrecognized arguments: " + " ".join(extras)
    own = sorted(_all_options(parser))
    hints = []
    for w in words:
        close = [c for c in difflib.get_close_matches(w, own, n=1, cutoff=0.7) if c != w]
        if close:
            hints.append(f"{w} (did you mean {close[0]}?)")
        elif w in everywhere:
            hints.append(f"{w} (another command's option; see {parser.prog} --help)")
        else:
            hints.append(w)
    return "unknown option " + ", ".join(hints)


def _all_options(parser: argparse.ArgumentParser) -> set[str]:
    out: set[str] = set()
    for act in parser._actions:
        out.update(o for o in act.option_strings if o.startswith("--"))
        if isinstance(act, argparse._SubParsersAction):
            for sp in act.choices.values():
                out |= _all_options(sp)
    for sp in getattr(parser, "_subcommands", {}).values():
        out |= _all_options(sp)
    return out


class _Renamed(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} was renamed: use {RENAMED[option_string][-1]}")


def add_renamed(parser: argparse.ArgumentParser, old: str) -> None:
    parser.add_argument(old, action=_Renamed, nargs="?", help=argparse.SUPPRESS, dest=f"renamed_{old[2:]}")


def add_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input limits")
    g.add_argument("--max-file-mb", type=float, default=16.0, help="largest input file (MiB)")
    g.add_argument("--max-notes", type=int, default=500_000, help="most notes in one piece")
    g.add_argument("--max-minutes", type=float, default=180.0,
                   help="longest piece (minutes); audio is also refused over 30 minutes")
    g.add_argument("--max-parse-seconds", type=float, default=300.0,
                   help="longest time reading one MusicXML or kern file may take")


def limits_from(a: argparse.Namespace):
    from tunesmith.music.io import Limits

    for opt, v in (("--max-file-mb", a.max_file_mb), ("--max-notes", a.max_notes), ("--max-minutes", a.max_minutes),
                   ("--max-parse-seconds", a.max_parse_seconds)):
        if v <= 0:
            raise OptionError(opt, f"must be positive, got {v}")
    return Limits(max_bytes=int(a.max_file_mb * 2**20), max_notes=a.max_notes, max_minutes=a.max_minutes,
                  max_parse_seconds=a.max_parse_seconds)


def check_output_name(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output file name the file system cannot hold (too long)."""
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        limit = os.pathconf(folder if folder.exists() else "/", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(p.name)) > limit:
        raise OptionError(option, f"the file name is {len(os.fsencode(p.name))} bytes, longer than the "
                          f"{limit} this file system allows")
    return p
