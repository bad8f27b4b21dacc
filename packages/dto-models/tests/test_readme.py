"""The README's example runs and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_example_prints_the_documented_line(tmp_path: Path) -> None:
    text = README.read_text()
    example = text.split("## Example", 1)[1]
    code = re.search(r"```python\n(.*?)```", example, re.S).group(1)
    printed = re.search(r"\nprints `([^`]*)`", example).group(1)
    code = code.replace('"/tmp/smpl"', repr(str(tmp_path)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    assert out.getvalue().strip() == printed
