"""Outputs (issue 6): COG validated by GDAL's own validator, PNG/JPEG outputs, real S3 on a loopback moto server,
bad output input, and the overwrite / skipExisting rules of batch-api.md §10.2.

Needs gdal-bin and python3-gdal (GDAL's validate_cloud_optimized_geotiff.py runs under /usr/bin/python3, where
python3-gdal installs osgeo), and moto_server on PATH for the S3 test (tests/run_all.sh installs moto[server] into
tests/.venv); the S3 test skips with a message without it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import (
    AOI_ONE,
    AOI_UTM_EPSG,
    HTTP_TIMEOUT,
    assert_error,
    create_body,
    free_port,
    gdalinfo,
    raster_epsg,
    start_server,
    wait_for,
    wait_for_request_status,
)

VALIDATOR_PATHS = [
    "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py",
    "/usr/share/doc/python3-gdal/examples/validate_cloud_optimized_geotiff.py",
]

# Three outputs of one script: an RGB preview (UINT8), a UINT16 gray band, and the same gray band as GeoTIFF so the
# PNG can be compared value for value with GDAL's checksum.
MULTI_EVALSCRIPT = """//VERSION=3
function setup() {
  return {input: ["B04", "B08"], output: [
    {id: "rgb", bands: 3, sampleType: "UINT8"},
    {id: "gray", bands: 1, sampleType: "UINT16"},
    {id: "graytif", bands: 1, sampleType: "UINT16"}]};
}
function evaluatePixel(s) {
  var g = Math.round(s.B08 * 10000);
  return {rgb: [s.B04 * 255, s.B08 * 255, 128], gray: [g], graytif: [g]};
}
"""

# 10 km grid-1 tiles at 20 m: 500 x 500 pixels.
TILE_PX = 500


def validator() -> str:
    for path in VALIDATOR_PATHS:
        if Path(path).is_file():
            return path
    pytest.fail("GDAL's validate_cloud_optimized_geotiff.py not found: apt-get install python3-gdal", pytrace=False)


def run_job(api, body: dict, targets=frozenset({"DONE"}), fail_on=frozenset({"FAILED", "PARTIAL", "CANCELED"})):
    created = api.create(body)
    rid = created["id"]
    api.action(rid, "start")
    return rid, wait_for_request_status(api, rid, set(targets), set(fail_on))


def only_tile(api, rid: str) -> dict:
    tiles = api.tiles(rid)
    assert len(tiles) == 1, f"AOI_ONE must give one tile, got {len(tiles)}"
    return tiles[0]


def tile_errors(srv, api, rid: str) -> str:
    """The failure texts of a request's tiles: from the tile JSON if it carries them, else from the store."""
    texts = [str(t.get("errorMessage") or t.get("error") or "") for t in api.tiles(rid)]
    with srv.db_connect_ro() as conn:
        texts += [row["error"] or "" for row in conn.execute("SELECT error FROM tiles WHERE request_id = ?", (rid,))]
    return " ".join(texts)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


# ---------------------------------------------------------------------------------------------------------------------
# COG
# ---------------------------------------------------------------------------------------------------------------------


def test_cog_output_passes_gdal_validation(server, tmp_path):
    api = server.api("alice")
    out = tmp_path / "cog"
    body = create_body(AOI_ONE, tile_path=str(out))
    body["output"].update(
        cogOutput=True,
        cogParameters={"blockxsize": 256, "blockysize": 256, "overviewMinSize": 128, "resamplingAlgorithm": "average"},
    )
    rid, _ = run_job(api, body)
    tile = only_tile(api, rid)
    path = out / rid / tile["name"] / "default.tif"
    assert path.is_file(), f"missing {path}"

    res = subprocess.run(["/usr/bin/python3", validator(), str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "is a valid cloud optimized GeoTIFF" in res.stdout, res.stdout + res.stderr

    info = gdalinfo(path)
    assert info["size"] == [TILE_PX, TILE_PX]
    assert raster_epsg(info) == AOI_UTM_EPSG
    assert info["metadata"]["IMAGE_STRUCTURE"].get("LAYOUT") == "COG", info["metadata"]
    assert info["metadata"]["IMAGE_STRUCTURE"].get("PREDICTOR") == "3", "usePredictor defaults to true: 3 for FLOAT32"
    band = info["bands"][0]
    assert band["type"] == "Float32"
    assert band["block"] == [256, 256]
    # 500 -> 250 -> 125 (<= 128): two overviews.
    assert [o["size"] for o in band["overviews"]] == [[250, 250], [125, 125]]
    gt = info["geoTransform"]
    assert gt[1] == 20.0 and gt[5] == -20.0


def test_bad_cog_parameters_are_rejected(server, tmp_path):
    api = server.api("alice")
    for params, keyword in [
        ({"blockxsize": 100}, "blockxsize"),
        ({"resamplingAlgorithm": "bilinear"}, "resamplingAlgorithm"),
        ({"overviewLevels": [4, 2]}, "overviewLevels"),
    ]:
        body = create_body(AOI_ONE, tile_path=str(tmp_path / "never"))
        body["output"].update(cogOutput=True, cogParameters=params)
        resp = api.post("/api/v1/batch/process", json=body)
        assert_error(resp, 400, [keyword])
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------------------------------------------------------
# PNG and JPEG
# ---------------------------------------------------------------------------------------------------------------------


def test_png_and_jpeg_outputs(server, tmp_path):
    api = server.api("alice")
    out = tmp_path / "img"
    body = create_body(AOI_ONE, tile_path=str(out), evalscript=MULTI_EVALSCRIPT)
    body["processRequest"]["output"]["responses"] = [
        {"identifier": "rgb", "format": {"type": "image/jpeg"}},
        {"identifier": "gray", "format": {"type": "image/png"}},
        {"identifier": "graytif", "format": {"type": "image/tiff"}},
    ]
    rid, _ = run_job(api, body)
    tile = only_tile(api, rid)
    folder = out / rid / tile["name"]
    assert sorted(p.name for p in folder.iterdir()) == ["gray.png", "graytif.tif", "rgb.jpg"]

    jpg = gdalinfo(folder / "rgb.jpg")
    assert jpg["driverShortName"] == "JPEG"
    assert jpg["size"] == [TILE_PX, TILE_PX]
    assert [b["type"] for b in jpg["bands"]] == ["Byte"] * 3

    png = gdalinfo(folder / "gray.png")
    assert png["driverShortName"] == "PNG"
    assert png["size"] == [TILE_PX, TILE_PX]
    assert [b["type"] for b in png["bands"]] == ["UInt16"]

    # The 16-bit PNG holds exactly the values of the GeoTIFF of the same band.
    def checksum(path: Path) -> int:
        res = subprocess.run(["gdalinfo", "-checksum", "-json", str(path)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)["bands"][0]["checksum"]

    assert checksum(folder / "gray.png") == checksum(folder / "graytif.tif")


# ---------------------------------------------------------------------------------------------------------------------
# Bad output input
# ---------------------------------------------------------------------------------------------------------------------


def test_bad_output_input_is_rejected_and_nothing_is_written(server, tmp_path):
    api = server.api("alice")
    before = files_under(server.data_dir)
    root = tmp_path / "root"
    cases = []
    body = create_body(AOI_ONE, tile_path=str(root))
    body["processRequest"]["output"]["responses"] = [{"identifier": "default", "format": {"type": "image/webp"}}]
    cases.append((body, ["image/webp"]))
    cases.append((create_body(AOI_ONE, tile_path=str(root) + "/<tileNme>/<outputId>.<format>"), ["tileNme"]))
    cases.append((create_body(AOI_ONE, tile_path=str(root) + "/../escape"), [".."]))
    cases.append((create_body(AOI_ONE, tile_path="../escape"), [".."]))
    cases.append((create_body(AOI_ONE, tile_path="s3://bucket/a/../../x"), [".."]))
    for body, keywords in cases:
        resp = api.post("/api/v1/batch/process", json=body)
        assert_error(resp, 400, keywords)
    assert not root.exists()
    assert not (tmp_path / "escape").exists()
    assert files_under(server.data_dir) - before == set()


# ---------------------------------------------------------------------------------------------------------------------
# overwrite / skipExisting (§10.2)
# ---------------------------------------------------------------------------------------------------------------------


def test_overwrite_and_skip_existing(server, tmp_path):
    api = server.api("alice")
    # No <requestId>: every run targets the same file.
    template = str(tmp_path / "fixed") + "/<tileName>/<outputId>.<format>"

    def body(**flags):
        b = create_body(AOI_ONE, tile_path=template)
        b["output"].update(flags)
        return b

    rid, _ = run_job(api, body())
    tile = only_tile(api, rid)
    path = tmp_path / "fixed" / tile["name"] / "default.tif"
    assert path.is_file()
    first = path.stat().st_mtime_ns
    time.sleep(0.05)

    # Default: existing files make the request fail, and the file is untouched.
    rid2, last = run_job(api, body(), targets={"FAILED", "PARTIAL"}, fail_on={"DONE"})
    assert path.stat().st_mtime_ns == first
    errors = tile_errors(server, api, rid2) + str(last.get("error") or "")
    assert "already exists" in errors, errors

    # skipExisting: the tile is skipped, nothing rewritten.
    run_job(api, body(skipExisting=True))
    assert path.stat().st_mtime_ns == first

    # overwrite: rewritten.
    run_job(api, body(overwrite=True))
    assert path.stat().st_mtime_ns != first
    assert sorted(p.name for p in path.parent.iterdir()) == ["default.tif"], "no staging files left"


# ---------------------------------------------------------------------------------------------------------------------
# Real S3 (moto)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint():
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server not on PATH: pip install 'moto[server]' (tests/run_all.sh does it)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 60, "moto_server to listen")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory, moto_endpoint):
    """A tessera server whose s3:// locations go to the moto server."""
    env = {
        "TESSERA_S3_ENDPOINT": moto_endpoint,
        "TESSERA_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        srv = start_server(tmp_path_factory.mktemp("tessera-s3"), clients=("alice",))
        # Buckets are the operator's to grant (issue 12); the missing one too, so its tiles fail by name.
        srv.grant("alice", "s3://tessera-results")
        srv.grant("alice", "s3://no-such-bucket")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield srv
    finally:
        srv.stop()


def test_outputs_on_a_real_s3_server(s3_server, moto_endpoint, tmp_path):
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with moto[server]; tests/run_all.sh installs it")

    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="tessera-results")
    api = s3_server.api("alice")
    body = create_body(AOI_ONE, tile_path="s3://tessera-results/runs")
    body["output"].update(cogOutput=True)
    rid, _ = run_job(api, body)
    tile = only_tile(api, rid)

    listed = s3.list_objects_v2(Bucket="tessera-results", Prefix=f"runs/{rid}/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    assert keys == [f"runs/{rid}/{tile['name']}/default.tif"], keys
    data = s3.get_object(Bucket="tessera-results", Key=keys[0])["Body"].read()
    local = tmp_path / "from-s3.tif"
    local.write_bytes(data)
    info = gdalinfo(local)
    assert info["size"] == [TILE_PX, TILE_PX]
    assert raster_epsg(info) == AOI_UTM_EPSG
    assert not (s3_server.data_dir / "s3").exists(), "with S3 configured nothing goes to the local stand-in"

    # A bucket that does not exist: the tiles fail with a message naming it.
    rid2 = api.create(create_body(AOI_ONE, tile_path="s3://no-such-bucket/x"))["id"]
    api.action(rid2, "start")
    wait_for_request_status(api, rid2, {"FAILED", "PARTIAL"}, {"DONE"})
    messages = tile_errors(s3_server, api, rid2)
    assert "no-such-bucket" in messages, messages


def test_s3_endpoint_is_reachable_over_loopback_only(moto_endpoint):
    assert moto_endpoint.startswith("http://127.0.0.1:")
    assert requests.get(moto_endpoint, timeout=HTTP_TIMEOUT).status_code < 500
