"""The board side of the UART host link (``docs/link.md``): UART, framing, and the request checker
and executor that drive the core's ports; :class:`LinkedCore` is a core behind its link."""

from .checker import REQUEST, CursorSignature, RequestChecker
from .executor import Executor
from .host_link import HostLink, LinkedCore
from .slip import FrameReceiver, SlipEncoder
from .uart import UARTRx, UARTTx

__all__ = ["UARTRx", "UARTTx", "FrameReceiver", "SlipEncoder", "RequestChecker", "Executor", "CursorSignature",
           "REQUEST", "HostLink", "LinkedCore"]
