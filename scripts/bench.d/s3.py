"""Helpers of scripts/bench-s3: presigned URLs, big transfers with a timer,
the raw disk rate of the same writes, and the server's peak memory."""

import concurrent.futures
import http.client
import os
import sys
import time
import urllib.parse
import urllib.request

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["NUAGE_S3_ENDPOINT"],
        aws_access_key_id=os.environ["NUAGE_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["NUAGE_S3_SECRET_KEY"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def presign(method, bucket, key):
    operation = {"GET": "get_object", "PUT": "put_object"}[method]
    print(client().generate_presigned_url(operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600))


def put_object(bucket, key, size):
    client().put_object(Bucket=bucket, Key=key, Body=b"n" * int(size))


class Zeros:
    """A readable body of `size` bytes that never holds more than a buffer."""

    def __init__(self, size):
        self.left = size

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"n" * n


def big(method, bucket, size, concurrency):
    """Transfers `concurrency` objects of `size` bytes at once through
    presigned URLs; prints MB/s and the slowest transfer's seconds."""
    size, concurrency = int(size), int(concurrency)
    s3 = client()
    op = {"GET": "get_object", "PUT": "put_object"}[method]
    urls = [s3.generate_presigned_url(op, Params={"Bucket": bucket, "Key": f"big-{i}"}, ExpiresIn=3600) for i in range(concurrency)]

    def one(url):
        start = time.monotonic()
        if method == "PUT":
            # http.client sends exactly these headers (urllib would add a
            # Content-Type), streaming the body in 1 MiB writes.
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parts.netloc)
            conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            body = Zeros(size)
            while chunk := body.read(1 << 20):
                conn.send(chunk)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (response.status, response.reason)
        else:
            with urllib.request.urlopen(url) as r:
                got = 0
                while chunk := r.read(1 << 20):
                    got += len(chunk)
                assert got == size, (got, size)
        return time.monotonic() - start

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        times = list(pool.map(one, urls))
    elapsed = time.monotonic() - start
    print(f"{size * concurrency / elapsed / 1e6:.1f} {max(times):.2f}")


def raw_write(directory, size, concurrency, seconds):
    """The same bytes written and fsynced to the same disk, without Nuage:
    files of `size` bytes, `concurrency` writers, for `seconds`; MB/s."""
    size, concurrency, seconds = int(size), int(concurrency), float(seconds)
    buffer = b"n" * min(size, 1 << 20)

    def writer(index):
        written, n = 0, 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or n == 0:
            path = os.path.join(directory, f"raw-{index}-{n % 4}")
            with open(path, "wb") as f:
                left = size
                while left:
                    chunk = buffer[: min(left, len(buffer))]
                    f.write(chunk)
                    left -= len(chunk)
                f.flush()
                os.fsync(f.fileno())
            written += size
            n += 1
        return written

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(writer, range(concurrency)))
    print(f"{total / (time.monotonic() - start) / 1e6:.1f}")


def raw_read(directory, size):
    """Reading back a file of `size` bytes just written (page cache): MB/s."""
    size = int(size)
    path = os.path.join(directory, "raw-read")
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(b"n" * (1 << 20))
    start = time.monotonic()
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    print(f"{size / (time.monotonic() - start) / 1e6:.1f}")
    os.remove(path)


def peak_memory(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) // 1024)


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
