#!/bin/bash
# Lifecycle under load (docs/performance.md "Lifecycle"): N 4 KiB objects are
# written, then a rule expiring them all is set; the PUT rate of a second
# bucket (s3bench put, 4 KiB, c=16, 15 s) is measured alone and while the
# pass expires, and the expiry rate during and after the PUT load.
# Env: CAIRN (release binary), S3B (s3bench), N (40000), RATE
# (--lifecycle-actions-per-sec; 0 = unlimited). Needs aws CLI and curl.
set -u
CAIRN=${CAIRN:-target/release/cairn}
S3B=${S3B:-$HOME/.cache/s3bench-target/release/s3bench}
RATE=${RATE:-0}
N=${N:-40000}
D=/tmp/lcbench; rm -rf $D; mkdir -p $D
export AWS_ACCESS_KEY_ID=AKBENCH0000000000001 AWS_SECRET_ACCESS_KEY='Xk3u9Qw7Zp2Lm5Nb8Vc1Rt4Yh6Jd0Fg3Sa7Ke2' AWS_DEFAULT_REGION=us-east-1
CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY $CAIRN server --data-dir $D/data --listen 127.0.0.1:19400 --admin-listen 127.0.0.1:19401 \
  --lifecycle-interval-secs 2 --lifecycle-day-secs 1 --lifecycle-actions-per-sec $RATE > $D/log 2>&1 &
PID=$!
sleep 2
E=http://127.0.0.1:19400
B="$S3B --endpoint $E -q"
m() { curl -s 127.0.0.1:19401/metrics | awk -v k="$1" '$1==k{print $2}'; }
$B -b expire --prefix x -n $N -s 4096 -c 16 put --json $D/fill.json > /dev/null
echo "filled $N objects"
# PUT alone, 15 s
$B -b other --prefix alone -d 15s -s 4096 -c 16 --server-pid $PID put --json $D/alone.json >/dev/null
python3 -c "import json;d=[json.loads(l) for l in open('$D/alone.json')][-1];print('PUT alone ops/s', round(d['ops_s']))"
cat > $D/lc.json <<J
{"Rules":[{"ID":"all","Filter":{},"Status":"Enabled","Expiration":{"Days":1}}]}
J
before=$(m 'cairn_lifecycle_actions_total{action="expire_current"}')
aws --endpoint-url $E s3api put-bucket-lifecycle-configuration --bucket expire --lifecycle-configuration file://$D/lc.json
t0=$(date +%s.%N)
# PUT beside the expiry, 15 s
$B -b other --prefix beside -d 15s -s 4096 -c 16 --server-pid $PID put --json $D/beside.json >/dev/null
mid=$(m 'cairn_lifecycle_actions_total{action="expire_current"}')
t1=$(date +%s.%N)
python3 -c "import json;d=[json.loads(l) for l in open('$D/beside.json')][-1];print('PUT beside lifecycle ops/s', round(d['ops_s']))"
echo "expired during the PUT load: $mid - $before in $(python3 -c "print(round($t1-$t0,1))") s (incl. up to 2 s wait for the pass)"
while :; do c=$(m 'cairn_lifecycle_actions_total{action="expire_current"}'); [ "${c%.*}" -ge "$N" ] && break; sleep 0.5; done
t2=$(date +%s.%N)
python3 -c "print('all $N expired after', round($t2-$t0,1), 's; after the PUT load ended:', round(($N-$mid)/max($t2-$t1,0.001)), 'expired/s alone')"
curl -s 127.0.0.1:19401/metrics | grep "^cairn_lifecycle"
kill $PID; wait $PID 2>/dev/null
