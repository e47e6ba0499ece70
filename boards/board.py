"""What spiketwin knows of a board and of its FPGA family: one :class:`Board` per board file.

A board file (``boards/icebreaker.py``, ``boards/ulx3s.py``) holds its amaranth-boards platform,
its family and memories, the programmer's name for it and its default core; ``docs/adding-a-board.md``
walks through adding one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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
    block_ram_shapes : tuple
        The (depth, width) configurations of one block RAM.
    distributed_bits : int
        Memories of at most this many bits go to LUT RAM rather than block RAM (0: none do).
    """

    name: str
    pll: Callable[[float, float], PLLSettings]
    bitstream_suffix: str
    cells: dict
    synth_opts: str = ""
    block_ram_shapes: tuple = ()
    distributed_bits: int = 0

    def block_rams(self, depth: int, width: int) -> int:
        """Block RAMs one memory of ``depth`` x ``width`` bits takes (Yosys's choice, as measured on
        the boards' cores: the UP5K's 26, the ECP5's 98 and 29 block RAMs, each predicted exactly)."""
        if depth * width <= self.distributed_bits:
            return 0
        return min(-(-depth // d) * -(-width // w) for d, w in self.block_ram_shapes)


ICE40 = Family("ice40", ice40_pll, ".bin",
               {"lut": "ICESTORM_LC", "ram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM", "dsp": "ICESTORM_DSP"},
               # Multipliers to the DSP blocks rather than into LUTs; large single-port memories
               # (the core's weights) to SPRAM.
               synth_opts="-dsp -spram", block_ram_shapes=((256, 16), (512, 8), (1024, 4), (2048, 2)))
ECP5 = Family("ecp5", ecp5_pll, ".bit",
              {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "ram": "DP16KD", "dsp": "MULT18X18D"},
              block_ram_shapes=((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
              distributed_bits=1024)


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
    block_rams : int
        Block RAMs of the FPGA.
    spram : tuple or None
        Single-port RAM banks as (count, 16-bit words each), where the FPGA has them.
    programmer : str
        openFPGALoader's ``-b`` name for the board.
    default_cores : dict
        Per neuron model, the largest core that fits the board at ``target_mhz``: what ``build
        --board`` builds when nothing else is said.
    target_mhz : float
        The core clock the default core is built for (through the PLL).
    placement_seed : int or None
        nextpnr's placement seed for the board's builds (its own default when None): on a nearly
        full FPGA the seed moves the fmax by a few MHz, and this one closes the default core's
        timing (``bench/boards.py --seed`` finds another after a change to the gateware).
    """

    name: str
    platform: Callable
    family: Family
    block_rams: int
    spram: tuple[int, int] | None
    programmer: str
    default_cores: dict
    target_mhz: float
    placement_seed: int | None = None

    @property
    def default_core(self) -> CoreConfig:
        """The default LIF core."""
        return self.default_cores["lif"]

    def default_core_for(self, model: str) -> CoreConfig:
        return self.default_cores.get(model) or replace(self.default_core, model=model)

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

    def block_rams_needed(self, config: CoreConfig, baked: bool) -> int:
        """Block RAMs a core takes: each lane's memories and weight banks (unless in SPRAM), the
        fired list and the link's frame buffer."""
        from spiketwin.hw.core.memories import memory_shapes, weight_banks
        from spiketwin.link.protocol import MAX_FRAME

        c, fam = config, self.family
        per_lane = sum(fam.block_rams(depth, shape.width) for depth, shape in memory_shapes(c).values())
        if not self.weights_in_spram(c, baked):
            words, bank = weight_banks(c, False)
            per_lane += sum(fam.block_rams(min(bank, words - b), c.data_bits) for b in range(0, words, bank))
        return c.lanes * per_lane + fam.block_rams(max(2, c.n_neurons), c.neuron_bits) + fam.block_rams(MAX_FRAME, 8)

    def check_fits(self, config: CoreConfig, baked: bool) -> None:
        """Refuse, before synthesis, a core whose memories cannot fit the board's block RAMs."""
        c = config
        need = self.block_rams_needed(c, baked)
        if need > self.block_rams:
            spram = ""
            if self.spram is not None and not self.weights_in_spram(c, baked):
                banks, words = self.spram
                spram = (f"; its SPRAM holds the weights only of cores with at most {banks} lanes of {words} "
                         f"weights and nothing baked in (this core has {c.lanes} lanes of {c.n_sources * c.groups})")
            raise BoardTooSmall(f"a {c.model.upper()} core of {c.n_axons} x {c.n_neurons} on {c.lanes} lane(s) needs "
                                f"{need} block RAMs, more than the {self.name}'s {self.block_rams}{spram}")
