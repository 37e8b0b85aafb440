"""Plots of the FBNet architecture distribution P_theta, drawn with matplotlib's Agg backend.

The figures are built with ``matplotlib.figure.Figure`` directly (no pyplot global state, no
display needed) and written atomically as PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_bytes

#: Print the probability in every cell only while the grid stays readable.
MAX_ANNOTATED_CELLS = 250


def save_theta_heatmap(
    probabilities: np.ndarray,
    candidates: Sequence[str],
    path: str | Path,
    *,
    title: str = "P_theta",
) -> None:
    """Heatmap of P_theta [layers, candidates]; the argmax of each layer is outlined."""
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(candidates):
        raise HwnasError(
            f"probabilities of shape {probabilities.shape} do not match "
            f"{len(candidates)} candidates"
        )
    layers, count = probabilities.shape
    figure = Figure(figsize=(1.2 + 0.7 * count, 1.2 + 0.32 * layers))
    axes = figure.add_subplot()
    image = axes.imshow(probabilities, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    figure.colorbar(image, ax=axes, label="probability")
    axes.set_xticks(range(count), list(candidates), rotation=45, ha="right")
    axes.set_yticks(range(layers), [f"layer {layer}" for layer in range(layers)])
    for layer, best in enumerate(probabilities.argmax(axis=1)):
        axes.add_patch(_outline(best, layer, axes))
    if layers * count <= MAX_ANNOTATED_CELLS:
        for (layer, candidate), value in np.ndenumerate(probabilities):
            colour = "black" if value > 0.6 else "white"
            axes.text(candidate, layer, f"{value:.2f}", ha="center", va="center",
                      fontsize=7, color=colour)
    axes.set_title(title)
    _save(figure, path)


def save_probability_evolution(
    history: np.ndarray,
    candidates: Sequence[str],
    path: str | Path,
    *,
    title: str = "probability of the final argmax",
) -> None:
    """Layers x epochs image of P_theta(b_l = final argmax of layer l) after each epoch."""
    history = np.asarray(history, dtype=float)
    if history.ndim != 3 or history.shape[2] != len(candidates) or history.shape[0] == 0:
        raise HwnasError(
            f"history of shape {history.shape} is not [epochs, layers, {len(candidates)}]"
        )
    epochs, layers, _ = history.shape
    final = history[-1].argmax(axis=1)
    chosen = history[:, np.arange(layers), final].T  # [layers, epochs]
    figure = Figure(figsize=(2.5 + min(0.25 * epochs, 10.0), 1.2 + 0.32 * layers))
    axes = figure.add_subplot()
    image = axes.imshow(
        chosen, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto",
        extent=(0.5, epochs + 0.5, layers - 0.5, -0.5),
    )
    figure.colorbar(image, ax=axes, label="probability")
    axes.set_yticks(
        range(layers), [f"{layer}: {candidates[final[layer]]}" for layer in range(layers)]
    )
    axes.set_xlabel("epoch")
    axes.set_title(title)
    _save(figure, path)


def _outline(column: int, row: int, axes):  # noqa: ANN001 - matplotlib Axes
    from matplotlib.patches import Rectangle

    return Rectangle(
        (column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5,
        transform=axes.transData,
    )


def _save(figure: Figure, path: str | Path) -> None:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
