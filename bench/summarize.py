#!/usr/bin/env python3
"""Median tables from bench/matrix.sh results against Cairn's performance targets.

Usage: bench/summarize.py results.jsonl > summary.md

Runs are grouped by their label without the trailing "-r<N>" (the
repetition); each figure is the median over the repetitions, with the
minimum and maximum beside it. Peak RSS is the largest VmHWM any run saw.
Reads cairn-bench's JSON lines (bench/README.md) and, for older results in
bench/results, the flat fields of the external tool used before it.
"""
import json
import re
import statistics
import sys
from collections import OrderedDict

# group label -> (what, metric key, unit, target, higher is better, command)
TARGETS = OrderedDict([
    ("big-put-16MiB-c4", ("PUT 16 MiB random, c=4", "mib_s", "MiB/s", 660, True,
                          "cairn-bench put -s 16MiB -n 64 -c 4")),
    ("big-get-16MiB-c4", ("GET 16 MiB, c=4", "mib_s", "MiB/s", 1200, True,
                          "cairn-bench get -s 16MiB -c 4 -d 10s")),
    ("small-put-4KiB-c64", ("PUT 4 KiB, c=64 (fsync'd)", "ops_s", "ops/s", 4800, True,
                            "cairn-bench put -s 4KiB -c 64 -d 10s")),
    ("small-get-4KiB-c64", ("GET 4 KiB, c=64", "ops_s", "ops/s", 25000, True,
                            "cairn-bench get -s 4KiB -c 64 -d 10s")),
    ("iot-c64", ("iot, c=64", "ops_s", "ops/s", 7400, True,
                 "cairn-bench iot -c 64 -d 10s")),
    ("list-10k-c1", ("ListObjectsV2, 10k keys, 1 lister", "list_keys_s", "keys/s", 260000, True,
                     "cairn-bench list -n 10000 -c 1 -d 10s")),
])


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def normalize(run):
    """The flat fields this script reads, from either result format."""
    if run.get("tool") != "cairn-bench":
        return run  # older tool's lines and clients.sh's: already flat
    flat = dict(run)
    latency = run.get("latency_ms") or {}
    server = run.get("server") or {}
    listed = run.get("list") or {}
    hwm = server.get("hwm_mib")
    flat.update({
        "secs": run.get("seconds"),
        "ops_s": run.get("ops_per_sec"),
        "mib_s": run.get("mib_per_sec"),
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
        "list_keys": listed.get("keys", 0),
        "server_hwm_kib": hwm * 1024 if hwm is not None else None,
        "errors": run.get("errors", 0) + run.get("verify_failures", 0),
    })
    return flat


def load(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    runs.append(normalize(json.loads(line)))
    return runs


def group(runs):
    groups = OrderedDict()
    for r in runs:
        label = r.get("label", "")
        groups.setdefault(re.sub(r"-r\d+$", "", label), []).append(r)
    return groups


def metric(run, key):
    if key == "list_keys_s":
        secs = run.get("secs") or 0
        return run.get("list_keys", 0) / secs if secs else None
    return run.get(key)


def main(paths):
    runs = load(paths)
    groups = group(runs)
    out = []
    out.append("| workload | target | median (min – max) | p99 ms | reps | met | command |")
    out.append("|---|---|---|---|---|---|---|")
    for name, (what, key, unit, target, higher, cmd) in TARGETS.items():
        rs = groups.get(name, [])
        vals = [metric(r, key) for r in rs]
        m = med(vals)
        p99 = med([r.get("p99_ms") for r in rs])
        met = "-" if m is None else ("yes" if (m >= target if higher else m <= target) else "no")
        failed = sum(r.get("errors") or 0 for r in rs)
        if failed:
            met = f"no: {failed:,} requests failed"
        span = f"{fmt(min(v for v in vals if v is not None))} – {fmt(max(v for v in vals if v is not None))}" if m is not None else "-"
        out.append(f"| {what} | ≥ {target:,} {unit} | **{fmt(m)}** {unit} ({span}) | {fmt(p99, 1)} | {len(rs)} | {met} | `{cmd}` |")
    # signed vs unsigned payload
    signed = med([r.get("mib_s") for r in groups.get("signed-put-16MiB-c4", [])])
    unsigned = med([r.get("mib_s") for r in groups.get("big-put-16MiB-c4", [])])
    if signed and unsigned:
        ratio = signed / unsigned
        out.append(f"| signed-payload PUT 16 MiB vs unsigned | ≥ 0.80× | **{ratio:.2f}×** ({fmt(signed)} vs {fmt(unsigned)} MiB/s) | - | {len(groups.get('signed-put-16MiB-c4', []))} | {'yes' if ratio >= 0.8 else 'no'} | `cairn-bench put -s 16MiB -n 64 -c 4 --payload signed` |")
    # peak RSS over everything
    hwm = [r.get("server_hwm_kib") for r in runs if isinstance(r.get("server_hwm_kib"), (int, float))]
    if hwm:
        peak = max(hwm) / 1024
        out.append(f"| peak RSS over the whole matrix | ≤ 256 MiB | **{peak:,.0f}** MiB | - | - | {'yes' if peak <= 256 else 'no'} | VmHWM via `--server-pid` |")
    # aws CLI 1 GiB
    for case, target in (("up-1GiB", 5.0), ("down-1GiB", None)):
        rs = groups.get(f"clients-awscli-{case}", [])
        secs = med([r.get("secs") for r in rs if r.get("rc") == 0])
        if secs is not None:
            t = f"≤ {target:.0f} s" if target else "-"
            met = ("yes" if secs <= target else "no") if target else "-"
            out.append(f"| aws CLI, one 1 GiB file {case.split('-')[0]} | {t} | **{secs:.1f}** s | - | {len(rs)} | {met} | `bench/clients.sh` (`aws s3 cp`, defaults) |")
    # every other group, plainly
    extra = [g for g in groups if g not in TARGETS and not g.startswith(("signed-", "clients-"))]
    if extra:
        out.append("")
        out.append("| other runs | MiB/s | ops/s | p50 ms | p99 ms | peak RSS MiB | reps |")
        out.append("|---|---|---|---|---|---|---|")
        for g in extra:
            rs = groups[g]
            hwm = max((r.get("server_hwm_kib") or 0) for r in rs) / 1024
            out.append(f"| {g} | {fmt(med([r.get('mib_s') for r in rs]), 1)} | {fmt(med([r.get('ops_s') for r in rs]))} | {fmt(med([r.get('p50_ms') for r in rs]), 2)} | {fmt(med([r.get('p99_ms') for r in rs]), 1)} | {hwm:,.0f} | {len(rs)} |")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
