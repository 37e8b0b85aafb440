"""The reading layer: every file that is not what hwnas reads is one HwnasError naming it."""

from __future__ import annotations

import os
import re

import pytest

from hwnas.arch.spec import ArchSpec
from hwnas.errors import HwnasError, SpecError
from hwnas.io import read_json, read_text
from hwnas.settings import load_file


def test_a_good_file_reads(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"x": [1, 2.5, "é"]}', encoding="utf-8")
    assert read_json(path, "table") == {"x": [1, 2.5, "é"]}


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{}", "is not UTF-8 text (byte 0)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"[" + b"9" * 5000 + b"]", "holds a value hwnas cannot read"),
    (b"{", "is not valid JSON"),
])
def test_bad_json_is_one_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(HwnasError, match=re.escape(message)) as caught:
        read_json(path, "LUT file")
    assert str(path) in str(caught.value)


def test_what_is_not_a_regular_file_is_refused_before_it_is_read(tmp_path):
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)  # reading it would block forever
    with pytest.raises(HwnasError, match="is not a regular file"):
        read_json(pipe, "spec")
    with pytest.raises(HwnasError, match="is not a regular file"):
        read_text("/dev/zero", "spec")
    with pytest.raises(HwnasError, match="is a directory, not a file"):
        read_json(tmp_path, "spec")
    with pytest.raises(HwnasError, match="spec not found"):
        read_json(tmp_path / "missing.json", "spec")


def test_a_file_over_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 2000)
    with pytest.raises(HwnasError, match="2,000 bytes, more than the 1,000 hwnas reads"):
        read_text(path, "history", limit=1000)


def test_configs_and_json_specs_go_through_the_same_checks(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"dnas:\n  epochs: \xff\n")
    with pytest.raises(HwnasError, match="is not UTF-8 text"):
        load_file(config)
    with pytest.raises(SpecError, match="nested too deeply"):
        ArchSpec.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpecError, match="cannot be read"):
        ArchSpec.from_json("[" + "9" * 5000 + "]")
