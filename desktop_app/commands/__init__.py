"""Subcommands of `pixfind`; each module exposes ``COMMANDS``, a list of click commands."""

from __future__ import annotations

import importlib

import click

_MODULES = ("models", "export", "library", "folders", "app", "train", "library_maintenance")


def register_all(group: click.Group) -> None:
    for module_name in _MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        for command in module.COMMANDS:
            group.add_command(command)
