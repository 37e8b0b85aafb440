"""Fixtures for the DNAS tests (helpers live in ``dnas_helpers.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .dnas_helpers import TableCost, tiny_space
from hwnas.spaces.fbnet import LayerwiseSpace


@pytest.fixture
def space() -> LayerwiseSpace:
    return tiny_space()


@pytest.fixture
def cheap_last_cost(space: LayerwiseSpace) -> TableCost:
    """Candidates cost 4, 6, 5 ms per layer except the last one (skip), which costs 0.1 ms."""
    row = [4.0, 6.0, 5.0, 0.1]
    return TableCost(space, np.array([row] * space.num_layers))


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: stable timings on a shared machine and bitwise-repeatable runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
