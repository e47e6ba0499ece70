"""The UART host link, one module per concept (``docs/link.md``):

- :mod:`~spiketwin.link.protocol`: opcodes, statuses, CRC, SLIP, payload layouts, IDENTIFY; pure, so
  the gateware, the proofs and the simulators import it without pyserial or the twin;
- :mod:`~spiketwin.link.board`: :class:`BoardModel`, the board's twin on the link, and :class:`ModelPort`;
- :mod:`~spiketwin.link.client`: :class:`Link` and :func:`open_link`, the host over pyserial;
- :mod:`~spiketwin.link.compare`: :func:`run_on_board`, a board against the twin.

``from spiketwin.link import Link`` (any of their public names) still works: a name is looked up in
its module when first asked for, so importing the protocol never imports the client.
"""

import importlib

_HOMES = {"board": ("BoardModel", "ModelPort"), "client": ("Link", "open_link"), "compare": ("run_on_board",)}


def __getattr__(name: str):
    for module, names in _HOMES.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    protocol = importlib.import_module(f"{__name__}.protocol")
    if name in protocol.__all__ or name.isupper():
        return getattr(protocol, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
