"""hwnas.runs: one locked run folder per run, resume rules, history.jsonl, temp-file clean-up."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hwnas.errors import HwnasError
from hwnas.runs import RunFolder, RunFolderError, first_difference, normalised, open_run

CONFIG = {"search": {"seed": 1, "epochs": 3}, "budgets": (10, 20)}

HOLDER = textwrap.dedent(
    """
    import sys, time
    from hwnas.runs import open_run
    run = open_run(sys.argv[1], command="dnas", config={"search": {"seed": 1}}, resume=False)
    print("ready", flush=True)
    time.sleep(120)
    """
)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def lock_pid(folder: Path) -> int:
    return json.loads((folder / ".lock").read_text())["pid"]


def test_fresh_folder_records_command_and_config(tmp_path):
    root = tmp_path / "out" / "run"
    with open_run(root, command="dnas", config=CONFIG, resume=False) as run:
        assert isinstance(run, RunFolder) and run.root == root and run.command == "dnas"
        saved = json.loads(run.config_path.read_text())
        assert saved == {"command": "dnas", **normalised(CONFIG)}
        assert run.read_config() == {"search": {"seed": 1, "epochs": 3}, "budgets": [10, 20]}
        assert json.loads((root / ".lock").read_text())["command"] == "dnas"
        assert lock_pid(root) == os.getpid()
    run.close()  # idempotent
    with open_run(root, command="dnas", config=CONFIG, resume=True) as resumed:
        assert resumed.read_config() == normalised(CONFIG)


def test_paths_and_result_files(tmp_path):
    with open_run(tmp_path / "run", command="train", config={}, resume=False) as run:
        assert run.config_path.name == "config.json"
        assert run.history_path.name == "history.jsonl"
        assert run.checkpoint_path == tmp_path / "run" / "checkpoint.pt"
        assert run.path("theta.json") == tmp_path / "run" / "theta.json"
        assert run.read_result() is None and not run.has_result()
        run.write_result({"accuracy": 0.5, "layers": (1, 2)})
        assert run.has_result() and run.read_result() == {"accuracy": 0.5, "layers": [1, 2]}
        run.write_json("theta.json", {"p": [0.25]})
        assert json.loads(run.path("theta.json").read_text()) == {"p": [0.25]}
        assert not [path for path in run.root.iterdir() if path.name.endswith(".tmp")]


def test_second_writer_is_refused_until_the_holder_dies(tmp_path, caplog):
    root = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        for resume in (False, True):
            with pytest.raises(RunFolderError) as refused:
                open_run(root, command="dnas", config={"search": {"seed": 1}}, resume=resume)
            message = str(refused.value)
            assert f"run folder {root} is in use by process {child.pid}" in message
            assert "choose another --out" in message
        assert lock_pid(root) == child.pid
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with caplog.at_level(logging.INFO, logger="hwnas.runs"):
        run = open_run(root, command="dnas", config={"search": {"seed": 1}}, resume=True)
    with run:
        assert lock_pid(root) == os.getpid()
        assert f"taking over {root} from process {child.pid}" in caplog.text


def test_second_open_in_the_same_process_is_refused(tmp_path):
    with open_run(tmp_path, command="dnas", config=CONFIG, resume=False):
        with pytest.raises(RunFolderError, match=f"in use by process {os.getpid()}"):
            open_run(tmp_path, command="dnas", config=CONFIG, resume=True)


def test_a_stale_lock_record_is_replaced_and_a_clean_close_empties_it(tmp_path, caplog):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "command": "x" * 200}))
    with caplog.at_level(logging.INFO, logger="hwnas.runs"):
        with open_run(tmp_path, command="dnas", config=CONFIG, resume=False):
            record = json.loads((tmp_path / ".lock").read_text())
            assert record["pid"] == os.getpid() and record["command"] == "dnas"
            assert "T" in record["started"] and record["started"].endswith("+00:00")
        assert "taking over" in caplog.text and "from process 1," in caplog.text
        assert (tmp_path / ".lock").read_text() == ""
        caplog.clear()
        open_run(tmp_path, command="dnas", config=CONFIG, resume=True).close()
        assert "taking over" not in caplog.text


def test_refuses_another_commands_run_without_resume(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"command": "chamnet", "seed": 3}))
    (tmp_path / "result.json").write_text("{}")
    before = snapshot(tmp_path)
    with pytest.raises(RunFolderError) as refused:
        open_run(tmp_path, command="dnas", config=CONFIG, resume=False)
    assert str(refused.value) == (
        f"run folder {tmp_path} already holds a chamnet run; "
        "pass --resume to continue it or choose another --out"
    )
    assert {name: data for name, data in snapshot(tmp_path).items() if name != ".lock"} == before


def test_refuses_a_folder_that_is_not_empty_and_releases_the_lock(tmp_path):
    for name in ("notes.txt", "b.bin", "a.csv", "z"):
        (tmp_path / name).write_text(name)
    before = snapshot(tmp_path)
    with pytest.raises(RunFolderError) as refused:
        open_run(tmp_path, command="dnas", config=CONFIG, resume=False)
    assert str(refused.value).startswith(
        f"run folder {tmp_path} is not empty (holds a.csv, b.bin, notes.txt"
    )
    assert str(refused.value).endswith("); choose another --out")
    assert {name: data for name, data in snapshot(tmp_path).items() if name != ".lock"} == before
    for name in before:
        (tmp_path / name).unlink()
    open_run(tmp_path, command="dnas", config=CONFIG, resume=False).close()


def test_resume_refusals(tmp_path):
    with pytest.raises(RunFolderError, match="nothing to resume in .*: it holds no dnas run"):
        open_run(tmp_path, command="dnas", config=CONFIG, resume=True)
    (tmp_path / "config.json").write_text(json.dumps({"command": "chamnet", **CONFIG}))
    with pytest.raises(RunFolderError, match="holds a chamnet run, not a dnas run"):
        open_run(tmp_path, command="dnas", config=CONFIG, resume=True)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(RunFolderError, match="config.json does not hold a JSON object"):
        open_run(tmp_path, command="dnas", config=CONFIG, resume=True)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="config.json is not valid JSON"):
        open_run(tmp_path, command="dnas", config=CONFIG, resume=True)


def test_resume_with_a_changed_value_names_its_path(tmp_path):
    open_run(tmp_path, command="dnas", config=CONFIG, resume=False).close()
    before = snapshot(tmp_path)
    changed = {"search": {"seed": 2, "epochs": 3}, "budgets": (10, 20)}
    with pytest.raises(RunFolderError) as refused:
        open_run(tmp_path, command="dnas", config=changed, resume=True)
    assert str(refused.value) == (
        f"cannot resume {tmp_path}: 'search.seed' differs from its config.json"
    )
    assert snapshot(tmp_path)["config.json"] == before["config.json"]


def test_resume_of_an_old_config_without_command_records_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"search": {"seed": 1}}))
    seen = []

    def compare(saved, current):
        seen.append((saved, current))
        return None  # e.g. a field added since counts as its default

    config = {"search": {"seed": 1}, "added": True}
    with open_run(tmp_path, command="dmasking", config=config, resume=True, compare=compare):
        pass
    assert seen == [({"search": {"seed": 1}}, config)]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == {"command": "dmasking", "search": {"seed": 1}, "added": True}


def test_history_append_read_and_rewrite(tmp_path):
    with open_run(tmp_path, command="train", config={}, resume=False) as run:
        assert run.read_history() == []
        run.append_history([{"epoch": 0}, {"epoch": 1}])
        run.append_history([{"epoch": 2}])
        assert run.read_history() == [{"epoch": 0}, {"epoch": 1}, {"epoch": 2}]
        run.rewrite_history([{"epoch": 0}])
        assert run.read_history() == [{"epoch": 0}]
        assert run.history_path.read_text() == '{"epoch": 0}\n'


def test_torn_last_line_is_ignored_then_cut_off(tmp_path):
    with open_run(tmp_path, command="train", config={}, resume=False) as run:
        run.append_history([{"epoch": 0}])
        with open(run.history_path, "a") as file:
            file.write('{"epoch": 1, "lo')
        assert run.read_history() == [{"epoch": 0}]
        run.append_history([{"epoch": 1}])
        assert run.history_path.read_text() == '{"epoch": 0}\n{"epoch": 1}\n'
        run.history_path.write_text('{"epo')
        run.append_history([{"epoch": 0}])
        assert run.history_path.read_text() == '{"epoch": 0}\n'


def test_corrupt_history_line_names_its_number(tmp_path):
    with open_run(tmp_path, command="train", config={}, resume=False) as run:
        run.history_path.write_text('{"epoch": 0}\n{broken\n{"epoch": 2}\n')
        with pytest.raises(RunFolderError, match=r"history.jsonl line 2 is not a JSON object"):
            run.read_history()
        run.history_path.write_text('{"epoch": 0}\n[1]\n')
        with pytest.raises(RunFolderError, match=r"history.jsonl line 2 "):
            run.read_history()


def test_leftover_temp_files_are_removed_and_count_as_empty(tmp_path):
    leftovers = [".result.json.abc123.tmp", ".scatter.png.tmp.png"]
    for name in [*leftovers, ".lock"]:
        (tmp_path / name).write_text("partial")
    with open_run(tmp_path, command="dnas", config=CONFIG, resume=False):
        assert not any((tmp_path / name).exists() for name in leftovers)
    (tmp_path / ".result.json.x.tmp").write_text("partial")
    (tmp_path / ".keep").write_text("")
    (tmp_path / "visible.tmp").write_text("mine")
    with open_run(tmp_path, command="dnas", config=CONFIG, resume=True):
        assert not (tmp_path / ".result.json.x.tmp").exists()
        assert (tmp_path / ".keep").exists() and (tmp_path / "visible.tmp").exists()


def test_root_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "run"
    file.write_text("x")
    with pytest.raises(RunFolderError, match=f"run folder {file} is not a directory"):
        open_run(file, command="dnas", config=CONFIG, resume=False)
    with pytest.raises(RunFolderError, match=f"cannot create run folder {file / 'inner'}: "):
        open_run(file / "inner", command="dnas", config=CONFIG, resume=False)
    assert issubclass(RunFolderError, HwnasError)


def test_first_difference():
    assert first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}) is None
    assert first_difference({"search": {"seed": 1}}, {"search": {"seed": 2}}) == "search.seed"
    assert first_difference({"budgets": [1, 2]}, {"budgets": [1, 3]}) == "budgets[1]"
    assert first_difference({"budgets": [1, 2]}, {"budgets": [1, 2, 3]}) == "budgets"
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "b"
    assert first_difference(1, 2) == "<root>"
    assert normalised({"t": (1, 2), 3: None}) == {"t": [1, 2], "3": None}


def test_probe_run_refuses_what_open_run_would_and_leaves_the_folder(tmp_path):
    from hwnas.runs import probe_run

    probe_run(tmp_path / "new", command="dnas", resume=False)
    assert not (tmp_path / "new").exists()
    with pytest.raises(RunFolderError, match="nothing to resume"):
        probe_run(tmp_path / "new", command="dnas", resume=True)
    open_run(tmp_path / "run", command="chamnet", config={"a": 1}, resume=False).close()
    with pytest.raises(RunFolderError, match="already holds a chamnet run"):
        probe_run(tmp_path / "run", command="dnas", resume=False)
    with pytest.raises(RunFolderError, match="not a dnas run"):
        probe_run(tmp_path / "run", command="dnas", resume=True)
    probe_run(tmp_path / "run", command="chamnet", resume=True)
    with open_run(tmp_path / "run", command="chamnet", config={"a": 1}, resume=True):
        with pytest.raises(RunFolderError, match="is in use by process"):
            probe_run(tmp_path / "run", command="chamnet", resume=True)
