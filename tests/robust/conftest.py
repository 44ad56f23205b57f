import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # tiny_task is imported by the tests and by their subprocesses
    sys.path.insert(0, str(HERE))

import pytest


@pytest.fixture(autouse=True, scope="package")
def _cpu_only():
    """These tests compare runs bit for bit (resume, 1 vs 2 processes): all of them on the CPU, even on a GPU machine,
    where GPU kernels need not be deterministic and 2 processes cannot share one GPU under NCCL. Package scope, so
    that it is in force before the module-scoped fixtures that train."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELNET_DEVICE", "cpu")
        yield
