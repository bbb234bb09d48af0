#!/usr/bin/env bash
# The standard performance matrix: a fresh release `cairn` on a temporary
# data dir, driven by cairn-bench (this repository's bench/ crate) over
# loopback, every workload repeated REPS times.
#
#   bench/matrix.sh                 # everything, 3 repetitions (~10 min)
#   REPS=1 SECTIONS="big small" bench/matrix.sh
#
# Writes bench/results/<date>-<commit>/: results.jsonl (one cairn-bench JSON
# line per run, plus the aws CLI timings of bench/clients.sh) and summary.md
# (medians against the targets, made by bench/summarize.py).
#
# Env: REPS (3), SECTIONS (subset of "big small iot list signed sizes conc
# large list1m clients"; default all but "sizes conc large list1m"), CAIRN
# (a cairn binary; default: build the workspace in release), CAIRN_BENCH (a
# cairn-bench binary; default: the one built with cairn, or build it alone),
# PORT (9300; the admin listener is PORT+1), DATA_ROOT (where the temporary
# data dir goes, /tmp), SERVER_ENV (extra environment for the server only,
# e.g. "MALLOC_ARENA_MAX=2"), LABEL (a suffix for the results dir, e.g.
# "arena2"), DROP_CACHES (1: as root, `sync` and drop the page cache before
# each 16 MiB PUT run — on some VMs a page cache grown into guest memory the
# host has not backed yet makes every copy into it ~10x dearer; see
# docs/performance.md, "Measuring well").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
REPS=${REPS:-3}
SECTIONS=${SECTIONS:-"big small iot list signed clients"}
PORT=${PORT:-9300}
DATA_ROOT=${DATA_ROOT:-/tmp}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
has() { [[ " $SECTIONS " == *" $1 "* ]]; }

release="${CARGO_TARGET_DIR:-$root/target}/release"
if [ -z "${CAIRN:-}" ]; then
  log "building cairn and cairn-bench (release, whole workspace)"
  (cd "$root" && cargo build --release --locked --workspace >&2)
  CAIRN="$release/cairn"
  CAIRN_BENCH=${CAIRN_BENCH:-$release/cairn-bench}
fi
if [ -z "${CAIRN_BENCH:-}" ]; then
  log "building cairn-bench (release; it links no RocksDB)"
  (cd "$root" && cargo build --release --locked --workspace --bin cairn-bench >&2)
  CAIRN_BENCH="$release/cairn-bench"
fi

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet 2>/dev/null || commit="$commit-dirty"
OUTDIR="$here/results/$(date -u +%Y-%m-%d)-$commit${LABEL:+-$LABEL}"
mkdir -p "$OUTDIR"
OUT="$OUTDIR/results.jsonl"
: > "$OUT"

DATA=$(mktemp -d "$DATA_ROOT/cairn-matrix-XXXXXX")
export AWS_ACCESS_KEY_ID=matrixkey AWS_SECRET_ACCESS_KEY=matrix-secret-0123456789abcdefghijkl
export CAIRN_BENCH_ENDPOINT="http://127.0.0.1:$PORT"
log "cairn $("$CAIRN" --version 2>/dev/null || echo '?') on $DATA, results in $OUTDIR"
# shellcheck disable=SC2086 # SERVER_ENV is a list of NAME=value words
env ${SERVER_ENV:-} CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  "$CAIRN" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" \
  --admin-listen "127.0.0.1:$((PORT + 1))" > "$DATA.log" 2>&1 &
SP=$!
cleanup() { kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$((PORT + 1))/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

# settle: waits (≤ 120 s) until RocksDB has no compaction pending, so a read
# benchmark does not share the cores with the compactions of the writes
# just before it.
settle() {
  for _ in $(seq 1 240); do
    pending=$(curl -sf "http://127.0.0.1:$((PORT + 1))/metrics" |
      awk '/^cairn_metadata_bytes\{kind="compaction_pending"\}/ {print $2}')
    [ "${pending:-0}" = "0" ] && return
    sleep 0.5
  done
  log "compactions still pending after 120 s"
}

# run LABEL cairn-bench-args...: one JSON line into $OUT.
run() {
  local label=$1; shift
  log "$label: cairn-bench $*"
  "$CAIRN_BENCH" "$@" --server-pid "$SP" --label "$label" --json >> "$OUT" ||
    log "$label: cairn-bench exit $? (3 = some requests failed or returned wrong data)"
}

# drop_caches: see DROP_CACHES above; never before a read workload.
drop_caches() {
  if [ "${DROP_CACHES:-0}" = 1 ]; then
    sync
    echo 3 > /proc/sys/vm/drop_caches || log "cannot drop the page cache (not root?)"
  fi
}

for r in $(seq 1 "$REPS"); do
  if has big; then
    drop_caches
    run big-put-16MiB-c4-r$r put -s 16MiB -n 64 -c 4 --seed "$r" --prefix "big/r$r/"
    run big-get-16MiB-c4-r$r get -s 16MiB -c 4 -d 10s --seed "$r" --prefix "big/r$r/"
  fi
  if has signed; then
    drop_caches
    run signed-put-16MiB-c4-r$r put -s 16MiB -n 64 -c 4 --seed $((100 + r)) --payload signed --prefix "signed/r$r/"
  fi
  if has small; then
    run small-put-4KiB-c64-r$r put -s 4KiB -c 64 -d 10s --seed "$r" --prefix "small/r$r/"
    run small-get-4KiB-c64-r$r get -s 4KiB -c 64 -d 10s --seed "$r" --prefix "small/r$r/"
  fi
  if has iot; then
    run iot-c64-r$r iot -c 64 -d 10s --prefix "iot/r$r/"
  fi
done
if has list; then
  log "list: writing 10,000 keys"
  "$CAIRN_BENCH" put -s 1KiB -n 10000 -c 32 --prefix list10k/ --json >/dev/null
  settle
  for r in $(seq 1 "$REPS"); do
    run list-10k-c1-r$r list -n 10000 -c 1 -d 10s --prefix list10k/
  done
fi
if has sizes; then
  # Throughput against object size (it should be flat from 16 MiB to 1 GiB).
  for size in 16MiB 256MiB 1GiB; do
    case $size in 16MiB) n=256 ;; 256MiB) n=16 ;; 1GiB) n=4 ;; esac   # 4 GiB each
    run "sizes-put-$size-c4-r1" put -s "$size" -n "$n" -c 4 --seed 7 --prefix "sizes/$size/"
    run "sizes-get-$size-c4-r1" get -s "$size" -c 4 -d 20s --seed 7 --prefix "sizes/$size/"
  done
fi
if has conc; then
  # Cost against concurrency: 16 MiB and 4 KiB PUT/GET at several levels.
  for c in 1 4 16; do
    run "conc-put-16MiB-c$c-r1" put -s 16MiB -n $((16 * c)) -c "$c" --seed $((200 + c)) --prefix "conc/big-c$c/"
    run "conc-get-16MiB-c$c-r1" get -s 16MiB -c "$c" -d 10s --seed $((200 + c)) --prefix "conc/big-c$c/"
  done
  for c in 1 16 64; do
    run "conc-put-4KiB-c$c-r1" put -s 4KiB -c "$c" -d 10s --seed $((300 + c)) --prefix "conc/small-c$c/"
    run "conc-get-4KiB-c$c-r1" get -s 4KiB -c "$c" -d 10s --seed $((300 + c)) --prefix "conc/small-c$c/"
  done
fi
if has large; then
  # One 5 GiB object up and down: the server's RSS must stay flat.
  run large-put-5GiB-c1-r1 put -s 5GiB -n 1 -c 1 --seed 9 --prefix large/
  run large-get-5GiB-c1-r1 get -s 5GiB -n 1 -c 1 --ops 1 -d 600s --seed 9 --prefix large/
fi
if has list1m; then
  # Page cost against bucket size: 1,000,000 keys vs the 10,000 of "list".
  log "list1m: writing 1,000,000 keys (takes a few minutes)"
  "$CAIRN_BENCH" put -s 1KiB -n 1000000 -c 64 --prefix list1m/ --json >/dev/null
  settle
  run list-1m-c1-r1 list -n 1000000 -c 1 -d 20s --prefix list1m/
fi
if has clients; then
  REPS=$REPS OUT="$OUT" SERVER_PID=$SP "$here/clients.sh"
fi
{
  echo "# Cairn benchmark matrix, $(date -u +%Y-%m-%dT%H:%MZ), commit $commit"
  echo
  echo "Release build, fresh data dir, cairn-bench over loopback on $(nproc) cores, medians of $REPS."
  [ -n "${SERVER_ENV:-}" ] && echo "Server environment: \`$SERVER_ENV\`."
  echo
} > "$OUTDIR/summary.md"
python3 "$here/summarize.py" "$OUT" >> "$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
log "done: $OUTDIR"
