import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # tiny_task is imported by the tests and by their subprocesses
    sys.path.insert(0, str(HERE))
