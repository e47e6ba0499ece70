"""The link's components in Amaranth's simulator: the frame receiver against the host's decoder,
the encoder against the replies the board model frames, and one CRC on both sides."""

import struct

import numpy as np
from amaranth.sim import Simulator

from spiketwin.hw.link import FrameReceiver, SlipEncoder
from spiketwin.hw.link.slip import crc_processor
from spiketwin.link import END, ESC, MAX_FRAME, FrameDecoder, Opcode, Status, crc16, encode_frame, request


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_the_host_crc_is_amaranths_crc16_ccitt_false():
    rng = np.random.default_rng(0)
    messages = [b"123456789", b"", bytes(rng.integers(0, 256, 40).tolist())]
    dut = crc_processor()

    async def bench(ctx):
        for msg in messages:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for byte in msg:
                ctx.set(dut.data, byte)
                ctx.set(dut.valid, 1)
                await ctx.tick()
            ctx.set(dut.valid, 0)
            assert ctx.get(dut.crc) == crc16(msg)
            # a message followed by its CRC leaves the residue: what the receiver checks
            for byte in struct.pack(">H", crc16(msg)):
                ctx.set(dut.data, byte)
                ctx.set(dut.valid, 1)
                await ctx.tick()
            ctx.set(dut.valid, 0)
            assert ctx.get(dut.match_detected)

    simulate(dut, bench)


def frames(rng):
    good = [request(Opcode.WRITE, bytes([END, ESC, 1, 2, 3, 4])), request(Opcode.IDENTIFY),
            request(Opcode.READ, bytes(rng.integers(0, 256, 12).tolist()))]
    bad = [request(Opcode.RUN, b"\x00\x01")[:-3] + b"\x00\xc0",            # a wrong CRC
           bytes([0x01, 0x02, END]),                                       # too short
           bytes([0x01, ESC, 0x01, 0x02, 0x03, END]),                      # a bad escape
           bytes([0x55] * (MAX_FRAME + 3)) + bytes([END]),                 # too long
           bytes([END])]                                                   # an empty frame: ignored
    noise = [bytes(rng.integers(0, 256, int(rng.integers(1, 30))).tolist()) + bytes([END]) for _ in range(20)]
    return good + bad + noise


def test_frame_receiver_refuses_and_keeps_what_the_host_decoder_does():
    rng = np.random.default_rng(1)
    stream = b"".join(frames(rng))
    expected = list(FrameDecoder(MAX_FRAME).feed(stream))
    dut = FrameReceiver()
    got = []

    async def bench(ctx):
        buf = {}
        for byte in stream:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            ctx.set(dut.i.valid, 0)                    # the byte is handled in the cycle after
            done, wr = ctx.get(dut.done), ctx.get(dut.wr_en)
            if wr:
                buf[ctx.get(dut.wr_addr)] = ctx.get(dut.wr_data)
            await ctx.tick()
            if done:
                status, length = Status(ctx.get(dut.status)), ctx.get(dut.length)
                content = bytes(buf[k] for k in range(length))[:-2] if status == Status.OK else b""
                got.append((content, status))
                buf = {}

    simulate(dut, bench)
    assert got == expected


def test_slip_encoder_frames_a_reply_as_the_board_model_does():
    rng = np.random.default_rng(2)
    contents = [bytes([Opcode.READ | 0x80, 0]) + bytes(rng.integers(0, 256, 9).tolist()),
                bytes([0xFF, int(Status.BAD_CRC)]), bytes([Opcode.RUN | 0x80, 0, END, ESC, 0xFF, 0xFF])]
    dut = SlipEncoder()
    out = bytearray()

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for content in contents:
            for k, byte in enumerate(content):
                ctx.set(dut.i.payload.data, byte)
                ctx.set(dut.i.payload.last, k == len(content) - 1)
                ctx.set(dut.i.valid, 1)
                while True:
                    ready = ctx.get(dut.i.ready)
                    if ctx.get(dut.o.valid):
                        out.append(ctx.get(dut.o.payload))
                    await ctx.tick()
                    if ready:
                        break
                ctx.set(dut.i.valid, 0)
        for _ in range(40):                   # the last reply's CRC and END
            if ctx.get(dut.o.valid):
                out.append(ctx.get(dut.o.payload))
            await ctx.tick()

    simulate(dut, bench)
    assert bytes(out) == b"".join(encode_frame(c + struct.pack(">H", crc16(c))) for c in contents)
