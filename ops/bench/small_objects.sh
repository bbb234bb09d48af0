#!/usr/bin/env bash
# Small-object benchmark behind docs/ARCHITECTURE.md "Small objects":
# a fresh release server with the given --inline-max-bytes, then 3 x 4 KiB PUT
# and 3 x iot at c=64 (10 s each) and one 4 KiB GET run, with cairn-bench.
#
#   cargo build --release --locked --workspace   # cairn and cairn-bench
#   ops/bench/small_objects.sh 4096 inline=4096 results.jsonl
set -euo pipefail
INLINE=${1:?inline max bytes}; LABEL=${2:?label}; OUT=${3:?jsonl output}
CAIRN=${CAIRN:-${CARGO_TARGET_DIR:-target}/release/cairn}
CAIRN_BENCH=${CAIRN_BENCH:-${CARGO_TARGET_DIR:-target}/release/cairn-bench}
DATA=$(mktemp -d /tmp/cairn-bench-XXXXXX)
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret0123456789abcdefghijklmnopq
export CAIRN_BENCH_ENDPOINT=http://127.0.0.1:9100
CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  "$CAIRN" server --data-dir "$DATA" --listen 127.0.0.1:9100 --admin-listen 127.0.0.1:9101 \
  --inline-max-bytes "$INLINE" >"$DATA.log" 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
sleep 1.5
for r in 1 2 3; do
  "$CAIRN_BENCH" put -s 4KiB -c 64 -d 10s --prefix "p$r/" --server-pid $SP --json --label "$LABEL put4k r$r" >>"$OUT"
  "$CAIRN_BENCH" iot -c 64 -d 10s --prefix "iot$r/" --server-pid $SP --json --label "$LABEL iot r$r" >>"$OUT"
done
"$CAIRN_BENCH" get -s 4KiB -c 64 -d 10s --prefix "p1/" --server-pid $SP --json --label "$LABEL get4k" >>"$OUT"
