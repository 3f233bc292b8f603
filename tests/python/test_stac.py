"""Acceptance (issue 5, STAC): `sentinel-2-l2a` from a static STAC catalog served over HTTP on 127.0.0.1.

The catalog (catalog.json -> child collection -> one JSON file per item, Earth Search asset keys such as `red`,
`nir08`, `scl`, relative hrefs) points at copies of the fixture COGs in fixtures/sample. The HTTP server honours
Range requests (as object stores do) and answers the first requests with 503, so the daemon's retry path is part of
the run. A batch request on `sentinel-2-l2a` through this catalog must give exactly the pixels of the same request
on the bundled `tessera-sample` collection.

Needs gdal-bin (gdalinfo), like the output tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import REPO_ROOT, create_body, start_server, wait_for_request_status

SAMPLE_DIR = REPO_ROOT / "fixtures" / "sample"

# Inside sample scenes A (zone 33N, x 500000-503000, y 5094000-5097000).
AOI_SAMPLE = (15.004, 46.002, 15.034, 46.022)

EVALSCRIPT = """//VERSION=3
function setup() {
  return {input: ["B04", "B8A", "SCL", "dataMask"], output: {bands: 4, sampleType: "FLOAT32"}};
}
function evaluatePixel(s) {
  return [s.B04, s.B8A, s.SCL, s.dataMask];
}
"""

# Sentinel Hub band name -> Earth Search (v1) asset key.
ES_KEYS = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
    "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09", "B11": "swir16", "B12": "swir22", "SCL": "scl",
}


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range support (http.server has none), and N leading 503s."""

    fail_next = 0
    lock = threading.Lock()
    log_lines: list[str] = []

    def log_message(self, fmt, *args):  # noqa: D401 - keep pytest output clean, but remember
        RangeHandler.log_lines.append(fmt % args)

    def _fail(self) -> bool:
        with RangeHandler.lock:
            if RangeHandler.fail_next > 0:
                RangeHandler.fail_next -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True
        return False

    def do_HEAD(self):
        if not self._fail():
            super().do_HEAD()

    def do_GET(self):
        if self._fail():
            return
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
        data = path.read_bytes()
        if not m or int(m.group(1)) >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = int(m.group(1))
        end = min(int(m.group(2)) + 1 if m.group(2) else len(data), len(data))
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        self.wfile.write(data[start:end])


def publish_catalog(root: Path) -> None:
    """Copy the sample COGs under root/cogs and write a static STAC catalog over them."""
    sample = json.loads((SAMPLE_DIR / "catalog.json").read_text())
    item_links = []
    for feat in sample["features"]:
        iid = feat["id"]
        assets = {}
        for band, asset in feat["assets"].items():
            dst = root / "cogs" / asset["href"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SAMPLE_DIR / asset["href"], dst)
            assets[ES_KEYS[band]] = {"href": f"../../../cogs/{asset['href']}", "type": "image/tiff"}
        item = dict(feat, type="Feature", stac_version="1.0.0", collection="sentinel-2-l2a", assets=assets)
        path = root / "s2" / "items" / f"{iid}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(item))
        item_links.append({"rel": "item", "href": f"./items/{iid}.json"})
    collection = {"type": "Collection", "stac_version": "1.0.0", "id": "sentinel-2-l2a", "links": item_links}
    (root / "s2" / "collection.json").write_text(json.dumps(collection))
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "tessera-test", "description": "test",
               "links": [{"rel": "child", "href": "./s2/collection.json"}]}
    (root / "catalog.json").write_text(json.dumps(catalog))


@pytest.fixture
def stac_http(tmp_path):
    root = tmp_path / "www"
    publish_catalog(root)

    def handler(*args, **kwargs):
        return RangeHandler(*args, directory=str(root), **kwargs)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


def run_to_done(api, body: dict) -> str:
    rid = api.create(body)["id"]
    api.action(rid, "start")
    wait_for_request_status(api, rid, {"DONE"}, {"FAILED", "PARTIAL", "CANCELED"})
    return rid


def pixels(path: Path) -> dict:
    """Per-band checksum and statistics (identical pixels give identical values)."""
    env = dict(os.environ, GDAL_PAM_ENABLED="NO")
    res = subprocess.run(["gdalinfo", "-json", "-checksum", "-stats", str(path)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    return {
        "size": info["size"],
        "bands": [(b.get("checksum"), b.get("minimum"), b.get("maximum"), b.get("mean")) for b in info["bands"]],
    }


def test_sentinel2_l2a_from_static_catalog_over_http_matches_the_sample(stac_http, tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_STAC_CATALOG_URL", f"{stac_http}/catalog.json")
    monkeypatch.setenv("TESSERA_DATA_RETRY_ATTEMPTS", "4")
    monkeypatch.setenv("TESSERA_DATA_RETRY_BACKOFF_MS", "20")
    monkeypatch.delenv("TESSERA_STAC_API_URL", raising=False)
    srv = start_server(tmp_path / "srv", clients=("alice",))
    try:
        api = srv.api("alice")
        out = tmp_path / "out"
        results = {}
        for collection in ("tessera-sample", "sentinel-2-l2a"):
            body = create_body(AOI_SAMPLE, resolution=20, collection=collection, evalscript=EVALSCRIPT,
                               tile_path=str(out / collection))
            body["processRequest"]["input"]["data"][0]["dataFilter"]["mosaickingOrder"] = "leastRecent"
            if collection == "sentinel-2-l2a":
                RangeHandler.fail_next = 2  # the catalog's first fetch and its first retry
            rid = run_to_done(api, body)
            tiles = {t["name"] for t in api.tiles(rid)}
            assert tiles, f"{collection}: no tiles"
            results[collection] = {name: pixels(out / collection / rid / name / "default.tif") for name in tiles}
        sample, stac = results["tessera-sample"], results["sentinel-2-l2a"]
        assert sorted(sample) == sorted(stac)
        assert sample == stac, f"pixels differ:\n{sample}\n{stac}"
        # The tile really holds data: dataMask (band 4) reaches 1, B04 is a reflectance.
        for name, p in sample.items():
            assert p["bands"][3][2] == 1.0, f"{name}: no data in the tile"
            assert 0.0 < p["bands"][0][2] < 2.0, f"{name}: B04 maximum {p['bands'][0][2]} is not a reflectance"
        served = " ".join(RangeHandler.log_lines)
        assert '" 503 ' in served, "the retry path was not exercised"
        assert '" 206 ' in served, "COGs must be read with range requests"
        assert "/cogs/" in served
    finally:
        srv.stop()


def test_sentinel2_l2a_from_a_plain_static_server_without_range(tmp_path, monkeypatch):
    """`python3 -m http.server` ignores Range: documents come with one plain GET, small COGs whole."""
    import socket
    import sys
    import time

    root = tmp_path / "www"
    publish_catalog(root)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "http.log", "w")
    httpd = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                              "--directory", str(root)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        monkeypatch.setenv("TESSERA_STAC_CATALOG_URL", f"http://127.0.0.1:{port}/catalog.json")
        monkeypatch.delenv("TESSERA_STAC_API_URL", raising=False)
        srv = start_server(tmp_path / "srv", clients=("alice",))
        try:
            api = srv.api("alice")
            out = tmp_path / "out"
            results = {}
            for collection in ("tessera-sample", "sentinel-2-l2a"):
                body = create_body(AOI_SAMPLE, resolution=20, collection=collection, evalscript=EVALSCRIPT,
                                   tile_path=str(out / collection))
                rid = run_to_done(api, body)
                tiles = {t["name"] for t in api.tiles(rid)}
                assert tiles
                results[collection] = {n: pixels(out / collection / rid / n / "default.tif") for n in tiles}
            assert results["tessera-sample"] == results["sentinel-2-l2a"]
        finally:
            srv.stop()
    finally:
        httpd.terminate()
        httpd.wait(timeout=10)
        log.close()
    served = (tmp_path / "http.log").read_text()
    assert '"GET /catalog.json HTTP/1.1" 200' in served, served[-2000:]
    assert '"HEAD /catalog.json' not in served, "documents must not need HEAD"
    assert "/cogs/" in served and '" 206 ' not in served


# ---------------------------------------------------------------------------------------------------------------------
# The same static catalog and COGs in a real S3-compatible bucket (moto on 127.0.0.1)
# ---------------------------------------------------------------------------------------------------------------------

from test_outputs import moto_endpoint  # noqa: E402,F401 - the module-scoped moto_server fixture


def test_sentinel2_l2a_from_static_catalog_in_s3_matches_the_sample(moto_endpoint, tmp_path, monkeypatch):  # noqa: F811
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with moto[server]; tests/run_all.sh installs it")
    root = tmp_path / "bucket"
    publish_catalog(root)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="stac-in")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.upload_file(str(path), "stac-in", path.relative_to(root).as_posix())
    for key, value in {"TESSERA_STAC_CATALOG_URL": "s3://stac-in/catalog.json", "TESSERA_S3_ENDPOINT": moto_endpoint,
                       "TESSERA_S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TESSERA_STAC_API_URL", raising=False)
    srv = start_server(tmp_path / "srv", clients=("alice",))
    try:
        api = srv.api("alice")
        out = tmp_path / "out"
        results = {}
        for collection in ("tessera-sample", "sentinel-2-l2a"):
            body = create_body(AOI_SAMPLE, resolution=20, collection=collection, evalscript=EVALSCRIPT,
                               tile_path=str(out / collection))
            rid = run_to_done(api, body)
            tiles = {t["name"] for t in api.tiles(rid)}
            assert tiles, f"{collection}: no tiles"
            results[collection] = {name: pixels(out / collection / rid / name / "default.tif") for name in tiles}
        assert results["tessera-sample"] == results["sentinel-2-l2a"]
        assert any(p["bands"][3][2] == 1.0 for p in results["sentinel-2-l2a"].values()), "no data read from S3"
    finally:
        srv.stop()
