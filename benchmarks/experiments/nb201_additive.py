"""How additive is each device? An additive per-(edge, operation) latency model of NAS-Bench-201
cells (:class:`hwnas.cost.nb201_additive.NB201AdditiveLatency`, FBNet's Eq. 5 over the cell's
edges) fitted from ``rows`` uniformly drawn cells of each device column of
``nb201_latency.csv.gz``, and scored on every other cell: within +-10 %, within +-5 %, MAPE and
Kendall's tau, per draw of the fitted cells (``seeds`` draws per size) and their median.

    python -m benchmarks.experiments.nb201_additive            # seconds
    python -m benchmarks.experiments.nb201_additive --quick    # smoke run
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.experiments import common
from hwnas import settings
from hwnas.cost.nb201_additive import NB201AdditiveLatency
from hwnas.data.tables import nb201_latency_columns
from hwnas.errors import HwnasError
from hwnas.settings import check

NAME = "nb201_additive"
METRICS = ("within_10pct", "within_5pct", "mape", "kendall")


@dataclass(frozen=True, kw_only=True)
class AdditiveConfig:
    """The ``benchmark`` section of ``configs/benchmarks/nb201_additive.yaml``."""

    rows: tuple[int, ...] = common.required("Numbers of cells each model is fitted from.")
    seeds: int = common.required("Draws of the fitted cells per number.", minimum=1)
    columns: tuple[str, ...] = common.required(
        "Latency columns of nb201_latency.csv.gz (empty: every one).")

    def __post_init__(self) -> None:
        check(self)
        unknown = [name for name in self.columns if name not in nb201_latency_columns()]
        if unknown:
            raise HwnasError(f"unknown latency column {unknown[0]!r} (known: "
                             f"{', '.join(nb201_latency_columns())})")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__.split("\n\n")[0], NAME)
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    own = common.load_preset(NAME, {"benchmark": AdditiveConfig}, quick=arguments.quick,
                             path=arguments.config)[0]["benchmark"]
    results: dict[str, Any] = {}
    for column in own.columns or nb201_latency_columns():
        results[column] = {}
        for rows in own.rows:
            draws = [NB201AdditiveLatency.from_column(column, rows, seed=seed).fidelity_on_rest()
                     for seed in range(own.seeds)]
            median = {name: float(np.median([draw[name] for draw in draws])) for name in METRICS}
            results[column][str(rows)] = {"median": median, "draws": draws}
            print(f"{column}, {rows} cells: within 10 % {median['within_10pct']:.1f} %, MAPE "
                  f"{median['mape']:.2f} %, Kendall {median['kendall']:.3f}", flush=True)
    output = {"settings": settings.to_dict(own), "columns": results}
    return common.write_output(arguments.out, NAME, arguments.quick, output, started)


if __name__ == "__main__":
    main()
