#!/usr/bin/env python3
"""Derive Tessera's compact Sentinel-2 tile data from ESA's tiling KML.

Source: ESA `S2A_OPER_GIP_TILPAR_MPC__20151209T095117_V20150622T000000_21000101T000000_B00.kml`
(56,686 Placemarks, Copernicus/ESA), as bundled by PyPI `s2tiling` 0.1.1 (MIT) in
`s2tiling/data/s2_tiling.zip`:

    pip download --no-deps s2tiling==0.1.1 -d /tmp/s2 && \
        python3 scripts/make_s2_tiles.py /tmp/s2/s2tiling-0.1.1-py3-none-any.whl

The argument may be the wheel, the inner s2_tiling.zip or the extracted .kml. Writes:

* src/grid/data/s2_squares.bin - which MGRS 100 km squares are S2 tiles: one bit per
  (zone 1..60, hemisphere north/south, column E/100 km 1..8, row N/100 km 0..99), bit index
  ((((zone - 1) * 2 + south) * 8 + (col - 1)) * 100 + row), least significant bit first within
  a byte; 96,000 bits = 12,000 bytes. Embedded with include_bytes! by src/grid/s2.rs.
* fixtures/grid/s2_tiles.csv.gz - `name,epsg,xmin,ymax` for every tile, in KML order, gzip
  with a zero timestamp (byte-reproducible); the Rust test checks the name -> bounds rule
  (tiling-grids.md section 2.3) against every line.

The square of a tile is derived here from its UTM coordinates only (never from its name),
so the Rust test that parses names is an independent check of both.
"""

from __future__ import annotations

import gzip
import io
import re
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BITMAP = REPO / "src" / "grid" / "data" / "s2_squares.bin"
EXTRACT = REPO / "fixtures" / "grid" / "s2_tiles.csv.gz"
TILE_SIZE = 109_800
EXPECTED_TILES = 56_686

PLACEMARK = re.compile(
    rb"<b>TILE_ID</b>.*?<font[^>]*>\s*(\w{5})</font>.*?"
    rb"<b>EPSG</b>.*?<font[^>]*>\s*(\d+)</font>.*?"
    rb"<b>UTM_WKT</b>.*?<font[^>]*>\s*MULTIPOLYGON\(\(\(([^)]*)\)\)\)</font>",
    re.S,
)


def read_kml(path: Path) -> bytes:
    if path.suffix == ".kml":
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        kml = [n for n in names if n.endswith(".kml")]
        if kml:
            return archive.read(kml[0])
        inner = [n for n in names if n.endswith("s2_tiling.zip")]
        if not inner:
            sys.exit(f"{path}: neither a .kml nor s2tiling/data/s2_tiling.zip inside")
        with zipfile.ZipFile(io.BytesIO(archive.read(inner[0]))) as nested:
            kml = [n for n in nested.namelist() if n.endswith(".kml")]
            return nested.read(kml[0])


def parse(kml: bytes) -> list[tuple[str, int, int, int]]:
    tiles = []
    for name, epsg, wkt in PLACEMARK.findall(kml):
        points = [tuple(float(v) for v in p.split()) for p in wkt.decode().split(",")]
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        xmin, xmax, ymin, ymax = min(xs), max(xs), min(ys), max(ys)
        if xmax - xmin != TILE_SIZE or ymax - ymin != TILE_SIZE:
            sys.exit(f"{name.decode()}: not a {TILE_SIZE} m square: {wkt.decode()}")
        if xmin != int(xmin) or ymax != int(ymax):
            sys.exit(f"{name.decode()}: non-integer corner")
        tiles.append((name.decode(), int(epsg), int(xmin), int(ymax)))
    return tiles


def square_bit(epsg: int, xmin: int, ymax: int) -> int:
    """Bit index of the 100 km square whose north-west corner the tile's corner snaps to."""
    if 32601 <= epsg <= 32660:
        zone, south = epsg - 32600, 0
    elif 32701 <= epsg <= 32760:
        zone, south = epsg - 32700, 1
    else:
        sys.exit(f"unexpected EPSG {epsg}")
    # xmin = 60*floor(E/60) lies 0..59 m west of the square's west edge E; ymax lies 0..59 m
    # north of its north edge (tiling-grids.md section 2.2).
    col = -(-xmin // 100_000)
    north_edge = ymax // 100_000 * 100_000
    if not (0 <= col * 100_000 - xmin < 60 and 0 <= ymax - north_edge < 60):
        sys.exit(f"tile corner ({xmin}, {ymax}) of EPSG {epsg} is not next to a 100 km corner")
    row = north_edge // 100_000 - 1
    if not (1 <= col <= 8 and 0 <= row <= 99):
        sys.exit(f"square (col {col}, row {row}) of EPSG {epsg} out of range")
    return (((zone - 1) * 2 + south) * 8 + (col - 1)) * 100 + row


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    tiles = parse(read_kml(Path(sys.argv[1])))
    if len(tiles) != EXPECTED_TILES:
        sys.exit(f"expected {EXPECTED_TILES} tiles, parsed {len(tiles)}")
    if len({t[0] for t in tiles}) != len(tiles):
        sys.exit("duplicate tile names")
    bitmap = bytearray(60 * 2 * 8 * 100 // 8)
    for _, epsg, xmin, ymax in tiles:
        bit = square_bit(epsg, xmin, ymax)
        if bitmap[bit // 8] >> (bit % 8) & 1:
            sys.exit(f"two tiles on one square (EPSG {epsg}, {xmin}, {ymax})")
        bitmap[bit // 8] |= 1 << (bit % 8)
    BITMAP.parent.mkdir(parents=True, exist_ok=True)
    BITMAP.write_bytes(bytes(bitmap))
    text = "".join(f"{n},{e},{x},{y}\n" for n, e, x, y in tiles).encode()
    EXTRACT.parent.mkdir(parents=True, exist_ok=True)
    with open(EXTRACT, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(text)
    print(f"{len(tiles)} tiles -> {BITMAP} ({len(bitmap)} B), {EXTRACT} ({EXTRACT.stat().st_size} B)")


if __name__ == "__main__":
    main()
