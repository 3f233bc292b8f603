"""Shared fixtures and helpers for the Tessera acceptance tests.

Every test talks to a real `tessera serve` process started here on a free 127.0.0.1 port, with
its own SQLite database and data directory under pytest's tmp dir.  Clients are registered with
`tessera clients add` before the server starts.  Every wait is bounded in time.

The binary is $TESSERA_BIN, or ${CARGO_TARGET_DIR:-target}/debug/tessera relative to the repo root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Iterable

# oauthlib refuses a plain-http token URL unless this is set; it must be set before sentinelhub is used.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import pytest  # noqa: E402
import requests  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------------------------------
# Constants shared by the test modules
# ---------------------------------------------------------------------------------------------------------------------

SAMPLE_COLLECTION = "tessera-synthetic"  # covers any area; tessera-sample is 4 small footprints
TIME_RANGE = {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T23:59:59Z"}

# NDVI as FLOAT32, SIMPLE mosaicking.
EVALSCRIPT = """//VERSION=3
function setup() {
  return {input: ["B04", "B08"], output: {bands: 1, sampleType: "FLOAT32"}};
}
function evaluatePixel(s) {
  return [(s.B08 - s.B04) / (s.B08 + s.B04)];
}
"""

# AOIs (lon_min, lat_min, lon_max, lat_max) in EPSG:4326.  All lie inside the interior of the MGRS 100 km
# square 33TWM (UTM zone 33N, x 510000..570000, y 5040000..5090000), away from the 9.8 km overlap bands
# between neighbouring Sentinel-2 tiles, so that the number of grid-1 (10 km) tiles does not depend on how
# overlapping tiles are de-duplicated.  Expected grid-1 tile counts on the 10 km lattice are given.
AOI_ONE = (15.161, 45.887, 15.238, 45.95)  # 1 tile  (x 512.5-518.5 km, y 5081.5-5088.5 km)
AOI_TWO = (15.161, 45.887, 15.354, 45.95)  # 2 tiles
AOI_FOUR = (15.161, 45.806, 15.354, 45.941)  # 4 tiles (2 x 2)
AOI_NINE = (15.161, 45.716, 15.482, 45.94)  # 9 tiles (3 x 3)
AOI_THIRTY = (15.148, 45.527, 15.877, 45.947)  # 30 tiles (6 x 5)
AOI_UTM_EPSG = 32633

GRID1_TILE_SIZE = 10000.0

TERMINAL_REQUEST_STATUSES = {"DONE", "PARTIAL", "FAILED", "CANCELED"}
REQUEST_STATUSES = {"CREATED", "ANALYSING", "ANALYSIS_DONE", "PROCESSING", "DONE", "PARTIAL", "FAILED", "CANCELED"}
TILE_STATUSES = {"PENDING", "SCHEDULED", "QUEUED", "PROCESSING", "PROCESSED", "FAILED"}
USER_ACTIONS = {None, "NONE", "ANALYSE", "START", "CANCEL"}

HTTP_TIMEOUT = 60  # seconds, for every single HTTP call
STARTUP_TIMEOUT = 120  # seconds until /healthz answers 200
JOB_TIMEOUT = 300  # seconds for a (small) batch job to finish


# ---------------------------------------------------------------------------------------------------------------------
# Binary and server process
# ---------------------------------------------------------------------------------------------------------------------


def tessera_bin() -> Path:
    env_bin = os.environ.get("TESSERA_BIN")
    if env_bin:
        path = Path(env_bin)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
        if not target.is_absolute():
            target = REPO_ROOT / target
        path = target / "debug" / "tessera"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"tessera binary not found or not executable at {path}. Build it with `cargo build --bins` "
            "or set TESSERA_BIN (tests/run_all.sh does both).",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Client:
    name: str
    client_id: str
    client_secret: str


# Every server started in this pytest process, so that a failing test can show the server logs.
_ALL_SERVERS: list["TesseraServer"] = []

# pytest's base temp dir, set once per session: the default `--allow-output-prefix` of test servers (issue 12), so
# suites that write outputs to absolute tmp paths keep doing so. Isolation tests pass `allow_output_prefixes=[]`.
_BASETEMP: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _remember_basetemp(tmp_path_factory) -> None:
    _BASETEMP[:] = [tmp_path_factory.getbasetemp()]


@dataclass
class TesseraServer:
    """One `tessera serve` process with its own db and data dir inside `workdir`."""

    workdir: Path
    workers: int | None = None
    extra_args: list[str] = field(default_factory=list)
    # `--allow-output-prefix` values; None: pytest's base temp dir (see _BASETEMP).
    allow_output_prefixes: list[str] | None = None
    clients: dict[str, Client] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    port: int | None = None
    started_at: float = 0.0
    _starts: int = 0

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bin = tessera_bin()
        _ALL_SERVERS.append(self)

    # -- paths -------------------------------------------------------------------------------------------------------
    @property
    def db(self) -> Path:
        return self.workdir / "tessera.db"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def client_root(self, client: str | Client = "alice") -> Path:
        """Where a client's relative output paths land: <data>/clients/<client id>/."""
        c = self.clients[client] if isinstance(client, str) else client
        return self.data_dir / "clients" / c.client_id

    @property
    def log_path(self) -> Path:
        return self.workdir / f"serve-{self._starts}.log"

    @property
    def base_url(self) -> str:
        assert self.port is not None, "server was never started"
        return f"http://127.0.0.1:{self.port}"

    # -- clients -----------------------------------------------------------------------------------------------------
    def add_client(self, name: str) -> Client:
        cmd = [str(self.bin), "clients", "add", "--db", str(self.db), "--name", name]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.workdir)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(cmd)}` did not finish within 120 s", pytrace=False)
        if res.returncode != 0:
            pytest.fail(
                f"`{' '.join(cmd)}` exited with {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}",
                pytrace=False,
            )
        for line in reversed(res.stdout.strip().splitlines()):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and obj.get("client_id") and obj.get("client_secret"):
                client = Client(name, str(obj["client_id"]), str(obj["client_secret"]))
                self.clients[name] = client
                return client
        pytest.fail(
            f"`{' '.join(cmd)}` printed no JSON line with client_id and client_secret on stdout.\n"
            f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}",
            pytrace=False,
        )

    def grant(self, client: str, location: str) -> None:
        """`tessera clients grant`: let `client` write to a bucket/prefix or local prefix (works while running)."""
        self._clients_cli("grant", self.clients[client].client_id, location)

    def revoke(self, client: str, location: str) -> None:
        self._clients_cli("revoke", self.clients[client].client_id, location)

    def _clients_cli(self, *args: str) -> str:
        cmd = [str(self.bin), "clients", args[0], "--db", str(self.db), *args[1:]]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.workdir)
        if res.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` exited with {res.returncode}\nstderr:\n{res.stderr}", pytrace=False)
        return res.stdout

    # -- process -----------------------------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "TesseraServer":
        assert not self.alive(), "server already running"
        last_error = ""
        for _attempt in range(3):  # a freshly picked free port can be taken in between; retry then
            self._starts += 1
            self.port = free_port()
            cmd = [
                str(self.bin), "serve",
                "--listen", f"127.0.0.1:{self.port}",
                "--db", str(self.db),
                "--data", str(self.data_dir),
            ]
            if self.workers is not None:
                cmd += ["--workers", str(self.workers)]
            prefixes = self.allow_output_prefixes
            if prefixes is None:
                prefixes = [str(p) for p in _BASETEMP]
            for prefix in prefixes:
                cmd += ["--allow-output-prefix", prefix]
            cmd += list(self.extra_args)
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()/kill()
            log.write((" ".join(cmd) + "\n").encode())
            log.flush()
            self._log_file = log
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir, env=env
            )
            if self._wait_healthy():
                return self
            last_error = self.log_tail()
            in_use = "in use" in last_error.lower()
            self.kill()
            if not in_use:
                break
        pytest.fail(
            f"tessera serve did not become healthy (GET /healthz -> 200) within {STARTUP_TIMEOUT} s.\n"
            f"--- server log ({self.log_path}) ---\n{last_error}",
            pytrace=False,
        )

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if requests.get(self.base_url + "/healthz", timeout=5).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.1)
        return False

    def _close_log(self) -> None:
        log = getattr(self, "_log_file", None)
        if log is not None and not log.closed:
            log.close()

    def stop(self, timeout: float = 20) -> None:
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: simulate a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_log()

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    # -- API helpers -------------------------------------------------------------------------------------------------
    def api(self, client: str | Client = "alice") -> "Api":
        c = self.clients[client] if isinstance(client, str) else client
        return Api(self.base_url, c)

    def sh_config(self, client: str | Client = "alice"):
        c = self.clients[client] if isinstance(client, str) else client
        return sh_config(self.base_url, c)

    def db_connect_ro(self) -> contextlib.closing[sqlite3.Connection]:
        """A read-only connection to the server's SQLite database (safe while the server runs, WAL mode).
        Use as `with srv.db_connect_ro() as conn:`; it is closed at the end of the block."""
        if not self.db.exists():
            pytest.fail(f"database file {self.db} does not exist", pytrace=False)
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        return contextlib.closing(conn)


def start_server(workdir: Path, clients: Iterable[str] = ("alice", "bob", "carol"), **kwargs: Any) -> TesseraServer:
    srv = TesseraServer(workdir, **kwargs)
    for name in clients:
        srv.add_client(name)
    return srv.start()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> TesseraServer:
    """A running server (default worker count) with clients alice, bob and carol, shared by one test module."""
    srv = start_server(tmp_path_factory.mktemp("tessera"))
    try:
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------------------------------
# Show server logs of failing tests
# ---------------------------------------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._tessera_t0 = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    t0 = getattr(item, "_tessera_t0", 0.0)
    for srv in _ALL_SERVERS:
        if srv.alive() or srv.started_at >= t0:
            rep.sections.append((f"tessera server log ({srv.log_path}, last 80 lines)", srv.log_tail()))


# ---------------------------------------------------------------------------------------------------------------------
# Plain HTTP access
# ---------------------------------------------------------------------------------------------------------------------


def fetch_token(base_url: str, client: Client) -> str:
    resp = requests.post(
        base_url + "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.client_secret},
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code == 200, f"POST /oauth/token for {client.name}: {resp.status_code} {resp.text[:500]}"
    body = resp.json()
    assert body.get("access_token"), f"token response without access_token: {body}"
    return body["access_token"]


class Api:
    """A thin requests wrapper: base URL, Bearer token, timeouts, JSON helpers."""

    def __init__(self, base_url: str, client: Client | None, token: str | None = None):
        self.base_url = base_url
        self.client = client
        self.session = requests.Session()
        if token is None and client is not None:
            token = fetch_token(base_url, client)
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # -- batch helpers -----------------------------------------------------------------------------------------------
    def create(self, body: dict) -> dict:
        resp = self.post("/api/v1/batch/process", json=body)
        assert resp.status_code == 201, f"create: expected 201, got {resp.status_code}: {resp.text[:1000]}"
        return resp.json()

    def get_request(self, request_id: str) -> dict:
        resp = self.get(f"/api/v1/batch/process/{request_id}")
        assert resp.status_code == 200, f"GET request {request_id}: {resp.status_code} {resp.text[:1000]}"
        return resp.json()

    def action(self, request_id: str, action: str, expect: int = 204) -> requests.Response:
        resp = self.post(f"/api/v1/batch/process/{request_id}/{action}")
        assert resp.status_code == expect, (
            f"POST .../{action} on {request_id}: expected {expect}, got {resp.status_code}: {resp.text[:1000]}"
        )
        return resp

    def list_all(self, path: str, params: dict | None = None, max_pages: int = 1000) -> list[dict]:
        """Follow links.nextToken (sent back as ?viewtoken=) until it is absent."""
        params = dict(params or {})
        items: list[dict] = []
        for _ in range(max_pages):
            resp = self.get(path, params=params)
            assert resp.status_code == 200, f"GET {path} {params}: {resp.status_code} {resp.text[:1000]}"
            body = resp.json()
            assert isinstance(body.get("data"), list), f"GET {path}: body has no 'data' list: {str(body)[:500]}"
            items.extend(body["data"])
            token = (body.get("links") or {}).get("nextToken")
            if token is None or not body["data"]:
                return items
            params["viewtoken"] = token
        pytest.fail(f"GET {path}: still a nextToken after {max_pages} pages")

    def tiles(self, request_id: str, status: str | None = None) -> list[dict]:
        params = {"status": status} if status else None
        return self.list_all(f"/api/v1/batch/process/{request_id}/tiles", params)

    def requests_count(self) -> int:
        return len(self.list_all("/api/v1/batch/process"))


# ---------------------------------------------------------------------------------------------------------------------
# sentinelhub-py access
# ---------------------------------------------------------------------------------------------------------------------


def sh_config(base_url: str, client: Client):
    from sentinelhub import SHConfig

    return SHConfig(
        use_defaults=True,  # never read or write ~/.config/sentinelhub
        sh_base_url=base_url,
        sh_token_url=base_url + "/oauth/token",
        sh_client_id=client.client_id,
        sh_client_secret=client.client_secret,
        max_download_attempts=1,
    )


def sample_collection():
    from sentinelhub import DataCollection

    # define() returns the existing collection when called again with the same definition.
    return DataCollection.define("TESSERA_SAMPLE", api_id=SAMPLE_COLLECTION)


def sh_process_request(config, bbox: tuple[float, float, float, float], evalscript: str = EVALSCRIPT):
    """A SentinelHubRequest without size: the tiling grid decides the resolution."""
    from sentinelhub import CRS, BBox, MimeType, SentinelHubRequest

    return SentinelHubRequest(
        evalscript=evalscript,
        input_data=[
            SentinelHubRequest.input_data(
                data_collection=sample_collection(), time_interval=("2023-06-01", "2023-06-30")
            )
        ],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=BBox(bbox, crs=CRS.WGS84),
        config=config,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------------------------------


def process_request_body(
    bbox: tuple[float, float, float, float] = AOI_ONE,
    collection: str | None = SAMPLE_COLLECTION,
    evalscript: str | None = EVALSCRIPT,
) -> dict:
    body: dict[str, Any] = {
        "input": {
            "bounds": {"properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}, "bbox": list(bbox)},
            "data": [{"type": collection, "dataFilter": {"timeRange": dict(TIME_RANGE)}}],
        },
        "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]},
    }
    if evalscript is not None:
        body["evalscript"] = evalscript
    return body


def create_body(
    bbox: tuple[float, float, float, float] = AOI_ONE,
    *,
    grid_id: int = 1,
    resolution: float = 20,
    buffer: tuple[int, int] | None = None,
    tile_path: str | None = None,
    bucket_name: str | None = None,
    collection: str | None = SAMPLE_COLLECTION,
    evalscript: str | None = EVALSCRIPT,
    description: str | None = None,
) -> dict:
    tiling_grid: dict[str, Any] = {"id": grid_id, "resolution": resolution}
    if buffer:
        tiling_grid.update(bufferX=buffer[0], bufferY=buffer[1])
    body: dict[str, Any] = {
        "processRequest": process_request_body(bbox, collection, evalscript),
        "tilingGrid": tiling_grid,
    }
    if tile_path is not None:
        body["output"] = {"defaultTilePath": tile_path}
    if bucket_name is not None:
        body["bucketName"] = bucket_name
    if description is not None:
        body["description"] = description
    return body


# ---------------------------------------------------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25,
             describe: Callable[[], str] | None = None) -> Any:
    """Call check() until it returns a truthy value; fail after `timeout` seconds with a description."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            state = describe() if describe else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}. {state}", pytrace=False)
        time.sleep(interval)


def tile_summary(tiles: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tiles:
        counts[t.get("status")] = counts.get(t.get("status"), 0) + 1
    return counts


def wait_for_request_status(api: Api, request_id: str, targets: set[str], fail_on: set[str] = frozenset(),
                            timeout: float = JOB_TIMEOUT, interval: float = 0.3) -> dict:
    """Poll GET /process/{id} (and its tiles, for diagnostics) until its status is in `targets`."""
    last: dict = {}

    def check():
        nonlocal last
        last = api.get_request(request_id)
        status = last.get("status")
        assert status in REQUEST_STATUSES, f"request {request_id} has a status outside the v1 enum: {status!r}"
        if status in fail_on:
            tiles = api.tiles(request_id)
            pytest.fail(
                f"request {request_id} reached status {status} while waiting for {sorted(targets)}; "
                f"error={last.get('error')!r}; tiles by status: {tile_summary(tiles)}",
                pytrace=False,
            )
        return status in targets

    def describe():
        try:
            tiles = tile_summary(api.tiles(request_id))
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            tiles = f"<tiles unavailable: {exc}>"
        return f"Last status {last.get('status')!r}, error={last.get('error')!r}, tiles by status: {tiles}"

    wait_for(check, timeout, f"request {request_id} to reach {sorted(targets)}", interval, describe)
    return last


# ---------------------------------------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------------------------------------


def assert_error(resp: requests.Response, status: int, keywords: Iterable[str] = (), code: str | None = None,
                 context: str = "") -> dict:
    """Check an error response: HTTP status, {"error": {status, reason, message, code}}, message content."""
    where = f"{context}: " if context else ""
    assert resp.status_code == status, (
        f"{where}{resp.request.method} {resp.request.url}: expected HTTP {status}, got {resp.status_code}; "
        f"body: {resp.text[:1000]}"
    )
    try:
        body = resp.json()
    except ValueError:
        pytest.fail(f"{where}HTTP {status} response body is not JSON: {resp.text[:500]!r}", pytrace=False)
    err = body.get("error") if isinstance(body, dict) else None
    assert isinstance(err, dict), f"{where}error body must be {{'error': {{...}}}}, got: {body}"
    assert err.get("status") == status, f"{where}error.status must be {status} (int), got {err.get('status')!r}"
    reason = HTTPStatus(status).phrase
    assert err.get("reason") == reason, f"{where}error.reason must be {reason!r}, got {err.get('reason')!r}"
    assert isinstance(err.get("message"), str) and err["message"].strip(), f"{where}error.message empty: {err}"
    assert isinstance(err.get("code"), str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", err["code"]), (
        f"{where}error.code must be an UPPER_SNAKE_CASE string, got {err.get('code')!r}"
    )
    if code is not None:
        assert err["code"] == code, f"{where}error.code must be {code!r}, got {err['code']!r}"
    keywords = list(keywords)
    if keywords:
        msg = err["message"].lower()
        assert any(k.lower() in msg for k in keywords), (
            f"{where}error.message should mention the problem (one of {keywords}), got: {err['message']!r}"
        )
    return err


def epsg_of_crs_name(name: str) -> int:
    """'urn:ogc:def:crs:EPSG::32633', 'EPSG:32633' or 'http://www.opengis.net/def/crs/EPSG/0/32633' -> 32633."""
    m = re.search(r"EPSG(?:::|:|/0/)(\d+)\s*$", name or "")
    assert m, f"cannot read an EPSG code from CRS name {name!r}"
    return int(m.group(1))


def is_utm_epsg(epsg: int) -> bool:
    return 32601 <= epsg <= 32660 or 32701 <= epsg <= 32760


def check_tile_shape(tile: dict, request_id: str | None = None) -> tuple[float, float, int]:
    """Validate one BatchTile JSON; return (origin x, origin y, EPSG)."""
    assert isinstance(tile.get("id"), int) and not isinstance(tile.get("id"), bool), f"tile id must be an int: {tile}"
    assert isinstance(tile.get("name"), str) and tile["name"], f"tile must have a non-empty name: {tile}"
    assert "/" not in tile["name"] and not tile["name"].startswith("."), f"odd tile name {tile['name']!r}"
    assert tile.get("status") in TILE_STATUSES, f"tile status outside the enum {sorted(TILE_STATUSES)}: {tile}"
    if request_id is not None and "requestId" in tile:
        assert tile["requestId"] == request_id, f"tile.requestId {tile['requestId']} != {request_id}"
    origin = tile.get("origin")
    assert isinstance(origin, dict) and origin.get("type") == "Point", f"tile origin must be a GeoJSON Point: {tile}"
    coords = origin.get("coordinates")
    assert isinstance(coords, list) and len(coords) == 2, f"tile origin coordinates must be [x, y]: {origin}"
    crs_name = ((origin.get("crs") or {}).get("properties") or {}).get("name")
    epsg = epsg_of_crs_name(crs_name)
    geom = tile.get("geometry")
    assert isinstance(geom, dict) and geom.get("type") in ("Polygon", "MultiPolygon"), (
        f"tile geometry must be a GeoJSON (Multi)Polygon: {geom}"
    )
    return float(coords[0]), float(coords[1]), epsg


def check_tile_geometry_matches_origin(tile: dict, tile_size: float = GRID1_TILE_SIZE, tol: float = 5.0) -> None:
    """The WGS84 geometry reprojected to the tile CRS must be the unbuffered tile square whose UL corner is origin."""
    import shapely.geometry
    from pyproj import Transformer

    ox, oy, epsg = check_tile_shape(tile)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    shape = shapely.geometry.shape(tile["geometry"])
    xs, ys = [], []
    polys = shape.geoms if shape.geom_type == "MultiPolygon" else [shape]
    for poly in polys:
        for lon, lat in poly.exterior.coords:
            x, y = to_utm.transform(lon, lat)
            xs.append(x)
            ys.append(y)
    got = (min(xs), min(ys), max(xs), max(ys))
    want = (ox, oy - tile_size, ox + tile_size, oy)
    assert all(abs(a - b) <= tol for a, b in zip(got, want)), (
        f"tile {tile['name']}: geometry reprojected to EPSG:{epsg} spans {tuple(round(v, 1) for v in got)}, but "
        f"origin {ox, oy} (upper-left) and tile size {tile_size} give {want}"
    )


def aoi_in_crs(bbox: tuple[float, float, float, float], epsg: int):
    """The WGS84 bbox as a (densified) shapely polygon in the given CRS."""
    import numpy
    import shapely
    from pyproj import Transformer

    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    poly = shapely.segmentize(shapely.box(*bbox), 0.001)
    return shapely.transform(poly, lambda c: numpy.column_stack(to_utm.transform(c[:, 0], c[:, 1])))


def expected_grid1_tile_count(bbox: tuple[float, float, float, float], epsg: int = AOI_UTM_EPSG) -> int:
    """Number of 10 km lattice cells of the UTM zone that intersect the AOI with positive area."""
    import shapely

    aoi = aoi_in_crs(bbox, epsg)
    xmin, ymin, xmax, ymax = aoi.bounds
    count = 0
    for x in range(int(xmin // 10000) * 10000, int(xmax) + 1, 10000):
        for y in range(int(ymin // 10000) * 10000, int(ymax) + 1, 10000):
            if shapely.box(x, y, x + 10000, y + 10000).intersection(aoi).area > 0:
                count += 1
    return count


def gdalinfo(path: Path, stats: bool = False) -> dict:
    cmd = ["gdalinfo", "-json"] + (["-stats"] if stats else []) + [str(path)]
    env = dict(os.environ, GDAL_PAM_ENABLED="NO")  # never write .aux.xml files next to the outputs
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except FileNotFoundError:
        pytest.fail("gdalinfo is not installed (apt-get install gdal-bin; tests/run_all.sh does it)", pytrace=False)
    assert res.returncode == 0, f"`{' '.join(cmd)}` failed ({res.returncode}): {res.stderr[-2000:]}"
    assert "ERROR" not in res.stderr, f"`{' '.join(cmd)}` reported errors: {res.stderr[-2000:]}"
    return json.loads(res.stdout)


def raster_epsg(info: dict) -> int | None:
    epsg = (info.get("stac") or {}).get("proj:epsg")
    if epsg:
        return int(epsg)
    wkt = (info.get("coordinateSystem") or {}).get("wkt") or ""
    ids = re.findall(r'ID\["EPSG",\s*(\d+)\]', wkt)
    return int(ids[-1]) if ids else None


def check_output_raster(path: Path, tile: dict, resolution: float, buffer: tuple[int, int] = (0, 0),
                        tile_size: float = GRID1_TILE_SIZE, band_type: str = "Float32", stats: bool = False) -> dict:
    """The GeoTIFF of a tile: tile CRS, buffered upper-left origin, size, one band of `band_type`."""
    assert path.is_file(), f"output of tile {tile.get('name')} (id {tile.get('id')}) missing: {path}"
    info = gdalinfo(path, stats=stats)
    ox, oy, epsg = check_tile_shape(tile)
    got_epsg = raster_epsg(info)
    assert got_epsg == epsg, (
        f"{path}: raster CRS EPSG {got_epsg} != tile CRS EPSG {epsg}; "
        f"wkt tail: {((info.get('coordinateSystem') or {}).get('wkt') or '')[-300:]}"
    )
    bx, by = buffer
    width = round(tile_size / resolution) + 2 * bx
    height = round(tile_size / resolution) + 2 * by
    assert info.get("size") == [width, height], f"{path}: size {info.get('size')} != {[width, height]}"
    gt = info.get("geoTransform")
    want = [ox - bx * resolution, resolution, 0.0, oy + by * resolution, 0.0, -resolution]
    assert gt is not None and all(abs(a - b) < 1e-3 for a, b in zip(gt, want)), (
        f"{path}: geoTransform {gt} != {want} (buffered upper-left corner of tile {tile.get('name')}, "
        f"origin {ox, oy}, buffer {buffer} px at {resolution} m)"
    )
    bands = info.get("bands") or []
    assert len(bands) == 1, f"{path}: expected 1 band, got {len(bands)}"
    assert bands[0].get("type") == band_type, f"{path}: band type {bands[0].get('type')} != {band_type}"
    return info


def ledger_rows(conn: sqlite3.Connection, request_id: str) -> list[sqlite3.Row]:
    try:
        return conn.execute(
            "SELECT request_id, tile_id, kind, amount FROM pu_ledger WHERE request_id = ?", (request_id,)
        ).fetchall()
    except sqlite3.Error as exc:
        pytest.fail(f"cannot read pu_ledger(request_id, tile_id, kind, amount) from the database: {exc}",
                    pytrace=False)


def check_charges_match_tiles(conn: sqlite3.Connection, request_id: str, tiles: list[dict]) -> None:
    """Exactly one 'charge' row per tile, amount == tile cost, sum of charges == sum of costs."""
    rows = ledger_rows(conn, request_id)
    kinds = {r["kind"] for r in rows}
    assert kinds <= {"reserve", "charge", "refund", "minimum"}, f"unexpected pu_ledger kinds: {kinds}"
    charges = [r for r in rows if r["kind"] == "charge"]
    per_tile: dict[int, list[float]] = {}
    for r in charges:
        per_tile.setdefault(r["tile_id"], []).append(r["amount"])
    dup = {k: v for k, v in per_tile.items() if len(v) != 1}
    assert not dup, f"tiles charged more than once (tile_id -> amounts): {dup}"
    api_ids = {t["id"] for t in tiles}
    assert set(per_tile) == api_ids, (
        f"charged tile ids {sorted(per_tile)} != tile ids of the request {sorted(api_ids)}"
    )
    for t in tiles:
        assert per_tile[t["id"]][0] == pytest.approx(t["cost"], rel=1e-6, abs=1e-9), (
            f"tile {t['name']}: charge {per_tile[t['id']][0]} != API cost {t['cost']}"
        )
    total_charge = sum(r["amount"] for r in charges)
    total_cost = sum(t["cost"] for t in tiles)
    assert total_charge == pytest.approx(total_cost, rel=1e-6, abs=1e-9), (
        f"sum of charges {total_charge} != sum of tile costs {total_cost}"
    )
