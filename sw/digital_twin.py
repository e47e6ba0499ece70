"""The tutorial's name for :mod:`spiketwin.mismatch`: ``from spiketwin.digital_twin import
FPGAMismatchModel`` keeps working, and this module *is* the mismatch module."""

import sys

from . import mismatch

sys.modules[__name__] = mismatch
