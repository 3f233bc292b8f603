"""Acceptance: the official sentinelhub-py 3.12.0 Batch v2 client (`BatchProcessClient`) against `tessera serve`.

3.12.0 has no v1 client and cannot share a venv with the pinned 3.11.1, so this module runs in tests/.venv-v2
(tests/python/requirements-v2.txt; tests/run_all.sh creates it and runs this file with it) and skips itself
under any other sentinelhub version.

Outputs go to a real S3 server (moto on 127.0.0.1) that the daemon reaches WITHOUT credentials of its own: the
keys in each request's `output.delivery.s3` sign its writes, which moto's request recorder shows.
The flow follows reference/client-examples/probe_v2_sh312.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
import types
from pathlib import Path

import pytest
import requests

sentinelhub = pytest.importorskip("sentinelhub")
if sentinelhub.__version__ != "3.12.0":
    pytest.skip(
        f"the Batch v2 suite runs with sentinelhub 3.12.0 in tests/.venv-v2 (found {sentinelhub.__version__})",
        allow_module_level=True,
    )

from conftest import (  # noqa: E402
    AOI_FOUR,
    AOI_NINE,
    AOI_ONE,
    AOI_THIRTY,
    AOI_UTM_EPSG,
    HTTP_TIMEOUT,
    Api,
    assert_error,
    check_charges_match_tiles,
    create_body,
    free_port,
    gdalinfo,
    process_request_body,
    raster_epsg,
    sh_process_request,
    start_server,
    wait_for,
)
from sentinelhub import (  # noqa: E402
    BatchProcessClient,
    BatchProcessRequest,
    BatchRequestStatus,
    BatchUserAction,
    monitor_batch_process_analysis,
    monitor_batch_process_job,
)
from sentinelhub.api.batch import utils as batch_utils  # noqa: E402
from sentinelhub.download.sentinelhub_client import SentinelHubDownloadClient  # noqa: E402
from sentinelhub.exceptions import DownloadFailedException  # noqa: E402

UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"
BUCKET = "v2-results"
# The request's own credentials (moto accepts any pair; the recorder shows which one signed each call).
ACCESS_KEY = "AKIAV2REQUESTKEY0001"
SECRET_KEY = "v2-request-secret-never-echoed-0123456789"
TILE_PX = 500  # grid 1 (10 km) at 20 m
TEMPLATE = f"s3://{BUCKET}/out/<requestId>/<tileName>/<outputId>.<format>"


@pytest.fixture(autouse=True, scope="module")
def _fresh_session_cache():
    # sentinelhub caches OAuth sessions per (client id, base URL) for the whole process.
    SentinelHubDownloadClient.clear_cache()
    yield
    SentinelHubDownloadClient.clear_cache()


@pytest.fixture(autouse=True, scope="module")
def _fast_monitors():
    """The client's monitors insist on sleeping >= 5 s / 60 s between polls; poll every 0.2 s instead, and give up
    after a bounded number of polls (a monitor that never ends is a bug in the statuses the server reports)."""
    polls = {"n": 0}

    def sleep(_seconds):
        polls["n"] += 1
        assert polls["n"] < 3000, "a monitor polled 3000 times: the task never left a monitored status"
        time.sleep(0.2)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch_utils, "time", types.SimpleNamespace(sleep=sleep))
        yield


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """moto_server on 127.0.0.1 with its request recorder on: every call lands in `recording` with its headers."""
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server not on PATH: pip install 'moto[server]' (tests/run_all.sh does it)")
    workdir = tmp_path_factory.mktemp("moto")
    recording = workdir / "recording.jsonl"
    port = free_port()
    env = dict(os.environ, MOTO_ENABLE_RECORDING="True", MOTO_RECORDER_FILEPATH=str(recording))
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=workdir)
    try:
        wait_for(lambda: listening(port), 60, "moto_server to listen")
        yield types.SimpleNamespace(endpoint=f"http://127.0.0.1:{port}", recording=recording)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def s3(moto):
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with moto[server]")
    client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    return client


def start_v2_server(workdir: Path, moto_endpoint: str, extra_args: list[str] | None = None):
    """A daemon whose s3:// goes to moto, with NO S3 credentials of its own."""
    keep = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                            "TESSERA_S3_ENDPOINT", "TESSERA_S3_REGION")}
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ.pop(k, None)
    os.environ.update(TESSERA_S3_ENDPOINT=moto_endpoint, TESSERA_S3_REGION="us-east-1")
    try:
        return start_server(workdir, clients=("alice", "bob"), extra_args=extra_args or [])
    finally:
        for k, v in keep.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def server(tmp_path_factory, moto, s3):
    srv = start_v2_server(tmp_path_factory.mktemp("tessera-v2"), moto.endpoint)
    try:
        yield srv
    finally:
        srv.stop()


def v2_client(srv, name: str = "alice") -> BatchProcessClient:
    return BatchProcessClient(config=srv.sh_config(name))


def delivery(url: str = TEMPLATE) -> dict:
    return BatchProcessClient.s3_specification(url=url, access_key=ACCESS_KEY, secret_access_key=SECRET_KEY)


def create_job(client: BatchProcessClient, srv, bbox=AOI_ONE, description: str | None = "v2 acceptance",
               url: str = TEMPLATE, **output_kw) -> BatchProcessRequest:
    return client.create(
        sh_process_request(srv.sh_config(), bbox),
        input=BatchProcessClient.tiling_grid_input(grid_id=1, resolution=20),
        output=BatchProcessClient.raster_output(delivery(url), **output_kw),
        description=description,
    )


def object_keys(s3, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def recorded_writes(moto, prefix: str) -> list[dict]:
    """The PUTs (and multipart calls) moto recorded for keys under `/BUCKET/prefix`."""
    out = []
    for line in moto.recording.read_text().splitlines():
        entry = json.loads(line)
        if entry["method"] in ("PUT", "POST") and f"/{BUCKET}/{prefix}" in entry["url"]:
            out.append(entry)
    return out


def assert_no_secret(text: str, where: str) -> None:
    assert SECRET_KEY not in text, f"the request's secretAccessKey leaked into {where}"


def fetch(s3, key: str, path: Path) -> Path:
    path.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return path


def execution_rows(s3, key: str, tmp_path: Path) -> list[tuple]:
    """The `features` table of an execution database on S3 (None while it does not exist yet)."""
    try:
        local = fetch(s3, key, tmp_path / f"exec-{time.monotonic_ns()}.sqlite")
    except s3.exceptions.NoSuchKey:
        return None
    with sqlite3.connect(local) as conn:
        return conn.execute("SELECT id, name, status, error, delivered FROM features ORDER BY id").fetchall()


def ogrinfo(path: Path) -> str:
    """`ogrinfo -ro -al` of a vector file: GDAL must read it without a warning or an error."""
    res = subprocess.run(["ogrinfo", "-ro", "-al", str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"ogrinfo failed: {res.stderr[-2000:]}"
    assert "ERROR" not in res.stderr and "Warning" not in res.stderr, res.stderr[-2000:]
    return res.stdout


# ---------------------------------------------------------------------------------------------------------------------


def test_tiling_grids_are_served_under_v2(server):
    client = v2_client(server)
    grids = list(client.iter_tiling_grids())
    ids = [g["id"] for g in grids]
    assert {0, 1, 2, 3} <= set(ids), ids
    grid1 = client.get_tiling_grid(1)
    assert grid1["id"] == 1 and grid1["properties"]["tileWidth"] == 10000, grid1
    v1 = Api(server.base_url, server.clients["alice"]).get("/api/v1/batch/tilinggrids/1").json()
    assert v1 == grid1, "v1 and v2 describe the same grids"


def test_create_analyse_start_monitor_to_done_with_outputs_on_s3(server, moto, s3, tmp_path):
    client = v2_client(server)
    job = create_job(client, server, cog_output=True, skip_existing=True)
    assert isinstance(job, BatchProcessRequest)
    assert job.status is BatchRequestStatus.CREATED
    assert job.domain_account_id == server.clients["alice"].client_id
    assert job.request["input"] == {"type": "tiling-grid", "id": 1, "resolution": 20}, job.request
    s3_echo = job.request["output"]["delivery"]["s3"]
    assert s3_echo["url"] == TEMPLATE and "secretAccessKey" not in s3_echo and "accessKey" not in s3_echo, s3_echo
    rid = job.request_id

    client.update_request(job, description="v2 acceptance (updated)")
    assert client.get_request(rid).request["description"] == "v2 acceptance (updated)"
    assert rid in [r.request_id for r in client.iter_requests()]
    latest = list(client.iter_requests(sort="created:desc"))[0]
    assert latest.request_id == rid

    client.start_analysis(job)
    analysed = monitor_batch_process_analysis(job, client, sleep_time=5)
    assert analysed.status is BatchRequestStatus.ANALYSIS_DONE
    assert analysed.user_action is BatchUserAction.ANALYSE

    client.start_job(job)
    done = monitor_batch_process_job(job, client, sleep_time=60, analysis_sleep_time=5)
    assert done.status is BatchRequestStatus.DONE, (done.status, done.error)
    assert done.completion_percentage == 100
    assert done.cost_PU and done.cost_PU > 0
    assert done.user_action is BatchUserAction.START
    assert done.last_updated is not None and done.created is not None

    # The output: a COG in the request's folder on S3, with the tile's georeference.
    keys = object_keys(s3, f"out/{rid}/")
    assert len(keys) == 1 and keys[0].endswith("/default.tif"), keys
    local = tmp_path / "out.tif"
    local.write_bytes(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read())
    info = gdalinfo(local)
    assert info["size"] == [TILE_PX, TILE_PX]
    assert raster_epsg(info) == AOI_UTM_EPSG
    assert info["metadata"]["IMAGE_STRUCTURE"].get("LAYOUT") == "COG", info["metadata"]

    # Written with the request's own keys (the daemon has none of its own).
    writes = recorded_writes(moto, f"out/{rid}/")
    assert writes, "moto recorded no write of the output"
    for w in writes:
        auth = w["headers"].get("Authorization", "")
        assert f"Credential={ACCESS_KEY}/" in auth, f"output write not signed with the request's key: {auth!r}"
    assert all(f"Credential={ACCESS_KEY}/" in w["headers"].get("Authorization", "")
               for w in recorded_writes(moto, "out/execution-") + recorded_writes(moto, "out/featureManifest-"))

    # The artifacts the hosted v2 service writes, beside the outputs in the delivery root.
    request_json = json.loads(s3.get_object(Bucket=BUCKET, Key=f"out/request-{rid}.json")["Body"].read())
    assert request_json["input"] == job.request["input"] and request_json["processRequest"]["evalscript"]
    assert_no_secret(json.dumps(request_json), "the request JSON in the bucket")
    assert "accessKey" not in json.dumps(request_json)
    manifest = ogrinfo(fetch(s3, f"out/featureManifest-{rid}.gpkg", tmp_path / "manifest.gpkg"))
    assert f"Layer name: feature_{AOI_UTM_EPSG}" in manifest, manifest
    assert "Geometry: Polygon" in manifest and "Feature Count: 1" in manifest, manifest
    assert f"path (String) = s3://{BUCKET}/{keys[0]}" in manifest, manifest
    assert "outputId (String) = default" in manifest and f"width (Integer64) = {TILE_PX}" in manifest, manifest
    assert f'ID["EPSG",{AOI_UTM_EPSG}]' in manifest, "the manifest layer carries the tile CRS"
    final = wait_for(lambda: (lambda rows: rows if rows and rows[0][2] == "DONE" else None)(
        execution_rows(s3, f"out/execution-{rid}.sqlite", tmp_path)), 30, "the final execution database")
    assert len(final) == 1 and final[0][2:] == ("DONE", None, 1), final

    # The same request through v1: one engine, one store.
    api = Api(server.base_url, server.clients["alice"])
    v1 = api.get_request(rid)
    assert v1["status"] == "DONE"
    assert v1["tilingGrid"] == {"id": 1, "resolution": 20, "bufferX": 0, "bufferY": 0}
    assert v1["output"]["defaultTilePath"] == TEMPLATE
    tiles = api.tiles(rid)
    assert [t["status"] for t in tiles] == ["PROCESSED"]
    assert keys[0] == f"out/{rid}/{tiles[0]['name']}/default.tif"
    assert final[0][:2] == (tiles[0]["id"], tiles[0]["name"])

    # The secret is nowhere it could be read back: no API response, no log line, not in the stored body.
    raw = requests.get(f"{server.base_url}/api/v2/batch/process/{rid}", timeout=HTTP_TIMEOUT,
                       headers=api.session.headers)
    assert_no_secret(raw.text, "GET /api/v2/batch/process/{id}")
    assert_no_secret(api.get(f"/api/v1/batch/process/{rid}").text, "GET /api/v1/batch/process/{id}")
    assert_no_secret(api.get("/api/v2/batch/process").text, "the v2 request list")
    assert_no_secret(server.log_path.read_text(errors="replace"), "the server log")
    with server.db_connect_ro() as conn:
        body = conn.execute("SELECT body FROM requests WHERE id = ?", (rid,)).fetchone()[0]
        assert_no_secret(body, "the stored request body")


def test_stop_then_start_again_to_done(server, s3):
    client = v2_client(server)
    job = create_job(client, server, bbox=AOI_NINE, description=None)
    rid = job.request_id
    client.start_job(job)
    client.stop_job(job)

    def stopped():
        r = client.get_request(rid)
        return r if r.status is BatchRequestStatus.STOPPED else None

    r = wait_for(stopped, 120, f"task {rid} to be STOPPED")
    assert r.user_action is BatchUserAction.STOP
    assert r.stopped_status_reason is not None and r.stopped_status_reason.value == "USER_ACTION"
    assert r.completion_percentage < 100, "a job stopped before any tile ran cannot be complete"
    # A stopped task cannot be stopped again.
    with pytest.raises(DownloadFailedException, match="400"):
        client.stop_job(job)

    client.start_job(job)
    done = monitor_batch_process_job(job, client, sleep_time=60, analysis_sleep_time=5)
    assert done.status is BatchRequestStatus.DONE, (done.status, done.error)
    assert done.completion_percentage == 100
    assert done.stopped_status_reason is None
    keys = object_keys(s3, f"out/{rid}/")
    assert len(keys) == 9 and all(k.endswith("/default.tif") for k in keys), keys
    # Every tile charged exactly once across the stop and the restart.
    api = Api(server.base_url, server.clients["alice"])
    tiles = api.tiles(rid)
    with server.db_connect_ro() as conn:
        check_charges_match_tiles(conn, rid, tiles)
    assert done.cost_PU == pytest.approx(sum(t["cost"] for t in tiles))


def test_stop_while_processing_charges_what_ran_and_restarts(server, s3, tmp_path):
    """A STOP while tiles run: whatever was processed or in flight is charged; the rest waits for START."""
    client = v2_client(server)
    job = create_job(client, server, bbox=AOI_THIRTY, description=None,
                     url=f"s3://{BUCKET}/mid/<requestId>/<tileName>/<outputId>.<format>")
    rid = job.request_id
    client.start_analysis(job)
    monitor_batch_process_analysis(job, client, sleep_time=5)
    client.start_job(job)
    client.stop_job(job)
    r = wait_for(lambda: (lambda t: t if t.status is BatchRequestStatus.STOPPED else None)(client.get_request(rid)),
                 60, "STOPPED")
    api = Api(server.base_url, server.clients["alice"])

    def settled():
        tiles = api.tiles(rid)
        return tiles if not any(t["status"] in ("SCHEDULED", "PROCESSING") for t in tiles) else None

    tiles = wait_for(settled, 120, "in-flight tiles of the stopped task to settle")
    processed = [t for t in tiles if t["status"] == "PROCESSED"]
    r = client.get_request(rid)
    assert r.status is BatchRequestStatus.STOPPED, "tiles settling never moves a stopped task"
    assert r.completion_percentage == pytest.approx(100 * len(processed) / 30, abs=0.01)
    with server.db_connect_ro() as conn:
        charged = {row["tile_id"] for row in conn.execute(
            "SELECT tile_id FROM pu_ledger WHERE request_id = ? AND kind = 'charge'", (rid,))}
    assert {t["id"] for t in processed} <= charged, "processed tiles are charged"
    # The execution database of the stopped task: what ran is DONE, the rest PENDING.
    exec_key = f"mid/execution-{rid}.sqlite"
    want = {t["id"]: ("DONE" if t["status"] == "PROCESSED" else "PENDING") for t in tiles}
    rows = wait_for(lambda: (lambda r: r if r and {x[0]: x[2] for x in r} == want else None)(
        execution_rows(s3, exec_key, tmp_path)), 30, "the execution database of the stopped task")
    assert len(rows) == 30
    client.start_job(job)
    done = monitor_batch_process_job(job, client, sleep_time=60, analysis_sleep_time=5)
    assert done.status is BatchRequestStatus.DONE
    with server.db_connect_ro() as conn:
        check_charges_match_tiles(conn, rid, api.tiles(rid))
    wait_for(lambda: (lambda r: r and all(x[2] == "DONE" and x[4] == 1 for x in r))(
        execution_rows(s3, exec_key, tmp_path)), 30, "the final execution database")


def test_restart_delay_is_configurable(tmp_path, moto, s3):
    srv = start_v2_server(tmp_path / "delay", moto.endpoint, ["--restart-delay", "1h"])
    try:
        client = v2_client(srv)
        job = create_job(client, srv)
        client.start_analysis(job)
        monitor_batch_process_analysis(job, client, sleep_time=5)
        client.stop_job(job)
        assert client.get_request(job).status is BatchRequestStatus.STOPPED
        resp = srv.api("alice").post(f"/api/v2/batch/process/{job.request_id}/start")
        assert_error(resp, 400, ["stopped less than 3600 s ago"])
        assert client.get_request(job).status is BatchRequestStatus.STOPPED
    finally:
        srv.stop()
        SentinelHubDownloadClient.clear_cache()


def test_errors_401_404_400(server):
    base = f"{server.base_url}/api/v2/batch"
    assert_error(requests.get(f"{base}/process", timeout=HTTP_TIMEOUT), 401)
    assert_error(requests.post(f"{base}/process", json={}, timeout=HTTP_TIMEOUT), 401)
    assert_error(requests.get(f"{base}/process", headers={"Authorization": "Bearer forged.token.x"},
                              timeout=HTTP_TIMEOUT), 401)
    api = server.api("alice")
    assert_error(api.get(f"/api/v2/batch/process/{UNKNOWN_ID}"), 404, code="COMMON_NOT_FOUND")
    assert_error(api.post(f"/api/v2/batch/process/{UNKNOWN_ID}/stop"), 404)
    assert_error(api.post("/api/v2/batch/process", data=b"{not json"), 400, ["json"])
    good = {"processRequest": create_body()["processRequest"],
            "input": {"type": "tiling-grid", "id": 1, "resolution": 20},
            "output": {"type": "raster", "delivery": {"s3": {"url": TEMPLATE, "accessKey": ACCESS_KEY,
                                                               "secretAccessKey": SECRET_KEY}}}}
    # The request JSON goes to the bucket on create: a bucket that cannot take it fails the create.
    before = len(api.list_all("/api/v2/batch/process"))
    missing = json.loads(json.dumps(good))
    missing["output"]["delivery"]["s3"]["url"] = "s3://no-such-bucket/x/<tileName>.tif"
    assert_error(api.post("/api/v2/batch/process", json=missing), 400, ["no-such-bucket"])
    assert len(api.list_all("/api/v2/batch/process")) == before, "a refused create keeps nothing"
    bad_cases = [
        ({**good, "input": {"type": "tiles"}}, ["input.type"]),
        ({**good, "input": {"type": "tiling-grid", "id": 42, "resolution": 20}}, ["grid"]),
        ({**good, "tilingGrid": {"id": 1, "resolution": 20}}, ["v1"]),
        ({**good, "output": {"type": "raster", "delivery": {"s3": {"url": TEMPLATE, "accessKey": ACCESS_KEY}}}},
         ["secretAccessKey"]),
        ({**good, "output": {"type": "raster"}}, ["delivery"]),
        ({**good, "instanceType": "huge"}, ["instanceType"]),
    ]
    for body, words in bad_cases:
        err = assert_error(api.post("/api/v2/batch/process", json=body), 400, words, code="COMMON_BAD_PAYLOAD",
                           context=json.dumps(body)[:200])
        assert SECRET_KEY not in json.dumps(err)

    client = v2_client(server)
    with pytest.raises(DownloadFailedException, match="404"):
        client.get_request(UNKNOWN_ID)
    with pytest.raises(DownloadFailedException, match="400"):
        client.create(sh_process_request(server.sh_config(), AOI_ONE),
                      input={"type": "geopackage-typo"}, output=BatchProcessClient.raster_output(delivery()))
    # STOP needs something running; PUT changes only the description.
    job = create_job(client, server)
    with pytest.raises(DownloadFailedException, match="400"):
        client.stop_job(job)
    assert_error(api.put(f"/api/v2/batch/process/{job.request_id}", json={"output": {"type": "zarr"}}), 400,
                 ["description"])
    assert_error(api.delete(f"/api/v2/batch/process/{job.request_id}"), 404)


def test_tenant_isolation(server):
    alice, bob = v2_client(server, "alice"), v2_client(server, "bob")
    job = create_job(alice, server)
    rid = job.request_id
    with pytest.raises(DownloadFailedException, match="404"):
        bob.get_request(rid)
    for action in (bob.start_analysis, bob.start_job, bob.stop_job):
        with pytest.raises(DownloadFailedException, match="404"):
            action(rid)
    with pytest.raises(DownloadFailedException, match="404"):
        bob.update_request(rid, description="mine now")
    assert rid not in [r.request_id for r in bob.iter_requests()]
    r = alice.get_request(rid)
    assert r.status is BatchRequestStatus.CREATED and r.request["description"] == "v2 acceptance"


def test_a_v1_request_reads_through_v2_and_a_v1_cancel_is_a_stop(server):
    api = server.api("alice")
    # A v1 request writes with the server's S3 keys: the bucket must be granted (issue 12).
    server.grant("alice", f"s3://{BUCKET}/v1")
    body = create_body(AOI_ONE, tile_path="s3://" + BUCKET + "/v1/<requestId>/<tileName>/<outputId>.<format>",
                       description="made with v1")
    rid = api.create(body)["id"]
    client = v2_client(server)
    r = client.get_request(rid)
    assert r.status is BatchRequestStatus.CREATED
    assert r.request["processRequest"] == body["processRequest"]
    assert r.request["input"] == {"type": "tiling-grid", "id": 1, "resolution": 20, "bufferX": 0, "bufferY": 0}
    assert r.request["output"]["delivery"]["s3"]["url"].startswith(f"s3://{BUCKET}/v1/")
    assert r.request["description"] == "made with v1"
    api.action(rid, "cancel")
    r = client.get_request(rid)  # 3.12.0 raises on CANCELED or CANCEL: it must read STOPPED / STOP
    assert r.status is BatchRequestStatus.STOPPED and r.user_action is BatchUserAction.STOP
    raw = api.get(f"/api/v2/batch/process/{rid}").json()
    assert raw["status"] == "STOPPED" and "CANCEL" not in json.dumps(raw)
    assert rid in [t.request_id for t in client.iter_requests()]


def test_zarr_output_is_read_back_by_zarr_and_xarray(server, s3, tmp_path):
    """A 2 x 2-tile Zarr job: one array chunked by tile, equal pixel for pixel to the GeoTIFFs of the same job."""
    import numpy as np
    import xarray as xr
    import zarr

    client = v2_client(server)
    pr = process_request_body(AOI_FOUR)
    pr["output"]["responses"] = [{"identifier": "default", "format": {"type": "zarr/array"}}]
    job = client.create(
        pr,
        input=BatchProcessClient.tiling_grid_input(grid_id=1, resolution=20),
        output=BatchProcessClient.zarr_output(
            delivery(f"s3://{BUCKET}/zarr/<requestId>"),
            group={"zarr_format": 2, "customAttributes": {"project": "tessera"}},
            array_parameters={"dtype": "<f4", "order": "C", "chunks": [1, 500, 500], "fill_value": "NaN"},
        ),
    )
    rid = job.request_id
    client.start_job(job)
    done = monitor_batch_process_job(job, client, sleep_time=60, analysis_sleep_time=5)
    assert done.status is BatchRequestStatus.DONE, (done.status, done.error)

    prefix = f"zarr/{rid}/"
    keys = object_keys(s3, prefix)
    chunks = sorted(k for k in keys if k.startswith(prefix + "default/0."))
    assert chunks == [f"{prefix}default/0.{r}.{c}" for r in (0, 1) for c in (0, 1)], keys
    local = tmp_path / "store.zarr"
    for k in keys:
        path = local / k[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        fetch(s3, k, path)

    group = zarr.open_group(str(local), mode="r", zarr_format=2)
    assert group["default"].shape == (1, 1000, 1000) and group["default"].chunks == (1, 500, 500)
    assert group.attrs["project"] == "tessera" and group.attrs["crs"] == f"EPSG:{AOI_UTM_EPSG}"
    ds = xr.open_zarr(local, consolidated=False, zarr_format=2)
    ndvi = ds["default"]
    assert ndvi.dims == ("time", "y", "x") and ndvi.dtype == np.float32
    values = ndvi.values[0]
    assert np.isfinite(values).mean() > 0.99 and np.nanmin(values) >= -1 and np.nanmax(values) <= 1
    x0, y0 = float(ds.x[0]) - 10, float(ds.y[0]) + 10  # pixel centres -> the upper-left corner
    assert float(ds.x[1]) - float(ds.x[0]) == 20 and float(ds.y[0]) - float(ds.y[1]) == 20

    # The same request as GeoTIFFs: every tile equals its chunk of the array.
    raster = create_job(client, server, bbox=AOI_FOUR, description=None,
                        url=f"s3://{BUCKET}/zarr-vs-tiff/<requestId>/<tileName>/<outputId>.<format>")
    client.start_job(raster)
    assert monitor_batch_process_job(raster, client, sleep_time=60,
                                     analysis_sleep_time=5).status is BatchRequestStatus.DONE
    tiffs = object_keys(s3, f"zarr-vs-tiff/{raster.request_id}/")
    assert len(tiffs) == 4, tiffs
    for i, key in enumerate(tiffs):
        tif = fetch(s3, key, tmp_path / f"t{i}.tif")
        gt = gdalinfo(tif)["geoTransform"]
        raw = tmp_path / f"t{i}.bin"
        subprocess.run(["gdal_translate", "-q", "-of", "ENVI", str(tif), str(raw)], check=True, timeout=120)
        pixels = np.fromfile(raw, dtype="<f4").reshape(500, 500)
        col, row = round((gt[0] - x0) / 20), round((y0 - gt[3]) / 20)
        assert col in (0, 500) and row in (0, 500), (gt, x0, y0)
        chunk = values[row:row + 500, col:col + 500]
        assert np.array_equal(chunk, pixels, equal_nan=True), f"{key}: chunk differs from the GeoTIFF"
