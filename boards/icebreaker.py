"""The iCEBreaker (iCE40 UP5K): 5280 LUT4, 30 block RAMs of 4 kbit, 4 SPRAM banks of 16k x 16, 8 DSPs."""

from spiketwin.config import CoreConfig

from .board import ICE40, Board

__all__ = ["ICEBREAKER"]


def _platform():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    return ICEBreakerPlatform()


#: The default cores. LIF: 256 sources x 128 neurons on 4 lanes, the weights in the four SPRAM
#: banks (16,384 words each: exactly a lane's 256 x 32), 38.2 MHz post-route at a 36 MHz PLL
#: clock. DPI: a lane's 19 memories (four accumulators, seven state fields, two tables) take more
#: of the 30 block RAMs than two lanes leave, so one lane, 64 x 64, its weights in one SPRAM bank.
#: Placement seed 5: the LIF core at 36 MHz reached 38.2 MHz with it, and 36.5-37.6 MHz with seeds
#: 1-4 and 6 (the UP5K is 89% full, and the seed moves its fmax by a MHz or two).
ICEBREAKER = Board("icebreaker", _platform, ICE40, block_rams=30, spram=(4, 16384), programmer="icebreaker",
                   default_cores={"lif": CoreConfig(128, 128, lanes=4),
                                  "dpi": CoreConfig(64, 64, lanes=1, model="dpi")},
                   target_mhz=36.0, placement_seed=5)
