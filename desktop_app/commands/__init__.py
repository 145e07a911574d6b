"""Subcommands of `pixfind`; each module exposes ``COMMANDS``, a list of click commands.

The command line imports a command's module only when that command runs (or help lists
them): `pixfind status` does not pay for the model downloader, the trainer or the window.
"""

from __future__ import annotations

import importlib

import click

# command name -> the module defining it (tests/integration/test_lazy_loading.py checks this
# table against every module's COMMANDS)
COMMAND_MODULES = {
    "models": "models",
    "export": "export",
    "index": "library",
    "search": "library",
    "duplicates": "library",
    "status": "library",
    "watch": "library",
    "folders": "folders",
    "app": "app",
    "train": "train",
    "eval": "train",
    "library": "library_maintenance",
    "desktop": "desktop",
}
_MODULES = tuple(dict.fromkeys(COMMAND_MODULES.values()))


def _module(module_name: str):
    return importlib.import_module(f"{__name__}.{module_name}")


def register_all(group: click.Group) -> None:
    """Add every command to ``group`` now (imports every command module)."""
    for module_name in _MODULES:
        for command in _module(module_name).COMMANDS:
            group.add_command(command)


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMAND_MODULES:
            for found in _module(COMMAND_MODULES[cmd_name]).COMMANDS:
                if found.name not in self.commands:
                    self.add_command(found)
            command = super().get_command(ctx, cmd_name)
        return command
