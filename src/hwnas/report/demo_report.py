"""``report.md`` of a demo run directory (:mod:`hwnas.demo`), built from its files only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwnas.io import atomic_write_text, read_json


def _history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _training_results(root: Path) -> dict[str, dict[str, Any]]:
    results = {}
    for run in sorted(root.glob("train-*")):
        if (run / "result.json").exists():
            results[run.name] = read_json(run / "result.json", "training result")
    return results


def accuracy_latency_plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Top-1 against measured latency, one labelled point per trained network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 4))
    for row in rows:
        axes.scatter(row["measured_ms"], row["top1"], s=40)
        axes.annotate(row["name"], (row["measured_ms"], row["top1"]), fontsize=8,
                      xytext=(4, 4), textcoords="offset points")
    axes.set_xlabel("measured latency, ms (ONNX Runtime, 1 thread, batch 1)")
    axes.set_ylabel("CIFAR-10 top-1 after the short recipe, %")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def latency_section(latency: dict[str, Any], table: dict[str, Any]) -> list[str]:
    engine = latency["engine"]
    calibration = table.get("calibration") or {}
    plan = latency.get("plan", {})
    lines = [
        "## Latency on this machine",
        "",
        f"Engine: {engine.get('name')} {engine.get('version')}, {engine.get('threads')} thread(s), "
        f"batch {engine.get('batch_size')}, CPU `{engine.get('cpu')}`. The table predicts "
        f"`{table['prediction']['formula']}` with scale {table['prediction']['scale']:.3f} and "
        f"offset {table['prediction']['offset_ms']:.3f} ms "
        f"(calibration: {calibration.get('method', 'none')} on "
        f"{len(calibration.get('points', []))} networks). Every network below was timed in "
        f"{plan.get('processes')} worker process(es) x {plan.get('sessions')} fresh "
        "session(s); "
        "the measured latency is the two-way fit's (at the machine's fast speed), the spread that "
        "of its sessions around it.",
        "",
        "| network | predicted ms | measured ms | spread of sessions | error | error at the "
        "current speed |",
        "|---|---|---|---|---|---|",
    ]
    factor = 1.0 + (latency.get("drift_pct") or 0.0) / 100.0
    for row in latency["networks"]:
        predicted, measured = row["predicted_ms"], row["measured_ms"]
        if predicted is None:
            shown, errors = "-", "not in the table's space | -"
        else:
            shown = f"{predicted:.3f}"
            errors = (f"{100 * (predicted - measured) / measured:+.1f} % | "
                      f"{100 * (factor * predicted - measured) / measured:+.1f} %")
        lines.append(f"| {row['name']} | {shown} | {measured:.3f} | {row['spread_pct']:.1f} % | "
                     f"{errors} |")
    return lines + [""] + _conditions(latency, table)


def _conditions(latency: dict[str, Any], table: dict[str, Any]) -> list[str]:
    """The measurement conditions of the table's build and of this timing."""
    lines = ["Measurement conditions:", ""]
    for what, conditions in (("table build", (table.get("build") or {}).get("conditions")),
                             ("this timing", [latency.get("conditions")])):
        for entry in conditions or []:
            if not entry:
                continue
            busy = entry.get("other_cores_max")
            steal = entry.get("steal_pct_max")
            speed = entry.get("speed") or {}
            lines.append(
                f"- {what}: other processes up to "
                + ("unknown" if busy is None else f"{busy:.2f} cores")
                + ", steal up to " + ("unknown" if steal is None else f"{steal:.1f} %")
                + (f", {speed['blocks_off']} of {speed['blocks']} timing blocks more than 10 % "
                   f"off the machine's median speed" if speed else "")
                + (f"; warnings: {'; '.join(w['message'] for w in entry['warnings'])}"
                   if entry.get("warnings") else "; no warnings"))
    drift = latency.get("drift_pct")
    if drift is not None:
        lines.append(f"- the table's calibration networks ran {drift:+.1f} % against the build "
                     "(the machine's speed now against then; the last column scales the "
                     "predictions by it)")
    return lines + [""]


def _loss_text(result: dict[str, Any], config: dict[str, Any]) -> str:
    """The loss the search used, from its resolved configuration."""
    target = result.get("target_latency")
    if not target:
        return "loss CE * 0.2 * log(1 + LAT)^0.6. "
    if config.get("target_form") == "absolute":
        text = (f"loss CE * 0.2 * max(LAT / T, T / LAT)^0.6 with target T = {target:.3f} "
                f"{result['cost_unit']}. ")
    else:
        text = (f"loss CE * 0.2 * max(1, LAT / T)^0.6 with budget T = {target:.3f} "
                f"{result['cost_unit']}. ")
    if config.get("fix_transitions"):
        text += f"The width/stride-changing layers were fixed to {config['fix_transitions']}. "
    return text


def _search_section(result: dict[str, Any], history: list[dict[str, Any]],
                    config: dict[str, Any]) -> list[str]:
    lines = [
        "## Search",
        "",
        f"FBNet DNAS over `{result['space']}` ({len(result['candidates'])} candidates per layer), "
        f"{result['epochs']} epochs, cost model `{result['cost_name']}` ({result['cost_unit']}), "
        + _loss_text(result, config) +
        f"Expected cost under the final P_theta: {result['expected_cost']:.3f} "
        f"{result['cost_unit']}; argmax predicted at {result['argmax']['cost']:.3f}.",
        "",
        "| epoch | temperature | weight CE | weight acc | E_theta[LAT] | argmax LAT | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in history:
        lines.append(
            f"| {row['epoch'] + 1} | {row['temperature']:.3f} | {row['weight_ce']:.3f} | "
            f"{100 * row['weight_accuracy']:.1f} % | {row['expected_cost']:.3f} | "
            f"{row['argmax_cost']:.3f} | {row['seconds']:.0f} |"
        )
    lines += [
        "",
        "Final layer-wise architecture distribution (rows: layers, columns: candidates):",
        "",
        "![theta heatmap](search/theta_final.png)",
        "",
        f"Argmax architecture: `{result['argmax']['arch']}`",
        "",
    ]
    if result.get("within_target"):
        lines += [f"Most probable architecture within the target (the one trained below, "
                  f"predicted {result['within_target']['cost']:.3f} {result['cost_unit']}): "
                  f"`{result['within_target']['arch']}`", ""]
    return lines


def _training_section(root: Path, latency: dict[str, Any]) -> list[str]:
    trained = _training_results(root)
    measured = {row["arch"]: row for row in latency["networks"]}
    rows = []
    for run_name, result in trained.items():
        match = measured.get(result["arch"])
        if match is not None:
            rows.append({"name": match["name"], "measured_ms": match["measured_ms"],
                         "top1": result["final_top1"], "epochs": result["epochs"],
                         "seconds": result["wall_seconds"], "run": run_name})
    if not rows:
        return []
    recipe = read_json(root / "config.json", "demo config")["train"]
    lines = [
        "## Accuracy after one identical short recipe",
        "",
        f"{recipe['subset_per_class']} training images per class, {recipe['epochs']} "
        f"epochs, tested on {recipe['test_per_class']} test images per class. A few minutes of "
        "CPU: the comparison is fair (same recipe and data) but far from converged accuracy.",
        "",
        "| network | measured ms | top-1 % | training s | run |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {row['measured_ms']:.3f} | {row['top1']:.2f} | "
                     f"{row['seconds']:.0f} | `{row['run']}` |")
    accuracy_latency_plot(rows, root / "accuracy_latency.png")
    return lines + ["", "![accuracy vs latency](accuracy_latency.png)", ""]


def write_report(root: str | Path) -> Path:
    """Write ``root/report.md`` from the demo's files and return its path."""
    root = Path(root)
    table = read_json(root / "lut.json", "latency table")
    result = read_json(root / "search" / "result.json", "search result")
    latency = read_json(root / "latency.json", "latency measurements")
    lines = [
        "# hwnas demo: a hardware-aware search for this CPU on CIFAR-10",
        "",
        "Everything below was measured by this run; rerunning `hwnas demo --job fbnet` continues "
        f"or reuses the files in `{root}`.",
        "",
    ]
    lines += latency_section(latency, table)
    config_path = root / "search" / "config.json"
    config = read_json(config_path, "search config")["search"] if config_path.exists() else {}
    lines += _search_section(result, _history(root / "search" / "history.jsonl"), config)
    lines += _training_section(root, latency)
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
