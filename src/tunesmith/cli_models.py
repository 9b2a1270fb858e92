"""CLI commands of the model families (train, generate); filled in by the models."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    return None
