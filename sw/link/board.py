"""The board's twin on the link: :class:`BoardModel` answers the bytes a board receives as the
gateware does (its core a :class:`~spiketwin.twin.CoreModel`), :class:`ModelPort` puts it behind
the port interface of :class:`~spiketwin.link.client.Link`."""

from __future__ import annotations

import struct

import numpy as np

from ..config import Control, CoreConfig, Region
from ..twin import CoreModel, Network
from .protocol import (
    ADDR_BYTES,
    MAX_FRAME,
    PAYLOAD_AT,
    STEP_END,
    WORD_BYTES,
    FrameDecoder,
    Opcode,
    Status,
    identify_payload,
    length_ok,
    payload_ok,
    reply_frame,
    run_sequences,
)

__all__ = ["BoardModel", "ModelPort"]


class BoardModel:
    """The twin of a board: the bytes it answers to the bytes it receives, its core a
    :class:`~spiketwin.twin.CoreModel`. The gateware's link is tested byte for byte against it."""

    def __init__(self, config: CoreConfig, network: Network | None = None):
        self.core = CoreModel(config, network)
        self._decoder = FrameDecoder(MAX_FRAME)

    def receive(self, data: bytes) -> bytes:
        out = bytearray()
        for content, status in self._decoder.feed(data):
            out += self._execute(content, status)
        return bytes(out)

    def _execute(self, content: bytes, status: Status) -> bytes:
        if status != Status.OK:
            return reply_frame(Opcode.NACK, status)
        opcode, payload = content[0], content[PAYLOAD_AT:]
        if opcode not in {int(o) for o in Opcode} or opcode == Opcode.NACK:
            return reply_frame(Opcode.NACK, Status.UNKNOWN_OPCODE)
        if not length_ok(content) or not payload_ok(opcode, payload):
            return reply_frame(Opcode.NACK, Status.BAD_LENGTH)
        c, core = self.core.config, self.core
        if opcode == Opcode.IDENTIFY:
            body = identify_payload(c)
        elif opcode == Opcode.WRITE:
            (base,), words = struct.unpack(">I", payload[:ADDR_BYTES]), payload[ADDR_BYTES:]
            for i, (word,) in enumerate(struct.iter_unpack(">H", words)):
                core.write((base + i) % (1 << 8 * ADDR_BYTES), word)    # the address wraps at 32 bits
            body = struct.pack(">H", len(words) // WORD_BYTES)
        elif opcode == Opcode.FILL:
            base, count, word = struct.unpack(">IHH", payload)
            for i in range(count):
                core.write((base + i) % (1 << 8 * ADDR_BYTES), word)
            body = struct.pack(">H", count)
        elif opcode == Opcode.READ:
            body = b"".join(struct.pack(">H", core.read(a)) for (a,) in struct.iter_unpack(">I", payload))
        elif opcode == Opcode.RESET:
            core.write(c.address(Region.CONTROL), Control.CLEAR_STATE)
            body = b""
        elif opcode == Opcode.RUN:
            body = bytearray()
            spikes = core.run(run_sequences(payload))
            for row in spikes:
                body += b"".join(struct.pack(">H", j) for j in np.flatnonzero(row))
                body += struct.pack(">H", STEP_END)
            body = bytes(body)
        else:  # ERRORS
            body = bytes([int(core.errors)])
            if payload[0] & 1:
                core.write(c.address(Region.CONTROL), Control.CLEAR_ERRORS)
        return reply_frame(opcode, Status.OK, body)



class ModelPort:
    """A :class:`BoardModel` behind the port interface :class:`Link` uses (for tests and dry runs)."""

    def __init__(self, board: BoardModel):
        self.board = board
        self._out = bytearray()

    def write(self, data: bytes) -> int:
        self._out += self.board.receive(bytes(data))
        return len(data)

    def read(self, n: int = 1) -> bytes:
        data, self._out = bytes(self._out[:n]), self._out[n:]
        return data

    def reset_input_buffer(self) -> None:
        self._out.clear()

