"""Bad input, wrong states, auth and pagination, over plain HTTP (`requests`)."""

from __future__ import annotations

import base64

import pytest
import requests
from conftest import (
    AOI_NINE,
    AOI_ONE,
    HTTP_TIMEOUT,
    Api,
    assert_error,
    create_body,
    wait_for_request_status,
)

PROCESS = "/api/v1/batch/process"
UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def alice(server) -> Api:
    return server.api("alice")


def out_path(server, label: str) -> str:
    return str(server.workdir / f"out-bad-input-{label}")


# ---------------------------------------------------------------------------------------------------------------------
# Rejected creates: status, error body, message, nothing stored
# ---------------------------------------------------------------------------------------------------------------------


def _body_without(key_path: tuple[str, ...]) -> dict:
    body = create_body(AOI_ONE, tile_path="unused-tessera-out")
    node = body
    for k in key_path[:-1]:
        node = node[k]
    del node[key_path[-1]]
    return body


BAD_CREATES = {
    # label: (body (dict) or raw bytes, expected status, keywords one of which the message must contain)
    "malformed-json": (b'{"processRequest": {"input": ', 400, ["json", "pars", "syntax", "eof", "malformed"]),
    "not-an-object": (b"[1, 2, 3]", 400, ["object", "map", "sequence", "array", "invalid type", "expected"]),
    "unknown-grid": (create_body(AOI_ONE, grid_id=999, tile_path="x"), 400, ["grid"]),
    "resolution-not-in-grid": (create_body(AOI_ONE, grid_id=1, resolution=15, tile_path="x"), 400,
                               ["resolution"]),
    "no-evalscript": (create_body(AOI_ONE, evalscript=None, tile_path="x"), 400, ["evalscript"]),
    "aoi-outside-grid": (create_body((15.0, 85.0, 15.5, 86.0), tile_path="x"), 400,
                         ["cover", "outside", "tile", "aoi", "area", "bounds", "extent", "intersect"]),
    "unknown-collection": (create_body(AOI_ONE, collection="no-such-collection", tile_path="x"), 400,
                           ["collection", "no-such-collection"]),
    "no-tiling-grid": (_body_without(("tilingGrid",)), 400, ["tilinggrid", "tiling grid", "grid"]),
    "no-process-request": (_body_without(("processRequest",)), 400, ["processrequest", "process request"]),
    "no-output-location": (create_body(AOI_ONE), 400, ["output", "bucket"]),
}


@pytest.mark.parametrize("label", list(BAD_CREATES))
def test_rejected_create(server, alice, label):
    body, status, keywords = BAD_CREATES[label]
    before = alice.requests_count()
    if isinstance(body, bytes):
        resp = alice.post(PROCESS, data=body, headers={"Content-Type": "application/json"})
    else:
        resp = alice.post(PROCESS, json=body)
    assert_error(resp, status, keywords, context=f"create with {label}")
    after = alice.requests_count()
    assert after == before, f"a rejected create ({label}) must store nothing: {before} requests before, {after} after"


def test_good_create_is_stored(server, alice):
    """Control for the test above: the same helper body, valid, is accepted and listed."""
    before = alice.requests_count()
    created = alice.create(create_body(AOI_ONE, tile_path=out_path(server, "good")))
    assert created["status"] == "CREATED" and isinstance(created.get("tileCount"), int), created
    assert alice.requests_count() == before + 1


# ---------------------------------------------------------------------------------------------------------------------
# Unknown ids
# ---------------------------------------------------------------------------------------------------------------------


def test_unknown_ids(server, alice):
    for method, path in [
        ("GET", f"{PROCESS}/{UNKNOWN_ID}"),
        ("PUT", f"{PROCESS}/{UNKNOWN_ID}"),
        ("DELETE", f"{PROCESS}/{UNKNOWN_ID}"),
        ("POST", f"{PROCESS}/{UNKNOWN_ID}/analyse"),
        ("POST", f"{PROCESS}/{UNKNOWN_ID}/start"),
        ("POST", f"{PROCESS}/{UNKNOWN_ID}/cancel"),
        ("POST", f"{PROCESS}/{UNKNOWN_ID}/restartpartial"),
        ("GET", f"{PROCESS}/{UNKNOWN_ID}/tiles"),
        ("GET", f"{PROCESS}/{UNKNOWN_ID}/tiles/1"),
    ]:
        kw = {"json": {"description": "x"}} if method == "PUT" else {}
        resp = alice.request(method, path, **kw)
        assert_error(resp, 404, code="COMMON_NOT_FOUND", context=f"{method} {path}")

    created = alice.create(create_body(AOI_ONE, tile_path=out_path(server, "unknown-tile")))
    resp = alice.get(f"{PROCESS}/{created['id']}/tiles/987654321")
    assert_error(resp, 404, code="COMMON_NOT_FOUND", context="unknown tile id of a known request")

    resp = alice.get("/api/v1/batch/tilinggrids/999")
    assert resp.status_code in (400, 404), f"GET /tilinggrids/999: expected 400 or 404, got {resp.status_code}"
    assert_error(resp, resp.status_code, ["grid", "999"], context="GET /tilinggrids/999")


# ---------------------------------------------------------------------------------------------------------------------
# Actions in states that forbid them
# ---------------------------------------------------------------------------------------------------------------------


def test_restartpartial_on_created_is_400(server, alice):
    created = alice.create(create_body(AOI_ONE, tile_path=out_path(server, "restart-created")))
    resp = alice.post(f"{PROCESS}/{created['id']}/restartpartial")
    assert_error(resp, 400, ["partial", "created", "state", "status"], context="restartpartial on CREATED")
    assert alice.get_request(created["id"])["status"] == "CREATED", "a refused action must not change the status"


def test_conflicts_while_processing_and_done(server, alice):
    """DELETE while PROCESSING and when DONE -> 409; PUT while PROCESSING -> 409; analyse/restartpartial when DONE
    -> 400.  Also: tile pagination with count=2."""
    rid = alice.create(create_body(AOI_NINE, tile_path=out_path(server, "conflicts")))["id"]
    alice.action(rid, "analyse")
    analysed = wait_for_request_status(alice, rid, {"ANALYSIS_DONE"}, fail_on={"FAILED", "CANCELED"}, timeout=120)
    n = analysed["tileCount"]
    assert n == 9, f"AOI_NINE should give 9 grid-1 tiles, tileCount is {n}"

    # tile pagination: count=2 -> ceil(n/2) pages, nextToken on all but the last one
    _check_pagination(alice, f"{PROCESS}/{rid}/tiles", 2, n)

    alice.action(rid, "start")
    status_before = alice.get_request(rid)["status"]
    resp_delete = alice.delete(f"{PROCESS}/{rid}")
    resp_put = alice.put(f"{PROCESS}/{rid}", json={"description": "changed while processing"})
    status_after = alice.get_request(rid)["status"]
    assert status_before in ("PROCESSING", "DONE"), f"status right after start: {status_before}"
    assert_error(resp_delete, 409, ["process", "started", "delete", "state", "status", "cancel"],
                 context=f"DELETE while {status_before}")
    if status_before == status_after == "PROCESSING":
        assert_error(resp_put, 409, ["process", "state", "status", "update"], context="PUT while PROCESSING")
    else:
        print(f"note: the job left PROCESSING too quickly ({status_before} -> {status_after}) to check PUT -> 409")

    wait_for_request_status(alice, rid, {"DONE"}, fail_on={"PARTIAL", "FAILED", "CANCELED"})
    assert_error(alice.delete(f"{PROCESS}/{rid}"), 409, context="DELETE of a DONE request")
    assert_error(alice.post(f"{PROCESS}/{rid}/restartpartial"), 400, context="restartpartial on DONE")
    assert_error(alice.post(f"{PROCESS}/{rid}/analyse"), 400, context="analyse on DONE")
    final = alice.get_request(rid)
    assert final["status"] == "DONE", f"refused actions must not change a DONE request: {final['status']}"
    assert final.get("description") != "changed while processing" or resp_put.status_code == 200


# ---------------------------------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------------------------------


def test_missing_or_invalid_token_is_401(server):
    base = server.base_url
    for headers, label in [
        ({}, "no Authorization header"),
        ({"Authorization": "Bearer not-a-real-token"}, "invalid bearer token"),
        ({"Authorization": "Bearer "}, "empty bearer token"),
        ({"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}, "Basic instead of Bearer"),
    ]:
        for method, path in [
            ("GET", PROCESS),
            ("POST", PROCESS),
            ("GET", "/api/v1/batch/tilinggrids"),
            ("GET", f"{PROCESS}/{UNKNOWN_ID}"),
        ]:
            kw = {"json": create_body(AOI_ONE, tile_path="x")} if method == "POST" else {}
            resp = requests.request(method, base + path, headers=headers, timeout=HTTP_TIMEOUT, **kw)
            assert_error(resp, 401, context=f"{method} {path} with {label}")


def test_token_endpoints(server):
    client = server.clients["alice"]
    form = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.client_secret}
    basic = (client.client_id, client.client_secret)
    for path in ("/oauth/token", "/auth/realms/main/protocol/openid-connect/token"):
        for label, kw in [
            ("form", {"data": form}),
            ("basic", {"data": {"grant_type": "client_credentials"}, "auth": basic}),
        ]:
            resp = requests.post(server.base_url + path, timeout=HTTP_TIMEOUT, **kw)
            assert resp.status_code == 200, f"POST {path} ({label}): {resp.status_code} {resp.text[:500]}"
            body = resp.json()
            assert isinstance(body.get("access_token"), str) and body["access_token"], body
            assert str(body.get("token_type", "")).lower() == "bearer", f"token_type: {body.get('token_type')!r}"
            assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, (
                f"expires_in must be a positive int (sentinelhub-py needs it): {body.get('expires_in')!r}"
            )
            api = Api(server.base_url, None, token=body["access_token"])
            grids = api.get("/api/v1/batch/tilinggrids")
            assert grids.status_code == 200, f"token from {path} ({label}) rejected: {grids.status_code}"

    bad = dict(form, client_secret="wrong-" + client.client_secret)
    resp = requests.post(server.base_url + "/oauth/token", data=bad, timeout=HTTP_TIMEOUT)
    assert resp.status_code in (400, 401), f"wrong secret: expected 400/401, got {resp.status_code} {resp.text[:300]}"
    assert "access_token" not in resp.text, "no token for a wrong secret"
    resp = requests.post(server.base_url + "/oauth/token", data=dict(form, grant_type="password"),
                         timeout=HTTP_TIMEOUT)
    assert resp.status_code in (400, 401), f"grant_type=password: expected 400/401, got {resp.status_code}"


# ---------------------------------------------------------------------------------------------------------------------
# Pagination
# ---------------------------------------------------------------------------------------------------------------------


def _check_pagination(api: Api, path: str, count: int, total: int, extra: dict | None = None) -> list[dict]:
    """Walk `path` with ?count=; every page full except the last, nextToken exactly while pages remain."""
    params = {"count": count, **(extra or {})}
    items: list[dict] = []
    pages = 0
    expected_pages = max(1, -(-total // count))
    while True:
        resp = api.get(path, params=params)
        assert resp.status_code == 200, f"GET {path} {params}: {resp.status_code} {resp.text[:500]}"
        body = resp.json()
        assert isinstance(body.get("data"), list), f"GET {path} {params}: no data list: {str(body)[:300]}"
        assert isinstance(body.get("links"), dict), f"GET {path} {params}: 'links' object must always be present"
        pages += 1
        items.extend(body["data"])
        token = body["links"].get("nextToken")
        remaining = total - len(items)
        if remaining > 0:
            assert len(body["data"]) == count, (
                f"GET {path} {params}: page {pages} has {len(body['data'])} items, expected {count}"
            )
            assert token is not None, (
                f"GET {path} {params}: page {pages} has no nextToken but {remaining} of {total} items remain"
            )
            params["viewtoken"] = token
        else:
            assert token is None, (
                f"GET {path} {params}: last page {pages} ({len(items)} of {total} items seen) still has "
                f"nextToken={token!r}"
            )
            break
        assert pages <= expected_pages, f"GET {path}: more than {expected_pages} pages for {total} items"
    assert pages == expected_pages, f"GET {path} count={count}: {pages} pages for {total} items"
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)), f"GET {path} count={count}: an item appeared on two pages: {ids}"
    return items


def test_request_pagination(server):
    """carol has her own requests only: count=2 over 5, then the default page size over 101."""
    carol = server.api("carol")
    assert carol.requests_count() == 0, "carol must start with no requests (clients are isolated)"
    ids = [carol.create(create_body(AOI_ONE, tile_path=out_path(server, f"page-{i}")))["id"] for i in range(5)]

    listed = _check_pagination(carol, PROCESS, 2, 5)
    assert sorted(i["id"] for i in listed) == sorted(ids), "count=2 paging must return exactly carol's 5 requests"
    _check_pagination(carol, PROCESS, 5, 5)  # a full last page must not carry nextToken
    _check_pagination(carol, PROCESS, 100, 5)

    newest = carol.get(PROCESS, params={"sort": "created:desc", "count": 1}).json()
    assert [r["id"] for r in newest["data"]] == [ids[-1]], "sort=created:desc&count=1 must return the newest request"
    assert newest["links"].get("nextToken") is not None, "4 more requests remain after the first of 5"

    # default page size: 100
    ids += [carol.create(create_body(AOI_ONE, tile_path=out_path(server, f"page-{i}")))["id"] for i in range(5, 101)]
    first = carol.get(PROCESS)
    assert first.status_code == 200
    body = first.json()
    assert len(body["data"]) == 100, f"default page size must be 100, got {len(body['data'])} of 101"
    token = body["links"].get("nextToken")
    assert token is not None, "101 requests, page 1 of 2 must carry nextToken"
    second = carol.get(PROCESS, params={"viewtoken": token}).json()
    assert len(second["data"]) == 1 and second["links"].get("nextToken") is None, (
        f"page 2 of 101 requests: {len(second['data'])} items, nextToken={second['links'].get('nextToken')!r}"
    )
    all_ids = [r["id"] for r in body["data"]] + [r["id"] for r in second["data"]]
    assert sorted(all_ids) == sorted(ids), "the two default pages must contain each of carol's 101 requests once"

    # tiling grids list pages the same way
    grids = server.api("carol").list_all("/api/v1/batch/tilinggrids")
    _check_pagination(carol, "/api/v1/batch/tilinggrids", 2, len(grids))
