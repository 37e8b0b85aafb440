"""LUT fidelity on the FBNet CIFAR space (10 classes): does the sum of per-block latencies, with a
fitted overhead/scale, predict whole-network latency?

For each engine (ONNX Runtime 1 thread, ORT 2 threads, torch eager 1 thread channels_last), in
one process and one session:

1. build a fresh LUT of all 110 operator keys (median of 3 interleaved rounds per key);
2. calibrate ``scale * sum + offset`` on 12 separate networks timed end to end
   (:mod:`hwnas.cost.lutbuild`; offset/scale/affine fitted, chosen by leave-one-out error);
3. validate on N (default 100) other uniformly random networks, each timed end to end as the
   median of 3 interleaved rounds (:mod:`hwnas.cost.validate`).

Target: >= 95 % of networks within +-10 % per engine. Writes ``<out>/lut_fidelity.json``
(``lut_fidelity_quick.json`` with ``--quick``) and, per engine, the LUT, the validation JSON and
the scatter plot under ``<out>/lut_fidelity[_quick]/``. Run it alone on an idle machine::

    python -m benchmarks.lut_fidelity            # full: n=100, about 10 minutes on 2 cores
    python -m benchmarks.lut_fidelity --quick    # smoke test: n=8, tiny timing, ~1-2 minutes
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from hwnas.cli.lut import rich_progress
from hwnas.cost.engines import Engine, TimingSettings, make_engine
from hwnas.cost.lutbuild import LAYER_TIMING, NETWORK_TIMING, build_lut
from hwnas.cost.validate import validate_lut
from hwnas.io import atomic_write_json

SPACE = "fbnet-cifar"
TARGET_WITHIN_10PCT = 95.0
QUICK_LAYER_TIMING = TimingSettings(warmup=2, repeats=10, rounds=1)
QUICK_NETWORK_TIMING = TimingSettings(warmup=2, repeats=10, rounds=2)


def engines() -> dict[str, Engine]:
    return {
        "ort-1t": make_engine("ort", threads=1),
        "ort-2t": make_engine("ort", threads=2),
        "torch-1t": make_engine("torch", threads=1, layout="channels_last"),
    }


def shortfall_note(result: dict[str, Any], settings: dict[str, Any]) -> str:
    """Why a target was missed and what was tried, from the numbers themselves."""
    alternatives = result["alternatives"]
    best = max(alternatives, key=lambda name: alternatives[name]["within_10pct"])
    return (
        f"within +-10 % is {result['within_10pct']:.0f} % < {TARGET_WITHIN_10PCT:.0f} % with the "
        f"'{result['prediction']['method']}' correction chosen on the calibration networks. "
        f"Tried: per-key medians of {settings['layer_timing']['rounds']} interleaved rounds; "
        f"offset, scale and affine corrections fitted on {settings['calibration_networks']} "
        f"separate networks (chosen by leave-one-out MAPE); validation networks timed as medians "
        f"of {settings['network_timing']['rounds']} interleaved rounds in the same process. "
        f"On the validation set the raw sum gives {alternatives['raw_sum']['within_10pct']:.0f} % "
        f"and the best stored correction ('{best}', for information only, not selectable after "
        f"the fact) {alternatives[best]['within_10pct']:.0f} %. Load average at the end: "
        f"{os.getloadavg()[0]:.2f} (a busy machine widens the timing noise)."
    )


def run_engine(label: str, engine: Engine, out_dir: Path, settings: dict[str, Any],
               quick: bool) -> dict[str, Any]:
    lut_path = out_dir / f"{label}-lut.json"
    lut_path.unlink(missing_ok=True)  # corrections belong to one session: always a fresh table
    layer_timing = QUICK_LAYER_TIMING if quick else LAYER_TIMING
    network_timing = QUICK_NETWORK_TIMING if quick else NETWORK_TIMING
    started = time.perf_counter()
    with rich_progress() as on_progress:
        table = build_lut(SPACE, engine, lut_path, timing=layer_timing,
                          calibration_networks=settings["calibration_networks"],
                          network_timing=network_timing, on_progress=on_progress)
    build_s = time.perf_counter() - started
    with rich_progress() as on_progress:
        result = validate_lut(table, n=settings["n"], seed=settings["seed"], out_dir=out_dir,
                              timing=network_timing, label=label, on_progress=on_progress)
    summary = {name: result[name] for name in
               ("within_10pct", "within_5pct", "mape", "kendall", "spearman", "n")}
    summary.update(build_s=build_s, validate_s=result["validate_s"], engine=table.engine,
                   prediction={**result["prediction"], "reason": table.calibration.reason},
                   alternatives=result["alternatives"], lut=str(lut_path), plot=result["plot"],
                   target_within_10pct=TARGET_WITHIN_10PCT,
                   target_met=result["within_10pct"] >= TARGET_WITHIN_10PCT)
    if not summary["target_met"]:
        summary["note"] = shortfall_note(result, settings)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="validation networks (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="n=8 and tiny timing: smoke test")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--engines", default="ort-1t,ort-2t,torch-1t")
    args = parser.parse_args(argv)
    name = "lut_fidelity_quick" if args.quick else "lut_fidelity"
    settings = {
        "space": SPACE, "n": args.n or (8 if args.quick else 100), "seed": args.seed,
        "calibration_networks": 6 if args.quick else 12, "quick": args.quick,
        "layer_timing": (QUICK_LAYER_TIMING if args.quick else LAYER_TIMING).to_dict(),
        "network_timing": (QUICK_NETWORK_TIMING if args.quick else NETWORK_TIMING).to_dict(),
        "loadavg_start": os.getloadavg()[0],
    }
    results: dict[str, Any] = {}
    available = engines()
    for label in args.engines.split(","):
        if label not in available:
            parser.error(f"unknown engine label {label!r} (known: {', '.join(available)})")
        results[label] = run_engine(label, available[label], args.out / name, settings,
                                    args.quick)
        print(f"{label}: within 10 % {results[label]['within_10pct']:.0f} %, within 5 % "
              f"{results[label]['within_5pct']:.0f} %, MAPE {results[label]['mape']:.2f} %, "
              f"Kendall {results[label]['kendall']:.3f}, build {results[label]['build_s']:.0f} s, "
              f"validate {results[label]['validate_s']:.0f} s")
    for summary in results.values():  # top-level keys stay the engine labels
        summary["settings"] = {**settings, "loadavg_end": os.getloadavg()[0]}
    atomic_write_json(args.out / f"{name}.json", results)
    return results


if __name__ == "__main__":
    main()
