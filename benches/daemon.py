#!/usr/bin/env python3
"""Daemon benchmarks for issue 2: memory with a 100,000-tile request, and API latency.

    cargo build --release && tests/.venv/bin/python benches/daemon.py

1. Starts `tessera serve` (release build) on a free loopback port in a temp folder.
2. Creates a grid-1 request over a 33x35 degree area (over 100,000 tiles), analyses it
   and lists every tile through GET .../tiles page by page (the default page of 100).
3. Reports the daemon's peak resident memory (VmHWM) after all that.
4. Loads GET /api/v1/batch/process/{id} with wrk (a second process; 2 threads,
   2 connections, 10 s) and reports p50, p99 and requests per second.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TESSERA_BIN", os.path.join(ROOT, "target", "release", "tessera"))
EVALSCRIPT = open(os.path.join(ROOT, "evalscripts", "ndvi.js")).read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    tmp = tempfile.mkdtemp(prefix="tessera-daemon-bench-")
    db = os.path.join(tmp, "t.db")
    creds = json.loads(subprocess.check_output([BIN, "clients", "add", "--db", db]))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(tmp, "serve.log"), "w")
    srv = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--data", os.path.join(tmp, "data")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.time() > deadline:
                sys.exit("the daemon did not start")
            time.sleep(0.1)
        token = requests.post(base + "/oauth/token", data={
            "grant_type": "client_credentials", **creds}).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        body = {
            "processRequest": {
                "input": {"bounds": {"bbox": [0.0, 15.0, 33.0, 50.0]},
                          "data": [{"type": "tessera-synthetic"}]},
                "evalscript": EVALSCRIPT,
            },
            "tilingGrid": {"id": 1, "resolution": 20},
            "output": {"defaultTilePath": "out"},
        }
        t0 = time.time()
        r = requests.post(base + "/api/v1/batch/process", json=body, headers=h)
        r.raise_for_status()
        rid = r.json()["id"]
        t_create = time.time() - t0
        requests.post(f"{base}/api/v1/batch/process/{rid}/analyse", headers=h).raise_for_status()
        t0 = time.time()
        while (req := requests.get(f"{base}/api/v1/batch/process/{rid}", headers=h).json())["status"] == "ANALYSING":
            if time.time() - t0 > 300:
                sys.exit("analysis did not finish in 300 s")
            time.sleep(0.2)
        t_analyse = time.time() - t0
        assert req["status"] == "ANALYSIS_DONE", req.get("error")
        n = req["tileCount"]
        t0 = time.time()
        seen, token_ = 0, None
        pages = 0
        while True:
            params = {"viewtoken": token_} if token_ else {}
            page = requests.get(f"{base}/api/v1/batch/process/{rid}/tiles", params=params, headers=h).json()
            seen += len(page["data"])
            pages += 1
            token_ = page["links"].get("nextToken")
            if not token_:
                break
        t_list = time.time() - t0
        assert seen == n, (seen, n)
        hwm = rss_kib(srv.pid, "VmHWM") / 1024
        rss = rss_kib(srv.pid, "VmRSS") / 1024
        print(f"request: {n} tiles; create {t_create:.2f} s, analysis {t_analyse:.2f} s, "
              f"listing {pages} pages {t_list:.2f} s ({t_list / pages * 1000:.2f} ms/page)")
        print(f"daemon memory: peak {hwm:.0f} MiB (VmHWM), now {rss:.0f} MiB (VmRSS); target < 300 MB")

        out = subprocess.check_output([
            "wrk", "-t2", "-c2", "-d10s", "--latency", "-H", f"Authorization: Bearer {token}",
            f"{base}/api/v1/batch/process/{rid}"], text=True)
        p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
        rps = re.search(r"Requests/sec:\s+(\S+)", out).group(1)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        print(f"GET /process/{{id}} under wrk -t2 -c2 -d10s: p50 {p50}, p99 {p99}, {rps} req/s"
              + (f", NON-2xx: {non2xx.group(1)}" if non2xx else ""))
    finally:
        srv.terminate()
        srv.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
