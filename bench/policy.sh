#!/bin/bash
# The cost of bucket policies on the 4 KiB GET path (docs/performance.md
# "Bucket policies"): s3bench GETs of 4 KiB objects (c=16, 10 s) against a
# bucket without a policy and with a 20-statement one, alternating ROUNDS
# times on one server; prints each run and the medians.
# The policy is evaluated in full for every GET: 19 Allow statements whose
# principals, actions or conditions do not match the signing key, and one
# Deny whose condition does not hold over plain HTTP.
# Env: CAIRN (release binary), S3B (s3bench), ROUNDS (3), SECS (10 per run).
# Needs aws CLI.
set -u
CAIRN=${CAIRN:-target/release/cairn}
S3B=${S3B:-$HOME/.cache/s3bench-target/release/s3bench}
ROUNDS=${ROUNDS:-3}
D=/tmp/policybench; rm -rf $D; mkdir -p $D
export AWS_ACCESS_KEY_ID=AKBENCH0000000000001 AWS_SECRET_ACCESS_KEY='Xk3u9Qw7Zp2Lm5Nb8Vc1Rt4Yh6Jd0Fg3Sa7Ke2' AWS_DEFAULT_REGION=us-east-1
CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY $CAIRN server --data-dir $D/data \
  --listen 127.0.0.1:19410 --admin-listen 127.0.0.1:19411 > $D/log 2>&1 &
PID=$!
sleep 2
E=http://127.0.0.1:19410
B="$S3B --endpoint $E -q -b pol --prefix g -n 2000 -s 4096"
$B -c 16 put --json $D/fill.json > /dev/null
python3 - > $D/policy.json <<'PY'
import json
st = []
for i in range(19):
    st.append({"Sid": f"Reader{i}", "Effect": "Allow", "Principal": "*",
               "Action": ["s3:GetObject", "s3:ListBucket"],
               "Resource": ["arn:aws:s3:::pol", f"arn:aws:s3:::pol/team{i}/*"],
               "Condition": {"IpAddress": {"aws:SourceIp": [f"10.{i}.0.0/16", "192.0.2.0/24"]},
                             "StringLike": {"aws:Referer": f"https://app{i}.example.com/*"}}})
st.append({"Sid": "TlsOnlyWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
           "Resource": ["arn:aws:s3:::pol", "arn:aws:s3:::pol/*"],
           "Condition": {"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"s3:x-amz-acl": "public-read"}}})
print(json.dumps({"Version": "2012-10-17", "Statement": st}))
PY
# Prints "ops/s server-µs-per-GET" of one run.
run() { $B -d ${SECS:-10}s -c 16 --server-pid $PID get --json $D/$1.json > /dev/null
  python3 -c "import json;d=[json.loads(l) for l in open('$D/$1.json')][-1];print(round(d['ops_s']), round(d['server_cpu_s']/d['ops']*1e6, 1))"; }
none=(); with=(); none_cpu=(); with_cpu=(); ratio=()
# The order alternates (a run right after a policy change, or second in
# a round, must not decide the comparison).
for r in $(seq 1 $ROUNDS); do
  for which in $([ $((r % 2)) = 1 ] && echo "none with" || echo "with none"); do
    if [ $which = none ]; then
      aws --endpoint-url $E s3api delete-bucket-policy --bucket pol
      read -r n nc < <(run none$r); none+=($n); none_cpu+=($nc)
    else
      aws --endpoint-url $E s3api put-bucket-policy --bucket pol --policy file://$D/policy.json
      read -r w wc < <(run with$r); with+=($w); with_cpu+=($wc)
    fi
  done
  ratio+=($(python3 -c "print(round(($w / $n - 1) * 100, 1))"))
  echo "round $r: GET 4 KiB ops/s without policy $n ($nc µs server CPU per GET), with 20-statement policy $w ($wc µs)"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "median without $(med "${none[@]}") ops/s ($(med "${none_cpu[@]}") µs/GET), with $(med "${with[@]}") ops/s ($(med "${with_cpu[@]}") µs/GET); median of the rounds' changes $(med "${ratio[@]}") %"
kill $PID; wait $PID 2>/dev/null
