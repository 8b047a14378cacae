"""boto3 against a running Nuage: checksums, digests, multipart transfers,
listings, presigned URLs and POST forms, errors, tags, CORS, uploads in
progress, and another organisation's denial. Each check prints "ok - ..."
or raises with what differed."""

import base64
import hashlib
import io
import os
import sys
import urllib.parse

import boto3
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

SUFFIX = sys.argv[1]
ENDPOINT = os.environ["NUAGE_S3_ENDPOINT"]


def client(key, secret):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def ok(what):
    print(f"ok - boto3: {what}", flush=True)


def code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected an error, the call succeeded")


s3 = client(os.environ["NUAGE_S3_ACCESS_KEY"], os.environ["NUAGE_S3_SECRET_KEY"])
bucket = f"boto-{SUFFIX}"
s3.create_bucket(Bucket=bucket)
ok("create_bucket")
assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"], "a declared region"
ok("get_bucket_location")

body = os.urandom(100_000)
# (CRC32C needs botocore's optional CRT extension; the aws-sdk-s3 tests cover it.)
for algorithm in ["CRC32", "SHA1", "SHA256"]:
    put = s3.put_object(Bucket=bucket, Key=f"sum/{algorithm}", Body=body, ChecksumAlgorithm=algorithm)
    got = s3.get_object(Bucket=bucket, Key=f"sum/{algorithm}", ChecksumMode="ENABLED")
    field = f"Checksum{algorithm}"
    assert put[field] == got[field], (algorithm, put.get(field), got.get(field))
    assert got["Body"].read() == body
    ok(f"put_object with a {algorithm} checksum, returned on get")

wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
assert code(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"payload", ContentMD5=wrong_md5)) == "BadDigest"
assert code(lambda: s3.head_object(Bucket=bucket, Key="bad")) == "404"
ok("a wrong Content-MD5 is BadDigest and stores nothing")

big = os.urandom(12 * 1024 * 1024)
transfer = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(big), bucket, "big", Config=transfer)
out = io.BytesIO()
s3.download_fileobj(bucket, "big", out, Config=transfer)
assert out.getvalue() == big
assert s3.head_object(Bucket=bucket, Key="big")["ETag"].strip('"').endswith("-3")
ok("upload_fileobj of 12 MiB in 5 MiB parts, and back")

keys = [f"list/{i:02d}" for i in range(7)] + ["list/sub/a", "list/sub/b", "list/with space é"]
for k in keys:
    s3.put_object(Bucket=bucket, Key=k, Body=b".")
seen, token = [], None
while True:
    kwargs = {"Bucket": bucket, "Prefix": "list/", "MaxKeys": 3}
    if token:
        kwargs["ContinuationToken"] = token
    page = s3.list_objects_v2(**kwargs)
    seen += [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    token = page["NextContinuationToken"]
assert seen == sorted(keys, key=lambda k: k.encode()), seen
ok("list_objects_v2 pages of three with continuation tokens, in byte order")
folded = s3.list_objects_v2(Bucket=bucket, Prefix="list/", Delimiter="/")
assert [p["Prefix"] for p in folded["CommonPrefixes"]] == ["list/sub/"]
ok("list_objects_v2 with a delimiter folds common prefixes")
after = s3.list_objects_v2(Bucket=bucket, Prefix="list/", StartAfter="list/05")
assert after["Contents"][0]["Key"] == "list/06"
ok("list_objects_v2 StartAfter")
encoded = s3.list_objects_v2(Bucket=bucket, Prefix="list/with", EncodingType="url")
# Asked for explicitly, the encoded form reaches the caller as it came.
assert urllib.parse.unquote(encoded["Contents"][0]["Key"]) == "list/with space é", encoded["Contents"][0]["Key"]
assert " " not in encoded["Contents"][0]["Key"]
ok("list_objects_v2 EncodingType=url")
v1 = s3.list_objects(Bucket=bucket, Prefix="list/", Marker="list/05", MaxKeys=2)
assert [o["Key"] for o in v1["Contents"]] == ["list/06", "list/sub/a"] and v1["IsTruncated"]
ok("list_objects (v1) with a marker")

deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:4]]})
assert len(deleted["Deleted"]) == 4
assert len(s3.list_objects_v2(Bucket=bucket, Prefix="list/")["Contents"]) == len(keys) - 4
ok("delete_objects")

url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=300)
assert requests.put(url, data=b"put through a URL").status_code == 200
assert s3.get_object(Bucket=bucket, Key="presigned")["Body"].read() == b"put through a URL"
ok("a presigned PUT URL")
# (The key is given whole: "${filename}" substitution is not offered.)
post = s3.generate_presigned_post(bucket, "form/cv.txt", Conditions=[["starts-with", "$key", "form/"]], ExpiresIn=300)
response = requests.post(post["url"], data=post["fields"], files={"file": ("cv.txt", b"from a form")})
assert response.status_code in (200, 204), (response.status_code, response.text)
assert s3.get_object(Bucket=bucket, Key="form/cv.txt")["Body"].read() == b"from a form"
ok("a presigned POST form")

assert code(lambda: s3.get_object(Bucket=bucket, Key="nothing")) == "NoSuchKey"
assert code(lambda: s3.get_object(Bucket=f"none-{SUFFIX}", Key="k")) == "NoSuchBucket"
ok("NoSuchKey and NoSuchBucket")

s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "service", "Value": "archives"}]})
assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "service", "Value": "archives"}]
ok("bucket tagging")
rules = [{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://example.fr"], "MaxAgeSeconds": 600}]
s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["AllowedOrigins"] == ["https://example.fr"]
ok("bucket CORS")

upload = s3.create_multipart_upload(Bucket=bucket, Key="pending")["UploadId"]
p1 = s3.upload_part(Bucket=bucket, Key="pending", UploadId=upload, PartNumber=1, Body=os.urandom(5 * 1024 * 1024))
copied = s3.upload_part_copy(
    Bucket=bucket, Key="pending", UploadId=upload, PartNumber=2, CopySource={"Bucket": bucket, "Key": "big"},
    CopySourceRange="bytes=0-1023",
)
assert copied["CopyPartResult"]["ETag"].strip('"') == hashlib.md5(big[:1024]).hexdigest()
listed = s3.list_multipart_uploads(Bucket=bucket)
assert [u["UploadId"] for u in listed["Uploads"]] == [upload]
parts = s3.list_parts(Bucket=bucket, Key="pending", UploadId=upload)["Parts"]
assert [p["PartNumber"] for p in parts] == [1, 2]
ok("list_multipart_uploads, list_parts, upload_part_copy with a range")
s3.abort_multipart_upload(Bucket=bucket, Key="pending", UploadId=upload)
assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket) or not s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
ok("abort_multipart_upload")

if os.environ.get("NUAGE_S3_ACCESS_KEY_B"):
    other = client(os.environ["NUAGE_S3_ACCESS_KEY_B"], os.environ["NUAGE_S3_SECRET_KEY_B"])
    assert code(lambda: other.get_object(Bucket=bucket, Key="big")) == "AccessDenied"
    assert code(lambda: other.put_object(Bucket=bucket, Key="planted", Body=b"x")) == "AccessDenied"
    assert code(lambda: s3.head_object(Bucket=bucket, Key="planted")) == "404"
    ok("another organisation's key is denied")

for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for o in page.get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=o["Key"])
s3.delete_bucket(Bucket=bucket)
ok("empty and delete the bucket")
