#!/usr/bin/env bash
# Times the aws CLI (default settings, from PyPI) uploading and downloading
# one 1 GiB file against a running server, REPS times; one JSON line per run.
#
# Env: CAIRN_BENCH_ENDPOINT (server URL), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# OUT (JSON lines), REPS (3), SERVER_PID (adds the server's peak RSS),
# WORK (scratch dir with room for 2 GiB; default a temporary dir).
set -euo pipefail
EP=${CAIRN_BENCH_ENDPOINT:?server URL}
OUT=${OUT:-clients.jsonl}
REPS=${REPS:-3}
if [ -z "${WORK:-}" ]; then
  WORK=$(mktemp -d /tmp/cairn-clients-XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
BUCKET=clients
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
command -v aws >/dev/null || { log "aws CLI not installed (pip install awscli)"; exit 1; }

cfg="$WORK/aws.cfg"
printf '[default]\nregion = us-east-1\n' > "$cfg"
export AWS_CONFIG_FILE="$cfg" AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
[ -f "$WORK/big.bin" ] || head -c $((1 << 30)) /dev/urandom > "$WORK/big.bin"
aws --endpoint-url "$EP" s3 mb "s3://$BUCKET" >/dev/null 2>&1 || true

hwm() {
  if [ -n "${SERVER_PID:-}" ]; then
    awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo null
  else
    echo null
  fi
}

# timed CASE REP command...
timed() {
  local case=$1 rep=$2; shift 2
  local t0 t1 rc=0 secs
  t0=$(date +%s.%N)
  "$@" > "$WORK/last.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  secs=$(python3 -c "print(round($t1 - $t0, 3))")
  log "aws $case r$rep: ${secs}s rc=$rc"
  [ $rc -ne 0 ] && tail -5 "$WORK/last.log" >&2
  echo "{\"tool\":\"clients.sh\",\"label\":\"clients-awscli-$case-r$rep\",\"client\":\"awscli\",\"case\":\"$case\",\"secs\":$secs,\"rc\":$rc,\"bytes\":$((1 << 30)),\"server_hwm_kib\":$(hwm)}" >> "$OUT"
}

for r in $(seq 1 "$REPS"); do
  timed up-1GiB "$r" aws --endpoint-url "$EP" s3 cp --no-progress "$WORK/big.bin" "s3://$BUCKET/big-r$r.bin"
  timed down-1GiB "$r" aws --endpoint-url "$EP" s3 cp --no-progress "s3://$BUCKET/big-r$r.bin" "$WORK/down.bin"
  cmp -s "$WORK/big.bin" "$WORK/down.bin" || { log "downloaded bytes differ"; exit 1; }
  rm -f "$WORK/down.bin"
done
