import os
import signal
import tempfile

import pytest
from hypothesis import settings

# numba keys a cached kernel by its own file only, not by the files of the functions it inlines
# (sw/models/kernel.py): the tests compile the fast path afresh, into a cache of their own, so
# they never run a kernel cached from older source.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="spiketwin-numba-")

from spiketwin.tools import use_project_tools

use_project_tools()
# The Ctrl-C tests send SIGINT to the commands they start, as a terminal would. A suite started as
# a background job of a non-interactive shell inherits SIGINT ignored, and so would every command
# it starts (Python keeps an ignored SIGINT ignored): handle it here, so children start with the
# default, as from a terminal.
signal.signal(signal.SIGINT, signal.default_int_handler)
# Simulators share the two cores with the property tests; wall-clock deadlines would only add flakes.
settings.register_profile("spiketwin", deadline=None, print_blob=True)
settings.load_profile("spiketwin")


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Build the core and harness once per (configuration, simulator) and session."""
    from spiketwin.sim.cosim import build

    cache = {}

    def get(config, sim):
        if (config, sim) not in cache:
            cache[config, sim] = build(config, sim, tmp_path_factory.mktemp(f"{sim}-build"))
        return cache[config, sim]

    return get


def pytest_collection_modifyitems(config, items):
    """Formal proofs marked ``deep`` (minutes of solver time each) run only when asked for with a
    marker expression naming them (``pytest -m deep``); ``bench/formal.py`` runs them too."""
    if "deep" in (config.option.markexpr or ""):
        return
    deep = [item for item in items if item.get_closest_marker("deep")]
    if deep:
        config.hook.pytest_deselected(items=deep)
        items[:] = [item for item in items if not item.get_closest_marker("deep")]
