#!/usr/bin/env python3
"""Writes the bundled `tessera-sample` collection into fixtures/sample/.

A small, deterministic, *synthetic* Sentinel-2-L2A-like dataset: the values are made up
(a field-parcel pattern, a smooth gradient, a seasonal NIR trend and per-date clouds);
the layout is real: one Cloud-Optimized GeoTIFF per band at its native resolution
(10 m: B02 B03 B04 B08; 20 m: B05 B06 B07 B8A B11 B12 SCL; 60 m: B01 B09), uint16,
DN = 10000 x reflectance (no BOA_ADD_OFFSET), nodata 0, 128x128 deflate tiles with the
horizontal predictor, a 2x overview IFD while the image is wider than 128 pixels, and
GeoKeys for the UTM zone. Each footprint is 3 km x 3 km (real S2 tiles are 110 km).

Footprints (UTM, metres):
  A  EPSG:32633 x 500000-503000 y 5094000-5097000  (15.0 E, 46.0 N)        3 dates
  B  EPSG:32633 x 501500-504500 y 5092500-5095500  (overlaps A)           3 dates
  C  EPSG:32632 x 730000-733000 y 5097000-5100000  (west of 12 E, zone 32) 2 dates
  D  EPSG:32633 x 266500-269500 y 5097000-5100000  (east side, zone 33)    2 dates
C and D overlap across the 12 E zone boundary; C has a no-data swath edge.

Pure Python (zlib, struct, math) so it runs anywhere with the same bytes. Also writes
catalog.json (STAC-like items) and probes.json (pixel values at known places, computed
here from the formulas, for the reader's tests).

Usage: python3 scripts/make_sample_fixtures.py [out_dir]
       python3 scripts/make_sample_fixtures.py --bench out_dir   (12 km scene, 4 bands)
"""
import json
import math
import os
import struct
import sys
import zlib

BANDS = {  # band -> resolution (m)
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B11": 20, "B12": 20, "SCL": 20,
}
# Reflectance x 10000 per land-cover class: vegetation, bare soil, water, built-up, forest.
CLASS_DN = {
    "B01": [300, 900, 400, 1100, 250], "B02": [350, 1000, 500, 1200, 250],
    "B03": [700, 1300, 600, 1300, 500], "B04": [400, 1600, 400, 1500, 300],
    "B05": [1200, 1900, 350, 1600, 800], "B06": [2800, 2100, 300, 1700, 2200],
    "B07": [3300, 2200, 280, 1750, 2600], "B08": [3600, 2300, 250, 1800, 2900],
    "B8A": [3700, 2400, 220, 1850, 3000], "B09": [1100, 800, 100, 700, 900],
    "B11": [1800, 3000, 150, 2200, 1300], "B12": [900, 2500, 100, 1900, 600],
}
SCL_OF_CLASS = [4, 5, 6, 5, 4]
TILE = 128

FOOTPRINTS = [
    ("A", 32633, 500000, 5097000, ["2023-06-05", "2023-06-15", "2023-06-25"], False),
    ("B", 32633, 501500, 5095500, ["2023-06-07", "2023-06-17", "2023-06-27"], False),
    ("C", 32632, 730000, 5100000, ["2023-06-10", "2023-06-20"], True),
    ("D", 32633, 266500, 5100000, ["2023-06-10", "2023-06-20"], False),
]
EXTENT = 3000


def day_number(date):
    y, m, d = (int(p) for p in date.split("-"))
    return (date_ordinal(y, m, d) - date_ordinal(1970, 1, 1))


def date_ordinal(y, m, d):
    import datetime
    return datetime.date(y, m, d).toordinal()


def cloud_of(fid, date):
    """(x, y, radius) of the one cloud of a scene, in the scene's CRS, or None."""
    h = zlib.crc32(f"{fid}{date}".encode())
    if h % 3 == 0:
        return None
    x0, y0 = next((f[2], f[3]) for f in FOOTPRINTS if f[0] == fid)
    cx = x0 + 300 + (h >> 4) % 2400
    cy = y0 - 300 - (h >> 12) % 2400
    r = 250 + (h >> 20) % 500
    return (cx, cy, r)


def parcel_class(x, y):
    h = (int(x // 200) * 73856093) ^ (int(y // 150) * 19349663)
    return (h & 0xFFFF) % 5


def pixel(band, x, y, day, cloud, edge):
    """DN of `band` at the point (x, y) (scene CRS) on `day`; 0 is no data."""
    if edge is not None and edge(x, y):
        return 0
    if cloud is not None:
        d2 = (x - cloud[0]) ** 2 + (y - cloud[1]) ** 2
        if d2 < cloud[2] ** 2:
            if band == "SCL":
                return 9 if d2 < (cloud[2] * 0.6) ** 2 else 8
            return 5000 + int(3000 * (1 - math.sqrt(d2) / cloud[2]))
    c = parcel_class(x, y)
    if band == "SCL":
        return SCL_OF_CLASS[c]
    dn = CLASS_DN[band][c]
    dn += int(150 * math.sin(x / 900.0) * math.cos(y / 1300.0))
    if c in (0, 4) and band in ("B06", "B07", "B08", "B8A"):
        dn += int(400 * math.sin((day % 365) * 2 * math.pi / 365.0))
    return max(1, dn)


def edge_fn(x0, y0):
    # A diagonal swath edge: no data in the north-west corner triangle.
    return lambda x, y: (x - x0) + (y0 - y) < 900


def render(band, x0, y0, res, n, day, cloud, edge):
    out = []
    for r in range(n):
        y = y0 - (r + 0.5) * res
        for c in range(n):
            out.append(pixel(band, x0 + (c + 0.5) * res, y, day, cloud, edge))
    return out


def overview(data, n, nearest):
    m = n // 2
    out = []
    for r in range(m):
        for c in range(m):
            vals = [data[(2 * r + i) * n + 2 * c + j] for i in (0, 1) for j in (0, 1)]
            if nearest:
                out.append(vals[0])
            else:
                ok = [v for v in vals if v != 0]
                out.append((sum(ok) + len(ok) // 2) // len(ok) if ok else 0)
    return out, m


def encode_tiles(data, n):
    tiles = []
    per = (n + TILE - 1) // TILE
    for tr in range(per):
        for tc in range(per):
            raw = bytearray()
            for r in range(TILE):
                prev = 0
                for c in range(TILE):
                    rr, cc = tr * TILE + r, tc * TILE + c
                    v = data[rr * n + cc] if rr < n and cc < n else 0
                    raw += struct.pack("<H", (v - prev) & 0xFFFF)  # predictor 2
                    prev = v
            tiles.append(zlib.compress(bytes(raw), 9))
    return tiles


def write_cog(path, data, n, epsg, x0, y0, res, nearest):
    levels = [(n, data)]
    while levels[-1][0] > TILE:
        d, m = overview(levels[-1][1], levels[-1][0], nearest)
        levels.append((m, d))
    enc = [encode_tiles(d, m) for m, d in levels]
    geokeys = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, epsg]

    def entries(i, offsets, counts):
        m = levels[i][0]
        e = [(254, 4, [0 if i == 0 else 1]), (256, 3, [m]), (257, 3, [m]), (258, 3, [16]),
             (259, 3, [8]), (262, 3, [1]), (277, 3, [1]), (284, 3, [1]), (317, 3, [2]),
             (322, 3, [TILE]), (323, 3, [TILE]), (324, 4, offsets), (325, 4, counts),
             (339, 3, [1])]
        if i == 0:
            e += [(33550, 12, [res, res, 0.0]), (33922, 12, [0.0, 0.0, 0.0, x0, y0, 0.0]),
                  (34735, 3, geokeys), (42113, 2, b"0\0")]
        return e

    size = {2: 1, 3: 2, 4: 4, 12: 8}

    def ifd_len(e):
        extra = 0
        for _, t, v in e:
            b = size[t] * len(v)
            if b > 4:
                extra += b + (b & 1)
        return 2 + 12 * len(e) + 4 + extra

    # Pass 1: sizes with dummy offsets, then place IFDs first and tile data after them.
    lens = [ifd_len(entries(i, [0] * len(enc[i]), [0] * len(enc[i]))) for i in range(len(levels))]
    pos = 8 + sum(lens)
    offsets = []
    for i in reversed(range(len(levels))):  # smallest overview's data first, as GDAL does
        o = []
        for t in enc[i]:
            o.append(pos)
            pos += len(t)
        offsets.insert(0, o)
    out = bytearray(b"II*\0" + struct.pack("<I", 8))
    ifd_pos = 8
    for i in range(len(levels)):
        e = entries(i, offsets[i], [len(t) for t in enc[i]])
        nxt = ifd_pos + lens[i] if i + 1 < len(levels) else 0
        extra_pos = ifd_pos + 2 + 12 * len(e) + 4
        head = bytearray(struct.pack("<H", len(e)))
        extra = bytearray()
        for tag, typ, vals in e:
            if typ == 2:
                blob = bytes(vals)
            else:
                fmt = {3: "H", 4: "I", 12: "d"}[typ]
                blob = struct.pack("<%d%s" % (len(vals), fmt), *vals)
            if len(blob) <= 4:
                head += struct.pack("<HHI", tag, typ, len(vals)) + blob.ljust(4, b"\0")
            else:
                head += struct.pack("<HHII", tag, typ, len(vals), extra_pos + len(extra))
                extra += blob + (b"\0" if len(blob) & 1 else b"")
        head += struct.pack("<I", nxt)
        out += head + extra
        ifd_pos += lens[i]
    for i in reversed(range(len(levels))):
        for t in enc[i]:
            out += t
    with open(path, "wb") as f:
        f.write(out)


# --- UTM inverse (Snyder's series) for the catalog's lon/lat bboxes -------------------
def utm_inverse(epsg, x, y):
    zone = epsg % 100
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    ep2 = e2 / (1 - e2)
    k0 = 0.9996
    m = y / k0
    mu = m / (a * (1 - e2 / 4 - 3 * e2 ** 2 / 64 - 5 * e2 ** 3 / 256))
    e1 = (1 - math.sqrt(1 - e2)) / (1 + math.sqrt(1 - e2))
    p = (mu + (3 * e1 / 2 - 27 * e1 ** 3 / 32) * math.sin(2 * mu)
         + (21 * e1 ** 2 / 16 - 55 * e1 ** 4 / 32) * math.sin(4 * mu)
         + (151 * e1 ** 3 / 96) * math.sin(6 * mu))
    c1 = ep2 * math.cos(p) ** 2
    t1 = math.tan(p) ** 2
    n1 = a / math.sqrt(1 - e2 * math.sin(p) ** 2)
    r1 = a * (1 - e2) / (1 - e2 * math.sin(p) ** 2) ** 1.5
    d = (x - 500000) / (n1 * k0)
    lat = p - (n1 * math.tan(p) / r1) * (
        d ** 2 / 2 - (5 + 3 * t1 + 10 * c1 - 4 * c1 ** 2 - 9 * ep2) * d ** 4 / 24
        + (61 + 90 * t1 + 298 * c1 + 45 * t1 ** 2 - 252 * ep2 - 3 * c1 ** 2) * d ** 6 / 720)
    lon = (d - (1 + 2 * t1 + c1) * d ** 3 / 6
           + (5 - 2 * c1 + 28 * t1 - 3 * c1 ** 2 + 8 * ep2 + 24 * t1 ** 2) * d ** 5 / 120) / math.cos(p)
    return (zone * 6 - 183) + math.degrees(lon), math.degrees(lat)


def lonlat_bbox(epsg, x0, y0, x1, y1):
    pts = [utm_inverse(epsg, x, y) for x in (x0, x1) for y in (y0, y1)]
    return [round(min(p[0] for p in pts), 6), round(min(p[1] for p in pts), 6),
            round(max(p[0] for p in pts), 6), round(max(p[1] for p in pts), 6)]


def main():
    args = sys.argv[1:]
    if args and args[0] == "--bench":
        out = args[1]
        os.makedirs(out, exist_ok=True)
        n = 1200  # 12 km at 10 m around one grid-1 tile at 15 E 46 N
        for band in ("B02", "B03", "B04", "B08"):
            data = render(band, 495000, 5100000, 10, n, 19530, None, None)
            write_cog(os.path.join(out, f"{band}.tif"), data, n, 32633, 495000, 5100000, 10, False)
        return
    out = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "fixtures", "sample")
    os.makedirs(out, exist_ok=True)
    items, probes = [], []
    for fid, epsg, x0, y0, dates, has_edge in FOOTPRINTS:
        edge = edge_fn(x0, y0) if has_edge else None
        for date in dates:
            day = day_number(date)
            cloud = cloud_of(fid, date)
            item_id = f"S2SAMPLE_{fid}_{date.replace('-', '')}"
            folder = os.path.join(out, item_id)
            os.makedirs(folder, exist_ok=True)
            assets = {}
            cloudy = valid = 0
            for band, res in BANDS.items():
                n = EXTENT // res
                data = render(band, x0, y0, res, n, day, cloud, edge)
                write_cog(os.path.join(folder, f"{band}.tif"), data, n, epsg, x0, y0, res, band == "SCL")
                assets[band] = {"href": f"{item_id}/{band}.tif", "gsd": res}
                if band == "SCL":
                    valid = sum(1 for v in data if v != 0)
                    cloudy = sum(1 for v in data if v in (8, 9, 10))
                for (col, row) in ((0, 0), (n // 2, n // 3), (n - 1, n - 1), (7, n - 5)):
                    probes.append({"file": f"{item_id}/{band}.tif", "col": col, "row": row,
                                   "value": data[row * n + col]})
            items.append({
                "type": "Feature", "stac_version": "1.0.0", "id": item_id,
                "bbox": lonlat_bbox(epsg, x0, y0 - EXTENT, x0 + EXTENT, y0),
                "properties": {
                    "datetime": f"{date}T10:00:00Z",
                    "eo:cloud_cover": round(100.0 * cloudy / max(valid, 1), 2),
                    "proj:epsg": epsg,
                    "proj:bbox": [x0, y0 - EXTENT, x0 + EXTENT, y0],
                    "s2:boa_add_offset": 0,
                },
                "assets": assets,
            })
    catalog = {"type": "FeatureCollection", "collection": "tessera-sample",
               "description": "Synthetic Sentinel-2-L2A-like sample (see scripts/make_sample_fixtures.py)",
               "features": items}
    with open(os.path.join(out, "catalog.json"), "w") as f:
        json.dump(catalog, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "probes.json"), "w") as f:
        json.dump(probes, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
