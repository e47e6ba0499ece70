"""What spiketwin knows of a board and of its FPGA family: one :class:`Board` per board file.

A board file (``boards/icebreaker.py``, ``boards/ulx3s.py``) holds its amaranth-boards platform,
its family and memories, the programmer's name for it and its default core; ``docs/adding-a-board.md``
walks through adding one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spiketwin.config import CoreConfig
from spiketwin.errors import InvalidValue

from .pll import PLLSettings, ecp5_pll, ice40_pll

__all__ = ["Family", "Board", "ICE40", "ECP5", "BoardTooSmall"]


class BoardTooSmall(InvalidValue):
    """A core that does not fit a board's memories (refused before synthesis)."""


@dataclass(frozen=True)
class Family:
    """An FPGA family as the build sees it.

    Attributes
    ----------
    name : str
    pll : callable
        ``pll(f_in_mhz, target_mhz) -> PLLSettings`` for the family's PLL primitive.
    bitstream_suffix : str
        What the packer writes (``.bin``, ``.bit``).
    cells : dict
        nextpnr's cell name for each resource a report summarises (lut, ff, ram, spram, dsp).
    synth_opts : str
        Extra Yosys ``synth_*`` options.
    """

    name: str
    pll: Callable[[float, float], PLLSettings]
    bitstream_suffix: str
    cells: dict
    synth_opts: str = ""


ICE40 = Family("ice40", ice40_pll, ".bin",
               {"lut": "ICESTORM_LC", "ram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM", "dsp": "ICESTORM_DSP"},
               # Multipliers to the DSP blocks rather than into LUTs; large single-port memories
               # (the core's weights) to SPRAM.
               synth_opts="-dsp -spram")
ECP5 = Family("ecp5", ecp5_pll, ".bit",
              {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "ram": "DP16KD", "dsp": "MULT18X18D"})


@dataclass(frozen=True)
class Board:
    """One board.

    Attributes
    ----------
    name : str
        The ``--board`` name.
    platform : callable
        Makes the amaranth-boards platform.
    family : Family
    block_ram_bits : int
        Block RAM of the FPGA, in bits.
    spram : tuple or None
        Single-port RAM banks as (count, 16-bit words each), where the FPGA has them.
    programmer : str
        openFPGALoader's ``-b`` name for the board.
    default_core : CoreConfig
        The largest core that fits the board at ``target_mhz``: what ``build --board`` builds
        when nothing else is said.
    target_mhz : float
        The core clock the default core is built for (through the PLL).
    """

    name: str
    platform: Callable
    family: Family
    block_ram_bits: int
    spram: tuple[int, int] | None
    programmer: str
    default_core: CoreConfig
    target_mhz: float

    @property
    def bitstream_suffix(self) -> str:
        return self.family.bitstream_suffix

    def pll(self, target_mhz: float, f_in_mhz: float | None = None) -> PLLSettings:
        """PLL settings for ``target_mhz`` from the board's oscillator (or ``f_in_mhz``)."""
        f_in = f_in_mhz if f_in_mhz is not None else self.platform().default_clk_frequency / 1e6
        return self.family.pll(f_in, target_mhz)

    def flash_command(self, bitstream: Path, programmer: str = "openFPGALoader") -> list[str]:
        """The command that writes ``bitstream`` to the board's configuration flash."""
        return [programmer, "-b", self.programmer, "-f", str(bitstream)]

    def weights_fit_spram(self, config: CoreConfig) -> bool:
        """Whether the board's SPRAM can hold the weights of ``config``: a bank per lane."""
        if self.spram is None:
            return False
        banks, words = self.spram
        return config.lanes <= banks and config.n_sources * config.groups <= words and config.data_bits <= 16

    def weights_in_spram(self, config: CoreConfig, baked: bool) -> bool:
        """Whether a core's weights go to SPRAM: it fits there, and no network is baked in (SPRAM
        starts with undefined contents; the host loads the weights over the link)."""
        return not baked and self.weights_fit_spram(config)

    def check_fits(self, config: CoreConfig, baked: bool) -> None:
        """Refuse, before synthesis, a core whose memories cannot fit the board.

        The estimate is a lower bound: the weights (unless in SPRAM), each lane's parameters,
        state, accumulators and tables, in bits, against the FPGA's block RAM.
        """
        c = config
        weight_bits = 0 if self.weights_in_spram(c, baked) else c.n_sources * c.n_neurons * c.data_bits
        slots = 1 << (len(c.param_fields) - 1).bit_length()
        per_neuron = (slots * c.data_bits + sum(c.field_bits(r) for r in c.state_fields.values())
                      + c.accumulators * c.acc_width)
        other_bits = c.n_neurons * per_neuron + c.lanes * len(c.table_fields) * c.table_size * c.data_bits
        need = weight_bits + other_bits
        if need > self.block_ram_bits:
            spram = ""
            if self.spram is not None:
                banks, words = self.spram
                spram = (f"; its SPRAM holds at most {banks} lanes of {words} weights and only for cores with "
                         f"nothing baked in (this core has {c.lanes} lanes of {c.n_sources * c.groups})")
            raise BoardTooSmall(
                f"a {c.n_axons} x {c.n_neurons} core on {c.lanes} lane(s) needs at least "
                f"{math.ceil(need / 1024)} kbit of block RAM (weights {math.ceil(weight_bits / 1024)} kbit), "
                f"more than the {self.name}'s {self.block_ram_bits // 1024} kbit{spram}")
