"""``report.md`` and ``accuracy_latency.png`` of an NB201 demo run (:mod:`hwnas.nb201_demo`),
built from the run's files only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.io import atomic_write_text, read_json
from hwnas.report.demo_report import latency_section

MARKERS = {"best feasible": ("*", 140), "chamnet": ("o", 60), "dnas": ("^", 60)}


def accuracy_latency_plot(cells: dict[str, Any], rows: list[dict[str, Any]],
                          path: Path) -> Path:
    """Every cell's true accuracy against this CPU's predicted latency, the budgets as
    vertical lines, each budget's answers marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency, accuracy = np.asarray(cells["latency_ms"]), np.asarray(cells["accuracy"])
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.scatter(latency, accuracy, s=3, c="0.75", label="all 15,625 cells", rasterized=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for position, row in enumerate(rows):
        colour = colours[position % len(colours)]
        axes.axvline(row["latency_ms"], color=colour, linestyle="--", linewidth=1)
        for who, answer in row["answers"].items():
            marker, size = MARKERS[who]
            axes.scatter(answer["predicted_ms"], answer["accuracy"], marker=marker, s=size,
                         color=colour, edgecolors="black", linewidths=0.5, zorder=3,
                         label=f"p{row['percentile']:g} {who}")
    axes.set_xlabel(f"predicted latency on {cells['cost_name']}, ms")
    axes.set_ylabel(f"NAS-Bench-201 {cells['accuracy_column']}, %")
    found = [answer["accuracy"] for row in rows for answer in row["answers"].values()]
    lowest = min(float(np.percentile(accuracy, 5)) - 5, min(found) - 2)  # every answer shown
    axes.set_ylim(max(0.0, lowest), float(accuracy.max()) + 1)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _table_section(table: dict[str, Any], cells: dict[str, Any],
                   rows: list[dict[str, Any]]) -> list[str]:
    latency = np.asarray(cells["latency_ms"])
    correction = table.get("correction") or {}
    lines = [
        "## This CPU's table of every cell",
        "",
        f"`lut.json` holds {len(table['entries'])} parts (each edge operation alone, the "
        "node additions, stem, reductions, head); its per-key correction from "
        f"{correction.get('networks', 0)} networks timed whole has a leave-one-out MAPE of "
        f"{correction.get('loo_mape_pct', float('nan')):.1f} % (without it "
        f"{correction.get('uncorrected_mape_pct', float('nan')):.1f} %). Its prediction of the "
        f"15,625 cells' networks: {latency.min():.3f} to {latency.max():.3f} ms, median "
        f"{np.median(latency):.3f} ms.",
        "",
        "| budget | latency | cells within it |",
        "|---|---|---|",
    ]
    lines += [f"| p{row['percentile']:g} | {row['latency_ms']:.3f} ms | {row['feasible_cells']:,} |"
              for row in rows]
    return lines + ["", "![accuracy vs latency](accuracy_latency.png)", ""]


def _answers_section(rows: list[dict[str, Any]], measured: dict[str, dict[str, Any]],
                     config: dict[str, Any], cells: dict[str, Any]) -> list[str]:
    chamnet, own = config["chamnet"], config["demo"]
    supernet, dnas = config["supernet"], config["dnas"]
    lines = [
        "## Answers per budget",
        "",
        f"Judged by NB201's `{cells['accuracy_column']}` (the cell trained 200 epochs); regret = "
        "the best cell within the budget by the table minus the answer. ChamNet evaluated "
        f"{chamnet['evaluations']} cells by their `{own['search_column']}` and answers the best "
        f"evaluated one within each budget. DNAS warmed up a supernet (C = {own['channels']}, "
        f"N = {own['cells']}) for {supernet['epochs']} epochs on "
        f"{supernet['subset_per_class']} CIFAR-10 images per class, then searched each budget "
        f"for {dnas['epochs']} epochs (loss CE * {dnas['alpha']} * max(1, LAT / T)^"
        f"{dnas['beta']}) and answers the most probable connected cell within it.",
        "",
        "| budget | answer | cell | accuracy % | regret | predicted ms | measured ms | error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for who, answer in row["answers"].items():
            timing = measured.get(f"p{row['percentile']:g} {who}") or {}
            value = timing.get("measured_ms")
            shown = "-" if value is None else f"{value:.3f}"
            error = "-" if value is None else \
                f"{100 * (answer['predicted_ms'] - value) / value:+.1f} %"
            lines.append(
                f"| p{row['percentile']:g} ({row['latency_ms']:.3f} ms) | {who} | "
                f"`{answer['arch']}` | {answer['accuracy']:.2f} | {answer['regret']:.2f} | "
                f"{answer['predicted_ms']:.3f} | {shown} | {error} |")
    return lines + [""]


def write_report(root: str | Path) -> Path:
    """Write ``root/report.md`` (and the plot) from the demo's files; return its path."""
    root = Path(root)
    table = read_json(root / "lut.json", "latency table")
    cells = read_json(root / "cpu_table.json", "cell table")
    rows = read_json(root / "summary.json", "demo summary")["budgets"]
    latency = read_json(root / "latency.json", "latency measurements")
    config = read_json(root / "config.json", "demo config")
    accuracy_latency_plot(cells, rows, root / "accuracy_latency.png")
    measured = {row["name"]: row for row in latency["networks"]}
    lines = [
        "# hwnas demo: NAS-Bench-201 cells searched for this CPU",
        "",
        "Latencies were measured on this machine by this run; accuracies are NAS-Bench-201's "
        "(Dong & Yang 2020: every cell trained on CIFAR-10), so the searches are judged by "
        f"ground truth. Every number comes from the files in `{root}`; rerunning `make demo` "
        "reuses them.",
        "",
    ]
    lines += _table_section(table, cells, rows)
    lines += _answers_section(rows, measured, config, cells)
    lines += latency_section(latency, table)
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
