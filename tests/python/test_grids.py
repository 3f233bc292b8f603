"""Tiling-grid bad input over HTTP: each bad AOI/grid combination is a 400 COMMON_BAD_PAYLOAD
whose message says what is wrong, and nothing is stored (issue 3, "Bad input")."""

from __future__ import annotations

import pytest
from conftest import AOI_ONE, Api, assert_error, create_body

PROCESS = "/api/v1/batch/process"
TILE_PATH = "unused-grid-tests/<tileName>/<outputId>.tif"


@pytest.fixture(scope="module")
def alice(server) -> Api:
    return server.api("alice")


def body_with_bounds(bounds: dict, grid_id: int = 1, resolution: float = 20) -> dict:
    body = create_body(AOI_ONE, grid_id=grid_id, resolution=resolution, tile_path=TILE_PATH)
    body["processRequest"]["input"]["bounds"] = bounds
    return body


def polygon(coords: list, crs: str | None = None) -> dict:
    bounds: dict = {"geometry": {"type": "Polygon", "coordinates": coords}}
    if crs is not None:
        bounds["properties"] = {"crs": crs}
    return bounds


BAD = {
    # label: (bounds, grid id, resolution, keywords one of which the message must contain)
    "self-intersecting-bow-tie": (
        polygon([[[15.1, 45.8], [15.3, 45.9], [15.3, 45.8], [15.1, 45.9], [15.1, 45.8]]]),
        1, 20, ["self-intersecting"],
    ),
    "hole-crossing-exterior": (
        polygon([
            [[15.1, 45.8], [15.3, 45.8], [15.3, 45.9], [15.1, 45.9], [15.1, 45.8]],
            [[15.2, 45.85], [15.4, 45.85], [15.4, 45.87], [15.2, 45.87], [15.2, 45.85]],
        ]),
        1, 20, ["self-intersecting"],
    ),
    "empty-polygon": (polygon([]), 1, 20, ["empty", "ring", "polygon"]),
    "empty-multipolygon": ({"geometry": {"type": "MultiPolygon", "coordinates": []}}, 1, 20,
                           ["empty", "polygon"]),
    "degenerate-ring": (polygon([[[15.1, 45.8], [15.2, 45.9], [15.1, 45.8]]]), 1, 20,
                        ["ring", "3 distinct"]),
    "zero-area-polygon": (polygon([[[15.1, 45.8], [15.2, 45.9], [15.3, 46.0], [15.1, 45.8]]]), 1, 20,
                          ["empty", "area"]),
    "beyond-utm-grid-coverage": ({"bbox": [15.0, 81.0, 16.0, 82.0]}, 1, 20, ["outside", "80.5"]),
    "beyond-grid0-coverage-south": ({"bbox": [15.0, -86.0, 16.0, -81.0]}, 0, 20, ["outside", "80.5"]),
    "latitude-beyond-90": ({"bbox": [15.0, 45.0, 16.0, 91.0]}, 1, 20, ["out of range", "latitude"]),
    "unsupported-crs-lambert93": (
        {"bbox": [700000, 6600000, 710000, 6610000], "properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/2154"}},
        1, 20, ["unsupported crs", "2154"],
    ),
    "unsupported-crs-garbage": (
        {"bbox": [15.1, 45.8, 15.2, 45.9], "properties": {"crs": "not-a-crs"}},
        1, 20, ["unsupported crs"],
    ),
}


@pytest.mark.parametrize("label", list(BAD))
def test_bad_tiling_input_is_400_with_a_clear_message(server, alice, label):
    bounds, grid_id, resolution, keywords = BAD[label]
    before = alice.requests_count()
    resp = alice.post(PROCESS, json=body_with_bounds(bounds, grid_id, resolution))
    assert_error(resp, 400, keywords, code="COMMON_BAD_PAYLOAD", context=label)
    assert alice.requests_count() == before, f"a rejected create ({label}) must store nothing"


def test_valid_polygon_control_is_accepted(server, alice):
    """Control: the same body with a simple polygon is accepted (the helpers are not the cause)."""
    ok = polygon([[[15.161, 45.887], [15.238, 45.887], [15.238, 45.95], [15.161, 45.95], [15.161, 45.887]]])
    resp = alice.post(PROCESS, json=body_with_bounds(ok))
    assert resp.status_code in (200, 201), resp.text[:500]


def test_tiling_grid_endpoints(server, alice):
    resp = alice.get("/api/v1/batch/tilinggrids")
    assert resp.status_code == 200, resp.text[:500]
    grids = {g["id"]: g for g in resp.json()["data"]}
    assert {0, 1, 2, 3} <= set(grids)
    assert grids[1]["properties"]["tileWidth"] == 10000.0
    assert grids[2]["properties"]["resolutions"] == [30.0, 60.0, 120.0, 240.0, 360.0]
    resp = alice.get("/api/v1/batch/tilinggrids/0")
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json()["properties"]["tileWidth"] == 20040.0
