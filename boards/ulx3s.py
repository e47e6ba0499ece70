"""The ULX3S (ECP5 LFE5U-12F/25F/45F/85F), as amaranth-boards' variants: 18 kbit block RAMs, no SPRAM."""

from spiketwin.config import CoreConfig

from .board import ECP5, Board

__all__ = ["ULX3S"]

#: block RAMs (DP16KD, 18 kbit) of each variant's FPGA
_BLOCK_RAMS = {"12f": 32, "25f": 56, "45f": 108, "85f": 208}
#: Each variant's default core at 90 MHz: on the 85F 64 x 256 on 16 lanes (with the link of protocol
#: 2.0: 91.5 MHz post-route with placement seed 2, 91.3 with seed 3, 87.8 with seed 1, which gave
#: 101.2 before it; 98 of 208 block RAMs); on the smaller parts the 4-lane 64 x 128 core (measured
#: on the 85F only: 102.1 MHz with seed 1, 29 block RAMs, which the 12F's 32 hold).
_DEFAULT_CORES = {"12f": CoreConfig(64, 128, lanes=4), "25f": CoreConfig(64, 128, lanes=4),
                  "45f": CoreConfig(64, 128, lanes=4), "85f": CoreConfig(64, 256, lanes=16)}


def _platform(variant: str):
    def make():
        from amaranth_boards import ulx3s

        return getattr(ulx3s, f"ULX3S_{variant.upper()}_Platform")()
    return make


ULX3S = {f"ulx3s-{v}": Board(f"ulx3s-{v}", _platform(v), ECP5, block_rams=n, spram=None, programmer="ulx3s",
                             default_cores={"lif": _DEFAULT_CORES[v]}, target_mhz=90.0,
                             placement_seed=2 if v == "85f" else None)
         for v, n in _BLOCK_RAMS.items()}
