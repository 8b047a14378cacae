"""Real S3 clients against a running Nuage: the aws CLI, boto3, rclone and
s3cmd, each through the scenarios its users run.

Started by ./run, which installs the clients and puts them on PATH. Every
check prints "ok - <client>: <what>" or "not ok - ..." followed by what was
sent and what came back; one failed check does not stop the others (a check
that needs a failed one is reported as not run, which also counts as a
failure). Exits non-zero if anything failed.

Environment: NUAGE_S3_ENDPOINT, NUAGE_S3_ACCESS_KEY, NUAGE_S3_SECRET_KEY, and
for the cross-tenant check NUAGE_S3_ACCESS_KEY_B / NUAGE_S3_SECRET_KEY_B.
"""

import asyncio
import base64
import collections
import hashlib
import io
import json
import os
import re
import secrets
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import traceback
import urllib.parse
import zlib
from pathlib import Path

import boto3
import requests
from awscrt import checksums as crt_checksums
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["NUAGE_S3_ENDPOINT"].rstrip("/")
KEY = os.environ["NUAGE_S3_ACCESS_KEY"]
SECRET = os.environ["NUAGE_S3_SECRET_KEY"]
KEY_B = os.environ.get("NUAGE_S3_ACCESS_KEY_B", "")
SECRET_B = os.environ.get("NUAGE_S3_SECRET_KEY_B", "")
# The REST API and a token that manages A's organisation: for the public
# access round trip (an organisation's Block Public Access is set there).
API_URL = os.environ.get("NUAGE_API_URL", "").rstrip("/")
API_TOKEN = os.environ.get("NUAGE_API_TOKEN", "")
# The website listener (docs/websites.md), where buckets published with
# `aws s3 website` are read with curl; its checks are skipped without it.
WEB_ENDPOINT = os.environ.get("NUAGE_WEB_ENDPOINT", "").rstrip("/")
WEB_DOMAIN = os.environ.get("NUAGE_WEB_DOMAIN", "sites.localhost")
REGION = "us-east-1"
MiB = 1024 * 1024

# Bucket names are global on Nuage: a random suffix keeps reruns apart.
SUFFIX = secrets.token_hex(4)
WORK = Path(tempfile.mkdtemp(prefix="nuage-s3-compat-"))
LOGS = WORK / "logs"
LOGS.mkdir()
BUCKETS = []  # every bucket this run created, for the final clean-up


# --- reporting ----------------------------------------------------------------

class Report:
    def __init__(self):
        self.ok, self.failed, self.skipped = [], [], []

    def passed(self, name):
        self.ok.append(name)
        print(f"ok - {name}", flush=True)

    def fail(self, name, detail):
        self.failed.append(name)
        print(f"not ok - {name}", flush=True)
        print("    " + detail.rstrip().replace("\n", "\n    "), flush=True)

    def skip(self, name, why):
        self.skipped.append(name)
        print(f"skip - {name} ({why})", flush=True)


REPORT = Report()


class Group:
    """The checks of one client, run in order as they are defined.

    @group.check("name") runs the decorated function at once. A check given
    needs=[...] is not run when one of those failed (it fails as "not run"),
    so one server bug gives one clear failure, not a cascade of odd ones."""

    def __init__(self, client):
        self.client = client
        self.failed = set()

    def check(self, name, needs=()):
        def run(fn):
            full = f"{self.client}: {name}"
            missing = [n for n in needs if n in self.failed]
            if missing:
                self.failed.add(name)
                REPORT.fail(full, "not run: needs " + ", ".join(repr(m) for m in missing))
                return fn
            WIRE.clear()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
                self.failed.add(name)
                REPORT.fail(full, describe(e))
            else:
                REPORT.passed(full)
            return fn
        return run


class CommandFailed(Exception):
    pass


def describe(e):
    """What went wrong, with the last request and response boto3 saw."""
    if isinstance(e, (CommandFailed, AssertionError)) and str(e):
        text = str(e)
    else:
        text = "".join(traceback.format_exception(e)[-6:])
    if WIRE:
        text += "\n" + "\n".join(WIRE)
    return text


class Wire:
    """Keeps the last requests and responses of boto3 clients, to show them
    when a check fails."""

    def __init__(self):
        self.lines = collections.deque(maxlen=3)

    def attach(self, client):
        client.meta.events.register("before-send.s3", self._sent)
        client.meta.events.register("response-received.s3", self._received)

    def _sent(self, request, **_):
        headers = "".join(f"\n  > {k}: {v if len(str(v)) < 300 else str(v)[:300] + '…'}" for k, v in request.headers.items())
        self.lines.append(f"request: {request.method} {request.url}{headers}")

    def _received(self, response_dict=None, exception=None, **_):
        if response_dict is None:
            self.lines.append(f"response: none ({exception!r})")
            return
        headers = "".join(f"\n  < {k}: {v}" for k, v in response_dict["headers"].items())
        body = response_dict.get("body")
        shown = body[:2000].decode("utf-8", "replace") if isinstance(body, bytes) else "(streamed)"
        self.lines.append(f"response: {response_dict['status_code']}{headers}\n  < body: {shown}")

    def clear(self):
        self.lines.clear()

    def __iter__(self):
        return iter(self.lines)

    def __bool__(self):
        return bool(self.lines)


WIRE = Wire()


# --- helpers ------------------------------------------------------------------

_counter = iter(range(1, 10_000))


def run(cmd, env, *, ok_codes=(0,), excerpt=None):
    """Runs a client command; its whole output goes to a log file, and a
    failure shows the command, its exit code and the end of its output."""
    n = next(_counter)
    log = LOGS / f"{n:03d}-{Path(cmd[0]).name}.log"
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    log.write_text(f"$ {shlex.join(cmd)}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    if proc.returncode not in ok_codes:
        raise CommandFailed(
            f"$ {shlex.join(cmd)}\nexit code {proc.returncode} (whole output: {log})\n"
            + (excerpt or tail)(proc.stdout + proc.stderr)
        )
    return proc


def tail(text, n=30):
    return "\n".join(line[:1500] for line in text.splitlines()[-n:])


def aws_debug_excerpt(text):
    """From `aws --debug` output: the HTTP exchanges and errors at the end."""
    wanted = re.compile(r"Sending http request|Response headers|Response body|\" \d{3} |rror|Traceback|Exception")
    lines = [line for line in text.splitlines() if wanted.search(line)]
    return "\n".join(line[:2000] for line in lines[-12:])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def same_file(expected, got):
    a, b = Path(expected), Path(got)
    assert b.exists(), f"{b} was not written"
    assert sha256(a) == sha256(b), (
        f"{b} ({b.stat().st_size} bytes, sha256 {sha256(b)}) differs from "
        f"{a} ({a.stat().st_size} bytes, sha256 {sha256(a)})"
    )


def random_file(path, size):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for start in range(0, size, MiB):
            f.write(os.urandom(min(MiB, size - start)))
    return path


def make_tree(root, big=0):
    """A directory tree with nested folders and names that need encoding."""
    root = Path(root)
    for name, size in [
        ("top.txt", 1_000),
        ("docs/a.bin", 70_000),
        ("docs/deep/er/b.bin", 3_000),
        ("docs/empty.txt", 0),
        ("with space/x y.txt", 500),
        ("unicodé/façade ü.txt", 800),
        ("plus+sign/c+d.txt", 300),
    ]:
        random_file(root / name, size)
    if big:
        random_file(root / "large.bin", big)
    return root


def diff_r(a, b):
    proc = subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True, text=True)
    assert proc.returncode == 0, f"diff -r {a} {b}:\n{tail(proc.stdout + proc.stderr)}"


def clean_env(**extra):
    """The machine's environment without anything that would steer a client
    elsewhere (credentials, CA bundles, proxies, config files)."""
    env = {
        k: v for k, v in os.environ.items()
        if not (k.startswith(("AWS_", "RCLONE_", "S3CMD")) or "CA_BUNDLE" in k or k.lower().endswith("_proxy"))
    }
    env.update(extra)
    return env


def b64(raw):
    return base64.b64encode(raw).decode()


def local_checksum(algorithm, data):
    """The checksum S3 returns for `data`, computed here independently."""
    if algorithm == "CRC32":
        return b64(zlib.crc32(data).to_bytes(4, "big"))
    if algorithm == "CRC32C":
        return b64(crt_checksums.crc32c(data).to_bytes(4, "big"))
    if algorithm == "CRC64NVME":
        return b64(crt_checksums.crc64nvme(data).to_bytes(8, "big"))
    return b64(hashlib.new(algorithm.lower(), data).digest())


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected an error, the call succeeded")


def s3_client(endpoint=ENDPOINT, key=KEY, secret=SECRET, verify=None):
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=REGION,
        verify=verify,
        # One attempt: a retry would hide a request the server got wrong.
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
    )
    WIRE.attach(client)
    return client


def new_bucket_name(client):
    name = f"compat-{client}-{SUFFIX}"
    BUCKETS.append(name)
    return name


# --- TLS in front of Nuage ----------------------------------------------------

class TlsFront:
    """Terminates TLS on a loopback port and passes the bytes through to
    Nuage's plain-HTTP listener untouched, as a TLS-terminating proxy in
    front of Nuage would. botocore puts checksums in aws-chunked trailers only
    over https (over http it sends them in a header), so this is how the
    aws CLI's and boto3's default upload path gets exercised."""

    def __init__(self, backend, cert, key):
        parts = urllib.parse.urlsplit(backend)
        self.backend = (parts.hostname, parts.port or 80)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=context))
            self.url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            started.set()
            self.loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        if not started.wait(10):
            raise RuntimeError("the TLS front did not start")

    async def _relay(self, client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(*self.backend)
        except OSError:
            client_w.close()
            return

        async def pump(reader, writer, half_close):
            try:
                while data := await reader.read(1 << 16):
                    writer.write(data)
                    await writer.drain()
                if half_close:
                    writer.write_eof()
                else:
                    writer.close()
            except (OSError, ssl.SSLError):
                writer.close()

        await asyncio.gather(pump(client_r, server_w, True), pump(server_r, client_w, False), return_exceptions=True)
        server_w.close()
        client_w.close()


def start_tls_front():
    cert, key = WORK / "tls-cert.pem", WORK / "tls-key.pem"
    run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        clean_env(),
    )
    return TlsFront(ENDPOINT, str(cert), str(key)), str(cert)


# --- aws CLI ------------------------------------------------------------------

def aws_scenarios(tls_url, ca):
    g = Group("aws")
    config = WORK / "aws-config"
    # What docs/s3-clients.md tells users to write in ~/.aws/config.
    config.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    env = clean_env(
        AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(WORK / "no-credentials"), AWS_CA_BUNDLE=ca,
        AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard", AWS_PAGER="",
    )

    env_b = dict(env, AWS_ACCESS_KEY_ID=KEY_B, AWS_SECRET_ACCESS_KEY=SECRET_B)

    def aws(*args, endpoint=tls_url, ok_codes=(0,), as_b=False):
        # --debug logs every request and response: a failure then shows them.
        proc = run(["aws", "--debug", "--endpoint-url", endpoint, *args], env_b if as_b else env,
                   ok_codes=ok_codes, excerpt=aws_debug_excerpt)
        return proc

    def api(*args, as_b=False):
        out = aws("s3api", *args, "--output", "json", as_b=as_b).stdout
        return json.loads(out) if out.strip() else {}

    b = new_bucket_name("aws")
    small = random_file(WORK / "aws/small.bin", 1234)
    big = random_file(WORK / "aws/big.bin", 20 * MiB)
    st = {}

    @g.check("mb")
    def _():
        aws("s3", "mb", f"s3://{b}")

    @g.check("cp a small file up and down (sha256 equal)", needs=["mb"])
    def _():
        aws("s3", "cp", "--quiet", str(small), f"s3://{b}/small.bin")
        aws("s3", "cp", "--quiet", f"s3://{b}/small.bin", str(WORK / "aws/small.back"))
        same_file(small, WORK / "aws/small.back")

    @g.check("the CRC32 the CLI sent in a trailer is stored and returned", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        head = api("head-object", "--bucket", b, "--key", "small.bin", "--checksum-mode", "ENABLED")
        expected = local_checksum("CRC32", small.read_bytes())
        assert head.get("ChecksumCRC32") == expected, f"ChecksumCRC32 {head.get('ChecksumCRC32')!r}, expected {expected!r}: {head}"

    @g.check("cp 20 MiB up (multipart, CRC32 in aws-chunked trailers) and down", needs=["mb"])
    def _():
        up = aws("s3", "cp", "--quiet", str(big), f"s3://{b}/big.bin")
        assert "CreateMultipartUpload" in up.stderr, "the CLI did not use a multipart upload"
        assert re.search(r"x-amz-trailer'?: b?'x-amz-checksum-crc32'", up.stderr, re.I), \
            "the CLI did not send its checksum in a trailer (see the log)"
        aws("s3", "cp", "--quiet", f"s3://{b}/big.bin", str(WORK / "aws/big.back"))
        same_file(big, WORK / "aws/big.back")
        etag = api("head-object", "--bucket", b, "--key", "big.bin")["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}-3"', etag), f"a 20 MiB upload in 8 MiB parts has ETag {etag}, not md5-3"

    @g.check("over plain HTTP, cp 20 MiB up (CRC32 in a header) and down", needs=["mb"])
    def _():
        aws("s3", "cp", "--quiet", str(big), f"s3://{b}/big-http.bin", endpoint=ENDPOINT)
        aws("s3", "cp", "--quiet", f"s3://{b}/big-http.bin", str(WORK / "aws/big-http.back"), endpoint=ENDPOINT)
        same_file(big, WORK / "aws/big-http.back")

    @g.check("ls lists the bucket and its objects", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        buckets = aws("s3", "ls").stdout
        assert re.search(rf"\s{re.escape(b)}$", buckets, re.M), f"{b} not in `aws s3 ls`:\n{buckets}"
        listed = aws("s3", "ls", f"s3://{b}/").stdout
        sizes = {line.split()[-1]: int(line.split()[-2]) for line in listed.splitlines()}
        assert sizes.get("small.bin") == 1234, f"small.bin not listed with its size:\n{listed}"
        assert set(sizes) <= {"small.bin", "big.bin", "big-http.bin"}, f"unexpected names:\n{listed}"

    @g.check("s3 website publishes the bucket; curl reads its pages", needs=["mb"])
    def _():
        if not WEB_ENDPOINT:
            REPORT.skip("aws: s3 website", "NUAGE_WEB_ENDPOINT is not set")
            return
        site = WORK / "aws/site"
        site.mkdir(parents=True, exist_ok=True)
        (site / "index.html").write_text("<h1>Bienvenue</h1>\n")
        (site / "404.html").write_text("<h1>Introuvable</h1>\n")
        aws("s3", "sync", "--quiet", str(site), f"s3://{b}/site")
        aws("s3", "website", f"s3://{b}", "--index-document", "index.html", "--error-document", "site/404.html")
        port = urllib.parse.urlparse(WEB_ENDPOINT).port
        host = f"{b}.{WEB_DOMAIN}"

        def curl(path):
            proc = run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--resolve", f"{host}:{port}:127.0.0.1",
                        f"http://{host}:{port}{path}"], clean_env())
            body, _, code = proc.stdout.rpartition("\n")
            return int(code), body

        code, body = curl("/site/")
        assert (code, body) == (200, "<h1>Bienvenue</h1>\n"), f"/site/ gave {code}: {body!r}"
        code, body = curl("/site/nowhere.html")
        assert (code, body) == (404, "<h1>Introuvable</h1>\n"), f"a missing page gave {code}: {body!r}"
        config = api("get-bucket-website", "--bucket", b)
        assert config.get("IndexDocument", {}).get("Suffix") == "index.html", config
        api("delete-bucket-website", "--bucket", b)
        code, _ = curl("/site/")
        assert code == 404, f"an unpublished site still answers {code}"

    tree = make_tree(WORK / "aws/tree")

    @g.check("sync a tree with nested folders up and back down (diff -r)", needs=["mb"])
    def _():
        aws("s3", "sync", "--quiet", str(tree), f"s3://{b}/tree")
        aws("s3", "sync", "--quiet", f"s3://{b}/tree", str(WORK / "aws/tree.back"))
        diff_r(tree, WORK / "aws/tree.back")
        again = aws("s3", "sync", str(tree), f"s3://{b}/tree").stdout
        assert again.strip() == "", f"a second sync of an unchanged tree uploaded again:\n{again}"

    @g.check("ls --recursive", needs=["sync a tree with nested folders up and back down (diff -r)"])
    def _():
        listed = aws("s3", "ls", "--recursive", f"s3://{b}/tree/").stdout.splitlines()
        keys = sorted(line.split(None, 3)[3] for line in listed)
        expected = sorted("tree/" + p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())
        assert keys == expected, f"listed {keys}, expected {expected}"

    @g.check("rm --recursive", needs=["sync a tree with nested folders up and back down (diff -r)"])
    def _():
        aws("s3", "rm", "--quiet", "--recursive", f"s3://{b}/tree/")
        left = api("list-objects-v2", "--bucket", b, "--prefix", "tree/")
        assert not left.get("Contents"), f"left after rm --recursive: {[o['Key'] for o in left['Contents']]}"

    @g.check("put-bucket-versioning Enabled", needs=["mb"])
    def _():
        api("put-bucket-versioning", "--bucket", b, "--versioning-configuration", "Status=Enabled")
        status = api("get-bucket-versioning", "--bucket", b).get("Status")
        assert status == "Enabled", f"get-bucket-versioning says {status!r}"

    v1, v2 = WORK / "aws/v1.txt", WORK / "aws/v2.txt"
    v1.write_text("first version\n")
    v2.write_text("second version, longer\n")

    @g.check("two puts keep two versions (list-object-versions)", needs=["put-bucket-versioning Enabled"])
    def _():
        st["v1"] = api("put-object", "--bucket", b, "--key", "doc.txt", "--body", str(v1))["VersionId"]
        st["v2"] = api("put-object", "--bucket", b, "--key", "doc.txt", "--body", str(v2))["VersionId"]
        assert st["v1"] and st["v2"] and st["v1"] != st["v2"], f"version ids {st['v1']!r}, {st['v2']!r}"
        versions = api("list-object-versions", "--bucket", b, "--prefix", "doc.txt").get("Versions", [])
        seen = [(v["VersionId"], v["IsLatest"], v["Size"]) for v in versions]
        assert seen == [(st["v2"], True, v2.stat().st_size), (st["v1"], False, v1.stat().st_size)], seen

    @g.check("get-object --version-id reads the older version", needs=["two puts keep two versions (list-object-versions)"])
    def _():
        api("get-object", "--bucket", b, "--key", "doc.txt", "--version-id", st["v1"], str(WORK / "aws/v1.back"))
        same_file(v1, WORK / "aws/v1.back")
        api("get-object", "--bucket", b, "--key", "doc.txt", str(WORK / "aws/v2.back"))
        same_file(v2, WORK / "aws/v2.back")

    @g.check("delete makes a delete marker", needs=["two puts keep two versions (list-object-versions)"])
    def _():
        deleted = api("delete-object", "--bucket", b, "--key", "doc.txt")
        assert deleted.get("DeleteMarker") is True and deleted.get("VersionId"), f"delete-object gave {deleted}"
        gone = aws("s3api", "head-object", "--bucket", b, "--key", "doc.txt", ok_codes=(254, 255))
        assert "(404)" in gone.stderr, f"head-object after the delete:\n{tail(gone.stderr, 3)}"
        listing = api("list-object-versions", "--bucket", b, "--prefix", "doc.txt")
        markers = [(m["VersionId"], m["IsLatest"]) for m in listing.get("DeleteMarkers", [])]
        assert markers == [(deleted["VersionId"], True)], f"delete markers {markers}"
        assert len(listing.get("Versions", [])) == 2, f"versions after the delete: {listing.get('Versions')}"

    @g.check("head-object --if-none-match with the ETag gives 304", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        etag = api("head-object", "--bucket", b, "--key", "small.bin")["ETag"]
        assert etag == f'"{hashlib.md5(small.read_bytes()).hexdigest()}"', f"ETag {etag} is not the MD5 of the body"
        proc = aws("s3api", "head-object", "--bucket", b, "--key", "small.bin", "--if-none-match", etag, ok_codes=(254, 255))
        assert "An error occurred (304)" in proc.stderr, f"expected 304:\n{aws_debug_excerpt(proc.stderr)}"
        api("head-object", "--bucket", b, "--key", "small.bin", "--if-none-match", '"0123456789abcdef0123456789abcdef"')

    @g.check("get-object --range bytes=0-9", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        got = api("get-object", "--bucket", b, "--key", "small.bin", "--range", "bytes=0-9", str(WORK / "aws/range"))
        assert (WORK / "aws/range").read_bytes() == small.read_bytes()[:10], "the range's bytes differ"
        assert got.get("ContentRange") == "bytes 0-9/1234" and got.get("ContentLength") == 10, got

    @g.check("put-object-tagging / get-object-tagging", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        api("put-object-tagging", "--bucket", b, "--key", "small.bin",
            "--tagging", "TagSet=[{Key=team,Value=achats},{Key=year,Value=2026}]")
        tags = api("get-object-tagging", "--bucket", b, "--key", "small.bin")["TagSet"]
        assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "achats"), ("year", "2026")], tags

    @g.check("ACLs: the owner's FULL_CONTROL, public-read refused while disabled; enabled, a grant lets another organisation read", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        for acl in (api("get-bucket-acl", "--bucket", b), api("get-object-acl", "--bucket", b, "--key", "small.bin")):
            grants = acl["Grants"]
            assert [g["Permission"] for g in grants] == ["FULL_CONTROL"], grants
            assert grants[0]["Grantee"]["ID"] == acl["Owner"]["ID"], acl
        api("put-object-acl", "--bucket", b, "--key", "small.bin", "--acl", "bucket-owner-full-control")
        refused = aws("s3api", "put-object-acl", "--bucket", b, "--key", "small.bin", "--acl", "public-read",
                      ok_codes=(254, 255))
        assert "AccessControlListNotSupported" in refused.stderr, tail(refused.stderr, 3)
        owner = api("get-bucket-ownership-controls", "--bucket", b)["OwnershipControls"]["Rules"]
        assert owner == [{"ObjectOwnership": "BucketOwnerEnforced"}], owner
        if not (KEY_B and SECRET_B):
            return
        # With ACLs enabled, a grant to another organisation lets it read.
        org_b = api("list-buckets", as_b=True)["Owner"]["ID"]
        api("put-bucket-ownership-controls", "--bucket", b,
            "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerPreferred}]")
        try:
            api("put-object-acl", "--bucket", b, "--key", "small.bin", "--grant-read", f"id={org_b}")
            grants = api("get-object-acl", "--bucket", b, "--key", "small.bin")["Grants"]
            assert {"READ", "FULL_CONTROL"} == {g["Permission"] for g in grants}, grants
            aws("s3api", "get-object", "--bucket", b, "--key", "small.bin", str(WORK / "aws/acl-b"), as_b=True)
            same_file(small, WORK / "aws/acl-b")
            api("put-object-acl", "--bucket", b, "--key", "small.bin", "--acl", "private")
        finally:
            api("put-bucket-ownership-controls", "--bucket", b,
                "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerEnforced}]")
        denied = aws("s3api", "get-object", "--bucket", b, "--key", "small.bin", str(WORK / "aws/acl-b2"),
                     ok_codes=(254, 255), as_b=True)
        assert "AccessDenied" in denied.stderr, tail(denied.stderr, 3)

    @g.check("bucket policy: Block Public Access refuses a public one and unsigned reads; one naming another organisation lets it read", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        block = api("get-public-access-block", "--bucket", b)["PublicAccessBlockConfiguration"]
        assert all(block.values()), f"on by default: {block}"
        public = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]})
        refused = aws("s3api", "put-bucket-policy", "--bucket", b, "--policy", public, ok_codes=(254, 255))
        assert "AccessDenied" in refused.stderr, tail(refused.stderr, 3)
        unsigned = aws("s3api", "get-object", "--no-sign-request", "--bucket", b, "--key", "small.bin",
                       str(WORK / "aws/unsigned"), ok_codes=(254, 255))
        assert "AccessDenied" in unsigned.stderr, tail(unsigned.stderr, 3)
        if not (KEY_B and SECRET_B):
            return
        org_b = api("list-buckets", as_b=True)["Owner"]["ID"]
        grant = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{org_b}:root"]},
            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/small.bin"}]})
        api("put-bucket-policy", "--bucket", b, "--policy", grant)
        assert api("get-bucket-policy-status", "--bucket", b)["PolicyStatus"]["IsPublic"] is False
        assert json.loads(api("get-bucket-policy", "--bucket", b)["Policy"]) == json.loads(grant)
        aws("s3api", "get-object", "--bucket", b, "--key", "small.bin", str(WORK / "aws/by-b"), as_b=True)
        same_file(small, WORK / "aws/by-b")
        api("delete-bucket-policy", "--bucket", b)
        denied = aws("s3api", "get-object", "--bucket", b, "--key", "small.bin", str(WORK / "aws/by-b2"),
                     ok_codes=(254, 255), as_b=True)
        assert "AccessDenied" in denied.stderr, tail(denied.stderr, 3)

    if API_URL and API_TOKEN:
        @g.check("public access: with the organisation's and the bucket's switches off, a public policy serves unsigned reads; switched back on, it cannot", needs=["cp a small file up and down (sha256 equal)"])
        def _():
            org = api("list-buckets")["Owner"]["ID"]

            def org_switches(on):
                response = requests.put(
                    f"{API_URL}/api/v1/orgs/{org}/public-access-block", timeout=30,
                    headers={"Authorization": f"Bearer {API_TOKEN}"},
                    json={k: on for k in ("block_public_acls", "ignore_public_acls",
                                          "block_public_policy", "restrict_public_buckets")})
                assert response.status_code == 200, f"{response.status_code} {response.text}"

            public = json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]})
            switches = "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy={0},RestrictPublicBuckets={0}"
            org_switches(False)
            try:
                api("put-public-access-block", "--bucket", b,
                    "--public-access-block-configuration", switches.format("false"))
                api("put-bucket-policy", "--bucket", b, "--policy", public)
                assert api("get-bucket-policy-status", "--bucket", b)["PolicyStatus"]["IsPublic"] is True
                aws("s3api", "get-object", "--no-sign-request", "--bucket", b, "--key", "small.bin",
                    str(WORK / "aws/public"))
                same_file(small, WORK / "aws/public")
                api("put-public-access-block", "--bucket", b,
                    "--public-access-block-configuration", switches.format("true"))
                shut = aws("s3api", "get-object", "--no-sign-request", "--bucket", b, "--key", "small.bin",
                           str(WORK / "aws/public2"), ok_codes=(254, 255))
                assert "AccessDenied" in shut.stderr, tail(shut.stderr, 3)
                api("delete-bucket-policy", "--bucket", b)
            finally:
                org_switches(True)
    else:
        REPORT.skip("aws: public access round trip", "NUAGE_API_URL and NUAGE_API_TOKEN are not set")

    @g.check("copy-object --metadata-directive REPLACE with a new content type", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        api("copy-object", "--bucket", b, "--key", "copy.txt", "--copy-source", f"{b}/small.bin",
            "--metadata-directive", "REPLACE", "--content-type", "text/plain", "--metadata", "origin=compat")
        head = api("head-object", "--bucket", b, "--key", "copy.txt")
        assert head.get("ContentType") == "text/plain", f"content type {head.get('ContentType')!r}"
        assert head.get("Metadata") == {"origin": "compat"}, f"metadata {head.get('Metadata')}"
        api("get-object", "--bucket", b, "--key", "copy.txt", str(WORK / "aws/copy.back"))
        same_file(small, WORK / "aws/copy.back")

    @g.check("presign a GET URL and fetch it with curl", needs=["cp a small file up and down (sha256 equal)"])
    def _():
        url = aws("s3", "presign", f"s3://{b}/small.bin", "--expires-in", "300").stdout.strip()
        run(["curl", "-sS", "--fail-with-body", "--cacert", ca, "-o", str(WORK / "aws/presigned"), url], clean_env())
        same_file(small, WORK / "aws/presigned")
        # The same URL, tampered with, must be refused.
        proc = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca,
                    url.replace("small.bin", "copy.txt")], clean_env())
        assert proc.stdout == "403", f"a presigned URL used for another key gave HTTP {proc.stdout}"

    @g.check("rb after emptying every version", needs=["mb"])
    def _():
        aws("s3", "rm", "--quiet", "--recursive", f"s3://{b}")
        # A versioned bucket is empty only once every version and marker is gone.
        listing = api("list-object-versions", "--bucket", b)
        entries = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])]
        if entries:
            batch = WORK / "aws/delete.json"
            batch.write_text(json.dumps({"Objects": entries, "Quiet": True}))
            errors = api("delete-objects", "--bucket", b, "--delete", f"file://{batch}").get("Errors")
            assert not errors, f"delete-objects errors: {errors}"
        aws("s3", "rb", f"s3://{b}")
        proc = aws("s3api", "head-bucket", "--bucket", b, ok_codes=(254, 255))
        assert "(404)" in proc.stderr, f"head-bucket after rb:\n{tail(proc.stderr, 3)}"


# --- boto3 --------------------------------------------------------------------

def boto3_scenarios(tls_url, ca):
    g = Group("boto3")
    s3 = s3_client()
    s3_tls = s3_client(tls_url, verify=ca)
    b = new_bucket_name("boto3")
    st = {}

    @g.check("create_bucket, head_bucket")
    def _():
        s3.create_bucket(Bucket=b)
        s3.head_bucket(Bucket=b)

    @g.check("get_bucket_location", needs=["create_bucket, head_bucket"])
    def _():
        location = s3.get_bucket_location(Bucket=b)
        assert "LocationConstraint" in location, location
        # S3 answers None for us-east-1; otherwise the name of the bucket's region.
        value = location["LocationConstraint"]
        assert value is None or (isinstance(value, str) and value), f"LocationConstraint {value!r}"

    body = os.urandom(300_000)
    for algorithm in ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]:
        for transport, client in [("header over http", s3), ("aws-chunked trailer over https", s3_tls)]:
            @g.check(f"put_object with a {algorithm} checksum ({transport}), returned by get_object", needs=["create_bucket, head_bucket"])
            def _(algorithm=algorithm, transport=transport, client=client):
                sent = {}
                grab = lambda request, **_: sent.update({k.lower(): v for k, v in request.headers.items()})  # noqa: E731
                client.meta.events.register("before-send.s3.PutObject", grab)
                try:
                    key = f"sum/{algorithm}/{transport.split()[0]}"
                    put = client.put_object(Bucket=b, Key=key, Body=body, ChecksumAlgorithm=algorithm)
                finally:
                    client.meta.events.unregister("before-send.s3.PutObject", grab)
                trailer = sent.get("x-amz-trailer")
                trailer = trailer.decode() if isinstance(trailer, bytes) else trailer
                if "trailer" in transport:
                    assert trailer == f"x-amz-checksum-{algorithm.lower()}", f"boto3 sent x-amz-trailer {trailer!r}"
                else:
                    assert trailer is None and f"x-amz-checksum-{algorithm.lower()}" in sent, "boto3 sent no checksum header"
                field, expected = f"Checksum{algorithm}", local_checksum(algorithm, body)
                assert put.get(field) == expected, f"put_object answered {field}={put.get(field)!r}, expected {expected!r}"
                got = client.get_object(Bucket=b, Key=key, ChecksumMode="ENABLED")
                assert got.get(field) == expected, f"get_object answered {field}={got.get(field)!r}, expected {expected!r}"
                assert got["Body"].read() == body, "the body read back differs"

    @g.check("a wrong x-amz-checksum-sha256 is BadDigest and stores nothing", needs=["create_bucket, head_bucket"])
    def _():
        wrong = b64(hashlib.sha256(b"something else").digest())
        assert error_code(lambda: s3.put_object(Bucket=b, Key="bad-sum", Body=b"payload", ChecksumSHA256=wrong)) == "BadDigest"
        assert error_code(lambda: s3.head_object(Bucket=b, Key="bad-sum")) == "404"

    @g.check("a wrong CRC32 in the aws-chunked trailer is BadDigest and stores nothing", needs=["create_bucket, head_bucket"])
    def _():
        # botocore cannot be asked for a wrong trailer: its CRC32 class is
        # swapped for one that lies, for this one request.
        import botocore.httpchecksum as hc
        honest = hc._CHECKSUM_CLS["crc32"]

        class Lying(honest):
            def b64digest(self):
                return local_checksum("CRC32", b"something else")

        hc._CHECKSUM_CLS["crc32"] = Lying
        try:
            code = error_code(lambda: s3_tls.put_object(Bucket=b, Key="bad-trailer", Body=body, ChecksumAlgorithm="CRC32"))
        finally:
            hc._CHECKSUM_CLS["crc32"] = honest
        assert code == "BadDigest", f"error code {code}, expected BadDigest"
        assert error_code(lambda: s3.head_object(Bucket=b, Key="bad-trailer")) == "404", "the object was stored"

    @g.check("a wrong Content-MD5 is BadDigest and stores nothing", needs=["create_bucket, head_bucket"])
    def _():
        wrong = b64(hashlib.md5(b"something else").digest())
        assert error_code(lambda: s3.put_object(Bucket=b, Key="bad-md5", Body=b"payload", ContentMD5=wrong)) == "BadDigest"
        assert error_code(lambda: s3.head_object(Bucket=b, Key="bad-md5")) == "404"

    big = os.urandom(12 * MiB)

    @g.check("upload_fileobj 12 MiB in 5 MiB parts (TransferConfig), download_fileobj back", needs=["create_bucket, head_bucket"])
    def _():
        # classic: boto3 would switch to the CRT transfer client on some EC2 types.
        transfer = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, preferred_transfer_client="classic")
        s3.upload_fileobj(io.BytesIO(big), b, "big.bin", Config=transfer)
        out = io.BytesIO()
        s3.download_fileobj(b, "big.bin", out, Config=transfer)
        assert out.getvalue() == big, "the 12 MiB read back differ"
        etag = s3.head_object(Bucket=b, Key="big.bin")["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}-3"', etag), f"ETag {etag}, expected md5-of-md5s-3"

    # Keys that sort differently as bytes and as text, and need URL encoding.
    list_keys = [f"list/{i:02d}" for i in range(9)] + [
        "list/sub/a", "list/sub/b", "list/with space é+plus", "list/Zed", "list/~tilde",
    ]

    @g.check("list_objects_v2: MaxKeys pages with ContinuationToken (more than 2 pages), byte order", needs=["create_bucket, head_bucket"])
    def _():
        for k in list_keys:
            s3.put_object(Bucket=b, Key=k, Body=b".")
        seen, pages, token = [], 0, None
        while True:
            kwargs = {"Bucket": b, "Prefix": "list/", "MaxKeys": 4}
            if token:
                kwargs["ContinuationToken"] = token
            page = s3.list_objects_v2(**kwargs)
            pages += 1
            contents = [o["Key"] for o in page.get("Contents", [])]
            assert len(contents) <= 4 and page["KeyCount"] == len(contents), page
            seen += contents
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
            assert pages < 20, "the listing does not end"
        expected = sorted(list_keys, key=lambda k: k.encode())
        assert seen == expected, f"listed {seen}, expected {expected}"
        assert pages == 4, f"{pages} pages of 4 for {len(list_keys)} keys"

    @g.check("list_objects_v2: Delimiter with MaxKeys pages folds common prefixes", needs=["create_bucket, head_bucket"])
    def _():
        folded_keys = [f"fold/d{i}/f" for i in range(4)] + ["fold/d0/g", "fold/e0", "fold/e1"]
        for k in folded_keys:
            s3.put_object(Bucket=b, Key=k, Body=b".")
        prefixes, keys, pages, token = [], [], 0, None
        while True:
            kwargs = {"Bucket": b, "Prefix": "fold/", "Delimiter": "/", "MaxKeys": 2}
            if token:
                kwargs["ContinuationToken"] = token
            page = s3.list_objects_v2(**kwargs)
            pages += 1
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            keys += [o["Key"] for o in page.get("Contents", [])]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
            assert pages < 20, "the listing does not end"
        assert prefixes == [f"fold/d{i}/" for i in range(4)], f"common prefixes {prefixes}"
        assert keys == ["fold/e0", "fold/e1"], f"keys {keys}"
        assert pages == 3, f"{pages} pages of 2 for 4 prefixes and 2 keys"

    @g.check("list_objects_v2 StartAfter", needs=["list_objects_v2: MaxKeys pages with ContinuationToken (more than 2 pages), byte order"])
    def _():
        after = s3.list_objects_v2(Bucket=b, Prefix="list/", StartAfter="list/07")
        keys = [o["Key"] for o in after["Contents"]]
        expected = [k for k in sorted(list_keys, key=lambda k: k.encode()) if k.encode() > b"list/07"]
        assert keys == expected, f"StartAfter list/07 gave {keys}, expected {expected}"

    @g.check("list_objects_v2 EncodingType=url with spaces, unicode and +", needs=["list_objects_v2: MaxKeys pages with ContinuationToken (more than 2 pages), byte order"])
    def _():
        # Asked for explicitly, the encoded keys reach the caller as the server sent them.
        encoded = s3.list_objects_v2(Bucket=b, Prefix="list/with", EncodingType="url")
        raw = [o["Key"] for o in encoded["Contents"]]
        # botocore decodes with unquote_plus, so a '+' must come encoded (%2B).
        assert [urllib.parse.unquote_plus(k) for k in raw] == ["list/with space é+plus"], f"encoded keys {raw}"
        assert all(" " not in k and "é" not in k for k in raw), f"keys not encoded: {raw}"
        assert encoded.get("EncodingType") == "url", f"EncodingType in the answer: {encoded.get('EncodingType')!r}"
        plain = s3.list_objects_v2(Bucket=b, Prefix="list/with")
        assert [o["Key"] for o in plain["Contents"]] == ["list/with space é+plus"], plain["Contents"]

    @g.check("list_objects (v1) pages with Marker", needs=["list_objects_v2: MaxKeys pages with ContinuationToken (more than 2 pages), byte order"])
    def _():
        first = s3.list_objects(Bucket=b, Prefix="list/", Marker="list/05", MaxKeys=2)
        expected = [k for k in sorted(list_keys, key=lambda k: k.encode()) if k.encode() > b"list/05"]
        assert [o["Key"] for o in first["Contents"]] == expected[:2] and first["IsTruncated"], first.get("Contents")
        seen, marker = [], ""
        for _ in range(20):
            page = s3.list_objects(Bucket=b, Prefix="list/", Marker=marker, MaxKeys=3)
            seen += [o["Key"] for o in page.get("Contents", [])]
            if not page["IsTruncated"]:
                break
            marker = page.get("NextMarker") or seen[-1]
        assert seen == sorted(list_keys, key=lambda k: k.encode()), f"v1 pages gave {seen}"

    @g.check("delete_objects of several keys", needs=["list_objects_v2: MaxKeys pages with ContinuationToken (more than 2 pages), byte order"])
    def _():
        victims = list_keys[:5] + ["list/never-existed"]
        answer = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in victims]})
        assert sorted(d["Key"] for d in answer.get("Deleted", [])) == sorted(victims), answer.get("Deleted")
        assert not answer.get("Errors"), answer.get("Errors")
        left = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="list/")["Contents"]]
        assert left == sorted(list_keys[5:], key=lambda k: k.encode()), f"left after delete_objects: {left}"

    @g.check("generate_presigned_url put_object, PUT with requests, read back", needs=["create_bucket, head_bucket"])
    def _():
        url = s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "presigned/put.txt"}, ExpiresIn=300)
        response = requests.put(url, data=b"put through a URL", timeout=60)
        assert response.status_code == 200, f"PUT {url}: {response.status_code} {response.text}"
        assert s3.get_object(Bucket=b, Key="presigned/put.txt")["Body"].read() == b"put through a URL"
        url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "presigned/put.txt"}, ExpiresIn=300)
        response = requests.get(url, timeout=60)
        assert response.status_code == 200 and response.content == b"put through a URL", (response.status_code, response.text)

    @g.check("generate_presigned_post, multipart/form-data POST with requests, read back", needs=["create_bucket, head_bucket"])
    def _():
        post = s3.generate_presigned_post(
            b, "form/cv.txt", Fields={"Content-Type": "text/plain"},
            Conditions=[["starts-with", "$key", "form/"], {"Content-Type": "text/plain"}, ["content-length-range", 1, 1000]],
            ExpiresIn=300,
        )
        response = requests.post(post["url"], data=post["fields"], files={"file": ("cv.txt", b"from a form")}, timeout=60)
        assert response.status_code in (200, 204), f"POST {post['url']}: {response.status_code} {response.text}"
        got = s3.get_object(Bucket=b, Key="form/cv.txt")
        assert got["Body"].read() == b"from a form"
        assert got["ContentType"] == "text/plain", f"content type {got['ContentType']!r}"
        # Outside the policy's conditions (too large): refused, nothing stored.
        response = requests.post(post["url"], data=post["fields"], files={"file": ("cv.txt", b"x" * 2000)}, timeout=60)
        assert response.status_code in (400, 403), f"a POST over content-length-range got {response.status_code}"

    @g.check("NoSuchKey and NoSuchBucket error codes", needs=["create_bucket, head_bucket"])
    def _():
        assert (code := error_code(lambda: s3.get_object(Bucket=b, Key="nothing"))) == "NoSuchKey", code
        assert (code := error_code(lambda: s3.get_object(Bucket=f"none-{SUFFIX}", Key="k"))) == "NoSuchBucket", code
        assert (code := error_code(lambda: s3.list_objects_v2(Bucket=f"none-{SUFFIX}"))) == "NoSuchBucket", code

    @g.check("put_bucket_tagging / get_bucket_tagging", needs=["create_bucket, head_bucket"])
    def _():
        tags = [{"Key": "service", "Value": "archives"}, {"Key": "cost-centre", "Value": "42"}]
        s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tags})
        got = s3.get_bucket_tagging(Bucket=b)["TagSet"]
        assert sorted(got, key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"]), got

    @g.check("put_bucket_cors / get_bucket_cors", needs=["create_bucket, head_bucket"])
    def _():
        rules = [{
            "AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["https://example.fr"],
            "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600,
        }]
        s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": rules})
        got = s3.get_bucket_cors(Bucket=b)["CORSRules"]
        got = [{k: v for k, v in r.items() if k != "ID"} for r in got]
        assert got == rules, f"get_bucket_cors gave {got}"

    @g.check("list_multipart_uploads and list_parts on an upload in progress, abort_multipart_upload", needs=["create_bucket, head_bucket"])
    def _():
        upload = s3.create_multipart_upload(Bucket=b, Key="pending")["UploadId"]
        part = os.urandom(5 * MiB)
        etag = s3.upload_part(Bucket=b, Key="pending", UploadId=upload, PartNumber=1, Body=part)["ETag"]
        s3.upload_part(Bucket=b, Key="pending", UploadId=upload, PartNumber=2, Body=b"tail")
        uploads = s3.list_multipart_uploads(Bucket=b).get("Uploads", [])
        assert [(u["Key"], u["UploadId"]) for u in uploads] == [("pending", upload)], uploads
        parts = s3.list_parts(Bucket=b, Key="pending", UploadId=upload)["Parts"]
        assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, 4)], parts
        assert parts[0]["ETag"] == etag == f'"{hashlib.md5(part).hexdigest()}"', (parts[0]["ETag"], etag)
        s3.abort_multipart_upload(Bucket=b, Key="pending", UploadId=upload)
        assert not s3.list_multipart_uploads(Bucket=b).get("Uploads"), "the upload is still listed after abort"
        assert (code := error_code(lambda: s3.list_parts(Bucket=b, Key="pending", UploadId=upload))) == "NoSuchUpload", code
        assert (code := error_code(lambda: s3.head_object(Bucket=b, Key="pending"))) == "404", code

    @g.check("upload_part_copy (with a range) into a multipart upload, completed", needs=["upload_fileobj 12 MiB in 5 MiB parts (TransferConfig), download_fileobj back"])
    def _():
        upload = s3.create_multipart_upload(Bucket=b, Key="assembled")["UploadId"]
        first = s3.upload_part_copy(
            Bucket=b, Key="assembled", UploadId=upload, PartNumber=1,
            CopySource={"Bucket": b, "Key": "big.bin"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}",
        )["CopyPartResult"]["ETag"]
        assert first == f'"{hashlib.md5(big[:5 * MiB]).hexdigest()}"', f"copied part ETag {first}"
        second = s3.upload_part(Bucket=b, Key="assembled", UploadId=upload, PartNumber=2, Body=b"and a tail")["ETag"]
        s3.complete_multipart_upload(
            Bucket=b, Key="assembled", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": second}]},
        )
        got = s3.get_object(Bucket=b, Key="assembled")["Body"].read()
        assert got == big[:5 * MiB] + b"and a tail", f"assembled object of {len(got)} bytes differs"

    if KEY_B and SECRET_B:
        @g.check("another organisation's key gets AccessDenied", needs=["upload_fileobj 12 MiB in 5 MiB parts (TransferConfig), download_fileobj back"])
        def _():
            other = s3_client(key=KEY_B, secret=SECRET_B)
            for what, call in [
                ("get_object", lambda: other.get_object(Bucket=b, Key="big.bin")),
                ("head_object", lambda: other.head_object(Bucket=b, Key="big.bin")),
                ("list_objects_v2", lambda: other.list_objects_v2(Bucket=b)),
                ("put_object", lambda: other.put_object(Bucket=b, Key="planted", Body=b"x")),
                ("delete_object", lambda: other.delete_object(Bucket=b, Key="big.bin")),
            ]:
                code = error_code(call)
                assert code in ("AccessDenied", "403"), f"{what} with B's key: {code}, expected AccessDenied"
            assert error_code(lambda: s3.head_object(Bucket=b, Key="planted")) == "404", "B's put was stored"
            s3.head_object(Bucket=b, Key="big.bin")
            names = [x["Name"] for x in other.list_buckets()["Buckets"]]
            assert b not in names, "A's bucket is listed for B"
    else:
        REPORT.skip("boto3: another organisation's key gets AccessDenied", "NUAGE_S3_ACCESS_KEY_B is not set")

    locked = new_bucket_name("boto3-lock")

    @g.check("create_bucket with ObjectLockEnabledForBucket; default retention; get_object_lock_configuration")
    def _():
        s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
        assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
        s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
        config = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
        assert config["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}, config
        assert error_code(lambda: s3.put_bucket_versioning(
            Bucket=locked, VersioningConfiguration={"Status": "Suspended"})) == "InvalidBucketState"

    lock_ready = ["create_bucket with ObjectLockEnabledForBucket; default retention; get_object_lock_configuration"]

    @g.check("a governance-retained version resists delete until BypassGovernanceRetention", needs=lock_ready)
    def _():
        version = s3.put_object(Bucket=locked, Key="backup.tar", Body=b"backup")["VersionId"]
        retention = s3.get_object_retention(Bucket=locked, Key="backup.tar", VersionId=version)["Retention"]
        assert retention["Mode"] == "GOVERNANCE", retention
        assert error_code(lambda: s3.delete_object(
            Bucket=locked, Key="backup.tar", VersionId=version)) == "AccessDenied"
        s3.delete_object(Bucket=locked, Key="backup.tar", VersionId=version, BypassGovernanceRetention=True)

    @g.check("a compliance retention cannot be shortened, and ends at its date", needs=lock_ready)
    def _():
        import datetime
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
        version = s3.put_object(Bucket=locked, Key="ledger", Body=b"ledger",
                                ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)["VersionId"]
        head = s3.head_object(Bucket=locked, Key="ledger", VersionId=version)
        assert head["ObjectLockMode"] == "COMPLIANCE", head
        assert error_code(lambda: s3.put_object_retention(
            Bucket=locked, Key="ledger", VersionId=version, BypassGovernanceRetention=True,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})) == "AccessDenied"
        assert error_code(lambda: s3.delete_object(
            Bucket=locked, Key="ledger", VersionId=version, BypassGovernanceRetention=True)) == "AccessDenied"
        import time
        time.sleep(max(0.0, (until - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 1.5)
        s3.delete_object(Bucket=locked, Key="ledger", VersionId=version)

    @g.check("put_object_legal_hold ON keeps a version; OFF releases it", needs=lock_ready)
    def _():
        version = s3.put_object(Bucket=locked, Key="evidence", Body=b"exhibit")["VersionId"]
        s3.put_object_legal_hold(Bucket=locked, Key="evidence", VersionId=version, LegalHold={"Status": "ON"})
        assert s3.get_object_legal_hold(
            Bucket=locked, Key="evidence", VersionId=version)["LegalHold"]["Status"] == "ON"
        assert error_code(lambda: s3.delete_object(
            Bucket=locked, Key="evidence", VersionId=version, BypassGovernanceRetention=True)) == "AccessDenied"
        s3.put_object_legal_hold(Bucket=locked, Key="evidence", VersionId=version, LegalHold={"Status": "OFF"})
        s3.delete_object(Bucket=locked, Key="evidence", VersionId=version, BypassGovernanceRetention=True)

    @g.check("the Object Lock bucket empties with the bypass and is deleted", needs=lock_ready)
    def _():
        for v in s3.list_object_versions(Bucket=locked).get("Versions", []):
            s3.delete_object(Bucket=locked, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True)
        s3.delete_bucket(Bucket=locked)

    @g.check("delete every object and the bucket", needs=["create_bucket, head_bucket"])
    def _():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                assert not s3.delete_objects(Bucket=b, Delete={"Objects": keys}).get("Errors")
        s3.delete_bucket(Bucket=b)
        assert error_code(lambda: s3.head_bucket(Bucket=b)) == "404"


# --- rclone -------------------------------------------------------------------

def rclone_scenarios():
    g = Group("rclone")
    s3 = s3_client()
    # A remote named "nuage" defined by environment variables only, as
    # docs/s3-clients.md shows in rclone.conf form.
    env = clean_env(
        RCLONE_CONFIG=str(WORK / "rclone.conf"),
        RCLONE_CONFIG_NUAGE_TYPE="s3",
        RCLONE_CONFIG_NUAGE_PROVIDER="Other",
        RCLONE_CONFIG_NUAGE_ENV_AUTH="false",
        RCLONE_CONFIG_NUAGE_ACCESS_KEY_ID=KEY,
        RCLONE_CONFIG_NUAGE_SECRET_ACCESS_KEY=SECRET,
        RCLONE_CONFIG_NUAGE_ENDPOINT=ENDPOINT,
        RCLONE_CONFIG_NUAGE_REGION=REGION,
        RCLONE_CONFIG_NUAGE_FORCE_PATH_STYLE="true",
    )
    (WORK / "rclone.conf").write_text("")

    def rclone(*args):
        # One try: rclone's retries would hide a request the server got wrong.
        return run(["rclone", "--retries", "1", "--low-level-retries", "1", "-v",
                    "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", *args], env)

    r = new_bucket_name("rclone")
    tree = make_tree(WORK / "rclone/tree", big=30 * MiB)

    @g.check("mkdir")
    def _():
        rclone("mkdir", f"nuage:{r}")

    @g.check("copy a tree with a 30 MiB file (multipart, 5 MiB chunks)", needs=["mkdir"])
    def _():
        rclone("copy", str(tree), f"nuage:{r}")
        etag = s3.head_object(Bucket=r, Key="large.bin")["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}-6"', etag), f"large.bin has ETag {etag}: not uploaded in 6 parts"

    @g.check("check after copy: 0 differences", needs=["copy a tree with a 30 MiB file (multipart, 5 MiB chunks)"])
    def _():
        out = rclone("check", str(tree), f"nuage:{r}").stderr
        assert "0 differences found" in out, tail(out)

    @g.check("sync after modifying, deleting and adding local files", needs=["copy a tree with a 30 MiB file (multipart, 5 MiB chunks)"])
    def _():
        (tree / "docs/a.bin").unlink()
        shutil.rmtree(tree / "docs/deep")
        (tree / "top.txt").write_text("changed\n")
        random_file(tree / "unicodé/façade ü.txt", 900)
        random_file(tree / "new/file.bin", 6 * MiB)
        rclone("sync", str(tree), f"nuage:{r}")
        left = [o["Key"] for o in s3.list_objects_v2(Bucket=r, Prefix="docs/").get("Contents", [])]
        assert left == ["docs/empty.txt"], f"under docs/ after sync: {left}"

    @g.check("check after sync: 0 differences (hashes, then --download)", needs=["sync after modifying, deleting and adding local files"])
    def _():
        out = rclone("check", str(tree), f"nuage:{r}").stderr
        assert "0 differences found" in out, tail(out)
        out = rclone("check", "--download", str(tree), f"nuage:{r}").stderr
        assert "0 differences found" in out, tail(out)

    @g.check("lsf lists exactly the synced files", needs=["sync after modifying, deleting and adding local files"])
    def _():
        listed = sorted(rclone("lsf", "-R", "--files-only", f"nuage:{r}").stdout.splitlines())
        expected = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())
        assert listed == expected, f"lsf gave {listed}, expected {expected}"

    @g.check("copy back down and diff -r", needs=["sync after modifying, deleting and adding local files"])
    def _():
        rclone("copy", f"nuage:{r}", str(WORK / "rclone/back"))
        diff_r(tree, WORK / "rclone/back")

    @g.check("purge", needs=["mkdir"])
    def _():
        rclone("purge", f"nuage:{r}")
        assert error_code(lambda: s3.head_bucket(Bucket=r)) == "404", "the bucket is still there"


# --- s3cmd --------------------------------------------------------------------

def s3cmd_scenarios():
    g = Group("s3cmd")
    s3 = s3_client()
    host = urllib.parse.urlsplit(ENDPOINT).netloc
    config = WORK / "s3cfg"
    # What docs/s3-clients.md tells users to write in ~/.s3cfg; host_bucket
    # without %(bucket)s means path-style requests. One try, no retries.
    config.write_text(
        "[default]\n"
        f"access_key = {KEY}\nsecret_key = {SECRET}\n"
        f"host_base = {host}\nhost_bucket = {host}\n"
        "use_https = False\nsignature_v2 = False\n"
        f"bucket_location = {REGION}\n"
        "max_retries = 0\n"
    )
    env = clean_env()

    def s3cmd(*args):
        return run(["s3cmd", "-c", str(config), "--no-progress", *args], env)

    s = new_bucket_name("s3cmd")
    small = random_file(WORK / "s3cmd/small.bin", 4321)
    big = random_file(WORK / "s3cmd/big.bin", 20 * MiB)
    tree = make_tree(WORK / "s3cmd/tree")

    @g.check("mb")
    def _():
        s3cmd("mb", f"s3://{s}")

    @g.check("put and get (sha256 equal)", needs=["mb"])
    def _():
        s3cmd("put", str(small), f"s3://{s}/small.bin")
        s3cmd("get", f"s3://{s}/small.bin", str(WORK / "s3cmd/small.back"))
        same_file(small, WORK / "s3cmd/small.back")

    @g.check("put 20 MiB with --multipart-chunk-size-mb=5, get it back", needs=["mb"])
    def _():
        s3cmd("put", "--multipart-chunk-size-mb=5", str(big), f"s3://{s}/big.bin")
        etag = s3.head_object(Bucket=s, Key="big.bin")["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}-4"', etag), f"big.bin has ETag {etag}: not uploaded in 4 parts"
        s3cmd("get", f"s3://{s}/big.bin", str(WORK / "s3cmd/big.back"))
        same_file(big, WORK / "s3cmd/big.back")

    @g.check("sync a tree up and down (diff -r)", needs=["mb"])
    def _():
        s3cmd("sync", f"{tree}/", f"s3://{s}/tree/")
        s3cmd("sync", f"s3://{s}/tree/", f"{WORK / 's3cmd/tree.back'}/")
        diff_r(tree, WORK / "s3cmd/tree.back")

    @g.check("ls and ls -r", needs=["sync a tree up and down (diff -r)", "put and get (sha256 equal)"])
    def _():
        buckets = s3cmd("ls").stdout
        assert f"s3://{s}" in buckets, f"s3cmd ls:\n{buckets}"
        listed = sorted(line.split("s3://", 1)[1] for line in s3cmd("ls", "-r", f"s3://{s}").stdout.splitlines())
        expected = sorted([f"{s}/small.bin", f"{s}/big.bin"]
                          + [f"{s}/tree/{p.relative_to(tree).as_posix()}" for p in tree.rglob("*") if p.is_file()])
        assert listed == expected, f"ls -r gave {listed}, expected {expected}"

    @g.check("del", needs=["put and get (sha256 equal)"])
    def _():
        s3cmd("del", f"s3://{s}/small.bin")
        assert error_code(lambda: s3.head_object(Bucket=s, Key="small.bin")) == "404", "small.bin is still there"

    @g.check("del --recursive and rb", needs=["mb"])
    def _():
        s3cmd("del", "--recursive", "--force", f"s3://{s}")
        s3cmd("rb", f"s3://{s}")
        assert error_code(lambda: s3.head_bucket(Bucket=s)) == "404", "the bucket is still there"

    # s3cmd's defaults but the address and keys: it signs for the region
    # "US" (bucket_location), which Nuage accepts as any other.
    defaults = WORK / "s3cfg-defaults"
    defaults.write_text(
        "[default]\n"
        f"access_key = {KEY}\nsecret_key = {SECRET}\n"
        f"host_base = {host}\nhost_bucket = {host}\n"
        "use_https = False\n"
    )
    d = new_bucket_name("s3cmd-defaults")

    @g.check("with its default configuration (signed for region US): mb, put, ls, get, del, rb")
    def _():
        def plain(*args):
            return run(["s3cmd", "-c", str(defaults), "--no-progress", *args], env)
        plain("mb", f"s3://{d}")
        plain("put", str(small), f"s3://{d}/small.bin")
        assert "small.bin" in plain("ls", f"s3://{d}").stdout
        plain("get", f"s3://{d}/small.bin", str(WORK / "s3cmd/defaults.back"))
        same_file(small, WORK / "s3cmd/defaults.back")
        plain("del", f"s3://{d}/small.bin")
        plain("rb", f"s3://{d}")


# --- main ---------------------------------------------------------------------

def clean_up():
    """Removes what failed checks left behind, without judging it."""
    s3 = s3_client()
    for bucket in BUCKETS:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            continue
        try:
            for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"],
                                     BypassGovernanceRetention=True)
            s3.delete_bucket(Bucket=bucket)
            print(f"# clean-up: removed bucket {bucket}")
        except Exception as e:  # noqa: BLE001
            print(f"# clean-up: could not remove bucket {bucket}: {e}")


def main():
    print(f"# Nuage S3 at {ENDPOINT}; buckets end in -{SUFFIX}; work files in {WORK}", flush=True)
    only = set(sys.argv[1:])  # e.g. `run aws rclone` while investigating
    front, ca = start_tls_front()
    print(f"# TLS front for the aws CLI and boto3's trailer checks: {front.url}", flush=True)
    for name, scenarios in [
        ("aws", lambda: aws_scenarios(front.url, ca)),
        ("boto3", lambda: boto3_scenarios(front.url, ca)),
        ("rclone", rclone_scenarios),
        ("s3cmd", s3cmd_scenarios),
    ]:
        if only and name not in only:
            REPORT.skip(f"{name}: every scenario", "not asked for on the command line")
            continue
        scenarios()
    clean_up()

    r = REPORT
    print(f"\nsummary: {len(r.ok)} ok, {len(r.failed)} not ok, {len(r.skipped)} skipped")
    for name in r.failed:
        print(f"  not ok - {name}")
    for name in r.skipped:
        print(f"  skipped - {name}")
    if r.failed:
        # Keep the logs to read, not the test files (some are tens of MiB).
        for item in WORK.iterdir():
            if item != LOGS:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
        print(f"logs of every client command: {LOGS}")
        sys.exit(1)
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
