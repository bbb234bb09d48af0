#!/bin/bash
# The cost of sealing metadata records at rest (docs/performance.md
# "Metadata sealed at rest"): two release binaries, BASE (before sealing)
# and NEW, each on its own fresh data dir, alternating ROUNDS times:
#   - s3bench put: 10,000 new 4 KiB keys (c=16; the small-object path: one
#     sealed object record per PUT),
#   - s3bench get: 10 s of GETs of them (one record opened per GET),
#   - s3bench list: 10 s of full ListObjectsV2 listings of the 10,000 keys
#     (1,000 records opened per page; ops/s = pages/s),
# prints each run and the medians.
# Env: BASE, NEW (release binaries), S3B (s3bench), ROUNDS (3).
set -u
BASE=${BASE:?the release binary before sealing}
NEW=${NEW:-target/release/cairn}
S3B=${S3B:-$HOME/.cache/s3bench-target/release/s3bench}
ROUNDS=${ROUNDS:-3}
D=/tmp/metabench; rm -rf $D; mkdir -p $D
export AWS_ACCESS_KEY_ID=AKBENCH0000000000001 AWS_SECRET_ACCESS_KEY='Xk3u9Qw7Zp2Lm5Nb8Vc1Rt4Yh6Jd0Fg3Sa7Ke2' AWS_DEFAULT_REGION=us-east-1
E=http://127.0.0.1:19430
one() { # binary name round: a fresh server, put, get, list; prints "put get list"
  local dir=$D/$2-$3
  CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY $1 server --data-dir $dir/data \
    --listen 127.0.0.1:19430 --admin-listen 127.0.0.1:19431 > $dir.log 2>&1 &
  local pid=$!
  sleep 2
  local out=""
  for op in put get list; do
    if [ $op = put ]; then dur=""; else dur="-d 10s"; fi
    $S3B --endpoint $E -q -b bench --prefix p -n 10000 -s 4096 $dur -c 16 --server-pid $pid $op --json $dir-$op.json > /dev/null
    out="$out $(python3 -c "import json;d=[json.loads(l) for l in open('$dir-$op.json')][-1];print(round(d['ops_s']))")"
  done
  kill $pid; wait $pid 2>/dev/null
  echo $out
}
declare -A res
for r in $(seq 1 $ROUNDS); do
  for b in $([ $((r % 2)) = 1 ] && echo "base new" || echo "new base"); do
    if [ $b = base ]; then bin=$BASE; else bin=$NEW; fi
    res[$b-$r]=$(one $bin $b $r)
  done
  echo "round $r (put get list ops/s): base ${res[base-$r]}; new ${res[new-$r]}"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for i in 1 2 3; do
  op=$(echo put get list | cut -d' ' -f$i)
  b=(); n=(); for r in $(seq 1 $ROUNDS); do b+=($(echo ${res[base-$r]} | cut -d' ' -f$i)); n+=($(echo ${res[new-$r]} | cut -d' ' -f$i)); done
  echo "median $op: base $(med "${b[@]}"), new $(med "${n[@]}")"
done
