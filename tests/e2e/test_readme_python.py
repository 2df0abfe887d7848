"""The README's Python example runs as written and fires its job."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_fires_its_job(tmp_path: Path) -> None:
    section = README.read_text().split("### Jobs from Python", 1)[1]
    block = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(block)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reminder-42 {'task': 42} "), done.stdout
    assert done.stdout.rstrip().endswith("False")
