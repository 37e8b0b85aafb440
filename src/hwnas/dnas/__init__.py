"""FBNet differentiable architecture search: supernet, loss, temperature, search loop, results."""

from hwnas.dnas.loss import expected_cost, search_loss
from hwnas.dnas.result import DerivedArchitecture, SearchResult, derive_argmax, derive_samples
from hwnas.dnas.search import SearchProgress, run_dnas
from hwnas.dnas.supernet import SuperNet, gumbel_softmax_sample
from hwnas.dnas.temperature import temperature_at

__all__ = [
    "DerivedArchitecture",
    "SearchProgress",
    "SearchResult",
    "SuperNet",
    "derive_argmax",
    "derive_samples",
    "expected_cost",
    "gumbel_softmax_sample",
    "run_dnas",
    "search_loss",
    "temperature_at",
]
