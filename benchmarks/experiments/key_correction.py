"""Would a per-key correction learned from end-to-end networks rank networks better than the
table alone? An offline check on the ort-1t outputs of ``lut_fidelity``.

Model: ``t(net) = s * sum_k n_k L_k + c + sum_k n_k L_k d_k``, with ``L_k`` the table's latency of
key ``k``, ``n_k`` its count in the network, ``s, c`` fitted first by least squares and the
per-key corrections ``d_k`` by ridge regression (penalty ``lambda * sum_k (sum_net n_k L_k)^2
d_k^2``). For each training size and penalty, ``--splits`` random splits of the validation's 100
networks: fitted on the training part, Kendall's tau on the rest, against the table's own sums.
The networks' latencies are the validation's (two groups of fresh processes), so this asks what
timing that many extra networks in a build would buy, before building it.

    python -m benchmarks.experiments.key_correction   -> results/key_correction.json (seconds)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from benchmarks.experiments import common
from hwnas.arch.spec import ArchSpec
from hwnas.cost.lutbuild import key_contributions
from hwnas.io import atomic_write_json


def fit_predict(train: np.ndarray, measured: np.ndarray, test: np.ndarray, penalty: float
                ) -> np.ndarray:
    totals = train.sum(1)
    (scale, offset), *_ = np.linalg.lstsq(np.c_[totals, np.ones(len(totals))], measured,
                                          rcond=None)
    residual = measured - (scale * totals + offset)
    weights = penalty * np.maximum((train ** 2).sum(0), 1e-9)
    corrections = np.linalg.solve(train.T @ train + np.diag(weights), train.T @ residual)
    return scale * test.sum(1) + offset + test @ corrections


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_fidelity_inputs(parser)
    parser.add_argument("--splits", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    rows, table = common.read_fidelity_inputs(parser, arguments)
    keys = sorted(table.entries, key=lambda key: key.id)
    matrix = key_contributions(table, keys, [ArchSpec.from_string(row["arch"]) for row in rows])
    measured = np.array([row["measured_ms"] for row in rows])
    rng = np.random.default_rng(arguments.seed)
    results = []
    for size in (30, 60, 80):
        for penalty in (0.1, 1.0, 10.0):
            corrected, plain = [], []
            for _ in range(arguments.splits):
                order = rng.permutation(len(rows))
                train, test = order[:size], order[size:]
                predicted = fit_predict(matrix[train], measured[train], matrix[test], penalty)
                corrected.append(kendalltau(predicted, measured[test])[0])
                plain.append(kendalltau(matrix[test].sum(1), measured[test])[0])
            results.append({"train_networks": size, "penalty": penalty,
                            "kendall_corrected": float(np.mean(corrected)),
                            "kendall_table": float(np.mean(plain))})
            print(f"train {size}, penalty {penalty}: Kendall {np.mean(corrected):.3f} with the "
                  f"correction, {np.mean(plain):.3f} with the table")
    output = {"results": results, "splits": arguments.splits, "seed": arguments.seed,
              "validation": str(arguments.validation), "lut": str(arguments.lut)}
    atomic_write_json(arguments.out / "key_correction.json", output)
    return output


if __name__ == "__main__":
    main()
