#!/usr/bin/env python3
"""boto3 against a running Cairn, every result checked byte for byte.

Usage: boto3_suite.py MODE WORKDIR
  MODE     "default"        boto3's own checksum settings (CRC32 on every
                            upload, response checksums validated when sent)
           "when_required"  request_checksum_calculation and
                            response_checksum_validation = "when_required"
           "large_copy"     only managed copies above the multipart
                            threshold (UploadPartCopy), default settings
           "versioning"     only bucket versioning: versions, delete
                            markers, the versions paginator, suspended
                            buckets, object_versions.delete()
           "policy"         only bucket policies and public access blocks,
                            with the admin key, a second key (named by
                            CAIRN_USER_NAME, credentials CAIRN_USER_KEY /
                            CAIRN_USER_SECRET, no grants) and anonymous
                            (UNSIGNED) requests; the server must run with
                            --allow-public-buckets
  WORKDIR  an empty scratch directory

Environment: CAIRN_ENDPOINT (http://127.0.0.1:PORT), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. Exits non-zero on the first
failed check, with the step in the message.
"""

import base64
import hashlib
import os
import random
import sys
import urllib.error
import urllib.request
import zlib

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1024 * 1024
STEP = "start"


def step(name):
    global STEP
    STEP = name
    print(f"--- {name}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(f"[{STEP}] {msg}")


def same(got, want, what):
    if got != want:
        if isinstance(got, (bytes, bytearray)) and isinstance(want, (bytes, bytearray)):
            first = next(
                (i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                min(len(got), len(want)),
            )
            raise AssertionError(
                f"[{STEP}] {what}: {len(got)} bytes, expected {len(want)}; "
                f"first difference at offset {first}"
            )
        raise AssertionError(f"[{STEP}] {what}: got {got!r}, expected {want!r}")


def md5_etag(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def client(mode):
    kwargs = dict(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        # Retries would hide server errors.
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=20,
        read_timeout=120,
    )
    if mode == "when_required":
        kwargs["request_checksum_calculation"] = "when_required"
        kwargs["response_checksum_validation"] = "when_required"
    elif mode != "default":
        raise SystemExit(f"unknown mode {mode!r}")
    return boto3.client(
        "s3",
        endpoint_url=os.environ["CAIRN_ENDPOINT"],
        config=Config(**kwargs),
    )


def http(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def large_copies(s3, work):
    """Managed copies above the 8 MiB threshold: UploadPartCopy."""
    rng = random.Random("boto3-large-copy")
    bucket = "boto3-large-copy"
    step("managed copy above the multipart threshold (UploadPartCopy)")
    s3.create_bucket(Bucket=bucket)
    big = rng.randbytes(20 * MIB + 4321)
    s3.put_object(Bucket=bucket, Key="src/big.bin", Body=big, Metadata={"k": "v"})
    s3.copy({"Bucket": bucket, "Key": "src/big.bin"}, bucket, "dst/big copy.bin")
    g = s3.get_object(Bucket=bucket, Key="dst/big copy.bin")
    same(g["Body"].read(), big, "managed copy of 20 MiB")
    # (s3transfer does not carry metadata over to a multipart copy, on S3
    # either: no metadata check here.)
    check(g["ETag"].endswith('-3"'), f"expected a 3-part copy, got {g['ETag']}")
    # Explicit ranges, as other SDKs do.
    mp = s3.create_multipart_upload(Bucket=bucket, Key="dst/ranges")
    uid, parts = mp["UploadId"], []
    for n, (a, b) in enumerate([(0, 5 * MIB - 1), (5 * MIB, len(big) - 1)], 1):
        r = s3.upload_part_copy(
            Bucket=bucket,
            Key="dst/ranges",
            UploadId=uid,
            PartNumber=n,
            CopySource={"Bucket": bucket, "Key": "src/big.bin"},
            CopySourceRange=f"bytes={a}-{b}",
        )
        same(r["CopyPartResult"]["ETag"], md5_etag(big[a : b + 1]), f"part {n} ETag")
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="dst/ranges", UploadId=uid, MultipartUpload={"Parts": parts}
    )
    same(s3.get_object(Bucket=bucket, Key="dst/ranges")["Body"].read(), big, "ranged part copies")
    print("boto3 suite passed")


def client_error(call, what):
    """Runs `call`, which must fail; returns botocore's error response."""
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response
    raise AssertionError(f"[{STEP}] {what} succeeded")


def versioning(s3):
    """Bucket versioning as boto3 users drive it (client and resource APIs)."""
    bucket = "boto3-versioning"
    step("get_bucket_versioning / put_bucket_versioning")
    s3.create_bucket(Bucket=bucket)
    r = s3.get_bucket_versioning(Bucket=bucket)
    check("Status" not in r, f"a new bucket has a versioning state: {r}")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    same(s3.get_bucket_versioning(Bucket=bucket).get("Status"), "Enabled", "Status")

    step("versions of one key, read back by VersionId")
    bodies = [f"version {i}".encode() for i in range(3)]
    ids = [s3.put_object(Bucket=bucket, Key="doc.txt", Body=b)["VersionId"] for b in bodies]
    check(len(set(ids)) == 3 and "null" not in ids, f"version ids {ids}")
    for vid, body in zip(ids, bodies):
        g = s3.get_object(Bucket=bucket, Key="doc.txt", VersionId=vid)
        same(g["Body"].read(), body, f"GET VersionId={vid}")
        same(g["VersionId"], vid, "GET VersionId")
        h = s3.head_object(Bucket=bucket, Key="doc.txt", VersionId=vid)
        same(h["ETag"], md5_etag(body), "HEAD ETag")
    r = s3.list_object_versions(Bucket=bucket, Prefix="doc.txt")
    same([v["VersionId"] for v in r["Versions"]], ids[::-1], "versions newest first")
    same([v["IsLatest"] for v in r["Versions"]], [True, False, False], "IsLatest")

    step("delete marker, then undelete by deleting it")
    d = s3.delete_object(Bucket=bucket, Key="doc.txt")
    same(d.get("DeleteMarker"), True, "DeleteMarker of a simple delete")
    marker = d["VersionId"]
    check(marker not in ids, f"marker id {marker} reuses a version id")
    e = client_error(lambda: s3.get_object(Bucket=bucket, Key="doc.txt"), "GET after delete")
    same(e["Error"]["Code"], "NoSuchKey", "GET after delete")
    same(e["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker"), "true", "404 header")
    e = client_error(
        lambda: s3.get_object(Bucket=bucket, Key="doc.txt", VersionId=marker), "GET of the marker"
    )
    same(e["ResponseMetadata"]["HTTPStatusCode"], 405, "GET of a delete marker by id")
    r = s3.list_object_versions(Bucket=bucket)
    same([(m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]], [(marker, True)], "markers")
    same(s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0, "ListObjectsV2 hides the key")
    d = s3.delete_object(Bucket=bucket, Key="doc.txt", VersionId=marker)
    same((d.get("DeleteMarker"), d.get("VersionId")), (True, marker), "deleting the marker")
    same(s3.get_object(Bucket=bucket, Key="doc.txt")["Body"].read(), bodies[-1], "undeleted")

    step("list_object_versions paginator, page size 2")
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"many/{i}", Body=b"a")
        s3.put_object(Bucket=bucket, Key=f"many/{i}", Body=b"b")
        if i % 2:
            s3.delete_object(Bucket=bucket, Key=f"many/{i}")
    full = s3.list_object_versions(Bucket=bucket, Prefix="many/")
    entries = full.get("Versions", []) + full.get("DeleteMarkers", [])
    want = sorted((v["Key"], v["VersionId"]) for v in entries)
    same(len(want), 12, "versions and markers under many/")
    got = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix="many/", PaginationConfig={"PageSize": 2}
    ):
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        check(len(entries) <= 2, f"a page of {len(entries)}")
        got += [(v["Key"], v["VersionId"]) for v in entries]
    check(len(got) == len(set(got)), f"an entry listed twice: {got}")
    same(sorted(got), want, "paginated versions")

    step("suspended bucket: PUTs replace the null version")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    same(s3.get_bucket_versioning(Bucket=bucket).get("Status"), "Suspended", "Status")
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"null 1")
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"null 2")
    r = s3.list_object_versions(Bucket=bucket, Prefix="doc.txt")
    same([v["VersionId"] for v in r["Versions"]], ["null"] + ids[::-1], "null version on top")
    g = s3.get_object(Bucket=bucket, Key="doc.txt", VersionId="null")
    same(g["Body"].read(), b"null 2", "the null version")

    step("copy_object from an older version")
    r = s3.copy_object(
        Bucket=bucket,
        Key="copy.txt",
        CopySource={"Bucket": bucket, "Key": "doc.txt", "VersionId": ids[0]},
    )
    same(r.get("CopySourceVersionId"), ids[0], "CopySourceVersionId")
    same(s3.get_object(Bucket=bucket, Key="copy.txt")["Body"].read(), bodies[0], "copied version")

    step("delete_objects, BucketNotEmpty, object_versions.delete()")
    r = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "doc.txt", "VersionId": ids[0]}, {"Key": "copy.txt"}]},
    )
    same(r.get("Errors", []), [], "delete_objects errors")
    deleted = {d["Key"]: d for d in r["Deleted"]}
    same(deleted["doc.txt"].get("VersionId"), ids[0], "deleted version")
    same(deleted["copy.txt"].get("DeleteMarker"), True, "a marker for copy.txt")
    e = client_error(lambda: s3.delete_bucket(Bucket=bucket), "delete_bucket with versions left")
    same(e["Error"]["Code"], "BucketNotEmpty", "delete_bucket with versions left")
    resource = boto3.resource(
        "s3",
        endpoint_url=os.environ["CAIRN_ENDPOINT"],
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    resource.Bucket(bucket).object_versions.delete()
    r = s3.list_object_versions(Bucket=bucket)
    check(not r.get("Versions") and not r.get("DeleteMarkers"), f"left after delete: {r}")
    s3.delete_bucket(Bucket=bucket)
    print("boto3 suite passed")


def policies(s3):
    """Bucket policies as boto3 users write them (AWS examples)."""
    import json

    bucket = "boto3-policy"
    name = os.environ["CAIRN_USER_NAME"]
    user = boto3.client(
        "s3",
        endpoint_url=os.environ["CAIRN_ENDPOINT"],
        aws_access_key_id=os.environ["CAIRN_USER_KEY"],
        aws_secret_access_key=os.environ["CAIRN_USER_SECRET"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    anon = boto3.client(
        "s3",
        endpoint_url=os.environ["CAIRN_ENDPOINT"],
        config=Config(
            signature_version=botocore.UNSIGNED,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )

    def code(call, what):
        return client_error(call, what)["Error"]["Code"]

    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="public/readme.txt", Body=b"hello world")
    s3.put_object(Bucket=bucket, Key="private/key.pem", Body=b"secret")
    step("no policy: the second key and anonymous callers get nothing")
    same(code(lambda: user.get_object(Bucket=bucket, Key="public/readme.txt"), "user GET"), "AccessDenied", "user GET")
    same(code(lambda: anon.get_object(Bucket=bucket, Key="public/readme.txt"), "anon GET"), "AccessDenied", "anon GET")
    same(code(lambda: s3.get_bucket_policy(Bucket=bucket), "get policy"), "NoSuchBucketPolicy", "get policy")

    step("put_bucket_policy: public read of public/*, the key may write uploads/*")
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
             "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/public/*"},
            {"Sid": "Uploads", "Effect": "Allow",
             "Principal": {"AWS": [f"arn:aws:iam:::user/{name}"]},
             "Action": ["s3:PutObject", "s3:GetObject"],
             "Resource": f"arn:aws:s3:::{bucket}/uploads/*"},
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
    same(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]), doc, "policy read back")
    check(s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"], "policy is public")

    step("anonymous: what the policy allows, nothing else")
    same(anon.get_object(Bucket=bucket, Key="public/readme.txt")["Body"].read(), b"hello world", "anon GET")
    same(anon.head_object(Bucket=bucket, Key="public/readme.txt")["ContentLength"], 11, "anon HEAD")
    same(code(lambda: anon.get_object(Bucket=bucket, Key="private/key.pem"), "anon private"), "AccessDenied", "anon private")
    same(code(lambda: anon.put_object(Bucket=bucket, Key="public/x", Body=b"x"), "anon PUT"), "AccessDenied", "anon PUT")
    same(code(lambda: anon.list_objects_v2(Bucket=bucket), "anon list"), "AccessDenied", "anon list")
    same(code(lambda: anon.list_buckets(), "anon ListBuckets"), "AccessDenied", "anon ListBuckets")

    step("the named key: its uploads prefix only")
    user.put_object(Bucket=bucket, Key="uploads/u1.bin", Body=b"u1")
    same(user.get_object(Bucket=bucket, Key="uploads/u1.bin")["Body"].read(), b"u1", "user GET own upload")
    same(code(lambda: user.put_object(Bucket=bucket, Key="public/x", Body=b"x"), "user PUT public"), "AccessDenied", "user PUT public")
    same(code(lambda: user.delete_object(Bucket=bucket, Key="uploads/u1.bin"), "user DELETE"), "AccessDenied", "user DELETE")
    same(code(lambda: user.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc)), "user put policy"), "AccessDenied", "user put policy")

    step("public access block: RestrictPublicBuckets stops anonymous reads")
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={"RestrictPublicBuckets": True, "BlockPublicPolicy": True},
    )
    cfg = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    same(cfg, {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}, "block read back")
    same(code(lambda: anon.get_object(Bucket=bucket, Key="public/readme.txt"), "anon under block"), "AccessDenied", "anon under block")
    same(code(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc)), "public policy under block"), "AccessDenied", "public policy under block")
    s3.delete_public_access_block(Bucket=bucket)
    same(anon.get_object(Bucket=bucket, Key="public/readme.txt")["Body"].read(), b"hello world", "anon GET after the block is gone")

    step("delete_bucket_policy")
    s3.delete_bucket_policy(Bucket=bucket)
    same(code(lambda: anon.get_object(Bucket=bucket, Key="public/readme.txt"), "anon after delete"), "AccessDenied", "anon after delete")
    print("boto3 suite passed")


def sse_c(s3, work):
    """SSE-C with boto3's own helpers: put/get/head with a customer key
    (botocore computes the key's MD5), and upload_file/download_file of a
    file large enough for s3transfer to use multipart with the key."""
    bucket = "boto3-sse-c"
    s3.create_bucket(Bucket=bucket)
    key = os.urandom(32)
    other = os.urandom(32)
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}

    step("put_object / get_object / head_object with SSECustomerKey")
    body = os.urandom(300_000)
    r = s3.put_object(Bucket=bucket, Key="small", Body=body, **sse)
    same(r["SSECustomerAlgorithm"], "AES256", "put's algorithm")
    check("ServerSideEncryption" not in r, "put reported SSE-S3 for an SSE-C object")
    same(s3.get_object(Bucket=bucket, Key="small", **sse)["Body"].read(), body, "get")
    same(
        s3.get_object(Bucket=bucket, Key="small", Range="bytes=1000-2999", **sse)["Body"].read(),
        body[1000:3000],
        "ranged get",
    )
    same(s3.head_object(Bucket=bucket, Key="small", **sse)["ContentLength"], len(body), "head")
    client_error(lambda: s3.get_object(Bucket=bucket, Key="small"), "get without the key")
    client_error(
        lambda: s3.get_object(
            Bucket=bucket, Key="small", SSECustomerAlgorithm="AES256", SSECustomerKey=other
        ),
        "get with another key",
    )

    step("upload_file / download_file (multipart) with SSECustomerKey")
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
    src = os.path.join(work, "sse-c-src.bin")
    data = os.urandom(21 << 20)
    with open(src, "wb") as f:
        f.write(data)
    s3.upload_file(src, bucket, "large", ExtraArgs=sse, Config=config)
    head = s3.head_object(Bucket=bucket, Key="large", **sse)
    same(head["ContentLength"], len(data), "multipart object's size")
    check(head["ETag"].endswith('-3"'), f"a 3-part ETag, got {head['ETag']}")
    dst = os.path.join(work, "sse-c-dst.bin")
    s3.download_file(bucket, "large", dst, ExtraArgs=sse, Config=config)
    with open(dst, "rb") as f:
        same(f.read(), data, "downloaded file")
    client_error(lambda: s3.head_object(Bucket=bucket, Key="large"), "head without the key")
    print("boto3 suite passed")


def main():
    mode, work = sys.argv[1], sys.argv[2]
    if mode == "sse_c":
        sse_c(client("default"), work)
        return
    if mode == "policy":
        policies(client("default"))
        return
    if mode == "large_copy":
        large_copies(client("default"), work)
        return
    if mode == "versioning":
        versioning(client("default"))
        return
    rng = random.Random(f"boto3-{mode}")
    s3 = client(mode)
    bucket = f"boto3-{mode.replace('_', '-')}"
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, mode {mode}")

    step("create_bucket / head_bucket / list_buckets")
    s3.create_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    check(bucket in names, f"list_buckets: {names}")

    step("put_object / get_object / head_object")
    objects = {}
    for name, size in [
        ("empty", 0),
        ("one", 1),
        ("small.txt", 1000),
        ("dir/64k.bin", 64 * 1024 + 3),
        ("dir/sub/1m.bin", MIB + 17),
        ("odd names/a b+c&d=e?f#g.bin", 4321),
        ("ünïcødé/файл.txt", 777),
    ]:
        body = rng.randbytes(size)
        r = s3.put_object(
            Bucket=bucket,
            Key=name,
            Body=body,
            ContentType="application/x-test",
            Metadata={"origin": "boto3", "size": str(size)},
        )
        same(r["ETag"], md5_etag(body), f"PUT {name} ETag")
        objects[name] = body
    for name, body in objects.items():
        r = s3.get_object(Bucket=bucket, Key=name)
        same(r["Body"].read(), body, f"GET {name}")
        same(r["ETag"], md5_etag(body), f"GET {name} ETag")
        h = s3.head_object(Bucket=bucket, Key=name)
        same(h["ContentLength"], len(body), f"HEAD {name} length")
        same(h["ContentType"], "application/x-test", f"HEAD {name} type")
        same(h["Metadata"], {"origin": "boto3", "size": str(len(body))}, f"HEAD {name} meta")
    big = objects["dir/sub/1m.bin"]
    r = s3.get_object(Bucket=bucket, Key="dir/sub/1m.bin", Range="bytes=1000-200999")
    same(r["Body"].read(), big[1000:201000], "ranged GET")
    same(r["ContentRange"], f"bytes 1000-200999/{len(big)}", "Content-Range")
    r = s3.get_object(Bucket=bucket, Key="dir/sub/1m.bin", Range="bytes=-100")
    same(r["Body"].read(), big[-100:], "suffix-range GET")

    step("explicit checksums (CRC32, SHA1, SHA256) and ChecksumMode=ENABLED")
    for algo in ["CRC32", "SHA1", "SHA256"]:  # CRC32C needs awscrt
        body = rng.randbytes(300 * 1024 + 5)
        key = f"checksum/{algo.lower()}"
        r = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=algo)
        check(f"Checksum{algo}" in r, f"PUT with {algo}: no checksum in the response {r}")
        g = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        same(g["Body"].read(), body, f"GET {key}")
        same(g.get(f"Checksum{algo}"), r[f"Checksum{algo}"], f"{algo} on GET")
        objects[key] = body

    step("missing object errors")
    try:
        s3.head_object(Bucket=bucket, Key="no/such/key")
        check(False, "HEAD of a missing key succeeded")
    except botocore.exceptions.ClientError as e:
        same(e.response["ResponseMetadata"]["HTTPStatusCode"], 404, "HEAD missing status")
    try:
        s3.get_object(Bucket=bucket, Key="no/such/key")
        check(False, "GET of a missing key succeeded")
    except s3.exceptions.NoSuchKey:
        pass

    step("list_objects_v2 paginated (page size 7)")
    for i in range(23):
        body = rng.randbytes(rng.randrange(0, 2000))
        key = f"list/{i % 3}/item-{i:03d}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        objects[key] = body
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 7}
    )
    listed, npages = {}, 0
    for page in pages:
        npages += 1
        check(page["KeyCount"] <= 7, f"page of {page['KeyCount']} keys")
        for o in page.get("Contents", []):
            check(o["Key"] not in listed, f"{o['Key']} listed twice")
            listed[o["Key"]] = (o["Size"], o["ETag"])
    want = {k: (len(v), md5_etag(v)) for k, v in objects.items()}
    same(listed, want, "paginated listing")
    check(npages == -(-len(objects) // 7), f"{npages} pages for {len(objects)} keys")
    # Delimiter listing, paginated too.
    prefixes, keys = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="list/", Delimiter="/", PaginationConfig={"PageSize": 2}
    ):
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        keys += [o["Key"] for o in page.get("Contents", [])]
    same(prefixes, ["list/0/", "list/1/", "list/2/"], "CommonPrefixes")
    same(keys, [], "keys beside the prefixes")
    # StartAfter and the v1 paginator (markers).
    r = s3.list_objects_v2(Bucket=bucket, Prefix="list/1/", StartAfter="list/1/item-004")
    same(
        [o["Key"] for o in r["Contents"]],
        sorted(k for k in objects if k.startswith("list/1/") and k > "list/1/item-004"),
        "StartAfter",
    )
    v1 = [
        o["Key"]
        for page in s3.get_paginator("list_objects").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 5}
        )
        for o in page.get("Contents", [])
    ]
    same(v1, sorted(objects), "list_objects (v1) paginated")

    step("upload_file above the multipart threshold / download_file")
    cfg = TransferConfig()  # the defaults: 8 MiB threshold and part size
    check(cfg.multipart_threshold == 8 * MIB, f"threshold {cfg.multipart_threshold}")
    big = rng.randbytes(20 * MIB + 12345)
    src = os.path.join(work, "big.bin")
    with open(src, "wb") as f:
        f.write(big)
    s3.upload_file(src, bucket, "multi/big.bin", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="multi/big.bin")
    same(h["ContentLength"], len(big), "multipart object length")
    check(h["ETag"].endswith('-3"'), f"expected a 3-part ETag, got {h['ETag']}")
    parts = [big[i : i + 8 * MIB] for i in range(0, len(big), 8 * MIB)]
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    same(h["ETag"], f'"{hashlib.md5(md5s).hexdigest()}-3"', "multipart ETag")
    dst = os.path.join(work, "big.back")
    s3.download_file(bucket, "multi/big.bin", dst, Config=cfg)
    with open(dst, "rb") as f:
        same(f.read(), big, "download_file")
    g = s3.get_object(Bucket=bucket, Key="multi/big.bin", PartNumber=2)
    same(g["Body"].read(), parts[1], "GET partNumber=2")

    step("multipart checksum: COMPOSITE CRC32 of the part CRC32s, '-3'")
    h = s3.head_object(Bucket=bucket, Key="multi/big.bin", ChecksumMode="ENABLED")
    if mode == "default":
        # boto3 sent a CRC32 with every part: the object's checksum is the
        # CRC32 of the parts' big-endian CRC32s, with the part count.
        crcs = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
        want = base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode() + "-3"
        same(h.get("ChecksumCRC32"), want, "composite ChecksumCRC32")
        same(h.get("ChecksumType"), "COMPOSITE", "ChecksumType")
        # boto3 validates response checksums on GET; it skips composite ones
        # (they are not the body's CRC) and must not fail here.
        g = s3.get_object(Bucket=bucket, Key="multi/big.bin", ChecksumMode="ENABLED")
        same(g.get("ChecksumCRC32"), want, "GET ChecksumCRC32")
        same(g["Body"].read(), big, "GET with ChecksumMode=ENABLED")
        attrs = s3.get_object_attributes(
            Bucket=bucket, Key="multi/big.bin", ObjectAttributes=["Checksum"]
        )
        same(attrs["Checksum"].get("ChecksumCRC32"), want, "attributes ChecksumCRC32")
        same(attrs["Checksum"].get("ChecksumType"), "COMPOSITE", "attributes ChecksumType")
    else:
        # No part checksums were sent: the object has none.
        check("ChecksumCRC32" not in h, f"unexpected checksum {h.get('ChecksumCRC32')}")

    step("multipart checksum: FULL_OBJECT CRC32 declared at create")
    mp = s3.create_multipart_upload(
        Bucket=bucket, Key="multi/full.bin", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )
    same(mp.get("ChecksumType"), "FULL_OBJECT", "create ChecksumType")
    done = []
    for i, p in enumerate(parts, start=1):
        r = s3.upload_part(
            Bucket=bucket,
            Key="multi/full.bin",
            UploadId=mp["UploadId"],
            PartNumber=i,
            Body=p,
            ChecksumAlgorithm="CRC32",
        )
        done.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    r = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="multi/full.bin",
        UploadId=mp["UploadId"],
        MultipartUpload={"Parts": done},
    )
    want = base64.b64encode(zlib.crc32(big).to_bytes(4, "big")).decode()
    same(r.get("ChecksumCRC32"), want, "complete ChecksumCRC32 (whole object)")
    same(r.get("ChecksumType"), "FULL_OBJECT", "complete ChecksumType")
    # A full-object CRC32 is validated by boto3 against the body it reads.
    g = s3.get_object(Bucket=bucket, Key="multi/full.bin", ChecksumMode="ENABLED")
    same(g["Body"].read(), big, "GET full-object checksum")
    same(g.get("ChecksumType"), "FULL_OBJECT", "GET ChecksumType")
    objects["multi/full.bin"] = big
    # A file-like object through upload_fileobj (also multipart).
    with open(src, "rb") as f:
        s3.upload_fileobj(f, bucket, "multi/fileobj.bin")
    same(
        s3.get_object(Bucket=bucket, Key="multi/fileobj.bin")["Body"].read(), big, "upload_fileobj"
    )
    objects["multi/big.bin"] = big
    objects["multi/fileobj.bin"] = big

    step("low-level multipart with an abort and list_parts")
    mp = s3.create_multipart_upload(Bucket=bucket, Key="multi/low.bin")
    uid = mp["UploadId"]
    low = [rng.randbytes(5 * MIB), rng.randbytes(1234)]
    etags = []
    for n, p in enumerate(low, 1):
        r = s3.upload_part(Bucket=bucket, Key="multi/low.bin", UploadId=uid, PartNumber=n, Body=p)
        same(r["ETag"], md5_etag(p), f"part {n} ETag")
        etags.append(r)
    lp = s3.list_parts(Bucket=bucket, Key="multi/low.bin", UploadId=uid)
    same([p["PartNumber"] for p in lp["Parts"]], [1, 2], "list_parts")
    ups = s3.list_multipart_uploads(Bucket=bucket)
    check(any(u["UploadId"] == uid for u in ups.get("Uploads", [])), "upload not listed")
    parts_doc = []
    for n, r in enumerate(etags, 1):
        part = {"PartNumber": n, "ETag": r["ETag"]}
        for k in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
            if k in r:
                part[k] = r[k]
        parts_doc.append(part)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="multi/low.bin", UploadId=uid, MultipartUpload={"Parts": parts_doc}
    )
    same(
        s3.get_object(Bucket=bucket, Key="multi/low.bin")["Body"].read(),
        b"".join(low),
        "completed low-level multipart",
    )
    objects["multi/low.bin"] = b"".join(low)
    mp = s3.create_multipart_upload(Bucket=bucket, Key="multi/aborted")
    s3.upload_part(
        Bucket=bucket, Key="multi/aborted", UploadId=mp["UploadId"], PartNumber=1, Body=b"x" * 100
    )
    s3.abort_multipart_upload(Bucket=bucket, Key="multi/aborted", UploadId=mp["UploadId"])
    ups = s3.list_multipart_uploads(Bucket=bucket)
    same(ups.get("Uploads", []), [], "uploads left after complete and abort")

    step("copy_object (COPY and REPLACE metadata) and managed copy")
    s3.copy_object(
        Bucket=bucket, Key="copies/small.txt", CopySource={"Bucket": bucket, "Key": "small.txt"}
    )
    g = s3.get_object(Bucket=bucket, Key="copies/small.txt")
    same(g["Body"].read(), objects["small.txt"], "copied bytes")
    same(g["Metadata"], {"origin": "boto3", "size": "1000"}, "copied metadata")
    s3.copy_object(
        Bucket=bucket,
        Key="copies/odd",
        CopySource={"Bucket": bucket, "Key": "odd names/a b+c&d=e?f#g.bin"},
        MetadataDirective="REPLACE",
        Metadata={"new": "yes"},
        ContentType="text/plain",
    )
    h = s3.head_object(Bucket=bucket, Key="copies/odd")
    same(h["Metadata"], {"new": "yes"}, "REPLACE metadata")
    same(h["ContentType"], "text/plain", "REPLACE content type")
    same(
        s3.get_object(Bucket=bucket, Key="copies/odd")["Body"].read(),
        objects["odd names/a b+c&d=e?f#g.bin"],
        "copy of a key with reserved characters",
    )
    # boto3's managed copy (below the multipart threshold: one CopyObject).
    s3.copy({"Bucket": bucket, "Key": "dir/sub/1m.bin"}, bucket, "copies/1m.bin")
    same(
        s3.get_object(Bucket=bucket, Key="copies/1m.bin")["Body"].read(),
        objects["dir/sub/1m.bin"],
        "managed copy",
    )
    for k in ("copies/small.txt", "copies/odd", "copies/1m.bin"):
        objects[k] = s3.get_object(Bucket=bucket, Key=k)["Body"].read()

    step("presigned GET and PUT through urllib")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "ünïcødé/файл.txt"}, ExpiresIn=300
    )
    status, data = http("GET", url)
    same(status, 200, f"presigned GET status ({data[:300]!r})")
    same(data, objects["ünïcødé/файл.txt"], "presigned GET body")
    put_body = rng.randbytes(70000)
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "presigned/put.bin"}, ExpiresIn=300
    )
    status, data = http("PUT", url, data=put_body)
    same(status, 200, f"presigned PUT status ({data[:300]!r})")
    same(
        s3.get_object(Bucket=bucket, Key="presigned/put.bin")["Body"].read(),
        put_body,
        "object from a presigned PUT",
    )
    objects["presigned/put.bin"] = put_body
    # A signature for one key does not open another.
    bad = url.replace("presigned/put.bin", "presigned/other.bin")
    status, data = http("PUT", bad, data=b"nope")
    same(status, 403, "presigned PUT to another key")

    step("object tagging")
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"tags", Tagging="a=1&b=two%20words")
    t = s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    same(sorted((x["Key"], x["Value"]) for x in t), [("a", "1"), ("b", "two words")], "tags")
    h = s3.get_object(Bucket=bucket, Key="tagged")
    same(h.get("TagCount"), 2, "x-amz-tagging-count")
    s3.put_object_tagging(
        Bucket=bucket,
        Key="tagged",
        Tagging={"TagSet": [{"Key": "project", "Value": "cairn"}, {"Key": "k:2", "Value": "v/2"}]},
    )
    t = s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    same(
        sorted((x["Key"], x["Value"]) for x in t),
        [("k:2", "v/2"), ("project", "cairn")],
        "tags after put_object_tagging",
    )
    s3.delete_object_tagging(Bucket=bucket, Key="tagged")
    same(s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"], [], "tags after delete")
    objects["tagged"] = b"tags"

    step("delete_object and delete_objects (in batches)")
    s3.delete_object(Bucket=bucket, Key="one")
    del objects["one"]
    keys = sorted(objects)
    for i in range(0, len(keys), 10):
        r = s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in keys[i : i + 10]], "Quiet": False},
        )
        same(r.get("Errors", []), [], "delete_objects errors")
        same(sorted(d["Key"] for d in r["Deleted"]), keys[i : i + 10], "deleted keys")
    r = s3.list_objects_v2(Bucket=bucket)
    same(r["KeyCount"], 0, "objects left")
    s3.delete_bucket(Bucket=bucket)
    check(bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]], "bucket left")
    print("boto3 suite passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line, then the traceback
        print(f"FAILED at step {STEP!r}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        raise
