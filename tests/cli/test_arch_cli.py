"""``hwnas arch ...`` and the root app: JSON outputs, one-line errors with status 2, export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import hwnas.arch.export
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import MODEL_NAMES, get_model_spec
from hwnas.cli import app
from hwnas.cost.flops import count

SMALL = "r32:stem_k3_c16_s1:ir_k3_e1_c16_s1:ir_k5_e6_g2_c24_s2:skip_c32_s2:head_c64_n10"
BAD_STRING = "r32:stem_k3_c16_s1:ir_k3_e7x_c16_s1:head_c64_n10"

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def json_of(*args: str) -> dict:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result, *, named: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and named in lines[0]
    assert "Traceback" not in result.output


def test_show_json_has_the_spec_string_and_counts():
    data = json_of("arch", "show", "fbnet_c", "--json")
    arch = get_model_spec("fbnet_c")
    counts = count(arch)
    assert ArchSpec.from_dict(data["arch"]) == arch
    assert ArchSpec.from_string(data["string"]) == arch
    assert data["mflops"] == pytest.approx(counts.macs / 1e6)
    assert data["params"] == counts.params and isinstance(data["params"], int)
    assert (data["resolution"], data["num_classes"]) == (224, 1000)
    layers = data["layers"]
    assert [layer["name"] for layer in layers][:2] == ["stem", "blocks.0"]
    assert len(layers) == len(arch.blocks) + 2
    assert sum(layer["macs"] for layer in layers) == counts.macs
    assert ":".join(["r224"] + [layer["block"] for layer in layers]) == data["string"]


def test_flops_json_for_a_string_with_overrides():
    data = json_of("arch", "flops", SMALL, "--json", "--resolution", "64", "--num-classes", "5")
    arch = ArchSpec.from_string(SMALL.replace("r32", "r64").replace("n10", "n5"))
    counts = count(arch)
    assert data["mflops"] == pytest.approx(counts.macs / 1e6)
    assert data["params"] == counts.params and isinstance(data["params"], int)
    assert data["mparams"] == pytest.approx(counts.params / 1e6)
    assert (data["resolution"], data["num_classes"]) == (64, 5)


def test_full_size_string_argument():
    arch = get_model_spec("fbnet_c")
    data = json_of("arch", "flops", arch.to_string(), "--json")
    assert data["params"] == count(arch).params


def test_zoo_width_option_and_plain_output():
    data = json_of("arch", "flops", "mobilenet_v2", "--width", "0.5", "--json")
    arch = get_model_spec("mobilenet_v2", width_multiplier=0.5)
    assert data["params"] == count(arch).params
    result = invoke("arch", "flops", "fbnet_c")
    assert result.exit_code == 0 and "MFLOPs" in result.stdout


def test_show_json_output_reads_back_as_a_file(tmp_path):
    shown = tmp_path / "shown.json"
    shown.write_text(invoke("arch", "show", "chamnet_f", "--json").stdout)
    again = json_of("arch", "show", str(shown), "--json")
    assert ArchSpec.from_dict(again["arch"]) == get_model_spec("chamnet_f")


def test_list_and_show_tables():
    listed = json_of("arch", "list", "--json")["models"]
    assert [row["name"] for row in listed] == list(MODEL_NAMES)
    assert all(row["mflops"] > 0 and row["params"] > 0 and row["source"] for row in listed)
    table = invoke("arch", "list")
    assert table.exit_code == 0 and all(name in table.stdout for name in MODEL_NAMES)
    shown = invoke("arch", "show", SMALL)
    assert shown.exit_code == 0
    assert SMALL in shown.stdout and "ir_k5_e6_g2_c24_s2" in shown.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("arch", "show", "fbnet_z"), "'fbnet_z'"),
        (("arch", "flops", BAD_STRING, "--json"), "'e7x'"),
        (("arch", "flops", "r32:foo"), "r32:foo"),
        (("arch", "flops", "chamnet_a", "--resolution", "160"), "--resolution"),
        (("arch", "show", "missing/arch.json"), "missing/arch.json"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args, named):
    assert_one_line_error(invoke(*args), named=named)


def test_bad_spec_file_is_one_line_and_status_2(tmp_path):
    data = get_model_spec("fbnet_c").to_dict()
    data["head"]["num_classes"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert_one_line_error(invoke("arch", "show", str(bad), "--json"), named="num_classes")
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"resolution": ')
    assert_one_line_error(invoke("arch", "flops", str(malformed)), named="not valid JSON")


def test_usage_errors_keep_status_2():
    assert invoke("arch", "flops", "fbnet_c", "--resolution", "0").exit_code == 2
    assert invoke("arch", "export", "fbnet_c").exit_code == 2  # --out missing
    assert invoke("arch", "nosuchcommand").exit_code == 2


def test_export_writes_a_checked_onnx_file(tmp_path):
    out = tmp_path / "models" / "small.onnx"
    result = invoke("arch", "export", SMALL, "--out", str(out), "--batch", "2")
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.stat().st_size > 0
    assert "max |torch - onnxruntime|" in result.stdout
    unchecked = invoke("arch", "export", SMALL, "--out", str(out), "--no-check")
    assert unchecked.exit_code == 0 and "onnxruntime" not in unchecked.stdout


def test_export_fails_with_status_1_above_the_tolerance(tmp_path, monkeypatch):
    # Stand in for a broken exporter: the check reports a difference of 1e-3.
    monkeypatch.setattr(hwnas.arch.export, "max_abs_difference", lambda *args, **kwargs: 1e-3)
    result = invoke("arch", "export", SMALL, "--out", str(tmp_path / "small.onnx"))
    assert result.exit_code == 1
    assert "differs from torch by 0.001" in result.stderr


def test_export_to_an_unwritable_path_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("arch", "export", SMALL, "--out", str(blocker / "x.onnx"), "--no-check")
    assert_one_line_error(result, named=str(blocker / "x.onnx"))


def test_every_command_group_is_registered():
    names = {command.name for command in typer.main.get_command(app).commands.values()}
    assert {"arch", "lut", "search", "train", "eval", "demo"} <= names


def test_console_script_end_to_end():
    """The installed ``hwnas`` script: a malformed string prints one line and exits 2."""
    script = Path(sys.executable).parent / "hwnas"
    if not script.is_file():
        pytest.skip(f"console script not installed beside {sys.executable}")
    result = subprocess.run(
        [str(script), "arch", "flops", BAD_STRING], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: architecture string {BAD_STRING!r}: part 'ir_k3_e7x_c16_s1': unknown field 'e7x'"
    ]
    assert result.stdout == ""
    shown = subprocess.run([str(script), "arch", "flops", "fbnet_c", "--json"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and json.loads(shown.stdout)["params"] == count(
        get_model_spec("fbnet_c")).params
