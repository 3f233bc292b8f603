"""Tenant isolation of outputs (issue 12, rows 2, 3, 4 and 8), black box over HTTP with two clients.

The servers here run as `tessera serve` does by default: confined, with no `--allow-output-prefix`. Each attack of the
issue must fail with a clear 400 (the Sentinel Hub error body) at create or at PUT, or, for a symbolic link planted in
the client's folder, fail the request or its tile; and nothing may be written outside the client's space. "Outside" is
checked on the file system (every file under pytest's base temp dir outside the client's folder, /etc/profile.d, /root)
and, for S3, on moto's bucket listings.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import (
    AOI_ONE,
    assert_error,
    create_body,
    start_server,
    wait_for_request_status,
)
from test_outputs import moto_endpoint, run_job, tile_errors  # noqa: F401 - moto_endpoint is a fixture

PROCESS = "/api/v1/batch/process"
FIXED = "shared/<tileName>/<outputId>.<format>"


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int, str]]:
    """(size, mtime_ns, sha256) of every file under `root` that is not under one of `skip` (links not followed)."""
    found: dict[str, tuple[int, int, str]] = {}
    if not root.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not any((here / d) == s for s in skip)]
        for name in filenames:
            path = here / name
            try:
                st = path.lstat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "link"
            except OSError:
                continue
            found[str(path)] = (st.st_size, st.st_mtime_ns, digest)
    return found


def listing(path: str) -> set[str]:
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


class Outside:
    """Everything a client must not touch: the base temp dir minus its own folder (and the server's own db and logs,
    which the server itself writes), /etc/profile.d and /root."""

    def __init__(self, srv, client: str, basetemp: Path):
        self.srv, self.client, self.basetemp = srv, client, basetemp

    def take(self) -> tuple:
        skip = (self.srv.client_root(self.client),)
        files = {k: v for k, v in snapshot(self.basetemp, skip).items()
                 if Path(k).parent != self.srv.workdir}  # tessera.db, -wal, -shm, serve-*.log
        return files, listing("/etc/profile.d"), listing("/root")

    def assert_unchanged(self, before: tuple, what: str) -> None:
        after = self.take()
        added = sorted(set(after[0]) - set(before[0]))
        changed = sorted(k for k in before[0] if k in after[0] and after[0][k] != before[0][k])
        assert not added and not changed, f"{what}: files outside the client's folder: added {added}, changed {changed}"
        assert after[1] == before[1], f"{what}: /etc/profile.d changed: {sorted(after[1] ^ before[1])}"
        assert after[2] == before[2], f"{what}: /root changed: {sorted(after[2] ^ before[2])}"


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    """A confined server (no allowed prefix, the local s3:// stand-in) with clients alice and bob."""
    srv = start_server(tmp_path_factory.mktemp("isolation"), clients=("alice", "bob"), allow_output_prefixes=[])
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def basetemp(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def victim(tmp_path_factory) -> Path:
    """A folder outside every client's space, with one file in it."""
    path = tmp_path_factory.mktemp("victim")
    (path / "keep.txt").write_text("do not touch")
    return path


def userdata_body(tile_path: str) -> dict:
    body = create_body(AOI_ONE, tile_path=tile_path)
    body["processRequest"]["output"]["responses"] = [
        {"identifier": "userdata", "format": {"type": "application/json"}}]
    return body


def attacks(victim: Path, data_dir: Path) -> dict[str, tuple[dict, list[str]]]:
    """label -> (create body, keywords one of which the 400 message must contain)."""
    v = str(victim)
    with_id = create_body(AOI_ONE, tile_path="out")
    with_id["processRequest"]["output"]["responses"] = [
        {"identifier": "../../../etc/profile.d/x", "format": {"type": "image/tiff"}}]
    return {
        "absolute path": (create_body(AOI_ONE, tile_path=v), ["absolute"]),
        "absolute template": (create_body(AOI_ONE, tile_path=f"{v}/<tileName>.tif"), ["absolute"]),
        "file:// URL": (create_body(AOI_ONE, tile_path=f"file://{v}"), ["absolute"]),
        "the data dir itself": (create_body(AOI_ONE, tile_path=str(data_dir)), ["absolute"]),
        "/root": (create_body(AOI_ONE, tile_path="/root/.ssh"), ["absolute"]),
        "/proc (row 8 listing)": (create_body(AOI_ONE, tile_path="/proc/1/<tileName>.tif"), ["absolute"]),
        "..": (create_body(AOI_ONE, tile_path="../../../victim"), [".."]),
        "../ in a template": (create_body(AOI_ONE, tile_path="a/../../<tileName>.tif"), [".."]),
        "%2e%2e": (create_body(AOI_ONE, tile_path="%2e%2e/%2e%2e/victim"), ["%2e"]),
        "%2e%2e in file://": (create_body(AOI_ONE, tile_path=f"file://{v}/%2e%2e/%2e%2e/x"), ["%2e"]),
        "%2f": (create_body(AOI_ONE, tile_path="a%2f..%2f..%2fvictim"), ["%2f"]),
        "%252e double encoding": (create_body(AOI_ONE, tile_path="%252e%252e/x"), ["%25"]),
        "NUL": (create_body(AOI_ONE, tile_path="out\u0000/x"), ["U+0000", "control"]),
        "newline": (create_body(AOI_ONE, tile_path="out\n/<tileName>.sh"), ["U+000A", "control"]),
        "backslash": (create_body(AOI_ONE, tile_path="a\\..\\..\\victim"), ["..", "\\"]),
        "profile.d userData": (userdata_body("/etc/profile.d/<tileId>.sh"), ["absolute"]),
        "profile.d via file://": (userdata_body("file:///etc/profile.d/<tileId>.sh"), ["absolute"]),
        "output identifier with /": (with_id, ["identifier"]),
        "s3 stand-in //tmp": (create_body(AOI_ONE, tile_path="s3://granted//tmp/x"), ["empty"]),
        "s3 stand-in ..": (create_body(AOI_ONE, tile_path="s3://granted/../../../victim"), [".."]),
        "s3 stand-in %2e%2e": (create_body(AOI_ONE, tile_path="s3://granted/%2e%2e/x"), ["%2e"]),
        "ungranted stand-in bucket": (create_body(AOI_ONE, bucket_name="someone-elses"), ["not granted"]),
        "overlong segment": (create_body(AOI_ONE, tile_path="x" * 300), ["246"]),
    }


ATTACK_LABELS = list(attacks(Path("/v"), Path("/d")))


@pytest.mark.parametrize("label", ATTACK_LABELS)
def test_each_attack_is_a_400_at_create_and_writes_nothing(iso, victim, basetemp, label):
    iso.grant("alice", "s3://granted")  # so the stand-in cases fail on the path itself, not on the grant
    body, keywords = attacks(victim, iso.data_dir)[label]
    alice = iso.api("alice")
    outside = Outside(iso, "alice", basetemp)
    before_files, before_count = outside.take(), alice.requests_count()
    err = assert_error(alice.post(PROCESS, json=body), 400, keywords, code="COMMON_BAD_PAYLOAD", context=label)
    # The message names the user's own location, never the host path of the server's data.
    assert str(iso.data_dir) not in err["message"] or label == "the data dir itself", err["message"]
    assert alice.requests_count() == before_count, f"{label}: a rejected create stored a request"
    outside.assert_unchanged(before_files, label)
    assert listing(str(victim)) == {"keep.txt"}


def test_put_cannot_move_the_output_location(iso, victim):
    alice = iso.api("alice")
    rid = alice.create(create_body(AOI_ONE, tile_path="put-target"))["id"]
    for output in ({"defaultTilePath": str(victim)}, {"defaultTilePath": "../x"}, {"bucketName": "b"},
                   {"collectionId": "c", "defaultTilePath": "/etc/profile.d/<tileId>.sh"}):
        resp = alice.put(f"{PROCESS}/{rid}", json={"output": output})
        assert_error(resp, 400, ["cannot be updated"], code="COMMON_BAD_PAYLOAD", context=f"PUT output={output}")
    resp = alice.put(f"{PROCESS}/{rid}", json={"bucketName": "someone-elses"})
    assert_error(resp, 400, ["cannot be updated"], context="PUT bucketName")
    stored = alice.get_request(rid)
    assert stored["output"] == {"defaultTilePath": "put-target"}, stored["output"]
    assert "bucketName" not in stored or stored["bucketName"] is None
    # description and collectionId still can change.
    resp = alice.put(f"{PROCESS}/{rid}", json={"description": "ok", "output": {"collectionId": "c"}})
    assert resp.status_code == 200, resp.text


def test_relative_outputs_land_in_the_clients_own_folder(iso, basetemp):
    alice = iso.api("alice")
    outside = Outside(iso, "alice", basetemp)
    before = outside.take()
    rid, _ = run_job(alice, create_body(AOI_ONE, tile_path="results"))
    (tile,) = alice.tiles(rid)
    out = iso.client_root("alice") / "results" / rid / tile["name"] / "default.tif"
    assert out.is_file(), f"expected {out}"
    outside.assert_unchanged(before, "a relative job")
    assert not (iso.data_dir / "results").exists(), "relative paths no longer resolve in the shared data folder"


def test_a_symlink_planted_in_the_clients_folder_is_not_followed(iso, victim, basetemp):
    alice = iso.api("alice")
    root = iso.client_root("alice")
    root.mkdir(parents=True, exist_ok=True)
    (root / "link").symlink_to(victim, target_is_directory=True)
    outside = Outside(iso, "alice", basetemp)
    before = outside.take()

    # overwrite false: the §10.2 preflight refuses to list through the link (row 8), naming the user's path only.
    rid = alice.create(create_body(AOI_ONE, tile_path="link/<tileName>/<outputId>.<format>"))["id"]
    alice.action(rid, "start")
    failed = wait_for_request_status(alice, rid, {"FAILED"}, {"DONE", "PARTIAL"})
    error = failed.get("error") or ""
    assert "symbolic link" in error and "link" in error, error
    assert str(iso.data_dir) not in error and str(victim) not in error, error

    # overwrite true (no preflight): the tile fails instead of writing through the link.
    body = create_body(AOI_ONE, tile_path="link/<tileName>/<outputId>.<format>")
    body["output"]["overwrite"] = True
    rid = alice.create(body)["id"]
    alice.action(rid, "start")
    wait_for_request_status(alice, rid, {"FAILED", "PARTIAL"}, {"DONE"})
    errors = tile_errors(iso, alice, rid)
    assert "symbolic link" in errors, errors
    assert str(iso.data_dir) not in errors, errors

    # A link deeper down, and a link at the staging name of a fixed output.
    (root / "deep" / "er").mkdir(parents=True, exist_ok=True)
    (root / "deep" / "er" / "link").symlink_to(victim, target_is_directory=True)
    body = create_body(AOI_ONE, tile_path="deep/er/link/<tileName>.tif")
    body["output"]["overwrite"] = True
    rid = alice.create(body)["id"]
    alice.action(rid, "start")
    wait_for_request_status(alice, rid, {"FAILED", "PARTIAL"}, {"DONE"})
    assert "symbolic link" in tile_errors(iso, alice, rid)
    outside.assert_unchanged(before, "writes through planted links")
    assert listing(str(victim)) == {"keep.txt"}


def test_alice_with_overwrite_cannot_touch_bobs_outputs(iso, basetemp):
    alice, bob = iso.api("alice"), iso.api("bob")
    bob_rid, _ = run_job(bob, create_body(AOI_ONE, tile_path=FIXED))
    run_job(bob, create_body(AOI_ONE, tile_path="out"))
    bob_root = iso.client_root("bob")
    bob_before = snapshot(bob_root)
    assert len(bob_before) == 2, bob_before
    outside = Outside(iso, "alice", basetemp)
    before = outside.take()

    # The same relative path with overwrite: alice's own copy, bob's untouched.
    body = create_body(AOI_ONE, tile_path=FIXED)
    body["output"]["overwrite"] = True
    run_job(alice, body)
    assert any(iso.client_root("alice").joinpath("shared").rglob("default.tif"))
    # Bob's request folder named literally: still inside alice's folder.
    body = create_body(AOI_ONE, tile_path=f"out/{bob_rid}/<tileName>/<outputId>.<format>")
    body["output"]["overwrite"] = True
    run_job(alice, body)
    # Every way of naming bob's folder itself is refused at create.
    bob_id = iso.clients["bob"].client_id
    for path in (f"../{bob_id}/shared", f"../../clients/{bob_id}/out", str(bob_root / "shared"),
                 f"file://{bob_root}/out", f"%2e%2e/{bob_id}/shared"):
        body = create_body(AOI_ONE, tile_path=path)
        body["output"]["overwrite"] = True
        assert_error(alice.post(PROCESS, json=body), 400, context=f"alice -> {path}")
    # The s3 stand-in is shared, so its buckets are granted per client.
    iso.grant("bob", "s3://bob-bucket")
    run_job(bob, create_body(AOI_ONE, bucket_name="bob-bucket"))
    bob_bucket = snapshot(iso.data_dir / "s3" / "bob-bucket")
    body = create_body(AOI_ONE, bucket_name="bob-bucket")
    body["output"] = {"overwrite": True}
    assert_error(alice.post(PROCESS, json=body), 400, ["bob-bucket", "not granted"], context="alice -> bob's bucket")

    assert snapshot(bob_root) == bob_before, "alice changed bob's files"
    assert snapshot(iso.data_dir / "s3" / "bob-bucket") == bob_bucket
    # Nothing else changed outside alice's folder but what bob's own jobs wrote.
    bobs = (str(bob_root), str(iso.data_dir / "s3" / "bob-bucket"))
    after = outside.take()[0]
    new = sorted(k for k in set(after) - set(before[0]) if not k.startswith(bobs))
    changed = sorted(k for k in before[0] if k in after and after[k] != before[0][k])
    assert not new and not changed, f"outside alice's folder: new {new}, changed {changed}"


# ---------------------------------------------------------------------------------------------------------------------
# Buckets on a real S3 server (moto): granted per client by the operator (rows 3 and 4)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_iso(tmp_path_factory, moto_endpoint):  # noqa: F811
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with moto[server]; tests/run_all.sh installs it")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for bucket in ("bucket-a", "bucket-b", "operator-private"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="operator-private", Key="secret.txt", Body=b"the operator's")
    env = {"TESSERA_S3_ENDPOINT": moto_endpoint, "TESSERA_S3_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        srv = start_server(tmp_path_factory.mktemp("isolation-s3"), clients=("alice", "bob"),
                           allow_output_prefixes=[])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    srv.grant("alice", "s3://bucket-a")
    srv.grant("bob", "s3://bucket-b/bob/")
    try:
        yield srv, s3
    finally:
        srv.stop()


def objects(s3, bucket: str) -> dict[str, str]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed}


def test_buckets_are_the_operators_to_grant(s3_iso):
    srv, s3 = s3_iso
    alice, bob = srv.api("alice"), srv.api("bob")
    listed = srv._clients_cli("list")
    assert "grant\ts3://bucket-a" in listed and "grant\ts3://bucket-b/bob" in listed, listed

    # Granted: each client writes its own bucket or prefix.
    a_rid, _ = run_job(alice, create_body(AOI_ONE, tile_path="s3://bucket-a/run"))
    b_rid, _ = run_job(bob, create_body(AOI_ONE, tile_path="s3://bucket-b/bob/run"))
    assert any(k.startswith(f"run/{a_rid}/") for k in objects(s3, "bucket-a"))
    assert any(k.startswith(f"bob/run/{b_rid}/") for k in objects(s3, "bucket-b"))
    before = {b: objects(s3, b) for b in ("bucket-a", "bucket-b", "operator-private")}

    # Not granted: a 400 at create naming the location; no request stored, no object written or listed.
    refused = [
        (alice, create_body(AOI_ONE, tile_path="s3://bucket-b/bob/run"), "s3://bucket-b"),
        (alice, create_body(AOI_ONE, tile_path=f"s3://bucket-b/bob/run/{b_rid}/<tileName>/<outputId>.<format>"),
         "s3://bucket-b"),
        (alice, create_body(AOI_ONE, bucket_name="bucket-b"), "s3://bucket-b"),
        (alice, create_body(AOI_ONE, bucket_name="operator-private"), "s3://operator-private"),
        (bob, create_body(AOI_ONE, tile_path="s3://bucket-b/other"), "s3://bucket-b/other"),
        (bob, create_body(AOI_ONE, tile_path="s3://bucket-b/bobby/x"), "s3://bucket-b/bobby"),
        (bob, create_body(AOI_ONE, tile_path="s3://bucket-b/<tileName>/bob/x.tif"), "s3://bucket-b"),
        (bob, create_body(AOI_ONE, tile_path="s3://bucket-a/run"), "s3://bucket-a"),
        (bob, create_body(AOI_ONE, tile_path="s3://bucket-b/bob/../other/x"), ".."),
        (bob, create_body(AOI_ONE, tile_path="s3://bucket-b//bob/x"), "empty"),
    ]
    for api, body, name in refused:
        body.setdefault("output", {})["overwrite"] = True
        count = api.requests_count()
        err = assert_error(api.post(PROCESS, json=body), 400, code="COMMON_BAD_PAYLOAD",
                           context=f"{api.client.name} -> {body.get('output')} {body.get('bucketName')}")
        assert name in err["message"], err["message"]
        assert api.requests_count() == count
    after = {b: objects(s3, b) for b in before}
    assert after == before, "an ungranted create changed a bucket"
    assert not (srv.data_dir / "s3").exists(), "with S3 configured nothing goes to the local stand-in"

    # A revoke holds for new requests at once.
    srv.revoke("alice", "s3://bucket-a")
    assert_error(alice.post(PROCESS, json=create_body(AOI_ONE, tile_path="s3://bucket-a/run")), 400,
                 ["not granted"], context="after revoke")
    srv.grant("alice", "s3://bucket-a")


def test_grant_cli_refuses_unknown_clients_and_relative_or_malformed_locations(iso):
    import subprocess

    def grant(*args: str) -> subprocess.CompletedProcess:
        cmd = [str(iso.bin), "clients", "grant", "--db", str(iso.db), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    alice = iso.clients["alice"].client_id
    for args, needle in [
        (("no-such-client", "s3://b"), "no client"),
        ((alice, "results"), "relative"),
        ((alice, "s3://b/../c"), ".."),
        ((alice, "s3://b//c"), "empty"),
        ((alice, "ftp://b"), "supported"),
    ]:
        res = grant(*args)
        assert res.returncode != 0 and needle in res.stderr, (args, res.returncode, res.stderr)
    granted = [line.split("\t")[-1] for line in iso._clients_cli("list").splitlines() if "\tgrant\t" in line]
    assert "s3://b" not in granted, granted
    # The operator's spelling is normalised, so revoke matches grant.
    assert grant(alice, "file:///srv/team-a/").returncode == 0
    assert "grant\t/srv/team-a" in iso._clients_cli("list")
    iso.revoke("alice", "/srv/team-a")
    assert "/srv/team-a" not in iso._clients_cli("list")
