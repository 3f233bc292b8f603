"""Peak RSS and time of a whole-world request (grid 1, 10 m: 5.7 M tiles): create, analyse,
delete, on a `tessera serve --no-supervise` allowed to take it (issue 13 figure; not a test).

Usage: python scripts/world_analysis_rss.py [path/to/tessera] [workdir]
Needs ~4 GB of disk in workdir while the tiles exist.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import requests

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/tessera"
WORK = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="tessera-world-")
DB = os.path.join(WORK, "tessera.db")


def rss(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return " ".join(line.split(":")[0] + "=" + line.split()[1] + "kB" for line in f
                        if line.startswith(("VmHWM", "VmRSS")))


def main() -> None:
    out = subprocess.run([BIN, "clients", "add", "--db", DB, "--name", "w"], capture_output=True, text=True,
                         check=True).stdout
    client = json.loads(out.strip().splitlines()[-1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([BIN, "serve", "--no-supervise", "--listen", f"127.0.0.1:{port}", "--db", DB,
                               "--data", os.path.join(WORK, "data"), "--max-tiles", "6000000",
                               "--max-area-km2", "1000000000"],
                              stdout=open(os.path.join(WORK, "serve.log"), "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                requests.get(base + "/healthz", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        token = requests.post(base + "/oauth/token", data={"grant_type": "client_credentials", **client}).json()
        h = {"Authorization": "Bearer " + token["access_token"]}
        body = {"processRequest": {"input": {"bounds": {"bbox": [-180, -80, 180, 84]},
                                             "data": [{"type": "tessera-synthetic"}]},
                                   "evalscript": "//VERSION=3\nfunction setup(){return {input:['B04'],output:{bands:1}};}"
                                                 "\nfunction evaluatePixel(s){return [s.B04];}"},
                "tilingGrid": {"id": 1, "resolution": 10},
                "output": {"defaultTilePath": "w/<requestId>/<tileName>.tif"}}
        t0 = time.time()
        r = requests.post(base + "/api/v1/batch/process", json=body, headers=h, timeout=3600).json()
        print(f"create: {r['tileCount']} tiles in {time.time() - t0:.1f} s; {rss(server.pid)}", flush=True)
        rid = r["id"]
        t0 = time.time()
        requests.post(f"{base}/api/v1/batch/process/{rid}/analyse", headers=h)
        while (s := requests.get(f"{base}/api/v1/batch/process/{rid}", headers=h).json())["status"] == "ANALYSING":
            time.sleep(2)
        size = sum(os.path.getsize(os.path.join(WORK, f)) for f in os.listdir(WORK) if f.startswith("tessera.db"))
        print(f"analysis: {s['status']} in {time.time() - t0:.1f} s; {rss(server.pid)}; db+wal {size / 1e6:.0f} MB",
              flush=True)
        t0 = time.time()
        requests.delete(f"{base}/api/v1/batch/process/{rid}", headers=h)
        print(f"delete answered in {time.time() - t0:.1f} s (tiles purged in the background)", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
