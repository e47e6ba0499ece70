"""The ``spiketwin`` command line: each command parses its options and calls one library function.

One module per command group (``core``: verilog, verify; ``training``: train, evaluate,
fit-profile; ``board``: build, flash, sim-board, run, characterize; ``dpi``: the ARCANA
experiments, calibrate-dpi; ``interop``: import-nir, export-nir; ``formal``: prove; ``flow``: the main job). A
:class:`spiketwin.errors.UserError` (or a path that cannot be opened) ends a command with one line on
stderr and exit status 2, the parameters its message names (in backquotes) given as the command's
options; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib.metadata import version

from ..errors import UserError
from . import board, core, dpi, flow, formal, interop, training
from .common import HelpFormatter

__all__ = ["main", "build_parser"]

_GROUPS = (core, training, board, dpi, interop, formal, flow)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spiketwin", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {version('spiketwin')}")
    sub = p.add_subparsers(dest="command", required=True)
    for group in _GROUPS:
        group.add_parsers(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
        flags = {}
        for action in command._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                flags.setdefault(action.dest, action.option_strings[0])
        command.set_defaults(flags=flags)
    return p


#: Library parameters whose option is not named after them (an ``Encoding``'s fields).
_OPTION_OF = {"target_hz": "target", "encoding.method": "encoding", "encoding.steps": "encoding_steps",
              "encoding.max_rate": "max_rate"}


def _with_options(message: str, flags: dict) -> str:
    """A library message names parameters in backquotes (```levels``` must be ...); on the command
    line they are the command's options (``--levels``), or the plain names where it has none."""
    def option(m):
        name = m.group(1)
        return flags.get(_OPTION_OF.get(name, name), name)

    return re.sub(r"`([\w.]+)`", option, message)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"spiketwin: error: {_with_options(str(e), getattr(args, 'flags', {}))}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
        print(f"spiketwin: error: {e.strerror}: {e.filename}", file=sys.stderr)     # a path the user named
        return 2
    except KeyboardInterrupt:
        print("spiketwin: interrupted", file=sys.stderr)
        return 130
