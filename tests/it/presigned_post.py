#!/usr/bin/env python3
"""Prints boto3's generate_presigned_post for a Cairn endpoint, as JSON.

Usage: presigned_post.py BUCKET KEY FIELDS_JSON CONDITIONS_JSON EXPIRES_IN

Environment: CAIRN_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION (as for boto3_suite.py). Output: {"url": …, "fields":
[[name, value], …]} with the fields in the order a form must send them.
"""

import json
import os
import sys

import boto3
from botocore.config import Config


def main():
    bucket, key, fields, conditions, expires = sys.argv[1:6]
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["CAIRN_ENDPOINT"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    post = s3.generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields=json.loads(fields),
        Conditions=json.loads(conditions),
        ExpiresIn=int(expires),
    )
    print(json.dumps({"url": post["url"], "fields": list(post["fields"].items())}))


if __name__ == "__main__":
    main()
