"""Tables (every figure also as a ratio to duetime on SQLite) and the two plots."""

from __future__ import annotations

import math
import os
import platform
import statistics
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.peers.servers import pg_version, redis_version

REFERENCE = "duetime-sqlite"
_PACKAGES = ["apscheduler", "procrastinate", "psycopg", "arq", "celery", "kombu", "rq", "redis",
             "sqlalchemy", "asyncpg", "aiosqlite"]  # fmt: skip


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "postgresql": pg_version(),
             "redis-server": redis_version()}  # fmt: skip
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               "?")  # fmt: skip
    found["machine"] = f"{os.cpu_count()} vCPUs ({cpu}), load average {os.getloadavg()[0]:.1f}"
    return found


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per system, each measure pooled over its rounds (rates: median; lateness: the
    percentiles of all rounds' jobs together; counts: summed)."""
    out: dict[str, dict[str, Any]] = {n: {"errors": []} for n in results["systems"]}
    acc: dict[str, dict[str, list[Any]]] = {n: {} for n in results["systems"]}
    for turn in results["turns"]:
        name = turn["system"]
        if "error" in turn:
            out[name]["errors"].append(f"{turn['group']}: {turn['error']}")
            continue
        res = turn["result"]
        a = acc[name]
        if turn["group"] == "fast":
            for key, value in res["add"].items():
                a.setdefault(key, []).append(value)
            for key, value in res.items():
                if key.startswith("lateness_") or key == "burst":
                    a.setdefault(key, []).append(value)
        elif turn["group"] == "kill":
            a.setdefault("kill", []).append(res)
        else:
            a.setdefault("pending", []).append(res)
    for name, a in acc.items():
        s = out[name]
        for key in ("single_per_s", "batch_per_s"):
            if key in a:
                s[key] = statistics.median(a[key])
        for key, outs in a.items():
            if key.startswith("lateness_"):
                lat = [v for o in outs for v in o["lateness"]]
                s[key] = {
                    "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99),
                    "max": max(lat) if lat else math.nan,
                    "expected": sum(o["expected"] for o in outs),
                    "ran": sum(o["ran"] for o in outs),
                    "missing": sum(o["missing"] for o in outs),
                    "duplicates": sum(o["duplicates"] for o in outs),
                    "early": sum(o["early"] for o in outs),
                    "values": lat,
                }  # fmt: skip
        if "burst" in a:
            drains = []
            for o in a["burst"]:
                done = o["ran"] == o["expected"]
                drains.append(max(o["first_starts"]) - o["due"] if done else math.inf)
            first = a["burst"][0]
            s["burst"] = {
                "drain_s": statistics.median(drains),
                "first_s": min(first["first_starts"]) - first["due"] if first["ran"] else math.nan,
                "expected": sum(o["expected"] for o in a["burst"]),
                "ran": sum(o["ran"] for o in a["burst"]),
                "duplicates": sum(o["duplicates"] for o in a["burst"]),
                "curve": sorted(t - first["due"] for t in first["first_starts"]),
            }
        if "kill" in a:
            s["kill"] = {
                "expected": sum(k["outcome"]["expected"] for k in a["kill"]),
                "missing": sum(k["outcome"]["missing"] for k in a["kill"]),
                "duplicates": sum(k["outcome"]["duplicates"] for k in a["kill"]),
                "started_before_kill": sum(k["started_before_kill"] for k in a["kill"]),
            }
        if "pending" in a:
            p = a["pending"]
            s["pending"] = {
                "ready_s": statistics.median(x.get("ready_s", math.nan) for x in p),
                "ready_pending": min(x.get("ready_pending", 0) for x in p),
                "memory_pending": min(x.get("memory_pending", 0) for x in p),
                "rss_mb": statistics.median(x.get("rss_bytes", 0) for x in p) / 2**20,
                "store_mb": _median_or_none([x.get("store_bytes") for x in p]),
                "fill_per_s": statistics.median(x["fill_per_s"] for x in p),
                "capped": any(x.get("ready_capped") or x.get("memory_capped") for x in p),
            }
    return out


def _median_or_none(values: list[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) / 2**20 if present else None


def _num(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "never"
    if abs(x) >= 100:
        text = f"{x:,.0f}"
    elif abs(x) >= 10:
        text = f"{x:.1f}"
    else:
        text = f"{x:.2f}"
    return text + unit


def _ms(x: float) -> str:
    return _num(x * 1000, " ms") if not math.isnan(x) and abs(x) < 1 else _num(x, " s")


def _ratio(x: float | None, ref: float | None) -> str:
    if x is None or ref is None or not ref or math.isnan(x) or math.isnan(ref):
        return ""
    if math.isinf(x):
        return " (∞×)"
    r = x / ref
    return f" ({r:.2g}×)" if r < 10 else f" ({r:,.0f}×)"


def markdown(results: dict[str, Any]) -> str:
    s = summary(results)
    ref = s.get(REFERENCE, {})
    labels = results["systems"]
    lines = [f"Run {results['started']} – {results['finished']}, {results['rounds']} round(s), "
             f"sizes {results['sizes']}", ""]  # fmt: skip
    v = results.get("versions", {})
    if v:
        lines += [", ".join(f"{k} {val}" for k, val in v.items()), ""]
    lines += ["| system | add, one call each | add, batched | "
              + " | ".join(f"lateness at {r}/s: p50 · p99 · max" for r in results["sizes"]["rates"])
              + " | burst: due → all started |", "| --- " * (4 + len(results["sizes"]["rates"]))
              + "|"]  # fmt: skip
    for name, label in labels.items():
        x = s[name]
        single = _num(x.get("single_per_s"), "/s")
        single += _ratio(x.get("single_per_s"), ref.get("single_per_s"))
        batch = "no batch call"
        if "batch_per_s" in x:
            batch = _num(x["batch_per_s"], "/s") + _ratio(x["batch_per_s"], ref.get("batch_per_s"))
        row = [label, single, batch]
        for r in results["sizes"]["rates"]:
            lat = x.get(f"lateness_{r}")
            rl = ref.get(f"lateness_{r}", {})
            if lat is None:
                row.append("—")
                continue
            cell = (f"{_ms(lat['p50'])} · {_ms(lat['p99'])}{_ratio(lat['p99'], rl.get('p99'))}"
                    f" · {_ms(lat['max'])}")  # fmt: skip
            if lat["missing"] or lat["duplicates"] or lat["early"]:
                cell += (
                    f" (missing {lat['missing']}, dup {lat['duplicates']}, early {lat['early']})"
                )
            row.append(cell)
        b = x.get("burst")
        if b:
            cell = _ms(b["drain_s"]) + _ratio(b["drain_s"], ref.get("burst", {}).get("drain_s"))
            if b["ran"] < b["expected"]:
                cell += f" ({b['ran']:,} of {b['expected']:,} ran)"
            row.append(cell)
        else:
            row.append("—")
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "| system | kill -9 + restart: missing · duplicates (of) | restart → ready "
        "(pending) | RSS of its processes (pending) | store |",
        "| --- " * 5 + "|",
    ]
    for name, label in labels.items():
        x = s[name]
        k = x.get("kill")
        kcell = f"{k['missing']:,} · {k['duplicates']:,} (of {k['expected']:,})" if k else "—"
        p = x.get("pending")
        rp = ref.get("pending", {})
        if p:
            ready = (_ms(p["ready_s"]) + _ratio(p["ready_s"], rp.get("ready_s"))
                     + f" ({p['ready_pending']:,})")  # fmt: skip
            mem = (_num(p["rss_mb"], " MB") + _ratio(p["rss_mb"], rp.get("rss_mb"))
                   + f" ({p['memory_pending']:,})")  # fmt: skip
            store = _num(p["store_mb"], " MB") if p["store_mb"] is not None else "—"
            if p["capped"]:
                ready += f", fill capped at {p['fill_per_s']:,.0f}/s"
        else:
            ready = mem = store = "—"
        lines.append(f"| {label} | {kcell} | {ready} | {mem} | {store} |")
    errors = [f"- {labels[n]}: {e}" for n, x in s.items() for e in x["errors"]]
    if errors:
        lines += ["", "Errors:", *errors]
    return "\n".join(lines) + "\n"


def plots(results: dict[str, Any], directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary(results)
    labels = results["systems"]
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    rate = max(results["sizes"]["rates"])
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for name, label in labels.items():
        lat = s[name].get(f"lateness_{rate}")
        if not lat or not lat["values"]:
            continue
        values = sorted(max(v * 1000, 1e-2) for v in lat["values"])
        n = lat["expected"]
        ax.step(values, [(i + 1) / n for i in range(len(values))], where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("lateness, handler start − due time (ms, log scale)")
    ax.set_ylabel("fraction of jobs started")
    ax.set_title(f"Lateness, jobs due at {rate:,}/s (bench.peers)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = directory / "bench-peers-lateness.png"
    fig.savefig(path)
    plt.close(fig)
    made.append(path)
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for name, label in labels.items():
        b = s[name].get("burst")
        if not b or not b["curve"]:
            continue
        curve = b["curve"]
        ax.step(curve, range(1, len(curve) + 1), where="post", label=label)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("seconds since the common due time (linear to 0.1 s, then log)")
    ax.set_ylabel("jobs started")
    ax.set_title(f"Burst drain: {results['sizes']['burst']:,} jobs due at one instant")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = directory / "bench-peers-burst.png"
    fig.savefig(path)
    plt.close(fig)
    made.append(path)
    return made
