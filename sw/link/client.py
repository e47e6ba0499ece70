"""The host side of the link: :class:`Link` over a pyserial port (or a :class:`~spiketwin.link.board.ModelPort`),
and :func:`open_link`."""

from __future__ import annotations

import struct
import time

import numpy as np
import serial
from tqdm import tqdm

from ..config import CoreConfig
from ..host import decode_state, network_writes, state_read_addresses
from ..twin import Network
from .protocol import (
    ADDR_BYTES,
    CRC_BYTES,
    DEFAULT_BAUD,
    MAX_FRAME,
    NEURON_BYTES,
    PAYLOAD_AT,
    REPLY,
    STEP_END,
    STEPS_BYTES,
    VERSION,
    WORD_BYTES,
    FrameDecoder,
    LinkError,
    Opcode,
    Status,
    parse_identify,
    request,
    run_payloads,
    sealed_by_protocol_1,
    write_requests,
)

__all__ = ["Link", "open_link"]


class Link:
    """The host side of the link, over anything with ``write(bytes)`` and ``read(n)``: a pyserial
    port (``serial.serial_for_url("/dev/ttyUSB1")`` or ``"socket://127.0.0.1:5555"``) or a model.

    Input left over from an earlier exchange (a late reply, line noise) is dropped before each
    request, and every reply is checked for its opcode, status and the size its request implies."""

    def __init__(self, port, max_frame: int = MAX_FRAME):
        self.port = port
        self.max_frame = max_frame
        self._decoder = FrameDecoder()

    def _drop_stale_input(self) -> None:
        self._decoder = FrameDecoder()
        if hasattr(self.port, "reset_input_buffer"):
            self.port.reset_input_buffer()

    def _transact(self, opcode: Opcode, payload: bytes = b"") -> bytes:
        self._drop_stale_input()
        try:
            self.port.write(request(opcode, payload))
            frames = []
            while not frames:
                data = self.port.read(1)
                if not data:
                    raise LinkError(f"no reply to {opcode.name} (timeout): is the board running this bitstream "
                                    f"at this baud rate?")
                frames = list(self._decoder.feed(data))
        except serial.SerialException as e:
            raise LinkError(f"the link to the board failed during {opcode.name}: {e}") from None
        content, status = frames[0]
        if status == Status.BAD_CRC and sealed_by_protocol_1(self._decoder.last_refused):
            raise LinkError(f"the board speaks link protocol 1 (its replies carry CRC-16/CCITT-FALSE), this host "
                            f"{'.'.join(map(str, VERSION))}: rebuild its bitstream with this spiketwin")
        if status != Status.OK:
            raise LinkError(f"corrupt reply to {opcode.name}: {status.name}")
        if content[0] == Opcode.NACK | REPLY:
            raise LinkError(f"the board refused {opcode.name}: {Status(content[1]).name}")
        if len(content) < 2 or content[0] != opcode | REPLY or content[1] != Status.OK:
            raise LinkError(f"unexpected reply to {opcode.name}: {content[:2].hex()}")
        return content[2:]

    def _reply_of(self, opcode: Opcode, payload: bytes, size: int, what: str) -> bytes:
        body = self._transact(opcode, payload)
        if len(body) != size:
            raise LinkError(f"the board answered {opcode.name} with {len(body)} bytes, not the {size} of {what}")
        return body

    def identify(self) -> dict:
        return parse_identify(self._transact(Opcode.IDENTIFY))

    def check(self, config: CoreConfig) -> dict:
        """Identify the board and refuse one that speaks another protocol version or whose core is
        not ``config``."""
        ident = self._transact(Opcode.IDENTIFY)
        if len(ident) >= 2 and tuple(ident[:2]) != VERSION:
            raise LinkError(f"the board speaks link protocol {ident[0]}.{ident[1]}, this host "
                            f"{'.'.join(map(str, VERSION))}: rebuild the bitstream with this spiketwin")
        ident = parse_identify(ident)
        if ident["config_hash"] != config.config_hash():
            raise LinkError(f"the board's core ({ident['n_axons']} axons, {ident['n_neurons']} neurons, hash "
                            f"{ident['config_hash']}) is not the expected one (hash {config.config_hash()})")
        return ident

    def write(self, pairs, bar=None) -> None:
        """Write (address, word) pairs, in the fewest WRITE and FILL requests (``write_requests``);
        ``bar`` (a tqdm bar) advances by the words of each."""
        for opcode, payload, n in write_requests(pairs, self.max_frame):
            (took,) = struct.unpack(">H", self._reply_of(opcode, payload, WORD_BYTES, "a count"))
            if took != n:
                raise LinkError(f"the board took {took} of {n} writes")
            if bar is not None:
                bar.update(n)

    def read(self, addresses) -> list[int]:
        per = (self.max_frame - PAYLOAD_AT - CRC_BYTES) // ADDR_BYTES
        addresses, words = list(addresses), []
        for i in range(0, len(addresses), per):
            chunk = addresses[i:i + per]
            body = self._reply_of(Opcode.READ, b"".join(struct.pack(">I", a) for a in chunk),
                                  WORD_BYTES * len(chunk), f"{len(chunk)} words")
            words += [w for (w,) in struct.iter_unpack(">H", body)]
        return words

    def load(self, net: Network, progress: bool = False) -> None:
        """Write every weight, parameter and table entry of ``net`` (with a progress bar)."""
        pairs = network_writes(net)
        with tqdm(total=len(pairs), desc="loading", unit="word", disable=not progress) as bar:
            self.write(pairs, bar)

    def reset(self) -> None:
        self._reply_of(Opcode.RESET, b"", 0, "nothing")

    def run(self, sequences, n_neurons: int) -> np.ndarray:
        """Run one step per entry of ``sequences`` (axon indices); spikes [steps, n_neurons]."""
        rows = []
        for payload in run_payloads(sequences, self.max_frame):
            body = self._transact(Opcode.RUN, payload)
            if len(body) % NEURON_BYTES:
                raise LinkError(f"the board answered RUN with {len(body)} bytes, not whole neuron indices")
            words = [w for (w,) in struct.iter_unpack(">H", body)]
            steps = struct.unpack(">H", payload[:STEPS_BYTES])[0]
            if words.count(STEP_END) != steps or (words and words[-1] != STEP_END):
                raise LinkError(f"the board answered a RUN of {steps} steps with {words.count(STEP_END)}")
            row = []
            for w in words:
                if w == STEP_END:
                    rows.append(row)
                    row = []
                elif w >= n_neurons:
                    raise LinkError(f"the board reported a spike of neuron {w}, which it does not have")
                else:
                    row.append(w)
        spikes = np.zeros((len(rows), n_neurons), bool)
        for t, row in enumerate(rows):
            spikes[t, row] = True
        return spikes

    def errors(self, clear: bool = False) -> int:
        return self._reply_of(Opcode.ERRORS, bytes([int(clear)]), 1, "the flags")[0]

    def read_state(self, config: CoreConfig):
        return decode_state(config, self.read(state_read_addresses(config)))



def open_link(url: str, baud: int = DEFAULT_BAUD, timeout: float = 30.0, connect_timeout: float = 10.0,
              log=None) -> Link:
    """A :class:`Link` on a serial port (``/dev/ttyUSB1``) or a simulated board
    (``socket://127.0.0.1:5555``), retrying the connection for ``connect_timeout`` seconds (a board
    still starting, a cable just plugged in); ``log`` hears once that it waits."""
    deadline = time.monotonic() + connect_timeout
    told = False
    while True:
        try:
            return Link(serial.serial_for_url(url, baudrate=baud, timeout=timeout))
        except (serial.SerialException, ValueError, OSError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, ValueError) or time.monotonic() >= deadline:
                raise LinkError(f"cannot open {url} (tried for {connect_timeout:g} s): {reason}") from None
            if log is not None and not told:
                log(f"waiting for a board at {url} ...")
                told = True
            time.sleep(0.25)

