import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # tiny_task is imported by the tests and by their subprocesses
    sys.path.insert(0, str(HERE))


@pytest.fixture(autouse=True, scope="module")
def _cpu_only():
    """These tests compare runs bit for bit (resume, 1 vs 2 processes): all of them on the CPU, even on a GPU machine,
    where GPU kernels need not be deterministic and 2 processes cannot share one GPU under NCCL. Module scope: an
    autouse fixture comes before the module's other module-scoped fixtures (which train), and it ends with the
    module, so it never leaks into other folders' tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELNET_DEVICE", "cpu")
        yield
