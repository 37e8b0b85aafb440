"""``hwnas demo``: for now, the model-zoo table with analytic MFLOPs and parameters.

A placeholder: the main job (a search demo) will replace this function. It must stay runnable on
a fresh CPU-only machine within seconds.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def demo() -> None:
    """Show the model zoo: resolution, MFLOPs (multiply-adds), parameters and block count."""
    from hwnas.cli.arch import zoo_summaries

    table = Table(title="hwnas model zoo (analytic multiply-add and parameter counts)")
    for column in ("model", "resolution", "MFLOPs", "M params", "blocks"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in zoo_summaries():
        table.add_row(
            row["name"], str(row["resolution"]), f"{row['mflops']:.1f}",
            f"{row['params'] / 1e6:.3f}", str(row["blocks"]),
        )
    Console().print(table)
