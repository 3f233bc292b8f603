"""The `serve` supervisor and the evalscript hard memory cap.

A script doubling a string forever inside evaluatePixel allocates through no hookable boa builtin, so only the
hard cap stops it: the process running the tile aborts before the allocation. By default that is a `tessera worker`
process: the daemon respawns it and never restarts. With `--in-process-workers` it is the daemon itself, which the
supervisor restarts on the same port. Either way, after its 3 attempts the tile is FAILED with the cap as its error,
the HTTP API stays available and a normal request afterwards completes. The soft limit is set to 64 MiB for the
test, so the cap is 128 MiB.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests
from conftest import AOI_ONE, Api, create_body, start_server, tile_summary

RUNAWAY = """//VERSION=3
function setup() {
  return {input: ["B04"], output: {bands: 1, sampleType: "FLOAT32"}};
}
function evaluatePixel(s) {
  var t = "x" + s.B04;
  while (true) { t += t; }
  return [0];
}
"""

CRASH_TIMEOUT = 180  # seconds for three crash/restart cycles
DONE_TIMEOUT = 120
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_text(srv) -> str:
    return ANSI.sub("", Path(srv.log_path).read_text(errors="replace"))


def child_pids(srv) -> list[int]:
    return [int(p) for p in re.findall(r"supervisor: daemon started pid=(\d+)", log_text(srv))]


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(params=["worker-processes", "in-process-workers"])
def capped_server(request, tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB", "64")
    monkeypatch.delenv("TESSERA_EVALSCRIPT_HARD_LIMIT_MB", raising=False)
    extra = ["--in-process-workers"] if request.param == "in-process-workers" else []
    srv = start_server(tmp_path / "sup", clients=("alice",), workers=1, extra_args=extra)
    srv.in_process = bool(extra)
    try:
        yield srv
    finally:
        srv.stop()


def poll(srv, fn, what: str, timeout: float, interval: float = 0.3):
    """Call fn(api) until it returns a truthy value, riding out daemon restarts (connection errors, 5xx)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert srv.alive(), f"the supervisor process exited while waiting for {what}:\n{srv.log_tail()}"
        try:
            value = fn(Api(srv.base_url, srv.clients["alice"]))
            if value:
                return value
            last = value
        except (requests.RequestException, AssertionError) as exc:  # the daemon is restarting
            last = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}\n{srv.log_tail()}", pytrace=False)


def test_runaway_string_growth_fails_the_tile_and_the_service_survives(capped_server):
    srv = capped_server
    api = srv.api("alice")
    supervisor_pid = srv.proc.pid

    bad = api.create(create_body(AOI_ONE, evalscript=RUNAWAY, tile_path=str(srv.workdir / "out-bad"),
                                 description="runaway string"))
    rid = bad["id"]
    api.action(rid, "start")

    def ended(a: Api):
        r = a.get_request(rid)
        return r if r["status"] in ("FAILED", "PARTIAL", "DONE", "CANCELED") else None

    final = poll(srv, ended, f"request {rid} to end", CRASH_TIMEOUT)
    assert final["status"] in ("FAILED", "PARTIAL"), f"runaway request ended {final['status']}: {final}"
    assert srv.proc.pid == supervisor_pid and srv.alive(), "the supervisor itself must survive"

    text = log_text(srv)
    aborts = text.count("tessera: fatal: the evalscript exceeded the hard memory cap of 128 MiB")
    assert aborts == 3, f"expected 3 hard-cap aborts (one per attempt), saw {aborts}:\n{srv.log_tail()}"
    # Worker processes: the daemon never restarts; in-process workers: it restarts once per attempt.
    daemons = 4 if srv.in_process else 1
    assert len(child_pids(srv)) == daemons, f"expected {daemons} daemon start(s): {child_pids(srv)}"
    assert not (srv.data_dir / "last-crash.txt").exists(), "the crash note must be consumed at restart"

    tiles = poll(srv, lambda a: a.tiles(rid), "the tile list", 30)
    assert [t["status"] for t in tiles] == ["FAILED"], f"tiles: {tile_summary(tiles)}"
    # The v1 tile view has no error field: read the tile's error text from the store.
    with srv.db_connect_ro() as conn:
        row = conn.execute("SELECT status, error FROM tiles WHERE request_id = ?", (rid,)).fetchone()
    assert row is not None and row["status"] == "FAILED", f"tiles table: {dict(row) if row else None}"
    error = row["error"] or ""
    assert "hard memory cap of 128 MiB" in error, f"tile error: {error!r}"
    if srv.in_process:
        assert "3 attempts" in error, f"tile error: {error!r}"

    # The service is available again: a normal request completes.
    out = srv.workdir / "out-good"
    good = poll(srv, lambda a: a.create(create_body(AOI_ONE, tile_path=str(out), description="after")), "create", 30)
    poll(srv, lambda a: a.action(good["id"], "start") is not None, "start", 30)

    def done(a: Api):
        r = a.get_request(good["id"])
        assert r["status"] not in ("FAILED", "PARTIAL", "CANCELED"), f"normal request ended {r}"
        return r if r["status"] == "DONE" else None

    poll(srv, done, "the normal request to be DONE", DONE_TIMEOUT)
    assert (out / good["id"]).is_dir(), f"no output under {out}"
    assert len(child_pids(srv)) == daemons, "the normal request must not crash the daemon"


def test_daemon_dies_with_a_killed_supervisor(tmp_path):
    srv = start_server(tmp_path / "kill", clients=("alice",), workers=1)
    try:
        pids = child_pids(srv)
        assert len(pids) == 1 and pid_alive(pids[0]), f"daemon pids from the log: {pids}"
        srv.kill()  # SIGKILL the supervisor: the daemon must not be orphaned
        deadline = time.monotonic() + 10
        while pid_alive(pids[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pids[0]), f"daemon {pids[0]} still runs after its supervisor was SIGKILLed"
        srv.start()  # same db, data dir
        assert srv.api("alice").requests_count() == 0
    finally:
        srv.stop()
    # SIGTERM is forwarded: the daemon stops with the supervisor.
    pids = child_pids(srv)
    assert pids and not any(pid_alive(p) for p in pids), f"daemons left after SIGTERM: {pids}"


def test_no_supervise_runs_the_daemon_in_process(tmp_path):
    srv = start_server(tmp_path / "plain", clients=("alice",), workers=1)
    srv.stop()
    srv.extra_args = ["--no-supervise"]
    srv.start()
    try:
        assert child_pids(srv) == [], "--no-supervise must not start a child"
        assert srv.api("alice").requests_count() == 0
        os.kill(srv.proc.pid, signal.SIGTERM)
        srv.proc.wait(timeout=20)
    finally:
        srv.stop()
