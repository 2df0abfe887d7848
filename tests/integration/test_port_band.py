"""Ports for parallel test workers: a band of each worker's own, each port handed out once.

Each check runs in a child process, so the band it sets is not this worker's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from duetime import localdapr
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
EPHEMERAL_FROM = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def _python(code: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def test_a_band_hands_out_each_free_port_once_in_turn_and_skips_a_bound_one() -> None:
    first = free_port()  # free now, whatever the band's neighbours are
    child = _python(
        f"""
        import json, socket
        from duetime.localdapr import free_port, use_port_band
        held = socket.socket()
        held.bind(("127.0.0.1", {first} + 1))  # another process's server on the 2nd port
        use_port_band({first}, {first} + 5)
        print(json.dumps([free_port() for _ in range(12)]))
        """
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    ports = json.loads(out)
    band = set(range(first, first + 6))
    assert set(ports) <= band - {first + 1}
    assert ports[0] == first
    turn = len(set(ports))  # the band's free ports, each once, then the same turn again
    assert turn >= 3 and len(set(ports[:turn])) == turn
    assert ports[turn : 2 * turn] == ports[:turn]


def test_outside_a_band_the_kernel_picks() -> None:
    child = _python(
        """
        from duetime.localdapr import free_port
        print(free_port())
        """
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and int(out) >= EPHEMERAL_FROM


def test_each_worker_claims_a_band_of_its_own_below_the_ephemeral_range() -> None:
    claim = """
        import sys
        import tests.conftest as c
        from duetime import localdapr
        c._claim_port_band()
        print(localdapr._band.start, localdapr._band.stop - 1, flush=True)
        sys.stdin.read()  # hold the band until the test is done
        """
    workers = [_python(claim) for _ in range(2)]
    try:
        bands = []
        for worker in workers:
            assert worker.stdout is not None
            first, last = map(int, worker.stdout.readline().split())
            bands.append(range(first, last + 1))
    finally:
        for worker in workers:
            worker.communicate(timeout=60)
    one, two = bands
    assert not set(one) & set(two)
    assert max(one.stop, two.stop) <= EPHEMERAL_FROM
    mine = localdapr._band  # this worker's, under xdist
    if mine is not None:
        assert not set(mine) & (set(one) | set(two))
