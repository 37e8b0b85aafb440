"""Every Python line of the project fits the configured 100 characters (``[tool.ruff]`` in
pyproject.toml); ruff itself is not a test dependency, so this keeps the one rule it would
check that reviews keep catching."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 100


def test_no_python_line_is_longer_than_the_limit():
    long_lines = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("src", "tests", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if len(line) > LIMIT
    ]
    assert not long_lines, f"lines over {LIMIT} characters: {', '.join(long_lines)}"
