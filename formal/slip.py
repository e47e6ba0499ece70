"""The link's framing components (:mod:`spiketwin.hw.link.slip`, ``docs/link.md``), bounded from reset.

- ``slip-encoder``: a reply's byte stream keeps the stream rules (valid held, payload stable until
  taken) under any back-pressure, emits nothing it was not given a frame for, and ends each frame
  with exactly one END (content and CRC bytes that look like END or ESC leave escaped).
- ``frame-receiver``: every byte is taken; after an END the receiver hunts for a new frame (the next
  content byte is stored at address 0, whatever came before: garbage, overruns, bad escapes); a
  frame is reported once, at its END, and reported OK only with at least 3 bytes whose CRC-16/
  GENIBUS remainder is the residue its final XOR leaves, computed here bit by bit from the CRC's
  definition.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

from spiketwin.hw.link.slip import FrameReceiver, SlipEncoder
from spiketwin.link.protocol import CRC_BYTES, CRC_XOR_OUT, END, ESC_END, MAX_FRAME, Status

from . import Checks, Job

COMPONENTS = {
    "slip-encoder": "the reply stream: valid held and payload stable until taken, nothing unasked, one END per frame",
    "frame-receiver": "always ready; hunts after every END; OK only for >= 3 bytes with a good CRC, reported once",
}

#: CRC-16/GENIBUS: polynomial 0x1021, initial value 0xFFFF, no reflection, final XOR ``CRC_XOR_OUT``.
CRC_POLY, CRC_INIT = 0x1021, 0xFFFF


def crc_residue() -> int:
    """The register after a message and its CRC: that of the final XOR's bytes from zero (a
    message's own remainder cancels)."""
    crc = 0
    for byte in CRC_XOR_OUT.to_bytes(CRC_BYTES, "big"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def crc_step(crc, byte):
    """The CRC register after one more byte, MSB first, written out bit by bit."""
    crc = crc ^ (byte << 8)
    for _ in range(8):
        crc = Mux(crc[15], (crc << 1) ^ CRC_POLY, crc << 1)[:16]
    return crc


def encoder_harness() -> Checks:
    c = Checks()
    m = c.m
    m.submodules.dut = enc = SlipEncoder()
    i_valid, i_data, i_last = c.free(1, "i_valid"), c.free(8, "i_data"), c.free(1, "i_last")
    o_ready = c.free(1, "o_ready")
    m.d.comb += [enc.i.valid.eq(i_valid), enc.i.payload.data.eq(i_data), enc.i.payload.last.eq(i_last),
                 enc.o.ready.eq(o_ready)]
    started = c.started()
    was = {"i_wait": c.past(i_valid & ~enc.i.ready, "was_i_wait"), "i_data": c.past(i_data, "was_i_data"),
           "i_last": c.past(i_last, "was_i_last"), "o_wait": c.past(enc.o.valid & ~o_ready, "was_o_wait"),
           "o_payload": c.past(enc.o.payload, "was_o_payload")}
    c.assume(~(started & was["i_wait"]) | (i_valid & (i_data == was["i_data"]) & (i_last == was["i_last"])),
             "the producer holds a byte until it is taken")
    c.require(~(started & was["o_wait"]) | (enc.o.valid & (enc.o.payload == was["o_payload"])),
              "o holds valid and its payload until taken")

    taken, sent = i_valid & enc.i.ready, enc.o.valid & o_ready
    closing = sent & (enc.o.payload == END)
    open_frame, last_taken = Signal(name="open_frame"), Signal(name="last_taken")
    with m.If(taken):
        m.d.sync += open_frame.eq(1)
        with m.If(i_last):
            m.d.sync += last_taken.eq(1)
    with m.If(closing):
        m.d.sync += [open_frame.eq(0), last_taken.eq(0)]
    c.require(~enc.o.valid | open_frame, "nothing is sent outside a frame it was given")
    c.require(~closing | last_taken, "an END leaves only after the frame's last byte was given")
    c.require(~(taken & open_frame & last_taken), "no byte is taken while a frame's END is due")
    c.cover(closing, "a frame is closed")
    c.cover(sent & (enc.o.payload == ESC_END), "an END byte leaves escaped")
    c.cover(was["o_wait"] & enc.o.valid & ~o_ready, "back-pressure held")
    return c


def receiver_harness(crc_check: bool = True) -> Checks:
    c = Checks()
    m = c.m
    m.submodules.dut = rx = FrameReceiver()
    i_valid, i_byte, busy = c.free(1, "i_valid"), c.free(8, "i_byte"), c.free(1, "busy")
    m.d.comb += [rx.i.valid.eq(i_valid), rx.i.payload.eq(i_byte), rx.busy.eq(busy)]
    c.require(rx.i.ready, "every byte is taken")
    # the receiver handles a byte the cycle after it arrives
    got = c.past(i_valid, "got")
    got_end = c.past(i_valid & (i_byte == END), "got_end")
    stored = Signal(range(MAX_FRAME + 1), name="stored")
    crc = Signal(16, init=CRC_INIT, name="crc")
    with m.If(rx.wr_en):
        m.d.sync += [stored.eq(stored + 1), crc.eq(crc_step(crc, rx.wr_data))]
    with m.If(got_end):
        m.d.sync += [stored.eq(0), crc.eq(CRC_INIT)]
    c.require(~rx.wr_en | (got & ~busy), "a byte is stored only when one arrived and no request runs")
    c.require(~rx.wr_en | (rx.wr_addr == stored), "a frame's bytes are stored from address 0 on, in order")
    c.require(~rx.done | got_end | (~got & ~busy), "a frame is reported at its END, or (one dropped while busy) "
                                                   "in a cycle without a byte once no request runs")
    late = c.past(rx.done & ~got_end, "late")
    c.require(~late | (rx.status == Status.OVERRUN), "a report outside an END is an OVERRUN")
    reported, frame_crc, frame_length = (c.past(rx.done, "reported"), c.past(crc, "frame_crc"),
                                         c.past(stored, "frame_length"))
    ok = rx.status == Status.OK
    c.require(~reported | ~ok | (rx.length >= 3), "a frame is OK only with at least 3 bytes")
    if crc_check:
        c.require(~reported | ~ok | (frame_crc == crc_residue()), "a frame is OK only with the CRC's residue")
    c.require(~reported | (rx.length == frame_length), "the reported length is the bytes stored")
    c.cover(reported & ok, "a good frame")
    c.cover(reported & (rx.status == Status.BAD_CRC), "a frame with a bad CRC")
    c.cover(reported & (rx.status == Status.BAD_ESCAPE), "a frame with a bad escape")
    c.cover(reported & (rx.status == Status.OVERRUN), "a frame overrun by a request")
    c.cover(late, "a frame dropped whole while busy, answered after")
    c.cover(rx.wr_en & (rx.wr_data == END), "an escaped END stored")
    return c


def jobs() -> list[Job]:
    return [Job("slip-encoder", "slip-encoder", "bmc", 28, encoder_harness,
                "the reply byte stream under back-pressure, escapes, one END per frame"),
            Job("frame-receiver", "frame-receiver", "bmc", 16, lambda: receiver_harness(crc_check=False),
                "hunting after END, lengths, one report per frame"),
            Job("frame-receiver-crc", "frame-receiver", "bmc", 7, receiver_harness,
                "the above, and OK only with the CRC's residue (frames of up to 5 bytes)")]
