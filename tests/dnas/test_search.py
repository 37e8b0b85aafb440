import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from .dnas_helpers import TableCost, run_dnas, synthetic_batches, tiny_space
from hwnas.cost.base import LayerCostMatrix
from hwnas.dnas.result import SearchResult
from hwnas.errors import HwnasError

HERE = Path(__file__).parent
WEIGHT_BATCHES = synthetic_batches(4, 16, seed=1)
THETA_BATCHES = synthetic_batches(2, 16, seed=2)
# 3 epochs, warm-up 1: epoch 0 = weight steps 1-4; epoch 1 = weights 5-8, theta 9-10;
# epoch 2 = weights 11-14, theta 15-16. Checkpoints every 3 steps and at each epoch end.
CHEAP_ROW = np.array([4.0, 6.0, 5.0, 0.1])  # the last candidate (skip) is far cheaper
RESUME_SETTINGS = dict(epochs=3, warmup_epochs=1, seed=11, checkpoint_every=3, num_samples=6,
                       plots=False)


class Killed(Exception):
    pass


def kill_at(global_step):
    def progress(event):
        if event.global_step == global_step:
            raise Killed(event)
    return progress


def search(space, cost, run_dir, **overrides):
    settings = {**RESUME_SETTINGS, **overrides}
    return run_dnas(space, cost, WEIGHT_BATCHES, THETA_BATCHES, run_dir=run_dir, **settings)


def final_theta(run_dir):
    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["model"]["theta"]


def history_without_time(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "history.jsonl").read_text().splitlines()]
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted runs, one per mode, shared by the resume tests."""
    runs = {}

    def reference(mode):
        if mode not in runs:
            run_dir = tmp_path_factory.mktemp(f"reference-{mode}")
            space = tiny_space()
            cost = TableCost(space, np.array([CHEAP_ROW] * space.num_layers))
            runs[mode] = (search(space, cost, run_dir, mode=mode), run_dir)
        return runs[mode]
    return reference


@pytest.mark.parametrize(
    "mode, killed_at",
    [("sampled", 8), ("sampled", 10), ("soft", 10)],  # mid weight / mid theta phase of epoch 1
)
def test_killed_and_resumed_search_equals_uninterrupted(space, cheap_last_cost, tmp_path,
                                                         references, mode, killed_at):
    with pytest.raises(Killed):
        search(space, cheap_last_cost, tmp_path, mode=mode, progress=kill_at(killed_at))
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (1, killed_at - killed_at % 3)
    assert not (tmp_path / "result.json").exists()
    resumed = search(space, cheap_last_cost, tmp_path, mode=mode, resume=True)
    reference, reference_dir = references(mode)
    assert resumed == reference
    assert torch.equal(final_theta(tmp_path), final_theta(reference_dir))
    assert history_without_time(tmp_path) == history_without_time(reference_dir)
    assert SearchResult.load(tmp_path / "result.json") == reference


SIGKILL_SCRIPT = """
import os, signal, sys
import numpy as np, torch
sys.path.insert(0, {helpers!r})
from dnas_helpers import TableCost, run_dnas, synthetic_batches, tiny_space
torch.set_num_threads(1)
space = tiny_space()
cost = TableCost(space, np.array([[4.0, 6.0, 5.0, 0.1]] * 3))
def progress(event):
    if event.global_step == 13:
        os.kill(os.getpid(), signal.SIGKILL)
run_dnas(space, cost, synthetic_batches(4, 16, seed=1), synthetic_batches(2, 16, seed=2),
         run_dir={run_dir!r}, progress=progress, **{settings!r})
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkilled_process_resumes_to_the_same_result(space, cheap_last_cost, tmp_path,
                                                      references):
    run_dir = tmp_path / "killed"
    script = SIGKILL_SCRIPT.format(helpers=str(HERE), run_dir=str(run_dir),
                                   settings=RESUME_SETTINGS)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()[-2000:]
    assert not (run_dir / "result.json").exists()
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 12
    resumed = search(space, cheap_last_cost, run_dir, resume=True)
    reference, reference_dir = references("sampled")
    assert resumed == reference
    assert torch.equal(final_theta(run_dir), final_theta(reference_dir))


def test_same_seed_same_result_other_seed_differs(space, cheap_last_cost, tmp_path):
    first = search(space, cheap_last_cost, tmp_path / "a", epochs=2, checkpoint_every=None)
    second = search(space, cheap_last_cost, tmp_path / "b", epochs=2, checkpoint_every=None)
    other = search(space, cheap_last_cost, tmp_path / "c", epochs=2, checkpoint_every=None,
                   seed=12)
    assert first == second
    assert first.probabilities != other.probabilities


# ---- known answers --------------------------------------------------------------------------
KNOWN_ANSWER = dict(epochs=6, warmup_epochs=0, weight_lr=0.0, theta_lr=0.1, seed=0, plots=False)


def known_answer_search(space, cost_row, run_dir, **overrides):
    cost = TableCost(space, np.array([cost_row] * space.num_layers))
    settings = {**KNOWN_ANSWER, **overrides}
    return run_dnas(space, cost, synthetic_batches(2, 16, seed=1),
                    synthetic_batches(4, 16, seed=2), run_dir=run_dir, **settings)


@pytest.mark.parametrize("overrides", [{}, {"mode": "soft"}, {"target_latency": 3.0},
                                       {"theta_estimator": "reinforce"}])
def test_latency_pulls_theta_to_the_cheap_candidate(space, tmp_path, overrides):
    # Weights frozen (lr 0): CE cannot tell the candidates apart, latency decides.
    result = known_answer_search(space, CHEAP_ROW, tmp_path / "run", **overrides)
    probabilities = np.array(result.probabilities)
    assert result.argmax.choices == (3, 3, 3)
    assert (probabilities[:, 3] > 0.8).all()
    assert result.argmax.cost == pytest.approx(1.3)


@pytest.mark.parametrize("overrides", [{"target_latency": 100.0}, {"beta": 0.0}])
def test_without_latency_pressure_the_costs_do_not_matter(space, tmp_path, overrides):
    # A budget above every architecture's cost (or beta = 0) leaves plain CE: reversing which
    # candidate is cheap must not change theta at all, and nothing converges to the cheap one.
    cheap_last = known_answer_search(space, CHEAP_ROW, tmp_path / "a", **overrides)
    cheap_first = known_answer_search(space, CHEAP_ROW[::-1], tmp_path / "b", **overrides)
    assert cheap_last.probabilities == cheap_first.probabilities
    assert np.array(cheap_last.probabilities).max() < 0.35


def test_absolute_target_holds_the_expected_cost_at_the_target(space, tmp_path):
    # Uniform theta expects 1 + 3 * 3.775 = 12.3 ms; the one-sided budget at 16 ms leaves plain
    # CE (nothing moves, test above), the absolute form pulls the expectation up to 16 ms.
    result = known_answer_search(space, CHEAP_ROW, tmp_path / "run", target_latency=16.0,
                                 target_form="absolute", epochs=10)
    assert result.expected_cost == pytest.approx(16.0, rel=0.1)
    assert (np.array(result.probabilities)[:, 3] < 0.25).all()  # skip (0.1 ms) lost ground


def test_warm_start_loads_the_weights_and_starts_theta_uniform(space, cheap_last_cost, tmp_path):
    search(space, cheap_last_cost, tmp_path / "warm", epochs=2, warmup_epochs=2,
           checkpoint_every=None)
    warm = torch.load(tmp_path / "warm" / "checkpoint.pt", weights_only=True)["model"]
    frozen = dict(epochs=1, warmup_epochs=1, weight_lr=0.0, momentum=0.0, weight_decay=0.0,
                  checkpoint_every=None)
    search(space, cheap_last_cost, tmp_path / "started", warm_start=tmp_path / "warm" /
           "checkpoint.pt", **frozen)
    started = torch.load(tmp_path / "started" / "checkpoint.pt", weights_only=True)["model"]
    search(space, cheap_last_cost, tmp_path / "cold", **frozen)
    cold = torch.load(tmp_path / "cold" / "checkpoint.pt", weights_only=True)["model"]
    convolutions = [key for key in warm if key.endswith("weight") and warm[key].dim() == 4]
    assert all(torch.equal(started[key], warm[key]) for key in convolutions)
    assert not all(torch.equal(cold[key], warm[key]) for key in convolutions)
    assert torch.equal(started["theta"], torch.zeros_like(started["theta"]))
    config = json.loads((tmp_path / "started" / "config.json").read_text())
    assert config["search"]["warm_start"].endswith("checkpoint.pt")


def test_warm_start_from_another_space_or_no_file_is_refused(space, cheap_last_cost, tmp_path):
    from .dnas_helpers import TINY_CANDIDATES

    other = tiny_space(TINY_CANDIDATES[:2])
    search(other, TableCost(other, np.ones((3, 2))), tmp_path / "other", epochs=1,
           warmup_epochs=1, checkpoint_every=None)
    with pytest.raises(HwnasError, match="does not fit this supernet"):
        search(space, cheap_last_cost, tmp_path / "a",
               warm_start=tmp_path / "other" / "checkpoint.pt")
    with pytest.raises(HwnasError, match="cannot read warm-start checkpoint"):
        search(space, cheap_last_cost, tmp_path / "b", warm_start=tmp_path / "missing.pt")


def test_fixed_layers_keep_their_candidate_and_resume(space, cheap_last_cost, tmp_path):
    fixed = {1: "k3_e3"}
    reference = search(space, cheap_last_cost, tmp_path / "a", fixed_layers=fixed)
    probabilities = np.array(reference.probabilities)
    assert probabilities[1].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert probabilities[0, 3] > 0.25  # the free layers still move (from uniform) to the skip
    assert reference.argmax.choices[1] == 1
    assert all(sample.choices[1] == 1 for sample in reference.samples)
    with pytest.raises(Killed):
        search(space, cheap_last_cost, tmp_path / "b", fixed_layers=fixed,
               progress=kill_at(10))
    resumed = search(space, cheap_last_cost, tmp_path / "b", fixed_layers=fixed, resume=True)
    assert resumed == reference


def test_reinforce_search_resumes_to_the_same_result(space, cheap_last_cost, tmp_path):
    settings = dict(theta_estimator="reinforce", paths_per_batch=3)
    reference = search(space, cheap_last_cost, tmp_path / "a", **settings)
    with pytest.raises(Killed):
        search(space, cheap_last_cost, tmp_path / "b", progress=kill_at(10), **settings)
    resumed = search(space, cheap_last_cost, tmp_path / "b", resume=True, **settings)
    assert resumed == reference
    assert torch.equal(final_theta(tmp_path / "a"), final_theta(tmp_path / "b"))


@pytest.mark.parametrize("fixed, message", [({5: "skip"}, "fixed layer 5"),
                                            ({0: "k7_e6"}, "'k7_e6'")])
def test_bad_fixed_layers_are_refused_by_name(space, cheap_last_cost, tmp_path, fixed, message):
    with pytest.raises(HwnasError, match=message):
        search(space, cheap_last_cost, tmp_path, fixed_layers=fixed)
    assert not (tmp_path / "config.json").exists()


# ---- run directory ------------------------------------------------------------------------
def test_run_directory_contents(space, cheap_last_cost, tmp_path):
    result = search(space, cheap_last_cost, tmp_path / "run", checkpoint_every=None, plots=True)
    run_dir = tmp_path / "run"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["search"]["epochs"] == 3 and config["search"]["mode"] == "sampled"
    assert config["space"]["candidates"] == list(space.candidates)
    assert np.allclose(config["cost_model"]["matrix"],
                       cheap_last_cost.layer_cost_matrix(space).matrix)
    history = history_without_time(run_dir)
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert history[0]["theta_loss"] is None and history[1]["theta_loss"] > 0
    assert history[0]["temperature"] == 5.0
    assert history[1]["weight_lr"] < history[0]["weight_lr"]
    theta = json.loads((run_dir / "theta.json").read_text())
    assert np.array(theta["probabilities"]).shape == (3, 3, 4)
    assert theta["probabilities"][-1] == [list(row) for row in result.probabilities]
    for plot in ("theta_final.png", "theta_epochs.png"):
        assert (run_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["theta_history"].shape == (3, 3, 4)
    assert [sample.cost for sample in result.samples] == sorted(s.cost for s in result.samples)
    assert sum(sample.count for sample in result.samples) == 6
    assert not list(run_dir.glob("*.tmp")) and [p.name for p in run_dir.glob(".*")] == [".lock"]


def test_refuses_to_overwrite_and_checks_config_on_resume(space, cheap_last_cost, tmp_path):
    search(space, cheap_last_cost, tmp_path, epochs=1)
    with pytest.raises(HwnasError, match="already holds a dnas run"):
        search(space, cheap_last_cost, tmp_path, epochs=1)
    with pytest.raises(HwnasError, match="search.theta_lr"):
        search(space, cheap_last_cost, tmp_path, epochs=1, theta_lr=0.5, resume=True)
    # resuming a finished run re-derives the same result
    assert search(space, cheap_last_cost, tmp_path, epochs=1, resume=True) == SearchResult.load(
        tmp_path / "result.json")


def test_a_run_written_before_later_options_resumes_with_their_defaults(space, cheap_last_cost,
                                                                        tmp_path):
    expected = search(space, cheap_last_cost, tmp_path / "new")
    with pytest.raises(Killed):
        search(space, cheap_last_cost, tmp_path / "old", progress=kill_at(9))
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    for added in ("theta_estimator", "paths_per_batch", "weight_sharing", "residual_scale"):
        del config["search"][added]
    config_path.write_text(json.dumps(config))
    assert search(space, cheap_last_cost, tmp_path / "old", resume=True) == expected
    config["search"]["residual_scale"] = 0.5  # a value that is not the default still counts
    config_path.write_text(json.dumps(config))
    with pytest.raises(HwnasError, match="search.residual_scale"):
        search(space, cheap_last_cost, tmp_path / "old", resume=True)


def test_resume_needs_a_run_and_one_killed_before_its_first_checkpoint_starts_over(
        space, cheap_last_cost, tmp_path):
    with pytest.raises(HwnasError, match="nothing to resume"):
        search(space, cheap_last_cost, tmp_path / "a", epochs=1, resume=True)
    with pytest.raises(Killed):
        search(space, cheap_last_cost, tmp_path / "a", epochs=1, progress=kill_at(1))
    assert not (tmp_path / "a" / "checkpoint.pt").exists()
    fresh = search(space, cheap_last_cost, tmp_path / "a", epochs=1, resume=True)
    assert fresh == search(space, cheap_last_cost, tmp_path / "b", epochs=1)


def test_batches_may_be_a_callable_of_the_epoch(space, cheap_last_cost, tmp_path):
    seen = []

    def weights(epoch):
        seen.append(epoch)
        return WEIGHT_BATCHES
    run_dnas(space, cheap_last_cost, weights, THETA_BATCHES, epochs=2, run_dir=tmp_path,
             plots=False)
    assert seen == [0, 1]


class EpochBatches:
    """Batches called with the epoch, like hwnas.data.batches.BatchIterator."""

    def __init__(self, batches):
        self.batches, self.epochs = batches, []

    def __call__(self, epoch):
        self.epochs.append(epoch)
        return self.batches

    def __len__(self):
        return len(self.batches)


def test_batch_sources_are_told_the_epoch(space, cheap_last_cost, tmp_path):
    weights, thetas = EpochBatches(WEIGHT_BATCHES), EpochBatches(THETA_BATCHES)
    run_dnas(space, cheap_last_cost, weights, thetas, epochs=3, warmup_epochs=1,
             run_dir=tmp_path, plots=False)
    assert weights.epochs == [0, 1, 2] and thetas.epochs == [1, 2]


@pytest.mark.parametrize(
    "overrides, name",
    [({"epochs": 0}, "epochs"), ({"epochs": 2.0}, "epochs"), ({"warmup_epochs": 4}, "warmup"),
     ({"weight_lr": -0.1}, "weight_lr"), ({"momentum": 1.0}, "momentum"),
     ({"theta_lr": float("nan")}, "theta_lr"), ({"initial_temperature": 0}, "temperature"),
     ({"temperature_decay": 1.2}, "temperature_decay"), ({"alpha": 0}, "alpha"),
     ({"beta": -1}, "beta"), ({"target_latency": 0}, "target_latency"),
     ({"mode": "hard"}, "mode"), ({"seed": -1}, "seed"), ({"checkpoint_every": 0}, "checkpoint"),
     ({"num_samples": -2}, "num_samples"), ({"weight_decay": "1e-4"}, "weight_decay"),
     ({"target_form": "absolute"}, "target_form"),
     ({"theta_estimator": "score"}, "theta_estimator"), ({"paths_per_batch": 1}, "paths_per_batch"),
     ({"target_latency": 3.0, "target_form": "both"}, "target_form")],
)
def test_bad_hyper_parameters_raise_naming_the_value(space, cheap_last_cost, tmp_path,
                                                     overrides, name):
    with pytest.raises(HwnasError, match=name):
        search(space, cheap_last_cost, tmp_path, **overrides)
    assert not (tmp_path / "config.json").exists()


def test_bad_inputs_raise(space, cheap_last_cost, tmp_path):
    with pytest.raises(HwnasError, match="no batch"):
        run_dnas(space, cheap_last_cost, [], THETA_BATCHES, epochs=1, run_dir=tmp_path / "a")
    with pytest.raises(HwnasError, match="pair"):
        run_dnas(space, cheap_last_cost, [5], THETA_BATCHES, epochs=1,
                 run_dir=tmp_path / "b")
    with pytest.raises(HwnasError, match=r"4-D tensor .* got shape \(3, 8, 8\)"):
        run_dnas(space, cheap_last_cost, [torch.zeros(2, 3, 8, 8)], THETA_BATCHES, epochs=1,
                 run_dir=tmp_path / "f")
    with pytest.raises(HwnasError, match="iterable"):
        run_dnas(space, cheap_last_cost, 5, THETA_BATCHES, epochs=1, run_dir=tmp_path / "c")
    class WrongShape(TableCost):
        def layer_cost_matrix(self, space):
            return LayerCostMatrix(0.0, np.zeros((3, 2)))
    wrong = WrongShape(space, np.zeros((3, 4)))
    with pytest.raises(HwnasError, match="shape"):
        run_dnas(space, wrong, WEIGHT_BATCHES, THETA_BATCHES, epochs=1, run_dir=tmp_path / "d")
    with pytest.raises(HwnasError, match="layer-wise space"):
        run_dnas("fbnet-cifar", cheap_last_cost, WEIGHT_BATCHES, THETA_BATCHES, epochs=1,
                 run_dir=tmp_path / "e")


def test_caller_global_rng_is_untouched(space, cheap_last_cost, tmp_path):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    search(space, cheap_last_cost, tmp_path, epochs=1)
    assert torch.equal(torch.get_rng_state(), before)


def test_alpha_only_scales_the_loss_against_theta_weight_decay(space, tmp_path):
    # Adam is invariant to the loss scale, so without weight decay a tiny alpha reaches the same
    # answer; with the default L2 decay on theta (5e-4) a tiny alpha lets the decay win.
    default = known_answer_search(space, CHEAP_ROW, tmp_path / "a", theta_weight_decay=0.0)
    tiny = known_answer_search(space, CHEAP_ROW, tmp_path / "b", theta_weight_decay=0.0,
                               alpha=1e-4)
    np.testing.assert_allclose(tiny.probabilities, default.probabilities, atol=0.02)
    decayed = known_answer_search(space, CHEAP_ROW, tmp_path / "c", alpha=1e-4)
    assert np.array(decayed.probabilities).max() < 0.3
