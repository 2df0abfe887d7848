"""The API docs page, rendered by a real browser with no network beyond loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import Server


def render(url: str, profile: Path) -> str:
    browser = shutil.which("chromium")
    assert browser, "chromium missing: ./scripts/test.sh installs it from Debian packages"
    result = subprocess.run(
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
    return result.stdout


def test_swagger_ui_lists_the_jobs_api(make_server: Callable[..., Server], tmp_path: Path) -> None:
    server = make_server().start()
    dom = render(f"{server.url}/docs", tmp_path / "profile")
    assert "swagger-ui" in dom
    assert 'class="opblock' in dom  # operations rendered from /openapi.json by the bundled JS
    for path in ("/v1.0/jobs/{name}", "/v1.0/jobs", "/v1.0/deadletters", "/job/{name}"):
        assert path in dom
