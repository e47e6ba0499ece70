"""The exceptions spiketwin raises for what a user gave it: the command line prints their message on
one line and exits 2; anything else is a bug and keeps its traceback.

- :class:`UserError`: the base class.
- :class:`InvalidValue` (also a ``ValueError``): a value, option, file field or configuration that
  spiketwin refuses; the message names it and the limit it breaks.
- :class:`ToolError` (also a ``RuntimeError``): a tool spiketwin needs is missing or failed (a
  simulator, Yosys, nextpnr, the programmer).
- ``NetworkFileError`` (:mod:`spiketwin.network`), ``LinkError`` (:mod:`spiketwin.link`) and
  ``BoardTooSmall`` (:mod:`spiketwin.boards`) derive from these.
"""

__all__ = ["UserError", "InvalidValue", "ToolError"]


class UserError(Exception):
    """Something the user gave cannot be used; the message says what and why."""


class InvalidValue(UserError, ValueError):
    """A refused value: an argument, an option, a field of a file, a configuration."""
class ToolError(UserError, RuntimeError):
    """A tool spiketwin runs is missing or failed."""
