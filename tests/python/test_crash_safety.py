"""Crash safety: SIGKILL the daemon in the middle of a job, restart it on the same db and data dir.

The job must finish DONE, every tile written exactly once with no leftovers, and every tile charged exactly once.
"""

from __future__ import annotations

import time

import pytest
from conftest import (
    AOI_THIRTY,
    Api,
    check_charges_match_tiles,
    check_output_raster,
    create_body,
    expected_grid1_tile_count,
    start_server,
    tile_summary,
    wait_for_request_status,
)

RESOLUTION = 20
KILL_AFTER_PROCESSED = 3
CATCH_TIMEOUT = 300  # seconds to see >= 3 processed tiles after start


@pytest.fixture
def crash_server(tmp_path):
    srv = start_server(tmp_path / "crash", clients=("alice",), workers=2)
    try:
        yield srv
    finally:
        srv.stop()


def test_sigkill_mid_job_then_restart(crash_server):
    srv = crash_server
    out_dir = srv.workdir / "out-crash"
    api = srv.api("alice")

    created = api.create(create_body(AOI_THIRTY, resolution=RESOLUTION, tile_path=str(out_dir),
                                     description="crash safety"))
    rid = created["id"]
    api.action(rid, "start")  # start = analyse + process

    # -- poll until some, but not all, tiles are PROCESSED, then SIGKILL ---------------------------------------------
    deadline = time.monotonic() + CATCH_TIMEOUT
    seen: list[dict] = []
    while True:
        req = api.get_request(rid)
        if req["status"] in ("FAILED", "CANCELED", "PARTIAL"):
            pytest.fail(f"the job ended {req['status']} before the crash: error={req.get('error')!r}", pytrace=False)
        seen = api.tiles(rid) if req["status"] != "ANALYSING" else []
        processed = sum(t["status"] == "PROCESSED" for t in seen)
        if seen and processed == len(seen):
            pytest.fail(
                f"all {len(seen)} tiles were PROCESSED before the test could kill the server; the crash window was "
                "missed (make AOI_THIRTY larger or the poll faster)",
                pytrace=False,
            )
        if processed >= KILL_AFTER_PROCESSED:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {KILL_AFTER_PROCESSED} tiles PROCESSED after {CATCH_TIMEOUT} s: "
                        f"status {req['status']}, tiles {tile_summary(seen)}", pytrace=False)
        time.sleep(0.05)

    srv.kill()
    at_kill = tile_summary(seen)
    n = len(seen)
    expected = expected_grid1_tile_count(AOI_THIRTY)
    assert n == expected, f"AOI_THIRTY should give {expected} grid-1 tiles, the request has {n}"

    # -- restart on the same db/data -----------------------------------------------------------------------------------
    srv.start()
    api = Api(srv.base_url, srv.clients["alice"])  # new port, new token
    final = wait_for_request_status(api, rid, {"DONE"}, fail_on={"PARTIAL", "FAILED", "CANCELED"})
    assert final["status"] == "DONE", f"after the restart: {final['status']} (tiles at kill time: {at_kill})"
    assert final["tileCount"] == n, f"tileCount changed across the restart: {n} -> {final['tileCount']}"

    tiles = api.tiles(rid)
    assert len(tiles) == n, f"{len(tiles)} tiles after the restart, {n} before"
    not_done = [(t["name"], t["status"]) for t in tiles if t["status"] != "PROCESSED"]
    assert not not_done, f"tiles not PROCESSED in a DONE request: {not_done}"
    for t in tiles:
        assert isinstance(t.get("cost"), (int, float)) and t["cost"] > 0, f"tile {t['name']}: cost {t.get('cost')!r}"

    # -- files: one default.tif per tile folder, nothing else anywhere -----------------------------------------------
    req_dir = out_dir / rid
    entries = sorted(p.name for p in req_dir.iterdir())
    names = sorted(t["name"] for t in tiles)
    assert entries == names, (
        f"{req_dir} must hold exactly one folder per tile and nothing else.\n"
        f"extra: {sorted(set(entries) - set(names))}\nmissing: {sorted(set(names) - set(entries))}"
    )
    leftovers = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*")
                       if p.is_file() and p.parent.parent != req_dir)
    assert not leftovers, f"files outside <requestId>/<tileName>/ under {out_dir}: {leftovers}"
    by_name = {t["name"]: t for t in tiles}
    for name in names:
        tile_dir = req_dir / name
        assert tile_dir.is_dir(), f"{tile_dir} is not a directory"
        files = sorted(p.name for p in tile_dir.iterdir())  # includes hidden and temp files
        assert files == ["default.tif"], f"{tile_dir} must contain exactly default.tif, found {files}"
        check_output_raster(tile_dir / "default.tif", by_name[name], resolution=RESOLUTION, stats=True)

    # -- PU ledger: exactly one charge per tile, charges == API costs ------------------------------------------------
    srv.stop()
    with srv.db_connect_ro() as conn:
        check_charges_match_tiles(conn, rid, tiles)
        row = conn.execute("SELECT status FROM requests WHERE id = ?", (rid,)).fetchone()
        assert row is not None and row["status"] == "DONE", f"requests table: {dict(row) if row else None}"
        statuses = conn.execute(
            "SELECT status, COUNT(*) AS n FROM tiles WHERE request_id = ? GROUP BY status", (rid,)
        ).fetchall()
        assert {r["status"]: r["n"] for r in statuses} == {"PROCESSED": n}, (
            f"tiles table for {rid}: {[dict(r) for r in statuses]}"
        )
