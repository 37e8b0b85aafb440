"""Suite-wide settings: one torch thread; the ``hog`` fixture.

On a 2-core machine torch's default thread pool fights any other process (measured here: a
CIFAR-size forward pass 20x slower with 2 threads under load), and one thread makes the
suite's run time predictable.
"""

import subprocess
import sys
import time

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def hog():
    """A process spinning on one core for the length of a test (interference tests)."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    yield process
    process.kill()
    process.wait()
