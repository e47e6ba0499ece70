"""Boards: one file per board (its platform, FPGA family, memories, programmer and default core),
the bitstream build and the board tops. ``BOARDS`` lists them by their ``--board`` name."""

from spiketwin.errors import InvalidValue

from .board import Board, BoardTooSmall
from .icebreaker import ICEBREAKER
from .ulx3s import ULX3S

__all__ = ["BOARDS", "Board", "BoardTooSmall", "get_board"]

BOARDS: dict[str, Board] = {b.name: b for b in (ICEBREAKER, *ULX3S.values())}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise InvalidValue(f"Board must be one of {tuple(BOARDS)}, not {name!r}") from None
