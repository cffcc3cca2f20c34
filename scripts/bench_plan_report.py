"""Markdown tables from the plan benchmarks' records (``plan-results.jsonl``, written by tests/bench/lab.py).

    .venv/bin/python scripts/bench_plan_report.py [RECORDS.jsonl] [--since ISO-TIME] [--min-mb 20]

RECORDS defaults to /tmp/edgefleet-bench-plan/plan-results.jsonl. Prints the matrix (per code measured, one
row per cell: the latest record of each cell and batch size), the thin link and the link-bound runs, as
docs/bench/plan.md shows them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def runs(rec: Record) -> dict[str, Record]:
    return {r["uploader"]: r for r in rec["runs"]}


def cpu_of(run: Record) -> str:
    """CPU seconds of a run (not recorded before the harness measured them)."""
    return f"{run['cpu_s']:.1f}" if "cpu_s" in run else "–"


def matrix(records: list[Record]) -> list[str]:
    latest: dict[tuple[int, float, float], Record] = {}
    for rec in records:
        latest[(rec["cpu_percent"], rec["rate_mbit"], rec["batch_mb"])] = rec
    rows = [
        "| CPU quota | link | batch MB | adaptive s | raw s | FLAC 5 s | rclone s | adaptive ÷ min(raw, FLAC 5) "
        "| rclone ÷ adaptive | CPU s adaptive / raw / FLAC 5 / rclone | load avg | at (UTC) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for (cpu, rate, mb), rec in sorted(latest.items()):
        r = runs(rec)
        secs = [r[k]["seconds"] for k in ("adaptive", "raw", "flac5", "rclone")]
        cpu_s = " / ".join(cpu_of(r[k]) for k in ("adaptive", "raw", "flac5", "rclone"))
        ok = "" if all(x["ok"] for x in r.values()) else " (a run FAILED)"
        rows.append(
            f"| {cpu} % | {rate:g} Mbit/s | {mb:g} | " + " | ".join(f"{s:.1f}" for s in secs)
            + f" | **{rec['adaptive_over_best']:.2f}** | {rec['rclone_over_adaptive']:.2f} | {cpu_s} | "
            f"{rec['machine']['load'][0]:.1f} | {rec['at'][11:16]}{ok} |"
        )  # fmt: skip
    return rows


def thin(rec: Record) -> list[str]:
    rows = [
        f"{rec['wav_mb']:g} MB WAV, {rec['kbit']:g} kbit/s, code {rec['machine']['commit']}, "
        f"{rec['delay_s'] * 1000:.0f} ms added "
        f"(measured {rec['measured_added_delay_s'] * 1000:.0f} ms), at {rec['at']}:",
        "",
        "| uploader | completed | wall s | stored MB | on the link MB | link MB ÷ stored MB | part retries "
        "| parts re-sent | all retries |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rec["runs"]:
        link = r["link_bytes"] / max(1, r["stored_bytes"])
        rows.append(
            f"| {r['uploader']} | {r['ok']} | {r['seconds']:.0f} | {r['stored_bytes'] / 1e6:.1f} | "
            f"{r['link_bytes'] / 1e6:.1f} | {link:.3f} | {r['part_retries']} | {r['parts_resent']} | {r['retries']} |"
        )
    return rows


def link_bound(rec: Record) -> list[str]:
    rate = rec["rate_mbit"] * 1e6 / 8
    rows = [
        f"{rec['batch_mb']:g} MB batch, {rec['rate_mbit']:g} Mbit/s, code {rec['machine']['commit']}, at {rec['at']}, "
        f"load {rec['machine']['load'][0]:.1f}:",
        "",
        "| uploader | stored MB | stored ÷ WAV | wall s | stored ÷ link rate s | efficiency | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rec["runs"]:
        ideal = r["stored_bytes"] / rate
        rows.append(
            f"| {r['uploader']} | {r['stored_bytes'] / 1e6:.1f} | {r['stored_bytes'] / r['wav_bytes']:.3f} | "
            f"{r['seconds']:.1f} | {ideal:.1f} | **{ideal / r['seconds']:.1%}** | {cpu_of(r)} |"
        )
    return rows


def main(argv: list[str]) -> int:
    since = argv[argv.index("--since") + 1] if "--since" in argv else ""
    least = argv[argv.index("--min-mb") + 1] if "--min-mb" in argv else "20"  # quick checks left out
    paths = [a for a in argv if not a.startswith("--") and a not in (since, least)]
    path = Path(paths[0] if paths else "/tmp/edgefleet-bench-plan/plan-results.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = [r for r in records if r["at"] >= since and r.get("batch_mb", r.get("wav_mb", 0)) >= float(least)]
    by = {name: [r for r in records if r["bench"] == name] for name in ("plan_matrix", "thin_link", "link_bound")}
    for code in dict.fromkeys(r["machine"]["commit"] for r in by["plan_matrix"]):
        print(f"\nThe matrix, code {code}:\n")
        print("\n".join(matrix([r for r in by["plan_matrix"] if r["machine"]["commit"] == code])))
    for rec in by["thin_link"]:
        print("\n" + "\n".join(thin(rec)))
    for rec in by["link_bound"]:
        print("\n" + "\n".join(link_bound(rec)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
