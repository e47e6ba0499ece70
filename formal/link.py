"""The link's request checker and executor (:class:`spiketwin.hw.link.RequestChecker`,
:class:`~spiketwin.hw.link.Executor`, ``docs/link.md``).

The checker, bounded to frames of ``FRAME_BYTES`` (and ``LONG_FRAME_BYTES``) bytes: for every
buffered frame (every byte, length and receiver status), the checker gives exactly one verdict, and
it accepts a frame exactly when the protocol says it may be executed: the receiver found it whole,
its opcode is one the board executes, its length field is the number of payload bytes received,
and its payload has the opcode's layout (a RUN request's step counts walked to the payload's end).
A refused frame's status is the protocol's first failed check; an accepted one's opcode (and its
decoding), payload length, end and step count are the frame's.

The specification is written here from ``docs/link.md``; the buffer is the harness's: a free byte
at every address (those past the frame too, as stale bytes are), read through the cursor as
``HostLink`` moves it. With the receiver's proof (``frame-receiver-crc``: a frame is reported OK
only with the CRC's residue), this is "a frame whose integrity or length check fails is never
executed".

The executor: a refused request changes nothing and is answered NACK; an accepted WRITE, FILL or
RESET (the request as the checker leaves it) writes each of its words once, in order, to its
addresses, and is answered with the count: with the checker's proof, "a good frame is executed
exactly once".
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Mux, Signal

from spiketwin.boards import get_board
from spiketwin.config import Control, Region
from spiketwin.hw.link import Executor, RequestChecker
from spiketwin.hw.link.checker import EXECUTED, REQUEST
from spiketwin.link.protocol import (
    ADDR_BYTES,
    CRC_BYTES,
    FILL_BYTES,
    MAX_FRAME,
    PAYLOAD_AT,
    REPLY,
    STEPS_BYTES,
    Opcode,
    Status,
)
from spiketwin.models import model_names

from . import Checks, Job

COMPONENTS = {"request-checker": "exactly one verdict per frame, accepting exactly the frames the protocol "
                                 "executes (length field, opcode, layout), refusing with the first failed check",
              "executor": "a refused request drives nothing into the core and is answered NACK and its status; an "
                          "accepted WRITE/FILL/RESET writes each word once, in order; its streams hold until taken"}

FRAME_BYTES = 14          # the longest frame proved (a FILL, a RUN of 7 empty steps, a WRITE of 2 words)
LONG_FRAME_BYTES = 20     # and a second job (a RUN of 13 empty steps, a WRITE of 5 words; 32 bytes: minutes)


def walk_depth(frame_bytes: int) -> int:
    """Cycles for the checker's longest walk over a frame of ``frame_bytes``, and its verdict: a RUN
    of empty steps, five cycles each."""
    return 9 + 5 * (frame_bytes - PAYLOAD_AT - CRC_BYTES - STEPS_BYTES)


def spec(c: Checks, buf, length, status, frame_bytes: int):
    """(accepted, the status of a refusal, the step count) of a frame by ``docs/link.md``."""
    plen = Signal(range(MAX_FRAME + 1), name="spec_plen")
    c.m.d.comb += plen.eq(length - PAYLOAD_AT - CRC_BYTES)
    opcode = buf[0]
    known = Const(0, 1)
    for op in EXECUTED:
        known = known | (opcode == op)
    whole = length >= PAYLOAD_AT + CRC_BYTES
    length_ok = whole & (Cat(buf[2], buf[1]) == plen)
    steps = Cat(buf[PAYLOAD_AT + 1], buf[PAYLOAD_AT])
    # a RUN's walk: each step's count byte must lie inside the payload, the last step end at its end
    end = length - CRC_BYTES
    pos, inside, walked = Const(PAYLOAD_AT + STEPS_BYTES, 12), Const(1, 1), Const(0, 1)
    most = frame_bytes - PAYLOAD_AT - CRC_BYTES - STEPS_BYTES      # each step takes a byte at least
    bits = (len(buf) - 1).bit_length()
    for k in range(most + 1):
        walked = walked | ((steps == k) & inside & (pos == end))
        if k < most:
            count = Mux(pos < len(buf), Array(buf)[pos[:bits]], 0)
            inside = inside & (pos < end)
            nxt = Signal(12, name=f"spec_pos{k + 1}")        # a signal: each step's position is shared
            c.m.d.comb += nxt.eq(pos + 1 + 2 * count)
            pos = nxt
    layout = Mux(opcode == Opcode.IDENTIFY, plen == 0,
             Mux(opcode == Opcode.RESET, plen == 0,
             Mux(opcode == Opcode.WRITE, (plen >= ADDR_BYTES) & (plen[0] == 0),
             Mux(opcode == Opcode.READ, plen[:2] == 0,
             Mux(opcode == Opcode.ERRORS, plen == 1,
             Mux(opcode == Opcode.FILL, plen == FILL_BYTES,
                 (plen >= STEPS_BYTES) & walked))))))
    accepted = (status == Status.OK) & known & length_ok & layout
    refusal = Mux(status != Status.OK, status, Mux(known, Status.BAD_LENGTH, Status.UNKNOWN_OPCODE))
    return accepted, refusal, steps


def _cursor(m, cursor):
    """The frame buffer's pointer as ``HostLink`` moves it for ``cursor``."""
    ptr = Signal(range(MAX_FRAME + 1), name="ptr")
    with m.If(cursor.jump):
        m.d.sync += ptr.eq(cursor.target)
    with m.Elif(cursor.advance):
        m.d.sync += ptr.eq(ptr + 1)
    return ptr


def _byte_at(buf, ptr, past_end):
    """The buffer's byte at ``ptr`` (``past_end`` beyond it)."""
    return Mux(ptr < len(buf), Array(buf)[ptr[:(len(buf) - 1).bit_length()]], past_end)


def _free_around(c: Checks, exe) -> None:
    """Any behaviour of the executor's surroundings: the reply's consumer, the core's readiness,
    its read answers and its spike stream."""
    for name in ("reply", "cfg", "events"):
        c.m.d.comb += getattr(exe, name).ready.eq(c.free(1, f"{name}_ready"))
    c.m.d.comb += [exe.cfg.rvalid.eq(c.free(1, "cfg_rvalid")),
                   exe.cfg.rdata.eq(c.free(len(exe.cfg.rdata), "cfg_rdata")),
                   exe.spikes.valid.eq(c.free(1, "spikes_valid")),
                   exe.spikes.payload.as_value().eq(c.free(len(exe.spikes.payload.as_value()), "spikes_payload"))]


def _reply_counts(c: Checks, exe):
    """(a reply byte is taken now, reply bytes taken before, ``done`` pulses before)."""
    sent, dones = Signal(3, name="sent"), Signal(2, name="dones")
    taken = exe.reply.valid & exe.reply.ready
    with c.m.If(taken):
        c.m.d.sync += sent.eq(sent + 1)
    with c.m.If(exe.done):
        c.m.d.sync += dones.eq(dones + 1)
    return taken, sent, dones


def checker_harness(frame_bytes: int = FRAME_BYTES) -> Checks:
    c = Checks()
    m = c.m
    m.submodules.dut = chk = RequestChecker()
    buf = [c.constant(8, f"byte{i}") for i in range(frame_bytes + 2)]      # the frame and stale bytes
    length = c.constant(range(frame_bytes + 1), "frame_length")
    status = c.constant(3, "frame_status")
    c.assume(length <= frame_bytes, "the frame fits the proof's buffer")
    c.assume(status <= max(Status), "the receiver reports a status")
    c.assume(~((status == Status.OK) & (length < 1 + CRC_BYTES)), "the receiver reports OK only for 3 bytes or more")
    # the cursor as HostLink keeps it: at the opcode when the checker starts, then moved as it asks
    ptr = _cursor(m, chk.cursor)
    byte = _byte_at(buf, ptr, buf[-1])
    started = c.started()
    m.d.comb += [chk.start.eq(~started), chk.frame_length.eq(length), chk.frame_status.eq(status),
                 chk.cursor.byte.eq(byte), chk.cursor.ptr.eq(ptr)]

    accepted, refusal, steps = spec(c, buf, length, status, frame_bytes)
    depth = walk_depth(frame_bytes)
    verdicts, cycle = Signal(2, name="verdicts"), Signal(range(depth + 1), name="cycle")
    m.d.sync += cycle.eq(cycle + 1)
    with m.If(chk.done):
        m.d.sync += verdicts.eq(verdicts + 1)
    c.require(~chk.done | (verdicts == 0), "one verdict per frame")
    c.require((cycle < depth - 1) | (verdicts == 1) | chk.done, "a verdict within the checker's longest walk")
    c.require(~chk.done | (chk.ok == accepted), "accepted exactly when the protocol executes the frame")
    req = chk.request
    after = c.past(chk.done, "after_verdict")
    c.require(~after | chk.ok | (req.status == refusal), "a refusal names the first failed check")
    fields = ((req.opcode == buf[0]) & (req.op.as_value() == Cat(*(buf[0] == op for op in EXECUTED)))
              & (req.plen == length - PAYLOAD_AT - CRC_BYTES) & (req.end == length - CRC_BYTES))
    c.require(~after | ~c.past(chk.ok, "was_ok") | fields, "an accepted frame's opcode (and its decoding), payload "
                                                          "length and end are the frame's")
    c.require(~after | ~c.past(chk.ok, "was_ok_run") | ~req.op.run | (req.steps == steps),
              "an accepted RUN's step count is the frame's")
    c.cover(chk.done & chk.ok & (buf[0] == Opcode.RUN) & (steps == 2), "a RUN of two steps accepted")
    c.cover(chk.done & chk.ok & (buf[0] == Opcode.READ), "a READ accepted")
    c.cover(chk.done & ~chk.ok & (status == Status.OK) & (buf[0] == Opcode.READ) & (length == 9)
            & (Cat(buf[2], buf[1]) != 4), "a whole READ whose length field disagrees refused")
    c.cover(chk.done & ~chk.ok & (status == Status.OK) & (buf[0] == Opcode.RUN) & (length == frame_bytes),
            "a RUN whose walk fails refused")
    return c


def executor_refusal_harness(config) -> Checks:
    """The executor of a core, started once with a refused request (any request
    fields, any status) under any back-pressure and any core behaviour: it never drives the core,
    its reply is NACK and the request's status (the last), ``done`` follows it once, and nothing
    leaves afterwards."""
    c = Checks()
    m = c.m
    m.submodules.dut = exe = Executor(config)
    request = c.constant(REQUEST.as_shape().width, "request")
    byte = c.free(8, "cursor_byte")
    m.d.comb += [exe.start.eq(~c.started()), exe.ok.eq(0), exe.request.as_value().eq(request),
                 exe.cursor.byte.eq(byte)]
    _free_around(c, exe)
    c.require(~exe.cfg.valid & ~exe.events.valid, "a refused request drives nothing into the core")
    taken, sent, dones = _reply_counts(c, exe)
    status = exe.request.status
    c.require(~taken | (sent != 0) | ((exe.reply.payload.data == Opcode.NACK | REPLY) & ~exe.reply.payload.last),
              "the reply opens with NACK")
    c.require(~taken | (sent != 1) | ((exe.reply.payload.data == status) & exe.reply.payload.last),
              "then the request's status, the reply's last byte")
    c.require(~taken | (sent < 2), "nothing more is sent")
    c.require(~exe.done | ((sent == 2) & (dones == 0)), "done once, after the reply")
    c.cover(exe.done, "a refusal answered")
    return c


#: A frame buffer that holds every WRITE and FILL the executor can finish within ``EXECUTE_DEPTH``.
EXECUTE_BUFFER = 16
EXECUTE_DEPTH = 24        # cycles: a WRITE or FILL of 2 words done, without back-pressure


def executor_accept_harness(config) -> Checks:
    """The executor of a core, started once with an accepted WRITE, FILL or RESET
    (a request as the checker leaves it: any address, words, count, payload length of the
    opcode's layout) under any back-pressure: it writes the request's words to its addresses
    (``docs/link.md``: from the address on, wrapping at 2^32; an address beyond the core's goes to
    one the memory map does not have), each exactly once and in order, and nothing else; a RESET
    writes CLEAR_STATE to CONTROL once; the reply is the opcode, OK and, for WRITE and FILL, the
    count written; ``done`` follows it once. (That a request to the core is held until taken is
    ``executor_streams_harness``'s, in every state.)"""
    from .core import mapped

    c = Checks()
    m = c.m
    m.submodules.dut = exe = Executor(config)
    buf = [c.constant(8, f"byte{i}") for i in range(EXECUTE_BUFFER)]
    opcode, plen = buf[0], Cat(buf[2], buf[1])
    write, fill, reset = (opcode == Opcode.WRITE), (opcode == Opcode.FILL), (opcode == Opcode.RESET)
    c.assume(write | fill | reset, "a WRITE, FILL or RESET")
    c.assume(~write | ((plen >= ADDR_BYTES) & (plen[0] == 0) & (plen <= EXECUTE_BUFFER - PAYLOAD_AT - CRC_BYTES)),
             "a WRITE's payload: an address and whole words, in the buffer")
    c.assume(~fill | (plen == FILL_BYTES), "a FILL's payload: address, count, word")
    c.assume(~reset | (plen == 0), "a RESET has no payload")
    req = exe.request
    m.d.comb += [req.opcode.eq(opcode), req.status.eq(Status.OK), req.plen.eq(plen), req.end.eq(PAYLOAD_AT + plen),
                 req.steps.eq(c.free(8 * STEPS_BYTES, "steps")), req.last_step.eq(c.free(8 * STEPS_BYTES, "last"))]
    for op in EXECUTED:
        m.d.comb += getattr(req.op, op.name.lower()).eq(opcode == op)
    ptr = _cursor(m, exe.cursor)
    m.d.comb += [exe.start.eq(~c.started()), exe.ok.eq(1), exe.cursor.ptr.eq(ptr),
                 exe.cursor.byte.eq(_byte_at(buf, ptr, c.free(8, "stale_byte")))]
    _free_around(c, exe)

    # the request, by docs/link.md
    at = PAYLOAD_AT
    address = Cat(*reversed(buf[at:at + ADDR_BYTES]))
    words = [Cat(buf[i + 1], buf[i]) for i in range(at + ADDR_BYTES, EXECUTE_BUFFER - CRC_BYTES - 1, 2)]
    count = Cat(buf[at + ADDR_BYTES + 1], buf[at + ADDR_BYTES])
    fill_word = Cat(buf[at + ADDR_BYTES + 3], buf[at + ADDR_BYTES + 2])
    n_words = Mux(write, (plen - ADDR_BYTES) >> 1, Mux(fill, count, 1))

    cfg = exe.cfg
    taken = cfg.valid & cfg.ready
    done_writes = Signal(16, name="done_writes")
    with m.If(taken):
        m.d.sync += done_writes.eq(done_writes + 1)
    host = Signal(32, name="host_address")
    m.d.comb += host.eq(address + done_writes)
    fits = (host >> config.addr_bits) == 0
    word = Mux(write, Array(words)[done_writes[:4]], fill_word)
    to_address = Mux(fits, cfg.addr == host[:config.addr_bits], ~mapped(config, cfg.addr))
    c.require(~taken | cfg.write, "only writes")
    c.require(~taken | (done_writes < n_words), "no more writes than the request's words")
    c.require(~taken | reset | (to_address & (cfg.wdata == word)),
              "each write is the request's next word to its next address")
    c.require(~taken | ~reset | ((cfg.addr == config.address(Region.CONTROL)) & (cfg.wdata == Control.CLEAR_STATE)),
              "a RESET writes CLEAR_STATE to CONTROL")
    c.require(~exe.events.valid, "no events")

    byte_taken, sent, dones = _reply_counts(c, exe)
    reply = Array([opcode | REPLY, Status.OK, n_words[8:16], n_words[:8]])
    n_reply = Mux(reset, 2, 4)
    data, last = exe.reply.payload.data, exe.reply.payload.last
    c.require(~byte_taken | ((sent < n_reply) & (data == reply[sent[:2]]) & (last == (sent == n_reply - 1))),
              "the reply is the opcode, OK and the count written")
    c.require(~exe.done | ((sent == n_reply) & (dones == 0) & (done_writes == n_words)),
              "done once, after the reply, with every word written")
    c.cover(exe.done & write & (n_words == 2), "a WRITE of two words done")
    c.cover(exe.done & fill & (n_words == 2) & ~fits, "a FILL of two words past the core's addresses done")
    c.cover(exe.done & reset, "a RESET done")
    return c


def executor_streams_harness(config) -> Checks:
    """The executor of a core, in every state (k-induction), with any request (held, as the checker
    holds it), any payload bytes and any behaviour of the core and the reply's consumer: each of its
    three streams to the core and the host (configuration requests, events, reply bytes) holds valid
    and its payload until taken."""
    c = Checks()
    m = c.m
    m.submodules.dut = exe = Executor(config)
    m.d.comb += [exe.request.as_value().eq(c.constant(REQUEST.as_shape().width, "request")),
                 exe.ok.eq(c.constant(1, "ok")), exe.start.eq(c.free(1, "start")),
                 exe.cursor.byte.eq(c.free(8, "cursor_byte")), exe.cursor.ptr.eq(_cursor(m, exe.cursor))]
    _free_around(c, exe)
    cfg, ev, reply = exe.cfg, exe.events, exe.reply
    streams = {"configuration requests": (cfg, Cat(cfg.write, cfg.addr, cfg.wdata)),
               "events": (ev, ev.payload.as_value()), "reply bytes": (reply, reply.payload.as_value())}
    for name, (port, payload) in streams.items():
        tag = name.replace(" ", "_")
        waiting = c.past(port.valid & ~port.ready, f"{tag}_waiting")
        was = c.past(payload, f"{tag}_was")
        c.require(~(c.started() & waiting) | (port.valid & (payload == was)),
                  f"{name} hold valid and payload until taken")
        c.cover(waiting & port.valid, f"{name} held")
    return c


def jobs() -> list[Job]:
    out = [Job("request-checker", "request-checker", "bmc", walk_depth(FRAME_BYTES), checker_harness,
               f"frames of up to {FRAME_BYTES} bytes: one verdict, accepted exactly as the protocol says"),
           Job(f"request-checker-{LONG_FRAME_BYTES}", "request-checker", "bmc", walk_depth(LONG_FRAME_BYTES),
               lambda: checker_harness(LONG_FRAME_BYTES), f"frames of up to {LONG_FRAME_BYTES} bytes: the same")]
    for board in ("icebreaker", "ulx3s-85f"):
        for model in model_names():
            config = get_board(board).default_core_for(model)
            out.append(Job(f"executor-refusal-{model}-{board}", "executor", "bmc", 12,
                           lambda config=config: executor_refusal_harness(config),
                           "a refused request: nothing into the core, NACK and its status, done once"))
            out.append(Job(f"executor-streams-{model}-{board}", "executor", "prove", 10,
                           lambda config=config: executor_streams_harness(config),
                           "its streams to the core and the host hold valid and payload until taken (every state)"))
            out.append(Job(f"executor-writes-{model}-{board}", "executor", "bmc", EXECUTE_DEPTH,
                           lambda config=config: executor_accept_harness(config),
                           "an accepted WRITE, FILL or RESET: each word written once, in order; its reply; done once",
                           deep=(board, model) != ("icebreaker", "lif")))
    return out
