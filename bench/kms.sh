#!/bin/bash
# The cost of SSE-KMS on small objects (docs/performance.md "SSE-KMS"):
# s3bench PUTs (10,000 new keys) and GETs (10 s) of 4 KiB objects (c=16) into a plain bucket
# and into one whose default encryption is aws:kms (s3bench sends no SSE
# headers; the bucket default makes every object an SSE-KMS one: a data key
# wrapped per PUT, unwrapped per GET, AES-256-CTR over the bytes), the two
# alternating ROUNDS times on one server; prints each run and the medians.
# Env: CAIRN (release binary), S3B (s3bench), ROUNDS (3). Needs aws CLI.
set -u
CAIRN=${CAIRN:-target/release/cairn}
S3B=${S3B:-$HOME/.cache/s3bench-target/release/s3bench}
ROUNDS=${ROUNDS:-3}
D=/tmp/kmsbench; rm -rf $D; mkdir -p $D
export AWS_ACCESS_KEY_ID=AKBENCH0000000000001 AWS_SECRET_ACCESS_KEY='Xk3u9Qw7Zp2Lm5Nb8Vc1Rt4Yh6Jd0Fg3Sa7Ke2' AWS_DEFAULT_REGION=us-east-1
CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY $CAIRN server --data-dir $D/data \
  --listen 127.0.0.1:19420 --admin-listen 127.0.0.1:19421 > $D/log 2>&1 &
PID=$!
sleep 2
E=http://127.0.0.1:19420
aws --endpoint-url $E s3api create-bucket --bucket plain > /dev/null
aws --endpoint-url $E s3api create-bucket --bucket kms > /dev/null
CAIRN_ACCESS_KEY=$AWS_ACCESS_KEY_ID CAIRN_SECRET_KEY=$AWS_SECRET_ACCESS_KEY $CAIRN admin \
  --admin-url http://127.0.0.1:19421 kms key create --alias bench > /dev/null
aws --endpoint-url $E s3api put-bucket-encryption --bucket kms --server-side-encryption-configuration \
  '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"alias/bench"}}]}'
run() { # bucket op run-name: PUT writes 10,000 new keys once; GET reads them for 10 s
  if [ $2 = put ]; then dur=""; else dur="-d 10s"; fi
  $S3B --endpoint $E -q -b $1 --prefix $3 -n 10000 -s 4096 $dur -c 16 --server-pid $PID $2 --json $D/$3.json > /dev/null
  python3 -c "import json;d=[json.loads(l) for l in open('$D/$3.json')][-1];print(round(d['ops_s']))"; }
declare -A res
for r in $(seq 1 $ROUNDS); do
  for b in $([ $((r % 2)) = 1 ] && echo "plain kms" || echo "kms plain"); do
    res[$b-put-$r]=$(run $b put $b-$r)
    res[$b-get-$r]=$(run $b get $b-$r)
  done
  echo "round $r: PUT 4 KiB ops/s plain ${res[plain-put-$r]}, kms ${res[kms-put-$r]}; GET plain ${res[plain-get-$r]}, kms ${res[kms-get-$r]}"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for op in put get; do
  p=(); k=(); for r in $(seq 1 $ROUNDS); do p+=(${res[plain-$op-$r]}); k+=(${res[kms-$op-$r]}); done
  echo "median $op: plain $(med "${p[@]}"), kms $(med "${k[@]}")"
done
aws --endpoint-url $E s3api head-object --bucket kms --key "$(aws --endpoint-url $E s3api list-objects-v2 --bucket kms --max-keys 1 --query 'Contents[0].Key' --output text)" --query '[ServerSideEncryption,SSEKMSKeyId]' --output text
kill $PID; wait $PID 2>/dev/null
