"""Collections and evalscript features through the real daemon over loopback HTTP.

* BYOC: `tessera collection ingest` into the daemon's own database, then `"type": "byoc-<id>"`;
* `landsat-ot-l1` over the fixture scene (DN values against the source file, read by GDAL);
* a precompiled WebAssembly evalscript (`//!tessera-wasm base64:...`);
* data fusion (two `input.data` entries with ids);
* the `userdata` (application/json) output of an ORBIT script.

Every expected value is computed from the fixture files with GDAL (gdal_translate / gdallocationinfo), never with
Tessera's own code.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, gdalinfo, raster_epsg, wait_for_request_status

SAMPLE = REPO_ROOT / "fixtures" / "sample"
SCENE_A = SAMPLE / "S2SAMPLE_A_20230605"  # EPSG:32633, x 500000-503000, y 5094000-5097000, 10 m for B04/B08
SCENE_A_LATE = SAMPLE / "S2SAMPLE_A_20230625"
LANDSAT = REPO_ROOT / "fixtures" / "landsat"
LANDSAT_PRODUCT = "LC08_L1TP_195025_20130707_20170503_01_T1"

# Inside footprint A only (footprint B starts at x 501500 but ends at y 5095500).
A_BBOX_UTM = [500500.0, 5095600.0, 501400.0, 5096600.0]
A_EPSG = 32633
DAY_0605 = {"from": "2023-06-04T00:00:00Z", "to": "2023-06-06T00:00:00Z"}
DAY_0625 = {"from": "2023-06-24T00:00:00Z", "to": "2023-06-26T00:00:00Z"}
JUNE = {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T23:59:59Z"}

DN_SCRIPT = """//VERSION=3
function setup() {
  return {input: [{bands: ["B04", "B08"], units: "DN"}], output: {bands: 2, sampleType: "UINT16"}};
}
function evaluatePixel(s) { return [s.B04, s.B08]; }
"""

BANDS_F32_SCRIPT = """//VERSION=3
function setup() {
  return {input: ["B04", "B08"], output: {bands: 2, sampleType: "FLOAT32"}};
}
function evaluatePixel(s) { return [s.B04, s.B08]; }
"""


# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------


def body_for(collection_data: list[dict], evalscript: str, bbox: list[float], epsg: int, out: Path,
             responses: list[dict] | None = None, grid_id: int = 1, resolution: float = 10) -> dict:
    return {
        "processRequest": {
            "input": {
                "bounds": {"properties": {"crs": f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"}, "bbox": bbox},
                "data": collection_data,
            },
            "output": {"responses": responses or [{"identifier": "default", "format": {"type": "image/tiff"}}]},
            "evalscript": evalscript,
        },
        "tilingGrid": {"id": grid_id, "resolution": resolution},
        "output": {"defaultTilePath": str(out)},
    }


def one(collection: str, time_range: dict, **extra) -> list[dict]:
    return [dict({"type": collection, "dataFilter": {"timeRange": dict(time_range)}}, **extra)]


def run_done(api, body: dict) -> tuple[str, list[dict]]:
    rid = api.create(body)["id"]
    api.action(rid, "start")
    wait_for_request_status(api, rid, {"DONE"}, {"FAILED", "PARTIAL", "CANCELED"})
    tiles = api.tiles(rid)
    assert tiles, f"request {rid} is DONE without tiles"
    return rid, tiles


def run_failed_analysis(api, body: dict) -> str:
    """Create + analyse; the request must end FAILED; returns its error text."""
    rid = api.create(body)["id"]
    api.action(rid, "analyse")
    last = wait_for_request_status(api, rid, {"FAILED"}, {"DONE", "PARTIAL", "ANALYSIS_DONE", "CANCELED"}, timeout=120)
    err = last.get("error")
    assert isinstance(err, str) and err.strip(), f"FAILED request {rid} carries no error text: {last}"
    return err


def read_raster(path: Path, tmp: Path) -> tuple[np.ndarray, list[float]]:
    """All bands as float64 (bands, rows, cols) and the geotransform, through GDAL (raw ENVI dump)."""
    assert path.is_file(), f"missing raster {path}"
    info = gdalinfo(path)
    w, h = info["size"]
    nb = len(info["bands"])
    tmp.mkdir(parents=True, exist_ok=True)
    raw = tmp / (path.parent.name + "_" + path.stem + f"_{abs(hash(str(path)))}.bin")
    cmd = ["gdal_translate", "-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ", "-ot", "Float64", str(path), str(raw)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, GDAL_PAM_ENABLED="NO"))
    assert res.returncode == 0, f"{' '.join(cmd)}: {res.stderr[-1000:]}"
    arr = np.fromfile(raw, dtype="<f8").reshape(nb, h, w)
    return arr, info["geoTransform"]


def location_value(path: Path, x: float, y: float, band: int = 1) -> float:
    """gdallocationinfo -valonly -geoloc: the value of the pixel containing (x, y) in the raster's CRS."""
    cmd = ["gdallocationinfo", "-valonly", "-b", str(band), "-geoloc", str(path), repr(x), repr(y)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=dict(os.environ, GDAL_PAM_ENABLED="NO"))
    assert res.returncode == 0 and res.stdout.strip(), f"{' '.join(cmd)}: rc {res.returncode} {res.stderr[-500:]}"
    return float(res.stdout.strip().splitlines()[0])


def overlap(out_gt: list[float], out_shape: tuple[int, int], src_gt: list[float], src_shape: tuple[int, int]):
    """For two north-up grids of the same resolution, aligned to whole pixels: (out slices, src slices) of the
    overlap, or None."""
    res = out_gt[1]
    assert src_gt[1] == res and src_gt[5] == out_gt[5] == -res, f"grids differ: {out_gt} vs {src_gt}"
    dx = (src_gt[0] - out_gt[0]) / res
    dy = (out_gt[3] - src_gt[3]) / res
    assert abs(dx - round(dx)) < 1e-6 and abs(dy - round(dy)) < 1e-6, f"grids not pixel-aligned: {out_gt} {src_gt}"
    dx, dy = round(dx), round(dy)
    r0, r1 = max(0, dy), min(out_shape[0], dy + src_shape[0])
    c0, c1 = max(0, dx), min(out_shape[1], dx + src_shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    return (slice(r0, r1), slice(c0, c1)), (slice(r0 - dy, r1 - dy), slice(c0 - dx, c1 - dx))


def tile_file(out: Path, rid: str, tile: dict, name: str = "default.tif") -> Path:
    return out / rid / tile["name"] / name


def ingest(server, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(server.bin), "collection", "ingest", "--db", str(server.db), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=server.workdir)
    if check:
        assert res.returncode == 0, f"{' '.join(cmd)} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


# ---------------------------------------------------------------------------------------------------------------------
# 1. BYOC
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def byoc_collection(server, tmp_path_factory) -> str:
    """Copies of scene A (2023-06-05) B04/B08 ingested as collection e2e_a, into the daemon's database while it runs."""
    root = tmp_path_factory.mktemp("byoc")
    tile = root / SCENE_A.name
    tile.mkdir()
    for band in ("B04", "B08"):
        shutil.copy(SCENE_A / f"{band}.tif", tile / f"{band}.tif")
    res = ingest(server, "--id", "e2e_a", "--template", f"{root}/*/(BAND).tif")
    assert "1 tile(s) indexed" in res.stdout, res.stdout
    assert "EPSG:32633" in res.stdout and "B04,B08" in res.stdout, res.stdout
    assert "2023-06-05" in res.stdout, f"the sensing date comes from the folder name: {res.stdout}"
    listed = subprocess.run([str(server.bin), "collection", "list", "--db", str(server.db)],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "byoc-e2e_a" in listed.stdout, listed.stdout + listed.stderr
    return "byoc-e2e_a"


def test_byoc_request_matches_sample_and_source(server, byoc_collection, tmp_path):
    api = server.api("alice")
    out = tmp_path / "out"
    rid_b, tiles_b = run_done(api, body_for(one(byoc_collection, JUNE), DN_SCRIPT, A_BBOX_UTM, A_EPSG, out))
    rid_s, tiles_s = run_done(api, body_for(one("tessera-sample", DAY_0605), DN_SCRIPT, A_BBOX_UTM, A_EPSG, out))
    assert sorted(t["name"] for t in tiles_b) == sorted(t["name"] for t in tiles_s)

    src = np.stack([read_raster(SCENE_A / f"{b}.tif", tmp_path / "raw")[0][0] for b in ("B04", "B08")])
    src_gt = read_raster(SCENE_A / "B04.tif", tmp_path / "raw")[1]
    checked = 0
    for tile in tiles_b:
        pb = tile_file(out, rid_b, tile)
        ps = tile_file(out, rid_s, tile)
        byoc, gt_b = read_raster(pb, tmp_path / "raw")
        sample, gt_s = read_raster(ps, tmp_path / "raw")
        assert gt_b == gt_s and byoc.shape == sample.shape == (2,) + byoc.shape[1:]
        assert gdalinfo(pb)["bands"][0]["type"] == "UInt16"
        assert raster_epsg(gdalinfo(pb)) == A_EPSG
        diff = np.argwhere(byoc != sample)
        assert diff.size == 0, (
            f"tile {tile['name']}: byoc and tessera-sample differ at {len(diff)} pixels, first (band,row,col) "
            f"{diff[:5].tolist()}: byoc {[byoc[tuple(d)] for d in diff[:5]]} sample {[sample[tuple(d)] for d in diff[:5]]}"
        )
        # Independent of Tessera: the footprint of scene A holds the source DNs, the rest is 0 (no data).
        ov = overlap(gt_b, byoc.shape[1:], src_gt, src.shape[1:])
        assert ov is not None, f"tile {tile['name']} does not overlap scene A"
        (o_rows, o_cols), (s_rows, s_cols) = ov
        got, want = byoc[:, o_rows, o_cols], src[:, s_rows, s_cols]
        assert np.array_equal(got, want), (
            f"tile {tile['name']}: BYOC output != source DN in the footprint; {int((got != want).sum())} pixels "
            f"differ, e.g. got {got[got != want][:5]} want {want[got != want][:5]}"
        )
        rest = byoc.copy()
        rest[:, o_rows, o_cols] = 0
        assert not rest.any(), f"tile {tile['name']}: non-zero values outside scene A's footprint"
        checked += got[0].size
    assert checked >= 300 * 300, f"expected all of scene A's 300x300 pixels in the outputs, compared {checked}"


def test_byoc_file_url_template(server, tmp_path):
    """A `file://` template (scanned, no file list) is read back by the daemon like a plain path."""
    api = server.api("alice")
    root = tmp_path / "furl"
    (root / SCENE_A.name).mkdir(parents=True)
    shutil.copy(SCENE_A / "B04.tif", root / SCENE_A.name / "B04.tif")
    res = ingest(server, "--id", "e2e_file_url", "--template", f"file://{root}/*/(BAND).tif")
    assert "1 tile(s) indexed" in res.stdout, res.stdout
    script = """//VERSION=3
function setup() { return {input: [{bands: ["B04"], units: "DN"}], output: {bands: 1, sampleType: "UINT16"}}; }
function evaluatePixel(s) { return [s.B04]; }
"""
    out = tmp_path / "out"
    rid, tiles = run_done(api, body_for(one("byoc-e2e_file_url", JUNE), script, A_BBOX_UTM, A_EPSG, out))
    x, y = 501005.0, 5095995.0
    want = location_value(SCENE_A / "B04.tif", x, y)
    assert want > 0
    assert location_value(tile_file(out, rid, tiles[0]), x, y) == want


def test_byoc_cloud_cover_and_sensing_time_filters(server, tmp_path):
    """--cloud-cover and --sensing-time are what the request's maxCloudCoverage and timeRange filter on."""
    api = server.api("alice")
    root = tmp_path / "cc"
    (root / "scene").mkdir(parents=True)  # no date in the path: --sensing-time is required
    shutil.copy(SCENE_A / "B04.tif", root / "scene" / "B04.tif")
    res = ingest(server, "--id", "e2e_cc", "--template", f"{root}/*/(BAND).tif", check=False)
    assert res.returncode != 0 and "--sensing-time" in res.stderr, res.stdout + res.stderr
    ingest(server, "--id", "e2e_cc", "--template", f"{root}/*/(BAND).tif",
           "--sensing-time", "2023-06-12T09:30:00Z", "--cloud-cover", "40")
    script = """//VERSION=3
function setup() { return {input: [{bands: ["B04"], units: "DN"}], output: {bands: 1, sampleType: "UINT16"}}; }
function evaluatePixel(s) { return [s.B04]; }
"""
    x, y = 501005.0, 5095995.0
    want = location_value(SCENE_A / "B04.tif", x, y)
    assert want > 0
    out = tmp_path / "out"
    cases = [
        ({"timeRange": {"from": "2023-06-12T00:00:00Z", "to": "2023-06-12T23:59:59Z"}, "maxCloudCoverage": 50}, want),
        ({"timeRange": {"from": "2023-06-12T00:00:00Z", "to": "2023-06-12T23:59:59Z"}, "maxCloudCoverage": 30}, 0),
        ({"timeRange": {"from": "2023-06-13T00:00:00Z", "to": "2023-06-30T23:59:59Z"}}, 0),
        ({"timeRange": {"from": "2023-06-01T00:00:00Z", "to": "2023-06-11T23:59:59Z"}}, 0),
    ]
    for data_filter, expected in cases:
        data = [{"type": "byoc-e2e_cc", "dataFilter": data_filter}]
        rid, tiles = run_done(api, body_for(data, script, A_BBOX_UTM, A_EPSG, out))
        got = location_value(tile_file(out, rid, tiles[0]), x, y)
        assert got == expected, f"dataFilter {data_filter}: {got} != {expected}"


def test_byoc_unknown_collection_fails_analysis(server, byoc_collection, tmp_path):
    api = server.api("alice")
    err = run_failed_analysis(api, body_for(one("byoc-never_ingested", JUNE), DN_SCRIPT, A_BBOX_UTM, A_EPSG,
                                            tmp_path / "never"))
    assert "never_ingested" in err and "no byoc collection" in err.lower(), err
    assert not (tmp_path / "never").exists()


def test_byoc_unknown_band_fails_analysis(server, byoc_collection, tmp_path):
    api = server.api("alice")
    script = DN_SCRIPT.replace('"B08"]', '"B05"]').replace("s.B08", "s.B05")
    assert "B05" in script
    err = run_failed_analysis(api, body_for(one(byoc_collection, JUNE), script, A_BBOX_UTM, A_EPSG,
                                            tmp_path / "never"))
    assert "'B05'" in err and byoc_collection in err and "B04, B08" in err, err


def test_byoc_ingest_rejects_a_second_template(server, byoc_collection, tmp_path):
    res = ingest(server, "--id", "e2e_a", "--template", f"{tmp_path}/*/(BAND).TIF", check=False)
    assert res.returncode != 0
    assert "already exists with template" in res.stderr, res.stderr


def test_byoc_mosaic_of_several_tiles_matches_sample(server, tmp_path):
    """All June scenes of footprints A and B (overlapping), ingested in two calls with a relative template from another
    folder: SIMPLE mosaics (mostRecent and leastRecent) and ORBIT scene lists equal tessera-sample's."""
    api = server.api("alice")
    work = tmp_path / "cwd"
    scenes = sorted(p for p in SAMPLE.iterdir() if p.name.startswith(("S2SAMPLE_A_", "S2SAMPLE_B_")))
    assert len(scenes) == 6
    for scene in scenes:
        (work / "col" / scene.name).mkdir(parents=True)
        for band in ("B04", "B08"):
            shutil.copy(scene / f"{band}.tif", work / "col" / scene.name / f"{band}.tif")
    for prefix in ("S2SAMPLE_A_", "S2SAMPLE_B_"):  # the second call adds tiles to the existing collection
        cmd = [str(server.bin), "collection", "ingest", "--db", str(server.db), "--id", "e2e_ab",
               "--template", "./col/*/(BAND).tif", f"./col/{prefix}*/*.tif"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=work)
        assert res.returncode == 0 and "3 tile(s) indexed" in res.stdout, f"{cmd}: {res.stdout}\n{res.stderr}"
    # Nothing is read relative to the daemon's folder: move the CLI's folder away from where the daemon runs.
    assert Path(server.workdir).resolve() != work.resolve()
    bbox = [500500.0, 5093000.0, 504000.0, 5096500.0]  # across A, B and their overlap
    out = tmp_path / "out"
    for order in ("mostRecent", "leastRecent"):
        data_b = one("byoc-e2e_ab", JUNE)
        data_b[0]["dataFilter"]["mosaickingOrder"] = order
        data_s = one("tessera-sample", JUNE)
        data_s[0]["dataFilter"]["mosaickingOrder"] = order
        rid_b, tiles_b = run_done(api, body_for(data_b, DN_SCRIPT, bbox, A_EPSG, out))
        rid_s, tiles_s = run_done(api, body_for(data_s, DN_SCRIPT, bbox, A_EPSG, out))
        assert sorted(t["name"] for t in tiles_b) == sorted(t["name"] for t in tiles_s)
        for tile in tiles_b:
            byoc, _ = read_raster(tile_file(out, rid_b, tile), tmp_path / "raw")
            sample, _ = read_raster(tile_file(out, rid_s, tile), tmp_path / "raw")
            assert np.array_equal(byoc, sample), f"{order}: byoc mosaic != sample mosaic in {int((byoc != sample).sum())} px"
        # Independent check of the order at one point in the A/B overlap.
        x, y = 502005.0, 5094505.0
        want_scene = {"mostRecent": "S2SAMPLE_B_20230627", "leastRecent": "S2SAMPLE_A_20230605"}[order]
        tile = tiles_b[0]
        assert location_value(tile_file(out, rid_b, tile), x, y) == location_value(SAMPLE / want_scene / "B04.tif", x, y)

    # ORBIT: one scene per BYOC tile, dated from the folder name (midnight UTC), most recent first.
    script = (REPO_ROOT / "evalscripts" / "orbit_userdata.js").read_text()
    responses = [{"identifier": "default", "format": {"type": "image/tiff"}},
                 {"identifier": "userdata", "format": {"type": "application/json"}}]
    rid, tiles = run_done(api, body_for(one("byoc-e2e_ab", JUNE), script, bbox, A_EPSG, out, responses))
    user = json.loads((out / rid / tiles[0]["name"] / "userdata.json").read_text())
    want = sorted((f"{s.name[-8:-4]}-{s.name[-4:-2]}-{s.name[-2:]}T00:00:00.000Z" for s in scenes), reverse=True)
    assert user == {"dates": want, "orbits": 6}, user


# ---------------------------------------------------------------------------------------------------------------------
# 2. landsat-ot-l1
# ---------------------------------------------------------------------------------------------------------------------


def test_landsat_dn_equals_source_file(server, tmp_path):
    api = server.api("alice")
    b4 = LANDSAT / f"{LANDSAT_PRODUCT}_B4.TIF"
    b5 = LANDSAT / f"{LANDSAT_PRODUCT}_B5.TIF"
    info = gdalinfo(b4)
    assert raster_epsg(info) == 32632
    x0, res, _, y0, _, nres = info["geoTransform"]
    w, h = info["size"]
    assert res == 30 and nres == -30
    bbox = [x0 + 90, y0 - h * 30 + 90, x0 + w * 30 - 90, y0 - 90]
    script = """//VERSION=3
function setup() {
  return {input: [{bands: ["B04", "B05"], units: "DN"}], output: {bands: 2, sampleType: "FLOAT32"}};
}
function evaluatePixel(s) { return [s.B04, s.B05]; }
"""
    out = tmp_path / "out"
    rid, tiles = run_done(api, body_for(one("landsat-ot-l1", {"from": "2013-07-01T00:00:00Z",
                                                               "to": "2013-07-31T23:59:59Z"}),
                                        script, bbox, 32632, out))
    # Points 20 m into a source pixel (the centre of a 10 m output pixel, 5 m away from its edges): nearest
    # resampling must give that source pixel's DN.
    points = [(x0 + 30 * i + 20, y0 - 30 * j - 20) for i in range(4, w - 4, 6) for j in range(4, h - 4, 6)]
    seen = 0
    values = set()
    for tile in tiles:
        path = tile_file(out, rid, tile)
        ti = gdalinfo(path)
        assert raster_epsg(ti) == 32632 and ti["bands"][0]["type"] == "Float32"
        tx0, tres, _, ty0, _, _ = ti["geoTransform"]
        tw, th = ti["size"]
        for x, y in points:
            if not (tx0 < x < tx0 + tw * tres and ty0 - th * tres < y < ty0):
                continue
            for band, src in ((1, b4), (2, b5)):
                want = location_value(src, x, y)
                got = location_value(path, x, y, band)
                assert got == want, f"tile {tile['name']} band {band} at ({x}, {y}): output {got} != source DN {want}"
                values.add(want)
            seen += 1
    assert seen == len(points), f"only {seen} of {len(points)} check points fell inside the output tiles"
    assert len(values) > 5 and min(values) > 0, f"the check points should see varied real DNs: {sorted(values)}"


def mtl_values() -> dict[str, float]:
    text = (LANDSAT / f"{LANDSAT_PRODUCT}_MTL.txt").read_text()
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = (t.strip().strip('"') for t in line.split("=", 1))
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def test_landsat_reflectance_and_kelvin_follow_the_mtl(server, tmp_path):
    """Default units: B04 TOA reflectance with the sun-angle correction, B10 brightness temperature (USGS handbook
    formulas, computed here from the MTL and the source DN)."""
    api = server.api("alice")
    b4 = LANDSAT / f"{LANDSAT_PRODUCT}_B4.TIF"
    b10 = LANDSAT / f"{LANDSAT_PRODUCT}_B10.TIF"
    x0, _, _, y0, _, _ = gdalinfo(b4)["geoTransform"]
    bbox = [x0 + 90, y0 - 41 * 30 + 90, x0 + 41 * 30 - 90, y0 - 90]
    script = """//VERSION=3
function setup() { return {input: ["B04", "B10"], output: {bands: 2, sampleType: "FLOAT32"}}; }
function evaluatePixel(s) { return [s.B04, s.B10]; }
"""
    out = tmp_path / "out"
    rid, tiles = run_done(api, body_for(one("landsat-ot-l1", {"from": "2013-07-07T00:00:00Z",
                                                               "to": "2013-07-08T00:00:00Z"}),
                                        script, bbox, 32632, out))
    m = mtl_values()
    sin_e = np.sin(np.radians(m["SUN_ELEVATION"]))
    checked = 0
    for i, j in [(8, 8), (20, 20), (30, 12), (12, 31)]:
        x, y = x0 + 30 * i + 20, y0 - 30 * j - 20
        for tile in tiles:
            path = tile_file(out, rid, tile)
            ti = gdalinfo(path)
            gt, (tw, th) = ti["geoTransform"], ti["size"]
            if not (gt[0] < x < gt[0] + tw * gt[1] and gt[3] - th * gt[1] < y < gt[3]):
                continue
            dn4, dn10 = location_value(b4, x, y), location_value(b10, x, y)
            refl = (m["REFLECTANCE_MULT_BAND_4"] * dn4 + m["REFLECTANCE_ADD_BAND_4"]) / sin_e
            rad = m["RADIANCE_MULT_BAND_10"] * dn10 + m["RADIANCE_ADD_BAND_10"]
            kelvin = m["K2_CONSTANT_BAND_10"] / np.log(m["K1_CONSTANT_BAND_10"] / rad + 1)
            got4, got10 = location_value(path, x, y, 1), location_value(path, x, y, 2)
            assert got4 == pytest.approx(refl, rel=1e-5), f"B04 at ({x}, {y}), DN {dn4}: {got4} != {refl}"
            assert got10 == pytest.approx(kelvin, rel=1e-5), f"B10 at ({x}, {y}), DN {dn10}: {got10} != {kelvin}"
            assert 250 < kelvin < 330 and 0 < refl < 1
            checked += 1
    assert checked == 4


def test_landsat_files_as_byoc_match_landsat_collection(server, tmp_path):
    """The Landsat fixture (int16, EPSG:32632, USGS names) ingested as BYOC with a `*_(BAND).TIF` template: DN
    values equal those of landsat-ot-l1, and the sensing date is the acquisition date of the product name."""
    api = server.api("alice")
    res = ingest(server, "--id", "e2e_landsat", "--template", f"{LANDSAT}/*_(BAND).TIF",
                 str(LANDSAT / f"{LANDSAT_PRODUCT}_B4.TIF"), str(LANDSAT / f"{LANDSAT_PRODUCT}_B5.TIF"))
    assert "2013-07-07" in res.stdout and "B4,B5" in res.stdout and "EPSG:32632" in res.stdout, res.stdout
    x0, _, _, y0, _, _ = gdalinfo(LANDSAT / f"{LANDSAT_PRODUCT}_B4.TIF")["geoTransform"]
    bbox = [x0 + 90, y0 - 41 * 30 + 90, x0 + 41 * 30 - 90, y0 - 90]
    july = {"from": "2013-07-01T00:00:00Z", "to": "2013-07-31T23:59:59Z"}
    byoc_script = """//VERSION=3
function setup() { return {input: ["B4", "B5"], output: {bands: 2, sampleType: "INT16"}}; }
function evaluatePixel(s) { return [s.B4, s.B5]; }
"""
    ls_script = """//VERSION=3
function setup() { return {input: [{bands: ["B04", "B05"], units: "DN"}], output: {bands: 2, sampleType: "INT16"}}; }
function evaluatePixel(s) { return [s.B04, s.B05]; }
"""
    out = tmp_path / "out"
    rid_b, tiles_b = run_done(api, body_for(one("byoc-e2e_landsat", july), byoc_script, bbox, 32632, out))
    rid_l, tiles_l = run_done(api, body_for(one("landsat-ot-l1", july), ls_script, bbox, 32632, out))
    assert sorted(t["name"] for t in tiles_b) == sorted(t["name"] for t in tiles_l)
    for tile in tiles_b:
        a, _ = read_raster(tile_file(out, rid_b, tile), tmp_path / "raw")
        b, _ = read_raster(tile_file(out, rid_l, tile), tmp_path / "raw")
        assert a.any() and np.array_equal(a, b), f"byoc vs landsat-ot-l1 differ at {int((a != b).sum())} px"


# ---------------------------------------------------------------------------------------------------------------------
# 3. Precompiled WebAssembly evalscript
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ndvi_wasm(tmp_path_factory) -> bytes:
    if not (shutil.which("clang") and shutil.which("wasm-ld")):
        pytest.fail("clang and wasm-ld are needed (apt-get install -y clang lld; tests/run_all.sh does it)",
                    pytrace=False)
    out = tmp_path_factory.mktemp("wasm")
    script = REPO_ROOT / "evalscripts" / "wasm" / "build.sh"
    res = subprocess.run(["bash", str(script), str(out), str(REPO_ROOT / "evalscripts" / "wasm" / "ndvi.c")],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"build.sh failed: {res.stdout}\n{res.stderr}"
    module = (out / "ndvi.wasm").read_bytes()
    assert module[:4] == b"\0asm"
    return module


def test_precompiled_wasm_ndvi(server, ndvi_wasm, tmp_path):
    api = server.api("alice")
    out = tmp_path / "out"
    wasm_script = "//!tessera-wasm base64:" + base64.b64encode(ndvi_wasm).decode()
    data = one("tessera-sample", DAY_0605)
    rid_w, tiles_w = run_done(api, body_for(data, wasm_script, A_BBOX_UTM, A_EPSG, out))
    rid_j, tiles_j = run_done(api, body_for(data, BANDS_F32_SCRIPT, A_BBOX_UTM, A_EPSG, out))
    assert sorted(t["name"] for t in tiles_w) == sorted(t["name"] for t in tiles_j)
    src_b04, src_gt = read_raster(SCENE_A / "B04.tif", tmp_path / "raw")
    src_b08, _ = read_raster(SCENE_A / "B08.tif", tmp_path / "raw")
    for tile in tiles_w:
        pw = tile_file(out, rid_w, tile)
        ndvi, gt = read_raster(pw, tmp_path / "raw")
        bands, gt_j = read_raster(tile_file(out, rid_j, tile), tmp_path / "raw")
        assert gt == gt_j and ndvi.shape == (1,) + bands.shape[1:]
        assert gdalinfo(pw)["bands"][0]["type"] == "Float32"
        b04, b08 = bands[0].astype(np.float32).astype(np.float64), bands[1].astype(np.float32).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            want = ((b08 - b04) / (b08 + b04)).astype(np.float32).astype(np.float64)
        got = ndvi[0]
        assert np.array_equal(np.isnan(got), np.isnan(want)), (
            f"tile {tile['name']}: NaN where (B08-B04)/(B08+B04) is not (or the reverse): "
            f"{int((np.isnan(got) != np.isnan(want)).sum())} pixels"
        )
        ok = np.isnan(want) | (np.abs(got - want) <= 1e-6)
        assert ok.all(), f"tile {tile['name']}: wasm NDVI differs at {int((~ok).sum())} pixels, e.g. " \
                         f"got {got[~ok][:5]} want {want[~ok][:5]}"
        # And against the source DNs directly (REFLECTANCE = DN / 10000 cancels out in the ratio).
        ov = overlap(gt, got.shape, src_gt, src_b04.shape[1:])
        assert ov is not None
        (o_r, o_c), (s_r, s_c) = ov
        r, n = src_b04[0][s_r, s_c], src_b08[0][s_r, s_c]
        expect = (n - r) / (n + r)
        assert np.all(np.abs(got[o_r, o_c] - expect) < 1e-5), "wasm NDVI does not match the source DNs"
        assert np.nanstd(got[o_r, o_c]) > 0.01, "NDVI over scene A should vary"


def test_precompiled_wasm_wrapped_base64_gives_the_same_output(server, ndvi_wasm, tmp_path):
    """The base64 may be wrapped (line breaks, as `base64` prints it) and unpadded."""
    api = server.api("alice")
    b64 = base64.b64encode(ndvi_wasm).decode().rstrip("=")
    wrapped = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    out = tmp_path / "out"
    data = one("tessera-sample", DAY_0605)
    rid_a, tiles = run_done(api, body_for(data, "  //!tessera-wasm base64:\n" + wrapped + "\n", A_BBOX_UTM, A_EPSG, out))
    rid_b, _ = run_done(api, body_for(data, "//!tessera-wasm base64:" + base64.b64encode(ndvi_wasm).decode(),
                                      A_BBOX_UTM, A_EPSG, out))
    for tile in tiles:
        a, _ = read_raster(tile_file(out, rid_a, tile), tmp_path / "raw")
        b, _ = read_raster(tile_file(out, rid_b, tile), tmp_path / "raw")
        assert np.array_equal(a, b, equal_nan=True) and np.nanmax(a) > 0


def test_precompiled_wasm_garbage_fails_analysis(server, tmp_path):
    api = server.api("alice")
    script = "//!tessera-wasm base64:" + base64.b64encode(b"\0asm\x01\0\0\0garbage").decode()
    body = body_for(one("tessera-sample", DAY_0605), script, A_BBOX_UTM, A_EPSG, tmp_path / "never")
    resp = api.post("/api/v1/batch/process", json=body)
    if resp.status_code == 201:
        api.action(resp.json()["id"], "analyse")
        last = wait_for_request_status(api, resp.json()["id"], {"FAILED"}, {"DONE", "ANALYSIS_DONE"}, timeout=120)
        text = last.get("error") or ""
    else:
        assert resp.status_code == 400, resp.text
        text = resp.text
    assert "webassembly" in text.lower(), text


# ---------------------------------------------------------------------------------------------------------------------
# 4. Data fusion
# ---------------------------------------------------------------------------------------------------------------------


def test_data_fusion_two_time_ranges(server, tmp_path):
    api = server.api("alice")
    out = tmp_path / "out"
    script = """//VERSION=3
function setup() {
  return {input: [{datasource: "late", bands: ["B04"], units: "DN"}, {datasource: "early", bands: ["B08"], units: "DN"}],
          output: {bands: 1, sampleType: "FLOAT32"}};
}
function evaluatePixel(s) {
  return [s.late.length === 1 && s.early.length === 1 ? 3 * s.late[0].B04 - s.early[0].B08 : -99999];
}
"""
    data = [
        {"id": "early", "type": "tessera-sample", "dataFilter": {"timeRange": DAY_0605}},
        {"id": "late", "type": "tessera-sample", "dataFilter": {"timeRange": DAY_0625}},
    ]
    rid, tiles = run_done(api, body_for(data, script, A_BBOX_UTM, A_EPSG, out))
    late_b04, src_gt = read_raster(SCENE_A_LATE / "B04.tif", tmp_path / "raw")
    early_b08, gt_e = read_raster(SCENE_A / "B08.tif", tmp_path / "raw")
    assert gt_e == src_gt
    expect = 3 * late_b04[0] - early_b08[0]
    for tile in tiles:
        got, gt = read_raster(tile_file(out, rid, tile), tmp_path / "raw")
        assert not (got == -99999).any(), "each datasource must give one sample per pixel (SIMPLE)"
        ov = overlap(gt, got.shape[1:], src_gt, expect.shape)
        assert ov is not None
        (o_r, o_c), (s_r, s_c) = ov
        g, w = got[0][o_r, o_c], expect[s_r, s_c]
        assert np.array_equal(g, w), (
            f"tile {tile['name']}: fusion result != 3*B04(2023-06-25) - B08(2023-06-05) at {int((g != w).sum())} "
            f"pixels, e.g. got {g[g != w][:5]} want {w[g != w][:5]}"
        )
        rest = got[0].copy()
        rest[o_r, o_c] = 0
        assert not rest.any(), "outside scene A both datasources are 0 (no data)"
        # The two dates really differ (so the test would catch one time range used for both ids).
        early_b04 = read_raster(SCENE_A / "B04.tif", tmp_path / "raw")[0][0][s_r, s_c]
        assert not np.array_equal(g, 3 * early_b04 - early_b08[0][s_r, s_c]), "fixture dates must differ"


def test_data_fusion_unknown_datasource_fails_analysis(server, tmp_path):
    api = server.api("alice")
    script = """//VERSION=3
function setup() { return {input: [{datasource: "early", bands: ["B04"]}, {datasource: "nope", bands: ["B08"]}],
  output: {bands: 1}}; }
function evaluatePixel(s) { return [0]; }
"""
    data = [
        {"id": "early", "type": "tessera-sample", "dataFilter": {"timeRange": DAY_0605}},
        {"id": "late", "type": "tessera-sample", "dataFilter": {"timeRange": DAY_0625}},
    ]
    err = run_failed_analysis(api, body_for(data, script, A_BBOX_UTM, A_EPSG, tmp_path / "never"))
    assert "nope" in err, err


# ---------------------------------------------------------------------------------------------------------------------
# 5. userdata.json
# ---------------------------------------------------------------------------------------------------------------------


def test_orbit_userdata_json(server, tmp_path):
    api = server.api("alice")
    out = tmp_path / "out"
    script = (REPO_ROOT / "evalscripts" / "orbit_userdata.js").read_text()
    responses = [
        {"identifier": "default", "format": {"type": "image/tiff"}},
        {"identifier": "userdata", "format": {"type": "application/json"}},
    ]
    rid, tiles = run_done(api, body_for(one("tessera-sample", JUNE), script, A_BBOX_UTM, A_EPSG, out, responses))
    catalog = json.loads((SAMPLE / "catalog.json").read_text())
    for tile in tiles:
        folder = out / rid / tile["name"]
        assert sorted(p.name for p in folder.iterdir()) == ["default.tif", "userdata.json"], list(folder.iterdir())
        user = json.loads((folder / "userdata.json").read_text())
        assert isinstance(user, dict) and set(user) == {"dates", "orbits"}, user
        # Expected scenes: catalog items in the tile's CRS whose footprint touches the tile, in June 2023.
        ox, oy = tile["origin"]["coordinates"]
        info = gdalinfo(folder / "default.tif")
        gx, res, _, gy, _, _ = info["geoTransform"]
        w, h = info["size"]
        ext = (gx, gy - h * res, gx + w * res, gy)
        want = sorted(
            f["properties"]["datetime"] for f in catalog["features"]
            if f["properties"]["proj:epsg"] == raster_epsg(info)
            and f["properties"]["proj:bbox"][0] < ext[2] and f["properties"]["proj:bbox"][2] > ext[0]
            and f["properties"]["proj:bbox"][1] < ext[3] and f["properties"]["proj:bbox"][3] > ext[1]
        )
        assert len(want) >= 3, f"tile {tile['name']} at {ox, oy} should touch scene A's three June dates"

        def norm(s: str) -> datetime:
            return datetime.fromisoformat(s.replace("Z", "+00:00"))

        got = sorted(norm(d) for d in user["dates"])
        assert got == sorted(norm(d) for d in want), f"userData.dates {user['dates']} != catalog scenes {want}"
        assert user["orbits"] == len({d[:10] for d in want}), f"one orbit per acquisition day: {user}"
        # samples.length per pixel: inside scene A (not B) there are at least A's three dates, never more than all.
        # Most recent first (the default mosaickingOrder).
        assert [norm(d) for d in user["dates"]] == sorted(got, reverse=True), user["dates"]
        # ORBIT: every pixel sees one sample per orbit of the tile (no-data ones have dataMask 0).
        px, _ = read_raster(folder / "default.tif", tmp_path / "raw")
        assert (px == len(want)).all(), f"samples.length should be {len(want)} everywhere: {px.min()}..{px.max()}"
