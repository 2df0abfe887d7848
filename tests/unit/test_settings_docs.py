"""Every setting is in the settings reference, and the reference names no setting that is
gone."""

from __future__ import annotations

import re
from pathlib import Path

from duetime.settings import Settings

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "settings.md"


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    rows = re.findall(r"^\| ([^|]+)\|", REFERENCE.read_text(), re.M)
    documented = {name for row in rows for name in re.findall(r"`(DUETIME_[A-Z0-9_]+)`", row)}
    fields = {f"DUETIME_{name.upper()}" for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from docs/reference/settings.md"
    assert documented - fields == set(), "docs/reference/settings.md names unknown settings"


def test_the_grpc_stand_in_is_off_by_default_beside_a_real_daprd() -> None:
    from duetime.settings import Settings

    assert Settings(scheduler="embedded").grpc_port == 50001
    assert Settings(scheduler="dapr").grpc_port == 0  # daprd holds 50001 (duetime dapr up)
    assert Settings(scheduler="dapr", grpc_port=50009).grpc_port == 50009
