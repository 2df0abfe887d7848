"""`migrate` skips alembic for a database already at head: its reading of the migration
files must agree with alembic's."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from duetime.db import engine


def _alembic() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(engine._MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_heads_are_alembics() -> None:
    assert engine.script_heads() == set(_alembic().get_heads())


def test_a_branch_head_is_alembics() -> None:
    script = _alembic()
    for label in {label for rev in script.walk_revisions() for label in rev.branch_labels}:
        expected = {rev.revision for rev in script.get_revisions(f"{label}@head")}
        assert engine.script_heads(f"{label}@head") == expected, label


def test_every_revision_and_its_parents_are_read() -> None:
    script = _alembic()
    read = engine._revisions()
    assert set(read) == {rev.revision for rev in script.walk_revisions()}
    for rev in script.walk_revisions():
        assert read[rev.revision][0] == set(rev._all_down_revisions)


def test_other_revision_forms_go_to_alembic() -> None:
    assert engine.script_heads("0003") is None
    assert engine.script_heads("nobranch@head") is None
