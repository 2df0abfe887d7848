"""Every relative link in the README and docs points at a file that exists, and every
`#anchor` at a heading of that file (GitHub's slug rules); the subscriptions shown in the
events explanation are the ones duetime answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from duetime.api.pubsub import subscriptions

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *(ROOT / "deploy").rglob("*.md"),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_subscriptions_shown_are_the_ones_served() -> None:
    text = (ROOT / "docs" / "explanation" / "events.md").read_text()
    [block] = re.findall(r"```json\n(.*?)```", text, re.S)
    shown = json.loads(re.sub(r"^\s{2}", "", block, flags=re.M))
    assert shown == subscriptions("pubsub", "reminders-dead")
