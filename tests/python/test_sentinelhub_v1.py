"""Acceptance: the official sentinelhub-py 3.11.1 Batch v1 client against `tessera serve`.

The flow follows reference/client-examples/probe_v1_sh311.py, on the bundled `tessera-sample` collection.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import shapely
from conftest import (
    AOI_FOUR,
    AOI_NINE,
    AOI_ONE,
    AOI_TWO,
    AOI_UTM_EPSG,
    GRID1_TILE_SIZE,
    JOB_TIMEOUT,
    TERMINAL_REQUEST_STATUSES,
    TILE_STATUSES,
    aoi_in_crs,
    assert_error,
    check_charges_match_tiles,
    check_output_raster,
    check_tile_geometry_matches_origin,
    check_tile_shape,
    create_body,
    expected_grid1_tile_count,
    sh_process_request,
    tile_summary,
    wait_for,
    wait_for_request_status,
)
from sentinelhub import (
    BatchRequestStatus,
    BatchSplitter,
    BatchTileStatus,
    SentinelHubBatch,
    monitor_batch_analysis,
    monitor_batch_job,
)
from sentinelhub.api.batch import utils as batch_utils
from sentinelhub.download.sentinelhub_client import SentinelHubDownloadClient
from sentinelhub.exceptions import DownloadFailedException

UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(autouse=True, scope="module")
def _fresh_session_cache():
    # sentinelhub caches OAuth sessions per (client id, base URL) for the whole process.
    SentinelHubDownloadClient.clear_cache()
    yield
    SentinelHubDownloadClient.clear_cache()


def monitor_finished_job(request, config):
    """Run the client's monitor_batch_job on a job our own polling already saw finished.

    monitor_batch_job insists on sleep_time >= 60 s.  On a finished job it must not need to sleep at all; if it
    wants to, the request status or tile statuses the server returned are inconsistent, so fail instead of waiting.
    """

    def _sleep(seconds):
        raise AssertionError(
            f"monitor_batch_job wanted to sleep {seconds} s although our own polling saw the job finished: "
            "the request status or tile statuses returned by the server are inconsistent"
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch_utils, "time", types.SimpleNamespace(sleep=_sleep))
        return monitor_batch_job(request, config=config, sleep_time=60, analysis_sleep_time=5)


def wait_finished_via_client(batch: SentinelHubBatch, request, timeout: float = JOB_TIMEOUT,
                             targets: frozenset[str] = frozenset(TERMINAL_REQUEST_STATUSES)):
    """Our own bounded polling loop with the client (GET request + all tile pages each round, like
    monitor_batch_job does, so every response goes through the client's parsers)."""
    last = {"req": None, "tiles": {}}

    def check():
        req = batch.get_request(request)
        tiles = list(batch.iter_tiles(req))
        for t in tiles:
            BatchTileStatus(t["status"])  # what monitor_batch_job does; raises on an unknown value
        last["req"], last["tiles"] = req, tile_summary(tiles)
        return req.status.value in targets

    def describe():
        req = last["req"]
        return f"Last status {req.status.value if req else None}, error={getattr(req, 'error', None)!r}, " \
               f"tiles by status: {last['tiles']}"

    wait_for(check, timeout, f"request {request.request_id} to reach one of {sorted(targets)}", 0.5, describe)
    return last["req"]


def http_status(exc: DownloadFailedException) -> int | None:
    resp = getattr(exc.request_exception, "response", None)
    return None if resp is None else resp.status_code


def assert_client_404(exc_info, what: str) -> None:
    exc = exc_info.value
    assert http_status(exc) == 404, f"{what}: expected HTTP 404, got {http_status(exc)}: {exc}"
    assert_error(exc.request_exception.response, 404, code="COMMON_NOT_FOUND", context=what)


# ---------------------------------------------------------------------------------------------------------------------


def test_tiling_grids(server):
    batch = SentinelHubBatch(config=server.sh_config("alice"))
    grids = list(batch.iter_tiling_grids())
    ids = [g.get("id") for g in grids]
    assert {0, 1, 2, 3} <= set(ids), f"tiling grids 0-3 must be listed, got ids {ids}"
    assert len(ids) == len(set(ids)), f"duplicate grid ids in the listing: {ids}"
    for g in grids:
        props = g.get("properties") or {}
        assert isinstance(g.get("name"), str) and g["name"], f"grid without a name: {g}"
        for key in ("tileWidth", "tileHeight", "resolutions", "unit"):
            assert key in props, f"grid {g.get('id')} lacks properties.{key}: {g}"
        assert props["unit"] in ("METRE", "DEGREE"), f"grid {g['id']}: unit {props['unit']!r}"

    grid1 = batch.get_tiling_grid(1)
    assert grid1.get("id") == 1, f"GET /tilinggrids/1 returned {grid1}"
    props = grid1["properties"]
    assert props["tileWidth"] == 10000 and props["tileHeight"] == 10000, f"grid 1 tile size: {props}"
    assert sorted(props["resolutions"]) == [10, 20], f"grid 1 resolutions: {props['resolutions']}"
    assert props["unit"] == "METRE"
    assert grid1 == next(g for g in grids if g["id"] == 1), "grid 1 differs between the list and GET /tilinggrids/1"


def test_acceptance_flow(server):
    """create -> update -> list -> latest -> analyse -> tiles -> splitter -> start -> DONE -> GeoTIFFs and PU."""
    config = server.sh_config("alice")
    batch = SentinelHubBatch(config=config)
    out_dir = server.workdir / "out-acceptance"
    res, buf = 10, (50, 50)

    # -- create ------------------------------------------------------------------------------------------------------
    created = batch.create(
        sh_process_request(config, AOI_FOUR),
        tiling_grid=SentinelHubBatch.tiling_grid(grid_id=1, resolution=res, buffer=buf),
        output=SentinelHubBatch.output(default_tile_path=str(out_dir)),
        description="acceptance",
    )
    rid = created.request_id
    assert created.status is BatchRequestStatus.CREATED, f"status after create: {created.status}"
    assert isinstance(created.tile_count, int) and not isinstance(created.tile_count, bool), (
        f"tileCount after create must be an int estimate, got {created.tile_count!r}"
    )
    assert created.tile_count > 0, f"tileCount estimate must be > 0 for a non-empty AOI, got {created.tile_count}"
    assert created.tiling_grid.get("id") == 1 and created.tiling_grid.get("resolution") == res, created.tiling_grid
    assert (created.tiling_grid.get("bufferX"), created.tiling_grid.get("bufferY")) == buf, (
        f"tilingGrid echo must keep bufferX/bufferY: {created.tiling_grid}"
    )
    assert created.output.get("defaultTilePath") == str(out_dir), f"output echo: {created.output}"
    assert created.description == "acceptance"
    assert created.bbox is not None and tuple(created.bbox) == pytest.approx(AOI_FOUR), (
        f"processRequest.input.bounds echo: {created.process_request.get('input', {}).get('bounds')}"
    )
    assert created.process_request.get("evalscript"), "processRequest.evalscript must be echoed"
    assert created.tile_width_px == 1000 and created.tile_height_px == 1000, (
        f"tileWidthPx/tileHeightPx must be 10000/{res} = 1000 (without buffer), got "
        f"{created.tile_width_px}/{created.tile_height_px}"
    )

    # -- update, list, latest ----------------------------------------------------------------------------------------
    updated = batch.update_request(created, description="acceptance (updated)")
    assert isinstance(updated, dict) and updated.get("description") == "acceptance (updated)", (
        f"PUT must return the updated request, got {updated!r}"
    )
    assert batch.get_request(rid).description == "acceptance (updated)"
    listed = [r.request_id for r in batch.iter_requests()]
    assert rid in listed, f"iter_requests() does not list {rid}: {listed}"
    assert len(listed) == len(set(listed)), f"iter_requests() listed a request twice: {listed}"
    latest = batch.get_latest_request()
    assert latest.request_id == rid, f"get_latest_request() returned {latest.request_id}, expected {rid}"

    # -- analysis ----------------------------------------------------------------------------------------------------
    batch.start_analysis(created)
    analysed = monitor_batch_analysis(created, config=config, sleep_time=5)
    assert analysed.status is BatchRequestStatus.ANALYSIS_DONE, f"after analysis: {analysed.status}"
    assert analysed.value_estimate is not None and analysed.value_estimate > 0, (
        f"valueEstimate after analysis must be > 0, got {analysed.value_estimate}"
    )
    count = analysed.tile_count
    assert isinstance(count, int) and count > 0, f"tileCount after analysis: {count!r}"
    expected = expected_grid1_tile_count(AOI_FOUR)
    assert count == expected, (
        f"the AOI {AOI_FOUR} intersects {expected} cells of the 10 km UTM lattice (zone 33N), tileCount is {count}"
    )

    # -- tiles -------------------------------------------------------------------------------------------------------
    tiles = list(batch.iter_tiles(analysed))
    assert len(tiles) == count, f"iter_tiles returned {len(tiles)} tiles, tileCount is {count}"
    assert all(t["status"] == "PENDING" for t in tiles), f"tiles after analysis: {tile_summary(tiles)}"
    ids = [t["id"] for t in tiles]
    names = [t["name"] for t in tiles]
    assert len(set(ids)) == count and len(set(names)) == count, f"tile ids/names not unique: {ids} {names}"
    aoi = aoi_in_crs(AOI_FOUR, AOI_UTM_EPSG)
    for t in tiles:
        ox, oy, epsg = check_tile_shape(t, rid)
        assert epsg == AOI_UTM_EPSG, f"tile {t['name']}: EPSG {epsg}, the AOI lies in UTM 33N ({AOI_UTM_EPSG})"
        assert ox % 10000 == 0 and oy % 10000 == 0, f"tile {t['name']}: grid-1 origin {ox, oy} is off the 10 km lattice"
        check_tile_geometry_matches_origin(t)
        tile_box = shapely.box(ox, oy - GRID1_TILE_SIZE, ox + GRID1_TILE_SIZE, oy)
        assert tile_box.intersection(aoi).area > 0, f"tile {t['name']} {tile_box.bounds} does not intersect the AOI"

    pending = list(batch.iter_tiles(analysed, status=BatchTileStatus.PENDING))
    assert sorted(t["id"] for t in pending) == sorted(ids), "iter_tiles(status=PENDING) must return every tile"
    assert list(batch.iter_tiles(analysed, status=BatchTileStatus.PROCESSED)) == [], (
        "iter_tiles(status=PROCESSED) must be empty before the job starts"
    )
    one = batch.get_tile(analysed, ids[0])
    assert one["id"] == ids[0] and one["name"] == names[0] and one["origin"] == tiles[0]["origin"], (
        f"get_tile({ids[0]}) = {one} differs from the listed tile {tiles[0]}"
    )

    # -- BatchSplitter -----------------------------------------------------------------------------------------------
    splitter = BatchSplitter(batch_request=analysed, config=config)
    bboxes, infos = splitter.get_bbox_list(), splitter.get_info_list()
    assert len(bboxes) == count, f"BatchSplitter gave {len(bboxes)} bboxes for {count} tiles"
    by_id = {t["id"]: t for t in tiles}
    for bbox, info in zip(bboxes, infos):
        tile = by_id[info["id"]]
        ox, oy, epsg = check_tile_shape(tile)
        want = (ox - buf[0] * res, oy - GRID1_TILE_SIZE - buf[1] * res, ox + GRID1_TILE_SIZE + buf[0] * res,
                oy + buf[1] * res)
        assert tuple(bbox) == pytest.approx(want, abs=1e-6), f"splitter bbox {tuple(bbox)} != buffered tile {want}"
        assert bbox.crs.epsg == epsg, f"splitter bbox CRS {bbox.crs} != tile EPSG {epsg}"

    # -- run ---------------------------------------------------------------------------------------------------------
    batch.start_job(analysed)
    final = wait_finished_via_client(batch, analysed)
    assert final.status is BatchRequestStatus.DONE, f"job ended {final.status}, error={final.error!r}"
    per_status = monitor_finished_job(final, config)
    assert len(per_status[BatchTileStatus.PROCESSED]) == count, (
        f"monitor_batch_job: {{status: n}} = {{{', '.join(f'{k.value}: {len(v)}' for k, v in per_status.items())}}}"
    )
    assert not per_status[BatchTileStatus.FAILED], "no tile may fail"
    assert batch.get_request(rid).status is BatchRequestStatus.DONE

    # -- outputs, costs, ledger --------------------------------------------------------------------------------------
    tiles = list(batch.iter_tiles(rid))
    assert len(tiles) == count
    for t in tiles:
        assert t["status"] == "PROCESSED", f"tile {t['name']} is {t['status']} in a DONE request"
        assert isinstance(t.get("cost"), (int, float)) and t["cost"] > 0, f"tile {t['name']}: cost {t.get('cost')!r}"
        path = out_dir / rid / t["name"] / "default.tif"
        check_output_raster(path, t, resolution=res, buffer=buf)
    produced = sorted(p.name for p in (out_dir / rid).iterdir())
    assert produced == sorted(names), f"tile folders under {out_dir / rid}: {produced}, expected {sorted(names)}"
    with server.db_connect_ro() as conn:
        check_charges_match_tiles(conn, rid, tiles)


def test_forced_failure_partial_then_restart(server):
    """A regular file where a tile's output folder must go makes that tile fail (3 attempts) -> PARTIAL;
    remove it, restartpartial -> DONE."""
    config = server.sh_config("alice")
    batch = SentinelHubBatch(config=config)
    out_dir = server.workdir / "out-partial"
    res = 20

    req = batch.create(
        sh_process_request(config, AOI_TWO),
        tiling_grid=SentinelHubBatch.tiling_grid(grid_id=1, resolution=res),
        output=SentinelHubBatch.output(default_tile_path=str(out_dir)),
        description="forced failure",
    )
    rid = req.request_id
    batch.start_analysis(req)
    req = monitor_batch_analysis(req, config=config, sleep_time=5)
    tiles = list(batch.iter_tiles(req))
    assert len(tiles) == req.tile_count == 2, f"AOI_TWO should give 2 tiles, got {len(tiles)} (tileCount {req.tile_count})"

    blocked = tiles[0]
    blocker = out_dir / rid / blocked["name"]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("this regular file blocks the tile's output folder\n")

    batch.start_job(req)
    final = wait_finished_via_client(batch, req)
    assert final.status is BatchRequestStatus.PARTIAL, (
        f"with one of two tiles unwritable the request must end PARTIAL, got {final.status} (error={final.error!r})"
    )
    per_status = monitor_finished_job(final, config)
    failed_ids = [t["id"] for t in per_status[BatchTileStatus.FAILED]]
    processed_ids = [t["id"] for t in per_status[BatchTileStatus.PROCESSED]]
    assert failed_ids == [blocked["id"]], f"FAILED tiles {failed_ids}, expected only the blocked {blocked['id']}"
    assert processed_ids == [tiles[1]["id"]], f"PROCESSED tiles {processed_ids}, expected {tiles[1]['id']}"
    # Why a tile failed is in the tile JSON (Tessera's `error` and `attempts`; the client keeps unknown keys).
    failed = per_status[BatchTileStatus.FAILED][0]
    assert failed["attempts"] == 3, failed
    assert blocked["name"] in failed.get("error", ""), f"the error must name the blocked path: {failed}"
    done_tile = per_status[BatchTileStatus.PROCESSED][0]
    assert done_tile["attempts"] == 1 and "error" not in done_tile, done_tile
    assert (out_dir / rid / tiles[1]["name"] / "default.tif").is_file(), "the unblocked tile's output is missing"
    assert blocker.is_file(), "the server must not remove the blocking file"

    blocker.unlink()
    batch.restart_job(final)
    done = wait_for_request_status(server.api("alice"), rid, {"DONE"}, fail_on={"FAILED", "CANCELED"})
    assert done["status"] == "DONE"
    per_status = monitor_finished_job(rid, config)
    assert len(per_status[BatchTileStatus.PROCESSED]) == 2 and not per_status[BatchTileStatus.FAILED], (
        f"after restartpartial: {{{', '.join(f'{k.value}: {len(v)}' for k, v in per_status.items())}}}"
    )
    tiles = list(batch.iter_tiles(rid))
    for t in tiles:
        assert t["cost"] > 0, f"tile {t['name']}: cost {t['cost']}"
        check_output_raster(out_dir / rid / t["name"] / "default.tif", t, resolution=res)
    with server.db_connect_ro() as conn:
        check_charges_match_tiles(conn, rid, tiles)


def test_cancel_then_delete(server):
    """bucketName request: start, cancel, delete -> gone (404 through the client)."""
    config = server.sh_config("alice")
    batch = SentinelHubBatch(config=config)
    server.grant("alice", "s3://tessera-test-bucket")  # buckets are the operator's to grant (issue 12)
    req = batch.create(
        sh_process_request(config, AOI_NINE).download_list[0].post_values,  # a raw payload dict also works
        tiling_grid=SentinelHubBatch.tiling_grid(grid_id=1, resolution=20),
        bucket_name="tessera-test-bucket",
    )
    rid = req.request_id
    assert req.bucket_name == "tessera-test-bucket", f"bucketName echo: {req.bucket_name!r}"
    batch.start_job(req)
    batch.cancel_job(req)
    canceled = wait_for_request_status(server.api("alice"), rid, {"CANCELED"}, fail_on={"DONE", "PARTIAL", "FAILED"},
                                       timeout=120)
    assert canceled.get("userAction") in ("CANCEL", None), f"userAction after cancel: {canceled.get('userAction')}"
    batch.delete_request(req)

    with pytest.raises(DownloadFailedException) as exc_info:
        batch.get_request(rid)
    assert_client_404(exc_info, f"get_request({rid}) after delete")
    assert rid not in [r.request_id for r in batch.iter_requests()], "a deleted request is still listed"


def test_other_client_cannot_see_request(server):
    alice = SentinelHubBatch(config=server.sh_config("alice"))
    bob = SentinelHubBatch(config=server.sh_config("bob"))
    req = alice.create(
        sh_process_request(server.sh_config("alice"), AOI_ONE),
        tiling_grid=SentinelHubBatch.tiling_grid(grid_id=1, resolution=20),
        output=SentinelHubBatch.output(default_tile_path=str(server.workdir / "out-private")),
        description="alice's",
    )
    rid = req.request_id
    with pytest.raises(DownloadFailedException) as exc_info:
        bob.get_request(rid)
    assert_client_404(exc_info, "bob GETs alice's request")
    assert rid not in [r.request_id for r in bob.iter_requests()], "bob's listing shows alice's request"
    for call, what in [
        (lambda: bob.update_request(rid, description="bob was here"), "bob PUTs alice's request"),
        (lambda: bob.start_analysis(rid), "bob analyses alice's request"),
        (lambda: bob.start_job(rid), "bob starts alice's request"),
        (lambda: bob.delete_request(rid), "bob deletes alice's request"),
        (lambda: list(bob.iter_tiles(rid)), "bob lists alice's tiles"),
    ]:
        with pytest.raises(DownloadFailedException) as exc_info:
            call()
        assert_client_404(exc_info, what)
    still = alice.get_request(rid)
    assert still.status is BatchRequestStatus.CREATED and still.description == "alice's", (
        f"bob's failed calls must not change alice's request: {still}"
    )


def test_unknown_id_is_404(server):
    batch = SentinelHubBatch(config=server.sh_config("alice"))
    with pytest.raises(DownloadFailedException) as exc_info:
        batch.get_request(UNKNOWN_ID)
    assert_client_404(exc_info, "get_request(unknown id)")
    # the client shows the error object in its exception text
    assert "COMMON_NOT_FOUND" in str(exc_info.value), f"client message lacks the error body: {exc_info.value}"


def test_output_locations(server):
    """Relative path (under the client's folder DATA/clients/<client id>), file:// template with placeholders (under
    an allowed prefix), bucketName and s3:// without S3 configured (a granted bucket, stored under
    DATA/s3/<bucket>/...).  One tile each at 20 m."""
    api = server.api("alice")
    data = server.data_dir
    own = server.client_root("alice")
    abs_dir = server.workdir / "out-template"
    server.grant("alice", "s3://tessera-bucket")
    cases = {
        "relative": (dict(tile_path="rel-out/run"), lambda rid, name: own / "rel-out/run" / rid / name / "default.tif"),
        "file-template": (
            dict(tile_path=f"file://{abs_dir}/<requestId>/<tileName>-<outputId>.<format>"),
            lambda rid, name: abs_dir / rid / f"{name}-default.tif",
        ),
        "bucketName": (dict(bucket_name="tessera-bucket"),
                       lambda rid, name: data / "s3/tessera-bucket" / rid / name / "default.tif"),
        "s3-prefix": (dict(tile_path="s3://tessera-bucket/some/prefix"),
                      lambda rid, name: data / "s3/tessera-bucket/some/prefix" / rid / name / "default.tif"),
    }
    started = {}
    for label, (kwargs, where) in cases.items():
        created = api.create(create_body(AOI_ONE, resolution=20, description=f"output {label}", **kwargs))
        api.action(created["id"], "start")
        started[label] = (created["id"], where)
    for label, (rid, where) in started.items():
        final = wait_for_request_status(api, rid, {"DONE"}, fail_on={"PARTIAL", "FAILED", "CANCELED"})
        assert final["status"] == "DONE"
        tiles = api.tiles(rid)
        assert len(tiles) == 1, f"{label}: AOI_ONE should give one tile, got {len(tiles)}"
        path = where(rid, tiles[0]["name"])
        assert path.is_file(), (
            f"{label}: output expected at {path}; files under the data dir: "
            f"{sorted(str(p.relative_to(data)) for p in data.rglob('*') if p.is_file())[:50]}"
        )
        check_output_raster(Path(path), tiles[0], resolution=20)


def test_tile_statuses_are_known_values(server):
    """Every tile status the server ever reported in this module is in the v1 enum (client crashes otherwise)."""
    api = server.api("alice")
    for r in api.list_all("/api/v1/batch/process"):
        for t in api.tiles(r["id"]) if r["status"] not in ("CREATED",) else []:
            assert t["status"] in TILE_STATUSES, f"request {r['id']}: tile status {t['status']!r}"
