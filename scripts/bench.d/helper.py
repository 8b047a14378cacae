"""The measuring and bookkeeping half of `scripts/bench`.

`scripts/bench` starts and stops things; this file measures the machine's own
limits (the disk's fsync rate, one argon2id hash), talks JSON to the server,
reads wrk's output (refusing runs with failed requests) and prints the table.
Only the standard library and argon2-cffi; every address is the loopback one
the caller passes.
"""

import json
import os
import re
import sys
import time
import urllib.request
from multiprocessing import Pool

# The parameters of `argon2::Argon2::default()` (argon2 0.5), which nuage uses.
ARGON2_MEMORY_KIB, ARGON2_TIME, ARGON2_LANES = 19456, 2, 1


def fail(message):
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(1)


def timed_loop(seconds, step):
    """Calls step(i) until `seconds` have passed; returns calls per second."""
    start = time.perf_counter()
    end, n = start + seconds, 0
    while time.perf_counter() < end:
        step(n)
        n += 1
    return n / (time.perf_counter() - start)


def fsync_rate(directory, seconds):
    """One writer appending 4 KiB blocks to a file, fsync after each: the
    rate at which this disk makes a write durable, what a commit waits for."""
    path = os.path.join(directory, "fsync.dat")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = os.urandom(4096)
    try:
        rate = timed_loop(seconds, lambda i: (os.pwrite(fd, block, i * 4096), os.fsync(fd)))
    finally:
        os.close(fd)
        os.unlink(path)
    return rate


def checkpoint_rate(directory, seconds):
    """What nuage does after each audited commit, alone: a new file of a few
    hundred bytes, written, fsynced, renamed over the previous one."""
    tmp, final = os.path.join(directory, "ck.tmp"), os.path.join(directory, "ck.json")
    body = b"x" * 300

    def step(_):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, body)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, final)

    rate = timed_loop(seconds, step)
    os.unlink(final)
    return rate


def _hashes_for(seconds):
    import argon2

    hasher = argon2.PasswordHasher(
        time_cost=ARGON2_TIME, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_LANES,
        type=argon2.Type.ID,
    )
    return timed_loop(seconds, lambda _: hasher.hash("correct horse battery"))


def argon2_rates(seconds, processes):
    """Hashes per second on one core, and on `processes` cores at once (the
    server runs as many hashes at a time as it has cores)."""
    one = _hashes_for(seconds)
    with Pool(processes) as pool:
        together = sum(pool.map(_hashes_for, [seconds] * processes))
    return one, together


def cpu_busy(seconds):
    """The share of the machine's CPU time other processes used over the
    last `seconds`: a benchmark on a busy machine measures less."""

    def sample():
        fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def call(url, token=None, body=None):
    request = urllib.request.Request(url, None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.load(response)


def setup(api, root_token, email, password):
    """An organisation, its owner, and a token the owner got by signing in."""
    status, org = call(api + "/orgs", root_token, {"name": "Bench", "kind": "company"})
    if status != 201:
        fail(f"POST /orgs answered {status}")
    call(api + "/users", root_token,
         {"org_id": org["id"], "email": email, "password": password, "role": "owner"})
    _, grant = call(api + "/auth/token", None, {"email": email, "password": password, "name": "bench"})
    print(org["id"], grant["secret"])


def audit_entries(api, root_token):
    """The number of audit records, after checking the chain is intact and
    the signed checkpoint has reached its head."""
    _, report = call(api + "/audit/verify", root_token)
    if not report["intact"]:
        fail(f"the audit chain is broken: {report}")
    if report["checkpoint_seq"] != report["entries"]:
        fail(f"the checkpoint lags the chain: {report}")
    print(report["entries"])


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(path):
    """Requests, requests/s, p50 and p99 (ms) from `wrk --latency` output.
    A run with any failed request measured failures: it is refused."""
    text = open(path).read()
    for bad in ("Non-2xx or 3xx responses", "Socket errors"):
        if bad in text:
            fail(f"wrk reported failed requests ({bad}); see {path}:\n{text}")
    total = re.search(r"^\s*(\d+) requests in", text, re.M)
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    latency = dict(re.findall(r"^\s*(50|99)%\s+([\d.]+\w+)", text, re.M))
    if not (total and rate and "50" in latency and "99" in latency):
        fail(f"cannot read wrk's output in {path}:\n{text}")

    def ms(value):
        number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()
        return float(number) * UNIT_MS[unit]

    print(total.group(1), rate.group(1), f"{ms(latency['50']):.2f}", f"{ms(latency['99']):.2f}")


def report(results_path):
    """The table, in Markdown, from the `key|…` lines scripts/bench wrote."""
    limits, runs = {}, []
    for line in open(results_path):
        fields = line.rstrip("\n").split("|")
        if fields[0] == "limit":
            limits[fields[1]] = float(fields[2])
        else:
            runs.append(fields[1:])

    def ratio(value, limit):
        return f"{value / limits[limit]:.3f}" if limit in limits else "—"

    print("Machine limits, measured in this run:\n")
    print("| limit | value |")
    print("| --- | --- |")
    labels = {
        "nginx": "loopback HTTP ceiling: nginx `return 200` (req/s)",
        "healthz": "nuage `/healthz`, no I/O (req/s)",
        "fsync": "disk: 4 KiB append + fsync, one writer (/s)",
        "checkpoint": "disk: new file + fsync + rename, one writer (/s)",
        "argon2_one": "argon2id m=19456 t=2 p=1, one core (hashes/s)",
        "argon2_all": f"argon2id, all {os.cpu_count()} cores at once (hashes/s)",
    }
    for key, label in labels.items():
        if key in limits:
            print(f"| {label} | {limits[key]:,.0f} |")
    if "argon2_one" in limits:
        print(f"| one argon2id hash (ms) | {1000 / limits['argon2_one']:.1f} |")

    print("\nnuage, release build:\n")
    print("| request | database | requests | req/s | p50 ms | p99 ms | ÷ nginx | ÷ /healthz | ÷ own bound |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    bounds = {"write": ("fsync", "fsync"), "signin": ("argon2_all", "argon2")}
    names = {
        "read": "`GET /orgs/{id}` (token + read)",
        "write": "`POST /orgs` (audited write)",
        "signin": "`POST /auth/token` (argon2id + audited write)",
    }
    for kind, database, requests, rate, p50, p99 in runs:
        rate_f = float(rate)
        bound = "—"
        if kind in bounds:
            key, label = bounds[kind]
            bound = f"{ratio(rate_f, key)} of {label}"
        print(f"| {names[kind]} | {database} | {int(requests):,} | {rate_f:,.0f} | {p50} | {p99} "
              f"| {ratio(rate_f, 'nginx')} | {ratio(rate_f, 'healthz')} | {bound} |")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "fsync":
        print(f"{fsync_rate(args[0], float(args[1])):.1f}")
    elif command == "checkpoint":
        print(f"{checkpoint_rate(args[0], float(args[1])):.1f}")
    elif command == "argon2":
        one, together = argon2_rates(float(args[0]), int(args[1]))
        print(f"{one:.2f} {together:.2f}")
    elif command == "cpu-busy":
        print(f"{cpu_busy(float(args[0])):.0f}")
    elif command == "setup":
        setup(*args)
    elif command == "audit-entries":
        audit_entries(*args)
    elif command == "wrk":
        parse_wrk(args[0])
    elif command == "report":
        report(args[0])
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
