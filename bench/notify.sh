#!/bin/bash
# Event notifications under IoT load (docs/performance.md "Event
# notifications"): N s3bench iot PUTs (c=64) into three buckets of one
# server — without notifications, with every new object announced to a
# target that is down (the events only queue: the write path's cost), and
# announced to a local Mosquitto broker (QoS 1) read by mosquitto_sub (the
# cost of delivering on the same 2 cores). Prints the PUT rates, and for
# the delivered run the delivery rate, the largest queue and oldest-event
# age seen, how long the queue took to drain after the last PUT, and how
# many events the subscriber received.
# Env: CAIRN (release binary), S3B (s3bench), N (20000), MOSQUITTO.
# Needs mosquitto and mosquitto_sub, the aws CLI.
set -u
CAIRN=${CAIRN:-target/release/cairn}
S3B=${S3B:-$HOME/.cache/s3bench-target/release/s3bench}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
N=${N:-20000}
D=/tmp/notifybench; rm -rf $D; mkdir -p $D
export AWS_ACCESS_KEY_ID=AKBENCH0000000000001 AWS_SECRET_ACCESS_KEY='Xk3u9Qw7Zp2Lm5Nb8Vc1Rt4Yh6Jd0Fg3Sa7Ke2' AWS_DEFAULT_REGION=us-east-1
printf 'listener 19423 127.0.0.1\nallow_anonymous true\npersistence false\n' > $D/mosquitto.conf
$MOSQUITTO -c $D/mosquitto.conf > $D/mosquitto.log 2>&1 &
MPID=$!
sleep 0.5
mosquitto_sub -p 19423 -h 127.0.0.1 -t bench/new -q 1 > $D/received.jsonl &
SPID=$!
CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY $CAIRN server --data-dir $D/data \
  --listen 127.0.0.1:19420 --admin-listen 127.0.0.1:19421 \
  --notify-target iot=mqtt://127.0.0.1:19423/bench/new \
  --notify-target down=mqtt://127.0.0.1:19424/nobody/listens > $D/log 2>&1 &
PID=$!
sleep 2
E=http://127.0.0.1:19420
metric() { curl -s http://127.0.0.1:19421/metrics | awk -v m="$1" '$1 ~ "^"m {s+=$2} END {print s+0}'; }
# One target's series.
tmetric() { curl -s http://127.0.0.1:19421/metrics | awk -v m="$1{target=\"$2\"}" '$1 == m {print $2}'; }
iot() { $S3B --endpoint $E -q -b $1 --ops $N -d 600s -c 64 --server-pid $PID iot --json $D/$1.json > /dev/null
  python3 -c "import json;d=[json.loads(l) for l in open('$D/$1.json')][-1];print(round(d['ops_s']))"; }
aws --endpoint-url $E s3 mb s3://plain > /dev/null
aws --endpoint-url $E s3 mb s3://notified > /dev/null
aws --endpoint-url $E s3 mb s3://queued > /dev/null
aws --endpoint-url $E s3api put-bucket-notification-configuration --bucket notified --notification-configuration \
  '{"TopicConfigurations":[{"Id":"all","TopicArn":"arn:cairn:sns:us-east-1:cairn:iot","Events":["s3:ObjectCreated:*"]}]}'
aws --endpoint-url $E s3api put-bucket-notification-configuration --bucket queued --notification-configuration \
  '{"TopicConfigurations":[{"Id":"all","TopicArn":"arn:cairn:sns:us-east-1:cairn:down","Events":["s3:ObjectCreated:*"]}]}'
plain=$(iot plain)
queued=$(iot queued)
# Sample the queue while the notified run goes.
( while kill -0 $PID 2>/dev/null; do echo "$(date +%s.%N) $(tmetric cairn_notify_events_queued iot) $(tmetric cairn_notify_oldest_event_age_seconds iot)"; sleep 0.2; done ) > $D/samples &
SAMPLER=$!
start=$(date +%s.%N)
notified=$(iot notified)
put_end=$(date +%s.%N)
while [ "$(tmetric cairn_notify_events_delivered_total iot)" != "$N" ]; do
  sleep 0.05
  if python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $put_end < 120 else 1)"; then :; else echo "not drained after 120 s"; break; fi
done
drained=$(date +%s.%N)
sleep 1
kill $SAMPLER 2>/dev/null
python3 - "$start" "$put_end" "$drained" "$N" "$plain" "$notified" "$queued" <<PY
import sys
start, put_end, drained, n, plain, notified, queued = map(float, sys.argv[1:])
peak_q = peak_age = 0.0
for line in open("$D/samples"):
    t, q, a = map(float, line.split())
    if start <= t <= drained:
        peak_q, peak_age = max(peak_q, q), max(peak_age, a)
received = sum(1 for _ in open("$D/received.jsonl"))
print(f"iot PUT c=64, {int(n)} each: without notifications {plain:.0f} ops/s; events queued for a target that is down {queued:.0f} ops/s ({(queued/plain-1)*100:+.1f} %); delivered to Mosquitto meanwhile {notified:.0f} ops/s ({(notified/plain-1)*100:+.1f} %)")
print(f"delivery: {n/(drained-start):.0f} events/s over the run; queue drained {drained-put_end:.2f} s after the last PUT; "
      f"peak queue {peak_q:.0f}, peak oldest-event age {peak_age:.2f} s; subscriber received {received}")
PY
kill $PID $SPID $MPID; wait $PID 2>/dev/null
