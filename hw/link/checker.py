"""The request checker (``docs/link.md``): a buffered frame's status, opcode, length field and
payload length, and a RUN request's step counts, checked before anything is executed."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spiketwin.link.protocol import (
    ADDR_BYTES,
    AXON_BYTES,
    COUNT_BYTES,
    CRC_BYTES,
    FILL_BYTES,
    LENGTH_BYTES,
    MAX_FRAME,
    PAYLOAD_AT,
    STEPS_BYTES,
    Opcode,
    Status,
)

__all__ = ["RequestChecker", "CursorSignature", "REQUEST", "EXECUTED"]

#: The opcodes executed after the check, each decoded once into a flip-flop (``REQUEST.op``).
EXECUTED = (Opcode.IDENTIFY, Opcode.RESET, Opcode.WRITE, Opcode.READ, Opcode.ERRORS, Opcode.RUN, Opcode.FILL)

#: What the checker found in a request, held from its check until the next: the opcode (any byte,
#: answered as UNKNOWN_OPCODE when it is none of :class:`Opcode`), one bit per executed opcode, the
#: frame's status (or why the request is refused), the index of the first CRC byte (``end``), the
#: payload's length, and a RUN request's step count (and that count less one).
REQUEST = data.StructLayout({
    "opcode": Opcode, "op": data.StructLayout({op.name.lower(): 1 for op in EXECUTED}), "status": Status,
    "end": range(MAX_FRAME + 1), "plen": range(MAX_FRAME + 1),
    "steps": 8 * STEPS_BYTES, "last_step": 8 * STEPS_BYTES,
})


class CursorSignature(wiring.Signature):
    """A reader of the frame buffer through the link's one pointer: ``byte`` is always the byte at
    ``ptr``; the pointer moves to ``target`` (``jump``) or one on (``advance``) for the next cycle."""

    def __init__(self):
        super().__init__({"advance": Out(1), "jump": Out(1), "target": Out(range(MAX_FRAME + 1)),
                          "byte": In(8), "ptr": In(range(MAX_FRAME + 1))})


class RequestChecker(wiring.Component):
    """Checks the buffered request: ``start`` (the receiver's ``done``, with the cursor at the
    opcode) begins, ``done`` pulses with ``ok`` once the request may be executed or must be refused
    (``request.status`` says why), with ``request`` registered.

    The length field must be the number of payload bytes received (a frame too short to hold one
    is refused). A RUN request's steps are walked from count to count, each count's step ending inside the
    payload and the last one exactly at its end; every comparison of the walk is registered in the
    state before the one that decides on it.

    Members
    -------
    start : In(1)
    frame_length : In(range(MAX_FRAME + 1))
    frame_status : In(Status)
        The receiver's report of the frame (bytes stored, CRC included; its status).
    cursor : Out(CursorSignature)
    done, ok : Out(1)
    request : Out(REQUEST)
    """

    start: In(1)
    frame_length: In(range(MAX_FRAME + 1))
    frame_status: In(Status)
    cursor: Out(CursorSignature())
    done: Out(1)
    ok: Out(1)
    request: Out(REQUEST)

    def elaborate(self, platform):
        m = Module()
        req, cur = self.request, self.cursor
        rec = Signal(8 * max(STEPS_BYTES, LENGTH_BYTES))
        nlen = Signal(range(LENGTH_BYTES + 1))
        short, len_bad = Signal(), Signal()
        nrec = Signal(range(STEPS_BYTES + 1))
        k = Signal(8 * STEPS_BYTES)                                   # steps walked
        all_steps, at_end, past_end = Signal(), Signal(), Signal()   # the walk's registered comparisons
        step_end = Signal(range(2 * MAX_FRAME + 2))                   # where the step being checked ends

        def finish(ok):
            m.d.comb += [self.done.eq(1), self.ok.eq(ok)]
            m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "CHECK"
            with m.State("CHECK"):                   # byte = opcode
                m.d.sync += [req.opcode.eq(cur.byte), req.end.eq(self.frame_length - CRC_BYTES),
                             req.plen.eq(self.frame_length - PAYLOAD_AT - CRC_BYTES),
                             short.eq(self.frame_length < PAYLOAD_AT + CRC_BYTES),
                             req.status.eq(self.frame_status), nlen.eq(LENGTH_BYTES)]
                m.d.sync += [getattr(req.op, op.name.lower()).eq(cur.byte == op) for op in EXECUTED]
                m.d.comb += cur.advance.eq(1)
                m.next = "CHECK_OP"
                with m.If(self.frame_status != Status.OK):
                    finish(0)
            with m.State("CHECK_OP"):
                m.d.sync += req.status.eq(Status.BAD_LENGTH)
                with m.If(req.op.as_value() == 0):
                    m.d.sync += req.status.eq(Status.UNKNOWN_OPCODE)
                    finish(0)
                with m.Else():
                    m.next = "LENGTH"
            with m.State("LENGTH"):                  # byte = the length field's, high byte first
                m.d.comb += cur.advance.eq(1)
                m.d.sync += [rec.eq(Cat(cur.byte, rec)), nlen.eq(nlen - 1)]
                with m.If(nlen == 1):
                    m.next = "LENGTH_CMP"
            with m.State("LENGTH_CMP"):
                m.d.sync += len_bad.eq(self._length_disagrees(short, rec[:8 * LENGTH_BYTES], req.plen))
                m.next = "CHECK_PAYLOAD"
            with m.State("CHECK_PAYLOAD"):           # the cursor is at the payload
                with m.If(len_bad):
                    finish(0)
                with m.Else():
                    self._check_payload(m, req, finish, nrec)
            with m.State("RUN_STEPS"):
                m.d.comb += cur.advance.eq(1)
                m.d.sync += [rec.eq(Cat(cur.byte, rec)), nrec.eq(nrec - 1), k.eq(0)]
                with m.If(nrec == 1):
                    m.next = "WALK_PRE"
            with m.State("WALK_PRE"):
                m.d.sync += [all_steps.eq(k == rec), at_end.eq(cur.ptr == req.end), past_end.eq(cur.ptr >= req.end)]
                m.next = "WALK"
            with m.State("WALK"):                    # byte = count of the step at ptr
                with m.If(all_steps):
                    finish(at_end)
                    with m.If(at_end):
                        m.d.sync += [req.steps.eq(rec), req.last_step.eq(rec - 1)]
                with m.Elif(past_end):
                    finish(0)
                with m.Else():
                    m.d.sync += [step_end.eq(cur.ptr + COUNT_BYTES + cur.byte * AXON_BYTES), k.eq(k + 1)]
                    m.next = "WALK_CMP"
            with m.State("WALK_CMP"):
                m.d.sync += past_end.eq(step_end > req.end)
                m.next = "WALK_NEXT"
            with m.State("WALK_NEXT"):                # jump to the next step's count, if it is inside
                m.d.comb += [cur.jump.eq(1), cur.target.eq(step_end)]
                m.next = "WALK_PRE"
                with m.If(past_end):                  # (where the pointer then points is not used)
                    finish(0)
        return m

    @staticmethod
    def _length_disagrees(short, field, plen):
        """The frame is too short to hold a length field, or the field is not the payload's size."""
        return short | (field != plen)

    @staticmethod
    def _check_payload(m, req, finish, nrec):
        """The payload's size for its opcode (for RUN, its step count is read next)."""
        op = req.op
        with m.If(op.identify | op.reset):
            finish(req.plen == 0)
        with m.Elif(op.write):                       # an address, then whole words
            finish((req.plen >= ADDR_BYTES) & (req.plen[0] == 0))
        with m.Elif(op.read):                        # whole addresses
            finish(req.plen[:2] == 0)
        with m.Elif(op.errors):
            finish(req.plen == 1)
        with m.Elif(op.fill):
            finish(req.plen == FILL_BYTES)
        with m.Elif(req.plen >= STEPS_BYTES):        # RUN
            m.d.sync += nrec.eq(STEPS_BYTES)
            m.next = "RUN_STEPS"
        with m.Else():
            finish(0)
