"""The link's components in Amaranth's simulator: the frame receiver against the host's decoder,
the encoder against the replies the board model frames, the request checker's verdicts and the
executor's replies against the board model's, and one CRC on both sides."""

import struct

import numpy as np
from amaranth.sim import Simulator

from spiketwin.config import Region
from spiketwin.hw.link import FrameReceiver, SlipEncoder
from spiketwin.hw.link.checker import EXECUTED, REQUEST
from spiketwin.hw.link.slip import crc_processor
from spiketwin.link.protocol import (
    END,
    ESC,
    MAX_FRAME,
    PAYLOAD_AT,
    FrameDecoder,
    Opcode,
    Status,
    crc16,
    encode_frame,
    fill_payload,
    request,
    request_content,
    seal,
    write_payload,
)


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_the_host_crc_is_amaranths_crc16_genibus():
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
    assert bytes(out) == b"".join(encode_frame(seal(c)) for c in contents)


class BufferCursor:
    """The link's frame buffer and its one pointer, as ``HostLink`` keeps them, for a component's
    ``cursor``: ``byte`` is the byte at ``ptr``; the pointer moves as the component asks."""

    def __init__(self, cursor, content: bytes):
        self.cursor, self.buf, self.ptr = cursor, bytes(content) + bytes(MAX_FRAME + 2 - len(content)), 0

    def place(self, ctx, ptr: int) -> None:
        self.ptr = ptr
        ctx.set(self.cursor.ptr, ptr)
        ctx.set(self.cursor.byte, self.buf[ptr])

    def next_ptr(self, ctx) -> int:
        if ctx.get(self.cursor.jump):
            return ctx.get(self.cursor.target)
        return self.ptr + 1 if ctx.get(self.cursor.advance) else self.ptr


def expected_check(content: bytes, status: Status) -> dict:
    """What the checker must find in a received frame (content with its CRC): the board model's checks."""
    from spiketwin.link.protocol import length_ok, payload_ok

    opcode, payload = content[0], content[PAYLOAD_AT:-2]
    if status == Status.OK and opcode not in {int(o) for o in Opcode if o != Opcode.NACK}:
        status = Status.UNKNOWN_OPCODE
    elif status == Status.OK and not (length_ok(content[:-2]) and payload_ok(opcode, payload)):
        status = Status.BAD_LENGTH
    fields = {"opcode": opcode, "plen": len(payload), "end": len(content) - 2}
    if status == Status.OK and opcode == Opcode.RUN:
        fields["steps"] = struct.unpack(">H", payload[:2])[0]
    return {"ok": status == Status.OK, "status": status, **fields}


def check_cases(rng) -> list[tuple[bytes, Status]]:
    """Frames (content and CRC) as the receiver reports them: every opcode with payloads of the
    right length and near misses, RUN requests whose step counts fill, overshoot or fall short of
    the payload, unknown opcodes, and statuses the receiver already refused."""
    from spiketwin.link.protocol import run_payloads

    def frame(op, payload: bytes) -> bytes:
        return seal(request_content(op, payload))

    cases = []
    for op, n in [(Opcode.IDENTIFY, 0), (Opcode.RESET, 0), (Opcode.WRITE, 12), (Opcode.READ, 8), (Opcode.ERRORS, 1),
                  (Opcode.FILL, 8)]:
        for k in {n, n + 1, max(0, n - 1), n + 6, 5, 4, 3}:
            cases.append((frame(op, bytes(rng.integers(0, 256, k).tolist())), Status.OK))
    for _ in range(12):
        seqs = [rng.integers(0, 300, size=rng.integers(0, 5)).tolist() for _ in range(rng.integers(0, 5))]
        run = run_payloads(seqs)[0]
        for variant in (run, run[:-1], run[:-2], run + b"\x07"):     # exact, short, long
            cases.append((frame(Opcode.RUN, variant), Status.OK))
    cases += [(frame(Opcode.RUN, bytes([0, 2, 0])), Status.OK), (frame(Opcode.RUN, bytes([0])), Status.OK),
              (frame(Opcode.RUN, bytes([0, 1, 3, 0, 1])), Status.OK)]
    # length fields that disagree with the bytes received, and frames too short to hold one
    for op, payload in [(Opcode.READ, bytes(4)), (Opcode.IDENTIFY, b""), (Opcode.RUN, bytes([0, 0]))]:
        content = request_content(op, payload)
        for length in (len(payload) + 1, max(0, len(payload) - 1), 0x100 + len(payload), 0xFFFF):
            cases.append((seal(content[:1] + length.to_bytes(2, "big") + payload), Status.OK))
        cases += [(seal(content[:1]), Status.OK), (seal(content[:2]), Status.OK)]
    cases += [(seal(bytes([op])), Status.OK) for op in (0x00, 0x42, Opcode.NACK, 0xFF)]
    cases += [(seal(bytes([Opcode.IDENTIFY])), status) for status in Status if status != Status.OK]
    return cases


def test_request_checker_accepts_and_refuses_what_the_board_model_does():
    from spiketwin.hw.link import RequestChecker

    cases = check_cases(np.random.default_rng(3))
    dut = RequestChecker()

    async def bench(ctx):
        for content, status in cases:
            want = expected_check(content, status)
            cur = BufferCursor(dut.cursor, content)
            cur.place(ctx, 0)
            ctx.set(dut.frame_length, len(content))
            ctx.set(dut.frame_status, status)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cur.place(ctx, 0)
            for _ in range(4 * len(content) + 8):
                if ctx.get(dut.done):
                    break
                nxt = cur.next_ptr(ctx)
                await ctx.tick()
                cur.place(ctx, nxt)
            else:
                raise AssertionError(f"no verdict for {content.hex()}")
            assert bool(ctx.get(dut.ok)) == want["ok"], content.hex()
            await ctx.tick()                       # the request's registers, held after the verdict
            req = dut.request
            assert ctx.get(req.opcode) == want["opcode"] and ctx.get(req.end) == want["end"]
            if want["ok"]:
                assert ctx.get(req.plen) == want["plen"]
                assert ctx.get(getattr(req.op, Opcode(want["opcode"]).name.lower()))
                if "steps" in want:
                    assert ctx.get(req.steps) == want["steps"] and ctx.get(req.last_step) == (want["steps"] - 1) % 65536
            else:
                assert ctx.get(req.status) == want["status"], content.hex()
            assert not ctx.get(dut.done)

    simulate(dut, bench)
    verdicts = [expected_check(*c)["ok"] for c in cases]
    assert sum(verdicts) >= 15 and verdicts.count(False) >= 15


def request_value(content: bytes, status: Status) -> tuple[bool, int]:
    """The checker's verdict and ``request`` for a frame (as its own test holds it to), the latter
    as the raw bits of ``REQUEST`` (an unknown opcode is no member of the opcode field's enum)."""
    want = expected_check(content, status)
    steps = want.get("steps", 0)
    fields = {"opcode": want["opcode"], "status": want["status"], "end": want["end"], "plen": want["plen"],
              "steps": steps, "last_step": (steps - 1) % 65536,
              "op": sum(int(want["opcode"] == o) << REQUEST["op"].shape[o.name.lower()].offset for o in EXECUTED)}
    return want["ok"], sum(int(v) << REQUEST[name].offset for name, v in fields.items())


def test_executor_answers_and_drives_the_core_as_the_board_model_does():
    """Requests executed against the twin's core on the other side of ``cfg``, ``events`` and
    ``spikes`` (each taken after random stalls, a read answered two cycles later, and the reply's
    bytes taken at random): every reply's content, and the core's state, are the board model's."""
    from spiketwin import CoreConfig, Network
    from spiketwin.hw.link import Executor
    from spiketwin.link.board import BoardModel
    from spiketwin.link.protocol import run_payloads
    from spiketwin.twin import CoreModel

    config = CoreConfig(8, 12, lanes=2, max_axon_events=5)
    net = Network.random(config, seed=4)
    rng = np.random.default_rng(4)
    writes = [(config.address(Region.THRESHOLD, j), int(rng.integers(0, 900))) for j in range(config.n_neurons)]
    reads = [a for a, _ in writes[::3]] + [config.address(Region.CONTROL), 1 << 31, config.address(Region.V, 99)]
    runs = [run_payloads([rng.integers(0, 12, size=rng.integers(0, 7)).tolist() for _ in range(4)])[0]
            for _ in range(3)]
    payloads = [(Opcode.IDENTIFY, b""), (Opcode.WRITE, write_payload(writes[0][0], [w for _, w in writes])),
                (Opcode.WRITE, write_payload(config.address(Region.V, config.n_neurons - 2), [3, 4, 5])),
                (Opcode.WRITE, write_payload((1 << 32) - 2, [6, 7, 8])), (Opcode.WRITE, write_payload(0, [])),
                (Opcode.FILL, fill_payload(config.address(Region.LEAK, 1), 5, 0x0123)),
                (Opcode.FILL, fill_payload(config.address(Region.V, config.n_neurons - 1), 3, 0xFF80)),
                (Opcode.FILL, fill_payload((1 << 32) - 1, 2, 9)), (Opcode.FILL, fill_payload(0, 0, 1)),
                (Opcode.READ, b"".join(struct.pack(">I", a) for a in reads))]
    payloads += [(Opcode.RUN, p) for p in runs] + [(Opcode.ERRORS, bytes([x])) for x in (0, 1, 0)]
    payloads += [(Opcode.RESET, b""), (Opcode.READ, b""), (Opcode.RUN, bytes(2)), (Opcode.WRITE, b""),
                 (Opcode.WRITE, bytes(5)), (Opcode.FILL, bytes(7)), (0x42, b"")]
    contents = [request_content(op, p) for op, p in payloads] + [bytes([Opcode.RESET, 0, 2])]
    frames = [(seal(c), Status.OK) for c in contents] + [(bytes([1, 0, 0]), Status.BAD_CRC)]
    model = BoardModel(config, net)
    wire = [encode_frame(f) if s == Status.OK else f + bytes([END]) for f, s in frames]
    replies = [[c for c, _ in FrameDecoder().feed(model.receive(w))] for w in wire]
    core = CoreModel(config, net)
    dut = Executor(config)

    async def bench(ctx):
        for (frame, status), want in zip(frames, replies, strict=True):
            ok, req = request_value(frame, status)
            ctx.set(dut.request.as_value(), req)
            ctx.set(dut.ok, ok)
            ctx.set(dut.start, 1)
            cur = BufferCursor(dut.cursor, frame)
            cur.place(ctx, PAYLOAD_AT)            # where the checker leaves it (the executor jumps)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cur.place(ctx, PAYLOAD_AT)
            got, axons, spikes, answer = bytearray(), [], [], []
            for _ in range(20000):
                for port in (dut.reply, dut.cfg, dut.events):
                    ctx.set(port.ready, int(rng.random() < 0.7))
                ctx.set(dut.cfg.rvalid, 0)
                if answer and answer[0][0] == 0:
                    ctx.set(dut.cfg.rvalid, 1)
                    ctx.set(dut.cfg.rdata, answer.pop(0)[1])
                ctx.set(dut.spikes.valid, int(bool(spikes)))
                if spikes:
                    ctx.set(dut.spikes.payload, spikes[0])
                if ctx.get(dut.reply.valid) and ctx.get(dut.reply.ready):
                    got.append(ctx.get(dut.reply.payload.data))
                if ctx.get(dut.cfg.valid) and ctx.get(dut.cfg.ready):
                    addr = ctx.get(dut.cfg.addr)
                    if ctx.get(dut.cfg.write):
                        core.write(addr, ctx.get(dut.cfg.wdata))
                    else:
                        answer.append([2, core.read(addr)])
                if ctx.get(dut.events.valid) and ctx.get(dut.events.ready):
                    if ctx.get(dut.events.payload.step):
                        row = core.run([axons])[0]
                        spikes = [{"neuron": int(j), "end": 0} for j in np.flatnonzero(row)] + [{"neuron": 0, "end": 1}]
                        axons = []
                    else:
                        axons.append(ctx.get(dut.events.payload.axon))
                if ctx.get(dut.spikes.valid) and ctx.get(dut.spikes.ready):
                    spikes.pop(0)
                done = ctx.get(dut.done)
                nxt = cur.next_ptr(ctx)
                for a in answer:
                    a[0] -= 1
                await ctx.tick()
                cur.place(ctx, nxt)
                if done:
                    break
            else:
                raise AssertionError(f"no end to request {frame.hex()}")
            assert [bytes(got)] == want, frame.hex()
        assert np.array_equal(core.state.v, model.core.state.v) and core.errors == model.core.errors
        assert np.array_equal(core.network.threshold, model.core.network.threshold)

    simulate(dut, bench)
