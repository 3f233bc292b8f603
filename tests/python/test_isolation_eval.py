"""Tenant isolation of evaluation (issue 12, rows 1, 5, 6, 7): two clients on one daemon.

Client A ("alice") submits hostile evalscripts; client B ("bob") submits one ordinary NDVI tile while A's tiles
run. In each case A's tiles must FAIL with a clear reason (read from the store, the API does not show tile errors),
B's request must complete (a liveness bound, not a performance assert) and B's tile must be processed on its first
attempt. The server runs with short budgets so that the whole module stays around two minutes:

* ``--tile-time-budget 6s``: a looping tile attempt ends after ~6 s (the compiled tier's budget is 2 s + a per-pixel
  share, whichever is smaller);
* ``--setup-time-budget 2s``: a ``setup()`` or top-level code that never returns fails the analysis after ~2 s;
* ``TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB=16`` (hard cap 32 MiB; small, so an object bomb reaches it well before the deadline even on a loaded machine): memory bombs stop early; the hard cap aborts the
  worker *process* holding the tile, never the daemon.
"""

from __future__ import annotations

import os
import sqlite3
import time

import pytest
from conftest import (
    AOI_ONE,
    AOI_TWO,
    Api,
    TesseraServer,
    create_body,
    start_server,
    wait_for_request_status,
)

B_LIVENESS = 60  # seconds: B's one-tile request must be DONE within this while A's tiles misbehave
RESOLUTION = 20  # grid-1 tiles of 500 x 500 px


def pixel_script(body: str, prelude: str = "") -> str:
    return (
        "//VERSION=3\n" + prelude + "\n"
        "function setup() { return {input: ['B04', 'B08'], output: {bands: 1, sampleType: 'FLOAT32'}}; }\n"
        "function evaluatePixel(s) { " + body + " }\n"
    )


EXPONENTIAL = pixel_script("return [f(45)];", "function f(n) { return n <= 0 ? 1 : f(n - 1) + f(n - 1); }")
NESTED_THROUGH_CALLS = pixel_script(
    "return [outer()];",
    "function inner() { var s = 0; for (var i = 0; i < 1e6; i++) { s += i; } return s; }\n"
    "function outer() { var t = 0; for (var j = 0; j < 1e6; j++) { t += inner(); } return t; }",
)
SWALLOW = pixel_script(
    "var n = 0; while (true) { try { while (true) { n++; } } catch (e) { n = -1; } finally { continue; } }"
)
# Numeric only: runs in the compiled (WebAssembly) tier.
COMPILED_LOOP = pixel_script("var x = s.B04 + 1; while (x > 0) { x = x + 1; } return [x];")
OBJECT_BOMB = pixel_script(
    "var o = {}; for (var i = 0; i < 1e9; i++) { o['k' + i] = {a: i, b: i, c: i, d: i, e: i, f: i, "
    "w: [i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i], x: [i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i]}; } "
    "return [0];"
)
STRING_BOMB = pixel_script("var t = 'xxxxxxxx'; while (true) { t += t; } return [t.length];")
SETUP_NEVER_RETURNS = (
    "//VERSION=3\nfunction setup() { while (true) {} }\nfunction evaluatePixel(s) { return [0]; }\n"
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    saved = os.environ.get("TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB")
    os.environ["TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB"] = "16"
    try:
        server = start_server(
            tmp_path_factory.mktemp("isolation"),
            clients=("alice", "bob"),
            workers=2,
            extra_args=["--tile-time-budget", "6s", "--setup-time-budget", "2s"],
        )
    finally:
        if saved is None:
            os.environ.pop("TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB", None)
        else:
            os.environ["TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB"] = saved
    try:
        yield server
    finally:
        server.stop()


def tile_rows(server: TesseraServer, request_id: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(
            "SELECT tile_id, status, attempts, error FROM tiles WHERE request_id = ? ORDER BY seq", (request_id,)
        ).fetchall()
    finally:
        conn.close()


def start(api: Api, evalscript: str, aoi=AOI_TWO, name: str = "job") -> str:
    out = f"out-{name}-{time.monotonic_ns()}"
    created = api.create(create_body(aoi, resolution=RESOLUTION, evalscript=evalscript, tile_path=out))
    api.action(created["id"], "start")
    return created["id"]


def run_b_alongside(server: TesseraServer) -> None:
    """B's one NDVI tile completes while A's hostile tiles hold the workers, on its first attempt."""
    bob = server.api("bob")
    began = time.monotonic()
    rid = start(bob, pixel_script("return [(s.B08 - s.B04) / (s.B08 + s.B04)];"), AOI_ONE, "bob")
    done = wait_for_request_status(bob, rid, {"DONE"}, fail_on={"FAILED", "PARTIAL", "CANCELED"},
                                   timeout=B_LIVENESS)
    assert done["status"] == "DONE"
    rows = tile_rows(server, rid)
    assert [r["status"] for r in rows] == ["PROCESSED"]
    assert [r["attempts"] for r in rows] == [1], "B's tile lost an attempt to A's script"
    assert time.monotonic() - began < B_LIVENESS


def assert_a_failed(server: TesseraServer, rid: str, *reasons: str) -> None:
    alice = server.api("alice")
    final = wait_for_request_status(alice, rid, {"FAILED", "PARTIAL", "DONE"}, timeout=120)
    rows = tile_rows(server, rid)
    assert final["status"] == "FAILED", f"A's hostile request ended {final['status']}: {[dict(r) for r in rows]}"
    for row in rows:
        assert row["status"] == "FAILED"
        error = row["error"] or ""
        assert any(reason in error for reason in reasons), f"unclear tile error: {error!r}"
    # The daemon kept serving: it answered throughout, and it still does.
    assert server.api("alice").get("/api/v1/batch/process").status_code == 200


@pytest.mark.parametrize(
    "script, reasons",
    [
        pytest.param(EXPONENTIAL, ("time budget",), id="exponential-recursion"),
        pytest.param(NESTED_THROUGH_CALLS, ("time budget",), id="nested-loops-through-calls"),
        pytest.param(SWALLOW, ("time budget",), id="try-catch-finally-swallow"),
        pytest.param(COMPILED_LOOP, ("time budget",), id="compiled-tier-while-true"),
        pytest.param(OBJECT_BOMB, ("memory limit",), id="object-memory-bomb"),
        pytest.param(STRING_BOMB, ("memory", "worker process"), id="string-doubling-bomb"),
    ],
)
def test_hostile_tiles_fail_alone(srv, script, reasons):
    rid = start(srv.api("alice"), script, AOI_TWO, "alice")
    # Let A's tiles take both workers first.
    time.sleep(1.0)
    run_b_alongside(srv)
    assert_a_failed(srv, rid, *reasons)


def test_setup_that_never_returns_fails_the_analysis(srv):
    alice = srv.api("alice")
    began = time.monotonic()
    rid = start(alice, SETUP_NEVER_RETURNS, AOI_ONE, "setup")
    final = wait_for_request_status(alice, rid, {"FAILED"}, fail_on={"DONE", "PARTIAL"}, timeout=60)
    assert "time budget" in (final.get("error") or ""), final
    assert time.monotonic() - began < 60
    run_b_alongside(srv)


def test_cancel_during_analysis_ends_canceled(srv):
    alice = srv.api("alice")
    # A setup() that spins: the analysis would take the full setup budget without the cancel.
    created = alice.create(create_body(AOI_ONE, resolution=RESOLUTION, evalscript=SETUP_NEVER_RETURNS,
                                       tile_path="out-analysis-cancel"))
    rid = created["id"]
    alice.action(rid, "analyse")
    time.sleep(0.3)
    alice.action(rid, "cancel")
    final = wait_for_request_status(alice, rid, {"CANCELED", "FAILED"}, timeout=30)
    assert final["status"] == "CANCELED", final


def test_cancel_frees_the_workers_within_seconds(srv):
    alice = srv.api("alice")
    rid = start(alice, EXPONENTIAL, AOI_TWO, "cancel")
    wait_for_request_status(alice, rid, {"PROCESSING"}, timeout=30)
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    alice.action(rid, "cancel")

    def in_flight() -> int:
        return sum(r["status"] in ("PROCESSING", "SCHEDULED") for r in tile_rows(srv, rid))

    deadline = cancelled_at + 10
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_flight() == 0, [dict(r) for r in tile_rows(srv, rid)]
    # Well inside one 6 s tile attempt: the cancel, not the deadline, ended the tiles.
    assert time.monotonic() - cancelled_at < 3
    assert alice.get_request(rid)["status"] == "CANCELED"
    run_b_alongside(srv)


def test_a_spinning_analysis_does_not_hang_again_after_a_restart(tmp_path):
    srv = start_server(tmp_path / "restart", clients=("alice",), workers=1,
                       extra_args=["--setup-time-budget", "2s"])
    try:
        alice = srv.api("alice")
        created = alice.create(create_body(AOI_ONE, resolution=RESOLUTION, evalscript=SETUP_NEVER_RETURNS,
                                           tile_path="out-restart"))
        rid = created["id"]
        alice.action(rid, "analyse")
        assert alice.get_request(rid)["status"] == "ANALYSING"
        srv.kill()  # mid-analysis: the daemon resumes ANALYSING requests at start
        srv.start()
        final = wait_for_request_status(srv.api("alice"), rid, {"FAILED"}, fail_on={"ANALYSIS_DONE", "DONE"},
                                        timeout=60)
        assert "time budget" in (final.get("error") or ""), final
    finally:
        srv.stop()
