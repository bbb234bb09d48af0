#!/usr/bin/env bash
# A 3-node loopback cluster (one drive per node, Reed–Solomon 2+1: one shard
# per node) against a single node with the same coding on 3 drives, measured
# with cairn-bench (16 MiB PUT/GET c=4, 4 KiB PUT c=64). All processes share
# this machine's cores, so this shows the cost of the cluster's extra work,
# not what separate machines would do.
#
#   bench/cluster.sh               # 3 repetitions
#   REPS=1 bench/cluster.sh
#
# Env: REPS (3), CAIRN (a release cairn; default: build the workspace),
# CAIRN_BENCH (default: the one built with cairn, or build it alone),
# DATA_ROOT (/tmp), TARGET ("follower": clients talk to node 2; "leader":
# node 1 — the node that starts the cluster normally leads it).
# Writes bench/results/<date>-<commit>-cluster/results.jsonl and summary.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
REPS=${REPS:-3}
DATA_ROOT=${DATA_ROOT:-/tmp}
TARGET=${TARGET:-follower}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

release="${CARGO_TARGET_DIR:-$root/target}/release"
if [ -z "${CAIRN:-}" ]; then
  (cd "$root" && cargo build --release --locked --workspace >&2)
  CAIRN="$release/cairn"
  CAIRN_BENCH=${CAIRN_BENCH:-$release/cairn-bench}
fi
if [ -z "${CAIRN_BENCH:-}" ]; then
  (cd "$root" && cargo build --release --locked --workspace --bin cairn-bench >&2)
  CAIRN_BENCH="$release/cairn-bench"
fi
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
OUTDIR="$here/results/$(date -u +%Y-%m-%d)-$commit-cluster"
mkdir -p "$OUTDIR"
OUT="$OUTDIR/results.jsonl"
: > "$OUT"

export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=bench-secret-0123456789abcdefghijklmn
export CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY
export CAIRN_MASTER_KEY=$(printf '5a%.0s' $(seq 1 32))
export CAIRN_CLUSTER_SECRET=$(printf 'c3%.0s' $(seq 1 32))
export CAIRN_LOG=warn
PIDS=()
DATA=""
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  [ -n "$DATA" ] && rm -rf "$DATA"
  DATA=""
}
trap stop_all EXIT
wait_ready() {
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$1/health/ready" >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "port $1 never became ready"; exit 1
}

# start_single / start_cluster set ENDPOINT and SP (the pid cairn-bench samples).
start_single() {
  DATA=$(mktemp -d "$DATA_ROOT/cairn-bench-XXXXXX")
  "$CAIRN" server --data-dir "$DATA" --listen 127.0.0.1:9400 --admin-listen 127.0.0.1:9401 \
    --drives "$DATA/d0,$DATA/d1,$DATA/d2" --data-shards 2 --parity-shards 1 > "$DATA.log" 2>&1 &
  PIDS+=($!); SP=$!
  wait_ready 9401
  ENDPOINT=http://127.0.0.1:9400
}
start_cluster() {
  DATA=$(mktemp -d "$DATA_ROOT/cairn-bench-XXXXXX")
  export CAIRN_CLUSTER_NODES=1=127.0.0.1:9510,2=127.0.0.1:9520,3=127.0.0.1:9530
  for i in 1 2 3; do
    "$CAIRN" server --data-dir "$DATA/n$i" --listen "127.0.0.1:94${i}0" --admin-listen "127.0.0.1:94${i}1" \
      --node-id "$i" --drives "$DATA/n$i/d0" --data-shards 2 --parity-shards 1 > "$DATA/n$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in 1 2 3; do wait_ready "94${i}1"; done
  case $TARGET in
    leader) ENDPOINT=http://127.0.0.1:9410; SP=${PIDS[0]} ;;
    *) ENDPOINT=http://127.0.0.1:9420; SP=${PIDS[1]} ;;
  esac
  unset CAIRN_CLUSTER_NODES
}

run() {
  local label=$1; shift
  log "$label: cairn-bench $*"
  "$CAIRN_BENCH" "$@" --endpoint "$ENDPOINT" --server-pid "$SP" --label "$label" --json >> "$OUT" ||
    log "$label: cairn-bench exit $? (3 = some requests failed or returned wrong data)"
}

for setup in single cluster; do
  for r in $(seq 1 "$REPS"); do
    "start_$setup"
    run "$setup-put-16MiB-c4-r$r" put -s 16MiB -n 48 -c 4 --seed "$r" --prefix "big/"
    run "$setup-get-16MiB-c4-r$r" get -s 16MiB -c 4 -d 10s --seed "$r" --prefix "big/"
    run "$setup-put-4KiB-c64-r$r" put -s 4KiB -c 64 -d 10s --seed "$r" --prefix "small/"
    stop_all
  done
done

python3 - "$OUT" > "$OUTDIR/summary.md" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    label = r.get("label", "")
    base = label.rsplit("-r", 1)[0]
    runs.setdefault(base, []).append(r)
def val(r):
    # cairn-bench's fields; results of the older external tool used mib_s/ops_s.
    if "-16MiB-" in r["label"]:
        return r.get("mib_per_sec", r.get("mib_s"))
    return r.get("ops_per_sec", r.get("ops_s"))
print("| workload | single node (2+1, 3 drives) | 3-node cluster (2+1) | ratio | cluster errors |")
print("|---|---|---|---|---|")
for w in ["put-16MiB-c4", "get-16MiB-c4", "put-4KiB-c64"]:
    s = [val(r) for r in runs.get("single-" + w, [])]
    c = [val(r) for r in runs.get("cluster-" + w, [])]
    if not s or not c:
        continue
    ms, mc = statistics.median(s), statistics.median(c)
    unit = "MiB/s" if "16MiB" in w else "ops/s"
    errors = sum(r["errors"] + r.get("verify_failures", 0) for r in runs.get("cluster-" + w, []))
    print(f"| {w} | {ms:,.0f} {unit} | {mc:,.0f} {unit} | {mc / ms:.2f}x | {errors} |")
EOF
cat "$OUTDIR/summary.md"
