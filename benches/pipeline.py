#!/usr/bin/env python3
"""End-to-end tile pipeline: Tessera against the GDAL + numpy script a user would write, in one run.

    cargo build --release
    /usr/bin/python3 benches/pipeline.py [--rounds 3] [--http] [--tiles 100]

(Debian's python3-gdal and python3-numpy; `/usr/bin/python3` has them.)

The dataset (built once under target/bench-pipeline/, deterministic): one full-size Sentinel-2 tile in the Earth
Search layout, B04 and B08 as 10980x10980 uint16 COGs (DEFLATE, 1024-pixel blocks, 4 overview levels), with
smooth, varied values (a sum of waves plus a seeded fine texture, so compression behaves like real imagery), behind
a static STAC catalog with Earth Search asset keys (`red`, `nir`).

The job: NDVI (evalscripts/ndvi.js, FLOAT32) over the 100 km x 100 km MGRS square inside the tile, grid 1 at 10 m,
no buffer: 100 tiles of 1000x1000 (or the first N of them with --tiles N).

- Tessera: `tessera run --workers 2` on the request (the whole process: analysis, reading, the evalscript,
  encoding, writing), peak RSS from the kernel, and the per-stage split `tessera run` prints.
- The peer: for each tile, `gdal.Warp` of both bands to an in-memory dataset at the tile's extent, NDVI in numpy
  as float32, a GeoTIFF with Tessera's layout (256-pixel tiles, DEFLATE, no predictor, no overviews), on a pool of
  2 processes created before the clock starts (in-process GDAL, not its start-up).

Rounds interleave the two; the best round of each is reported with tiles/s and the ratio. --http serves the same
files from a Range-capable HTTP server on 127.0.0.1 (logging every request), Tessera reading the catalog over HTTP and
the peer through /vsicurl/, and reports requests and bytes per tile for each.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("TESSERA_BIN", ROOT / "target" / "release" / "tessera"))
WORK = ROOT / "target" / "bench-pipeline"
SIZE = 10980
EPSG = 32633
# The S2 tile's upper-left corner: 20 m west of the MGRS square 33T?? at easting 400000 (the S2 layout), so the
# 100 km square [400000, 500000] x [5000000, 5100000] lies inside and the pixel grids align at 10 m.
X0, Y0 = 399960.0, 5100000.0
SQUARE = (400000.0, 5000000.0, 500000.0, 5100000.0)
DATE = "2023-06-15T10:00:00Z"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------------------

def band_values(seed: int) -> np.ndarray:
    """Smooth, varied uint16 reflectances (DN = 10000 x reflectance): waves + a seeded fine texture."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)[None, :]
    out = np.full((SIZE, SIZE), 1500.0, dtype=np.float32)
    for _ in range(6):
        fx, fy = rng.uniform(2, 40, 2)
        px, py = rng.uniform(0, 2 * np.pi, 2)
        amp = rng.uniform(150, 600)
        out += amp * np.sin(2 * np.pi * fx * x + px) * np.cos(2 * np.pi * fy * y + py)
    # Field-like texture: coarse random blocks, upsampled, plus a little per-pixel noise.
    blocks = rng.uniform(-400, 400, (SIZE // 60 + 1, SIZE // 60 + 1)).astype(np.float32)
    out += np.kron(blocks, np.ones((60, 60), dtype=np.float32))[:SIZE, :SIZE]
    out += rng.normal(0, 25, (SIZE, SIZE)).astype(np.float32)
    return np.clip(out, 1, 10000).astype(np.uint16)


def build_dataset() -> Path:
    data = WORK / "data"
    stamp = data / "DONE"
    if stamp.exists():
        return data
    shutil.rmtree(data, ignore_errors=True)
    (data / "cogs").mkdir(parents=True)
    for band, key, seed in (("B04", "red", 4), ("B08", "nir", 8)):
        log(f"building {key}.tif ({SIZE}x{SIZE} uint16 COG)...")
        mem = gdal.GetDriverByName("MEM").Create("", SIZE, SIZE, 1, gdal.GDT_UInt16)
        mem.SetGeoTransform((X0, 10.0, 0.0, Y0, 0.0, -10.0))
        srs = gdal.osr.SpatialReference()
        srs.ImportFromEPSG(EPSG)
        mem.SetProjection(srs.ExportToWkt())
        mem.GetRasterBand(1).WriteArray(band_values(seed))
        mem.GetRasterBand(1).SetNoDataValue(0)
        gdal.Translate(str(data / "cogs" / f"{key}.tif"), mem, format="COG",
                       creationOptions=["COMPRESS=DEFLATE", "BLOCKSIZE=1024", "OVERVIEW_COUNT=4",
                                        "NUM_THREADS=2", "OVERVIEWS=IGNORE_EXISTING"])
        mem = None
    # Static STAC catalog, Earth Search keys, relative hrefs.
    transform = gdal.osr.CoordinateTransformation(
        _srs(EPSG), _srs(4326, traditional=True))
    corners = [transform.TransformPoint(x, y)[:2] for x, y in
               ((X0, Y0), (X0 + SIZE * 10, Y0), (X0, Y0 - SIZE * 10), (X0 + SIZE * 10, Y0 - SIZE * 10))]
    lons, lats = [c[0] for c in corners], [c[1] for c in corners]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "S2B_33TXX_20230615_0_L2A", "collection": "sentinel-2-l2a",
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "geometry": {"type": "Polygon", "coordinates": [[[min(lons), min(lats)], [max(lons), min(lats)],
                                                         [max(lons), max(lats)], [min(lons), max(lats)],
                                                         [min(lons), min(lats)]]]},
        "properties": {"datetime": DATE, "eo:cloud_cover": 1.0, "proj:epsg": EPSG,
                       "proj:bbox": [X0, Y0 - SIZE * 10, X0 + SIZE * 10, Y0], "s2:boa_add_offset": 0,
                       "earthsearch:boa_offset_applied": True},
        "assets": {k: {"href": f"../../cogs/{k}.tif", "type": "image/tiff; application=geotiff"}
                   for k in ("red", "nir")},
        "links": [],
    }
    (data / "s2" / "items").mkdir(parents=True)
    (data / "s2" / "items" / "item.json").write_text(json.dumps(item))
    (data / "s2" / "collection.json").write_text(json.dumps({
        "type": "Collection", "stac_version": "1.0.0", "id": "sentinel-2-l2a",
        "links": [{"rel": "item", "href": "./items/item.json"}]}))
    (data / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "bench", "description": "pipeline bench",
        "links": [{"rel": "child", "href": "./s2/collection.json"}]}))
    stamp.write_text("ok\n")
    return data


def _srs(epsg: int, traditional: bool = False):
    s = gdal.osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    if traditional:
        s.SetAxisMappingStrategy(gdal.osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


# ----------------------------------------------------------------------------------------------------------------------
# The job and its tiles
# ----------------------------------------------------------------------------------------------------------------------

def aoi(ntiles: int) -> dict:
    """The square (or its first rows of 10 km tiles, for --tiles), in UTM, shrunk by 1 m so no neighbour is touched."""
    x0, y0, x1, y1 = SQUARE
    rows = max(1, min(10, -(-ntiles // 10)))
    y0 = y1 - rows * 10000.0
    return {"bbox": [x0 + 1, y0 + 1, x1 - 1, y1 - 1],
            "properties": {"crs": f"http://www.opengis.net/def/crs/EPSG/0/{EPSG}"}}


def request_body(out: Path, ntiles: int) -> dict:
    return {
        "processRequest": {
            "input": {"bounds": aoi(ntiles), "data": [{"type": "sentinel-2-l2a", "dataFilter": {
                "timeRange": {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T23:59:59Z"}}}]},
            "evalscript": (ROOT / "evalscripts" / "ndvi.js").read_text(),
            "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]},
        },
        "tilingGrid": {"id": 1, "resolution": 10, "bufferX": 0, "bufferY": 0},
        "output": {"defaultTilePath": str(out) + "/<tileName>/<outputId>.<format>"},
        "description": "pipeline bench",
    }


def tile_bounds(ntiles: int) -> list[tuple[str, list[float]]]:
    """The grid's own tile extents for the AOI (`tessera grid tiles`), so both sides make the same tiles."""
    geo = WORK / "aoi.geojson"
    x0, y0, x1, y1 = aoi(ntiles)["bbox"]
    geo.write_text(json.dumps({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                               "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{EPSG}"}}}))
    res = subprocess.run([str(BIN), "grid", "tiles", "--grid", "1", "--resolution", "10", "--aoi", str(geo)],
                         capture_output=True, text=True, check=True)
    feats = json.loads(res.stdout)["features"]
    return [(f["properties"]["name"], f["properties"]["bounds"]) for f in feats][:ntiles]


# ----------------------------------------------------------------------------------------------------------------------
# The two sides
# ----------------------------------------------------------------------------------------------------------------------

def run_tessera(catalog_url: str, ntiles: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    req = out / "request.json"
    req.write_text(json.dumps(request_body(out / "tiles", ntiles)))
    env = dict(os.environ, TESSERA_STAC_CATALOG_URL=catalog_url, RUST_LOG="warn")
    env.pop("TESSERA_STAC_API_URL", None)
    t0 = time.perf_counter()
    with open(out / "stdout", "w") as so, open(out / "stderr", "w") as se:
        extra = os.environ.get("TESSERA_RUN_ARGS", "").split()  # e.g. "--processes"
        proc = subprocess.Popen([str(BIN), "run", str(req), "--workers", "2", "--db", str(out / "t.db"),
                                 "--data", str(out / "data"), *extra], stdout=so, stderr=se, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time and peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    stdout = (out / "stdout").read_text()
    if proc.returncode != 0:
        raise SystemExit(f"tessera run failed:\n{stdout}\n{(out / 'stderr').read_text()[-3000:]}")
    m = re.search(r"^time: (.*)$", stdout, re.M)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "stages": m.group(1) if m else "?"}


_PEER = {}


def _peer_init(b04: str, b08: str) -> None:
    gdal.UseExceptions()
    gdal.SetCacheMax(256 * 1024 * 1024)
    _PEER["src"] = (b04, b08)


def _peer_tile(job: tuple[str, list[float], str]) -> None:
    name, (x0, y0, x1, y1), out = job
    b04, b08 = _PEER["src"]
    red = gdal.Warp("", b04, format="MEM", outputBounds=(x0, y0, x1, y1), xRes=10, yRes=10,
                    resampleAlg="near").ReadAsArray().astype(np.float32)
    nir = gdal.Warp("", b08, format="MEM", outputBounds=(x0, y0, x1, y1), xRes=10, yRes=10,
                    resampleAlg="near").ReadAsArray().astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = ((nir - red) / (nir + red)).astype(np.float32)
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(f"{out}/{name}.tif", ndvi.shape[1], ndvi.shape[0], 1, gdal.GDT_Float32,
                    options=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform((x0, 10.0, 0.0, y1, 0.0, -10.0))
    ds.SetProjection(_srs(EPSG).ExportToWkt())
    ds.GetRasterBand(1).WriteArray(ndvi)
    ds = None


def run_peer(b04: str, b08: str, tiles, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2, initializer=_peer_init, initargs=(b04, b08)) as pool:
        pool.map(abs, [0, 0])  # the workers are up before the clock starts
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        pool.map(_peer_tile, [(n, b, str(out)) for n, b in tiles], chunksize=1)
        wall = time.perf_counter() - t0
        # Pool workers are reaped at exit, so their CPU shows in RUSAGE_CHILDREN only afterwards.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) + \
        (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime - self_before.ru_stime)
    # Peak RSS of the pool's workers is not separable from earlier children here: not reported.
    return {"wall": wall, "cpu": cpu, "rss_mib": float("nan")}


# ----------------------------------------------------------------------------------------------------------------------
# HTTP mode
# ----------------------------------------------------------------------------------------------------------------------

class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range support; counts requests and bytes sent for COGs."""
    stats = {"requests": 0, "bytes": 0}
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    def _count(self, n: int) -> None:
        if "/cogs/" in self.path:
            with RangeHandler.lock:
                RangeHandler.stats["requests"] += 1
                RangeHandler.stats["bytes"] += n

    def do_HEAD(self):
        self._count(0)
        super().do_HEAD()

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        rng = self.headers.get("Range")
        if not rng or not path.is_file():
            self._count(path.stat().st_size if path.is_file() else 0)
            return super().do_GET()
        size = path.stat().st_size
        a, _, b = rng.removeprefix("bytes=").partition("-")
        start, end = int(a or 0), min(int(b) + 1 if b else size, size)
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(data)
        self._count(len(data))


def serve(root: Path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: RangeHandler(*a, directory=str(root), **k))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def take_http_stats() -> dict:
    with RangeHandler.lock:
        s = dict(RangeHandler.stats)
        RangeHandler.stats.update(requests=0, bytes=0)
    return s


# ----------------------------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tiles", type=int, default=100)
    ap.add_argument("--http", action="store_true", help="read over a Range-capable HTTP server on 127.0.0.1")
    args = ap.parse_args()
    if not BIN.is_file():
        raise SystemExit(f"{BIN} is missing: cargo build --release")
    data = build_dataset()
    tiles = tile_bounds(args.tiles)
    log(f"{len(tiles)} tiles of 1000x1000 px, {args.rounds} rounds, {'HTTP' if args.http else 'local files'}")
    httpd = None
    if args.http:
        httpd, base = serve(data)
        catalog = f"{base}/catalog.json"
        b04, b08 = f"/vsicurl/{base}/cogs/red.tif", f"/vsicurl/{base}/cogs/nir.tif"
        gdal.SetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    else:
        catalog = str(data / "catalog.json")
        b04, b08 = str(data / "cogs" / "red.tif"), str(data / "cogs" / "nir.tif")
    best: dict[str, dict] = {}
    load = []
    for r in range(args.rounds):
        for side in ("tessera", "peer"):
            out = WORK / f"out-{side}"
            res = run_tessera(catalog, len(tiles), out) if side == "tessera" else run_peer(b04, b08, tiles, out)
            if args.http:
                res.update(take_http_stats())
            load.append(os.getloadavg()[0])
            log(f"round {r + 1} {side}: {res['wall']:.2f} s wall, {len(tiles) / res['wall']:.1f} tiles/s, "
                f"{res['cpu'] / len(tiles):.3f} CPU s/tile" + (f", {res['requests']} requests" if args.http else ""))
            if side not in best or res["wall"] < best[side]["wall"]:
                best[side] = res
    if httpd:
        httpd.shutdown()
    n = len(tiles)
    t, p = best["tessera"], best["peer"]
    print(f"\n{'HTTP (127.0.0.1)' if args.http else 'local files'}, {n} tiles, best of {args.rounds} rounds, "
          f"load average during the runs {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print(f"| side | wall s | tiles/s | CPU s/tile | peak RSS MiB |" + (" requests/tile | MB/tile |" if args.http else ""))
    print("| --- | --- | --- | --- | --- |" + (" --- | --- |" if args.http else ""))
    for name, x in (("tessera run --workers 2", t), ("GDAL + numpy, 2 processes", p)):
        row = f"| {name} | {x['wall']:.2f} | {n / x['wall']:.1f} | {x['cpu'] / n:.3f} | {x['rss_mib']:.0f} |"
        if args.http:
            row += f" {x['requests'] / n:.1f} | {x['bytes'] / n / 1e6:.2f} |"
        print(row)
    print(f"\nTessera / peer tiles/s: {p['wall'] / t['wall']:.2f}x")
    print(f"Tessera stages (best round): {t['stages']}")


if __name__ == "__main__":
    main()
