"""The API docs page, rendered by a real browser with no network beyond loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import Server


def render(url: str, profile: Path) -> str:
    """The DOM once the page's scripts ran. A Chromium that exits printing nothing (seen
    once on a loaded machine, beside the web app's browser tests) is started once more; its
    exit status and last error lines are in the failure if it does so twice."""
    first = _dump(url, profile / "1")
    if first.stdout.strip():
        return first.stdout
    second = _dump(url, profile / "2")
    assert second.stdout.strip(), (
        f"chromium printed no DOM twice: exit {first.returncode} then {second.returncode}; "
        f"{second.stderr[-2000:]}"
    )
    return second.stdout


def _dump(url: str, profile: Path) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium")
    assert browser, "chromium missing: ./scripts/test.sh installs it from Debian packages"
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_swagger_ui_lists_the_jobs_api(make_server: Callable[..., Server], tmp_path: Path) -> None:
    server = make_server().start()
    dom = render(f"{server.url}/docs", tmp_path / "profile")
    assert "swagger-ui" in dom
    assert 'class="opblock' in dom  # operations rendered from /openapi.json by the bundled JS
    for path in ("/v1.0/jobs/{name}", "/v1.0/jobs", "/v1.0/deadletters", "/job/{name}"):
        assert path in dom
