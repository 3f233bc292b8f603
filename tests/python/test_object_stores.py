"""gs:// and az:// outputs (issue 6) on emulators started on 127.0.0.1: the daemon writes a COG of a one-tile
request through object_store, and the test lists and reads the objects back with each emulator's own API.

* Azure: Azurite (npm `azurite`, `azurite-blob`), the real Microsoft emulator. Found as $TESSERA_AZURITE_BLOB,
  tests/.npm/node_modules/.bin/azurite-blob (tests/run_all.sh installs it there) or `azurite-blob` on PATH.
* GCS: gcp-storage-emulator (PyPI, in tests/.venv), run in this process. It lacks three XML-API features that
  object_store's GCS client relies on: HEAD of an object, ETag / Last-Modified headers on GET and PUT, and ListObjectsV2
  (`GET /bucket?list-type=2`). `_xml_api_shim` adds exactly those on top of the emulator's own storage; uploads and
  downloads are the emulator's. Everything the test asserts is read through the emulator's JSON API, not the shim.

Each test skips with a message when its emulator is missing.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests

from conftest import (
    AOI_ONE,
    AOI_UTM_EPSG,
    HTTP_TIMEOUT,
    create_body,
    free_port,
    gdalinfo,
    raster_epsg,
    start_server,
    wait_for,
    wait_for_request_status,
)

ROOT = Path(__file__).resolve().parents[2]
TILE_PX = 500
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURE_VERSION = "2021-08-06"


def run_job(api, body: dict):
    rid = api.create(body)["id"]
    api.action(rid, "start")
    return rid, wait_for_request_status(api, rid, {"DONE"}, {"FAILED", "PARTIAL", "CANCELED"})


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def with_env(env: dict, start):
    """Runs `start()` with `env` added to os.environ (the daemon inherits it), then restores the environment."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_cog(data: bytes, path: Path) -> None:
    path.write_bytes(data)
    info = gdalinfo(path)
    assert info["size"] == [TILE_PX, TILE_PX]
    assert raster_epsg(info) == AOI_UTM_EPSG
    assert info["metadata"]["IMAGE_STRUCTURE"].get("LAYOUT") == "COG", info["metadata"]


# ---------------------------------------------------------------------------------------------------------------------
# Azure (Azurite)
# ---------------------------------------------------------------------------------------------------------------------


def azurite_binary() -> str | None:
    for cand in (os.environ.get("TESSERA_AZURITE_BLOB"), str(ROOT / "tests/.npm/node_modules/.bin/azurite-blob")):
        if cand and Path(cand).is_file():
            return cand
    return shutil.which("azurite-blob")


class Azure:
    """Shared-key signed requests to Azurite, independent of the daemon's object_store client."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint  # http://127.0.0.1:PORT/devstoreaccount1

    def request(self, method: str, path: str, query: dict | None = None) -> requests.Response:
        query = query or {}
        date = email.utils.formatdate(usegmt=True)
        headers = {"x-ms-date": date, "x-ms-version": AZURE_VERSION}
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{path}"
        resource += "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
        to_sign = f"{method}\n" + "\n" * 11 + canonical_headers + resource
        mac = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(mac).decode()}"
        url = f"{self.endpoint}/{quote(path)}"
        return requests.request(method, url, params=query, headers=headers, timeout=HTTP_TIMEOUT)

    def create_container(self, name: str) -> None:
        resp = self.request("PUT", name, {"restype": "container"})
        assert resp.status_code == 201, resp.text

    def list(self, container: str, prefix: str) -> list[str]:
        resp = self.request("GET", container, {"restype": "container", "comp": "list", "prefix": prefix})
        assert resp.status_code == 200, resp.text
        return sorted(e.text for e in ET.fromstring(resp.content).iter("Name"))

    def get(self, container: str, name: str) -> bytes:
        resp = self.request("GET", f"{container}/{name}")
        assert resp.status_code == 200, resp.text
        return resp.content


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    exe = azurite_binary()
    if exe is None:
        pytest.skip("azurite-blob not found: npm install --prefix tests/.npm azurite@3.37.0 (tests/run_all.sh does it)")
    port = free_port()
    location = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location), "--silent",
         "--skipApiVersionCheck"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: listening(port), 60, "azurite-blob to listen")
        yield Azure(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


# ---------------------------------------------------------------------------------------------------------------------
# GCS (gcp-storage-emulator + the XML-API shim)
# ---------------------------------------------------------------------------------------------------------------------


def _http_date(rfc3339: str) -> str:
    when = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return email.utils.format_datetime(when.astimezone(dt.timezone.utc), usegmt=True)


def _xml_api_shim(gserver, storage_cls_objects):
    """Adds HEAD, ETag/Last-Modified on GET/PUT, bucket-name decoding and ListObjectsV2 to gcp-storage-emulator (see the module docstring)."""
    from http import HTTPStatus

    objects = storage_cls_objects

    def with_meta(handler):
        def wrapped(request, response, storage, *args, **kwargs):
            handler(request, response, storage, *args, **kwargs)
            if response.status in (HTTPStatus.OK, HTTPStatus.PARTIAL_CONTENT):
                obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
                response["ETag"] = f'"{obj.get("md5Hash") or obj.get("generation")}"'
                response["Last-Modified"] = _http_date(obj["updated"])
                response["x-goog-generation"] = str(obj.get("generation", "1"))

        return wrapped

    def list_v2(request, response, storage, *args, **kwargs):
        if request.query.get("list-type", [""])[0] != "2":
            response.status = HTTPStatus.NOT_IMPLEMENTED
            return
        prefix = request.query.get("prefix", [None])[0]
        delimiter = request.query.get("delimiter", [None])[0]
        try:
            objs, prefixes = storage.get_file_list(request.params["bucket_name"], prefix, delimiter)
        except Exception:  # the emulator's NotFound
            response.status = HTTPStatus.NOT_FOUND
            return
        root = ET.Element("ListBucketResult")
        ET.SubElement(root, "Name").text = request.params["bucket_name"]
        ET.SubElement(root, "KeyCount").text = str(len(objs))
        ET.SubElement(root, "IsTruncated").text = "false"
        for obj in objs:
            c = ET.SubElement(root, "Contents")
            ET.SubElement(c, "Key").text = obj["name"]
            ET.SubElement(c, "LastModified").text = obj["updated"]
            ET.SubElement(c, "ETag").text = f'"{obj.get("md5Hash") or obj.get("generation")}"'
            ET.SubElement(c, "Size").text = str(obj["size"])
        for p in prefixes:
            ET.SubElement(ET.SubElement(root, "CommonPrefixes"), "Prefix").text = p
        response["Content-type"] = "application/xml"
        response.write_file(ET.tostring(root, xml_declaration=True, encoding="UTF-8"), "application/xml")

    patched = []
    for regex, handlers in gserver.HANDLERS:
        handlers = dict(handlers)
        if handlers.get(gserver.GET) is objects.download:
            handlers[gserver.GET] = with_meta(objects.download)
        if handlers.get(gserver.PUT) is objects.xml_upload:
            handlers[gserver.PUT] = with_meta(objects.xml_upload)
        patched.append((regex, handlers))
    # Last, so /wipe and / keep their own handlers.
    patched.append((r"^/(?P<bucket_name>[-.\w]+)$", {gserver.GET: list_v2}))
    gserver.HANDLERS = tuple(patched)

    class _DropBody:
        def __init__(self, raw):
            self.raw, self.drop = raw, False

        def write(self, data):
            return len(data) if self.drop else self.raw.write(data)

        def flush(self):
            self.raw.flush()

    def do_head(self):
        raw, sink = self.wfile, _DropBody(self.wfile)
        end_headers = self.end_headers

        def end_then_drop():
            end_headers()
            sink.drop = True

        self.wfile, self.end_headers = sink, end_then_drop
        try:
            gserver.Router(self).handle(gserver.GET)
        finally:
            self.wfile, self.end_headers = raw, end_headers

    gserver.RequestHandler.do_HEAD = do_head

    # object_store percent-encodes every character of the XML path but letters and digits (`/tessera%2Dgcs/a%2Fb`);
    # GCS decodes the bucket segment, the emulator's route regex does not. The object id is unquoted by the emulator.
    def decoding(method):
        def handler(self):
            path, sep, query = self.path.partition("?")
            head, _, rest = path.lstrip("/").partition("/")
            if head not in ("storage", "upload", "download", "b", "batch", "wipe", ""):
                path = "/" + unquote(head) + ("/" + rest if rest else "")
                self.path = path + sep + query
            return method(self)

        return handler

    for name in ("do_GET", "do_PUT", "do_HEAD"):
        setattr(gserver.RequestHandler, name, decoding(getattr(gserver.RequestHandler, name)))


@pytest.fixture(scope="module")
def gcs_endpoint():
    gserver = pytest.importorskip(
        "gcp_storage_emulator.server",
        reason="gcp-storage-emulator not installed: pip install gcp-storage-emulator (tests/run_all.sh does it)",
    )
    from gcp_storage_emulator.handlers import objects

    _xml_api_shim(gserver, objects)
    port = free_port()
    emulator = gserver.create_server("127.0.0.1", port, in_memory=True)
    emulator.start()
    try:
        wait_for(lambda: listening(port), 30, "gcp-storage-emulator to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        emulator.stop()


# ---------------------------------------------------------------------------------------------------------------------
# The daemon with both stores configured
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud_server(tmp_path_factory, azurite, gcs_endpoint):
    env = {
        "TESSERA_AZURE_USE_EMULATOR": "true",
        "TESSERA_AZURE_ENDPOINT": azurite.endpoint,
        "TESSERA_GCS_ENDPOINT": gcs_endpoint,
        "TESSERA_AZURE_MAX_RETRIES": "1",
        "TESSERA_GCS_MAX_RETRIES": "1",
    }
    srv = with_env(env, lambda: start_server(tmp_path_factory.mktemp("tessera-cloud"), clients=("alice",)))
    # Buckets are the operator's to grant (issue 12); the missing ones are granted too, so their tiles fail by name.
    for location in ("az://tessera-results", "gs://tessera-gcs", "az://no-such-container", "gs://no-such-bucket"):
        srv.grant("alice", location)
    try:
        yield srv
    finally:
        srv.stop()


def test_cog_output_on_azurite(cloud_server, azurite, tmp_path):
    azurite.create_container("tessera-results")
    api = cloud_server.api("alice")
    body = create_body(AOI_ONE, tile_path="az://tessera-results/runs")
    body["output"].update(cogOutput=True)
    rid, _ = run_job(api, body)
    (tile,) = api.tiles(rid)
    names = azurite.list("tessera-results", f"runs/{rid}/")
    assert names == [f"runs/{rid}/{tile['name']}/default.tif"], names
    check_cog(azurite.get("tessera-results", names[0]), tmp_path / "from-azurite.tif")
    assert not (cloud_server.data_dir / "az").exists()


def test_cog_output_on_the_gcs_emulator(cloud_server, gcs_endpoint, tmp_path):
    resp = requests.post(f"{gcs_endpoint}/storage/v1/b", params={"project": "test"}, json={"name": "tessera-gcs"},
                         timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text
    api = cloud_server.api("alice")
    body = create_body(AOI_ONE, tile_path="gs://tessera-gcs/<requestId>/<tileName>/<outputId>.<format>")
    body["output"].update(cogOutput=True)
    rid, _ = run_job(api, body)
    (tile,) = api.tiles(rid)
    # The emulator's own JSON API (not the shim) lists and downloads.
    listed = requests.get(f"{gcs_endpoint}/storage/v1/b/tessera-gcs/o", params={"prefix": f"{rid}/"},
                          timeout=HTTP_TIMEOUT).json()
    names = sorted(item["name"] for item in listed.get("items", []))
    assert names == [f"{rid}/{tile['name']}/default.tif"], listed
    data = requests.get(f"{gcs_endpoint}/download/storage/v1/b/tessera-gcs/o/{quote(names[0], safe='')}",
                        params={"alt": "media"}, timeout=HTTP_TIMEOUT)
    assert data.status_code == 200
    check_cog(data.content, tmp_path / "from-gcs.tif")

    # A fixed (not request-unique) path: the second run finds the object (a listing through object_store at
    # analysis) and, without overwrite or skipExisting, fails (§10.2); with skipExisting it is skipped.
    fixed = "gs://tessera-gcs/fixed/<tileName>/<outputId>.<format>"
    run_job(api, create_body(AOI_ONE, tile_path=fixed))
    again = api.create(create_body(AOI_ONE, tile_path=fixed))["id"]
    api.action(again, "start")
    wait_for_request_status(api, again, {"FAILED", "PARTIAL"}, {"DONE"})
    with cloud_server.db_connect_ro() as conn:
        errors = " ".join(row["error"] or "" for row in
                          conn.execute("SELECT error FROM tiles WHERE request_id = ?", (again,)))
    errors += " " + str(api.get_request(again).get("error") or "")
    assert "already exists" in errors and "gs://tessera-gcs/fixed/" in errors, errors
    skip = create_body(AOI_ONE, tile_path=fixed)
    skip["output"].update(skipExisting=True)
    run_job(api, skip)


def test_missing_container_and_bucket_fail_the_tiles_with_their_names(cloud_server):
    api = cloud_server.api("alice")
    for location, name in [("az://no-such-container/x", "no-such-container"),
                           ("gs://no-such-bucket/x", "no-such-bucket")]:
        rid = api.create(create_body(AOI_ONE, tile_path=location))["id"]
        api.action(rid, "start")
        wait_for_request_status(api, rid, {"FAILED", "PARTIAL"}, {"DONE"})
        with cloud_server.db_connect_ro() as conn:
            errors = " ".join(row["error"] or "" for row in
                              conn.execute("SELECT error FROM tiles WHERE request_id = ?", (rid,)))
        assert name in errors, (location, errors)


def test_unconfigured_gs_is_refused_not_written_locally(server):
    """The shared default server has no GCS/Azure settings: nothing may land under its data dir."""
    api = server.api("alice")
    server.grant("alice", "gs://bucket")  # granted, so the create passes and the tile meets the missing settings
    rid = api.create(create_body(AOI_ONE, tile_path="gs://bucket/x"))["id"]
    api.action(rid, "start")
    wait_for_request_status(api, rid, {"FAILED", "PARTIAL"}, {"DONE"})
    with server.db_connect_ro() as conn:
        errors = " ".join(row["error"] or "" for row in
                          conn.execute("SELECT error FROM tiles WHERE request_id = ?", (rid,)))
    assert "TESSERA_GCS_ENDPOINT" in errors, errors
    assert not any(p.name == "x" for p in server.data_dir.rglob("*"))
