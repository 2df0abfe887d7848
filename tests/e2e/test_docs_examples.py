"""Every shell and Python example in README.md and docs/**/*.md runs as written.

Each file's fenced `sh` and `python` blocks run in order in one bash session (`set -e -o
pipefail`, curl failing on HTTP errors), in a fresh directory that links the checkout's
`.venv`, `scripts`, `examples`, `deploy` and `bench`, with a fresh `DUETIME_DATA_DIR`; servers
the examples start in the background are stopped with the session. HTML comments just before
a block steer it:

- `<!-- not run: WHY -->` skips the block; every skip is listed in `SKIPPED` below, so a new
  one is a decision, not an accident;
- `<!-- file: NAME -->` writes the block to NAME instead of running it (the next blocks use it).

A file whose examples talk to a running duetime without starting one says
`<!-- docs test: with a server -->`, and the session starts `./scripts/run.sh` first. The
examples use duetime's documented ports (8000, 50001, 3000...), so the files run one at a
time (one xdist group, and a lock in the temp dir against another test run on the machine)
and no other test binds those ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import signal
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNNABLE = {"sh", "python"}
LINKED = [".venv", "scripts", "examples", "deploy", "bench", "pyproject.toml"]
WITH_SERVER = "<!-- docs test: with a server -->"

# (file, first line of the block) -> why it does not run here
SKIPPED = {
    ("README.md", "./scripts/run.sh"): "the quick start below starts it",
    ("README.md", "./scripts/test.sh"): "it is this test run",
    ("README.md", ".venv/bin/duetime dapr up &"): "docs/explanation/backends.md runs it",
    ("docs/benchmarks.md", ".venv/bin/python -m bench.lateness"): "minutes of load",
    ("docs/benchmarks.md", "export DUETIME_JWT_SECRET="): "needs wrk",
    ("docs/benchmarks.md", ".venv/bin/python -m bench.webhooks"): "minutes of load",
    ("docs/benchmarks.md", ".venv/bin/python -m bench.sse_fanout"): "minutes of load",
    ("docs/benchmarks.md", ".venv/bin/python -m bench.dapr_vs_embedded"): "minutes of load",
    ("docs/benchmarks.md", ".venv/bin/python -m bench.pubsub_e2e"): "minutes of load",
    ("docs/benchmarks.md", ".venv/bin/python -m bench.peers"): "minutes of load",
    ("docs/howto/kubernetes.md", "dapr init -k"): "needs a cluster",
    ("docs/howto/kubernetes.md", "helm repo add dapr"): "needs a cluster",
    ("docs/howto/kubernetes.md", "helm install duetime"): "needs a cluster",
    ("docs/howto/kubernetes.md", "kubectl get pods"): "needs a cluster",
    ("docs/howto/kubernetes.md", "helm upgrade duetime"): "needs a cluster",
    ("docs/howto/kubernetes.md", "kubectl create secret"): "needs a cluster",
    ("docs/howto/kubernetes.md", "kubectl port-forward"): "needs a cluster",
    ("docs/howto/postgresql.md", "DUETIME_DATABASE_URL="): "needs a PostgreSQL server",
    ("docs/howto/receive-triggers.md", "async def handle"): "a fragment",
    ("docs/howto/webhooks.md", "TOKEN=$(.venv/bin/duetime token alice)"): "needs a public HTTPS",
}


@dataclass
class Block:
    doc: str
    line: int
    lang: str
    text: str
    steer: str  # the HTML comment right before the fence, if any

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0]


FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```$", re.S | re.M)  # also inside a list item
STEER = re.compile(r"<!--\s*(not run|file):\s*(.*?)\s*-->\s*$")


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        steer = before[-1] if before and STEER.search(before[-1]) else ""
        line = text.count("\n", 0, match.start()) + 1
        rel = str(doc.relative_to(ROOT))
        body = textwrap.dedent(match.group(3))
        found.append(Block(rel, line, match.group(2), body, steer.strip()))
    return found


def _skip_key(block: Block) -> tuple[str, str] | None:
    for (doc, start), _ in SKIPPED.items():
        if doc == block.doc and block.first_line.startswith(start):
            return doc, start
    return None


def _script(doc: Path, work: Path) -> str:
    lines = [
        "set -e -o pipefail",
        # curl fails on an HTTP error, with the body shown (an example's own -f wins)
        'curl() { case " $* " in *" -sf "*|*" -f "*) command curl --max-time 60 "$@";;'
        ' *) command curl --fail-with-body --max-time 60 "$@";; esac; }',
    ]
    if WITH_SERVER in doc.read_text():
        lines += [
            "./scripts/run.sh > duetime-server.log 2>&1 &",
            "until curl -sf http://127.0.0.1:8000/readyz; do sleep 0.5; done",
        ]
    for n, block in enumerate(blocks(doc)):
        steer = STEER.search(block.steer)
        if steer and steer.group(1) == "file":
            (work / steer.group(2)).write_text(block.text)
            continue
        if block.lang not in RUNNABLE or (steer and steer.group(1) == "not run"):
            continue
        lines.append(f"echo {shlex.quote(f'### {block.doc}:{block.line}')} >&2")
        if block.lang == "python":
            (work / f"block-{n}.py").write_text(block.text)
            lines.append(f".venv/bin/python block-{n}.py")
        else:
            lines.append(block.text)
    lines.append("echo '### done' >&2")
    return "\n".join(lines) + "\n"


def _documents_with_examples() -> list[Path]:
    return [d for d in DOCS if any(b.lang in RUNNABLE for b in blocks(d))]


def test_every_skip_is_listed_and_every_listed_skip_exists() -> None:
    marked = {}
    for doc in DOCS:
        for block in blocks(doc):
            steer = STEER.search(block.steer)
            if block.lang in RUNNABLE and steer and steer.group(1) == "not run":
                key = _skip_key(block)
                assert key is not None, f"{block.doc}:{block.line} is skipped but not listed"
                assert steer.group(2), f"{block.doc}:{block.line}: say why it is not run"
                marked[key] = steer.group(2)
    assert set(marked) == set(SKIPPED), set(SKIPPED) ^ set(marked)


@pytest.mark.xdist_group("docs-ports")
@pytest.mark.timeout(400)
@pytest.mark.parametrize("doc", _documents_with_examples(), ids=lambda d: str(d.relative_to(ROOT)))
def test_examples_run_as_written(doc: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUETIME_")}
    for kept in ("DUETIME_DAPR_BIN_DIR", "DUETIME_HELM_BIN", "DUETIME_KAFKA_LIBS"):
        if kept in os.environ:
            env[kept] = os.environ[kept]
    env["DUETIME_DATA_DIR"] = str(tmp_path / "data")
    if "DUETIME_HELM_BIN" in os.environ:  # the docs call it `helm`
        env["PATH"] = f"{Path(os.environ['DUETIME_HELM_BIN']).parent}:{env['PATH']}"
    script = _script(doc, work)
    (work / "session.sh").write_text(script)
    log = work / "session.log"
    with _documented_ports(), log.open("w") as out:
        # output to a file, not a pipe: servers left in the background keep a pipe open
        session = subprocess.Popen(
            ["bash", "session.sh"],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the servers it starts go with it
        )
        try:
            session.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _stop_group(session.pid)
            session.wait(5)
    output = log.read_text()
    assert session.returncode == 0 and "### done" in output, (
        f"an example in {doc.relative_to(ROOT)} failed (the last ### line says which):\n"
        f"{output[-4000:]}"
    )


@contextlib.contextmanager
def _documented_ports() -> Iterator[None]:
    """Hold the documented ports against docs examples of another test run on this machine."""
    with open(Path(tempfile.gettempdir()) / "duetime-documented-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _stop_group(pgid: int) -> None:
    """SIGTERM to whatever the examples left running, then SIGKILL after 15 s."""
    import time

    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def test_the_webhook_receiver_example_verifies_as_the_docs_say() -> None:
    """examples/webhook_receiver.py carries the verification function of webhooks.md as is."""
    [snippet] = [b.text for b in blocks(ROOT / "docs/howto/webhooks.md") if b.lang == "python"]
    function = snippet[snippet.index("def verify_webhook") :].strip()
    assert function in (ROOT / "examples" / "webhook_receiver.py").read_text()
