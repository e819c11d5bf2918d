#!/usr/bin/python3
"""gw_etcd3gw.py - drive an etcd v3 JSON gateway with Debian's python3-etcd3gw.

    gw_etcd3gw.py --endpoint http://127.0.0.1:PORT [--label NAME]

The same checks pass against etcfsd's gateway and against a real etcd 3.4,
which is the point: tests/e2e/gw_etcd3gw.sh runs this file against both.
Every check prints "PASS <label>.<name>" or "FAIL <label>.<name>: why";
the exit status is 1 when anything failed.  Every wait has a deadline.
"""
import argparse
import os
import queue
import sys
import threading
import time
import traceback
import uuid

from etcd3gw.client import Etcd3Client
from etcd3gw import exceptions

ap = argparse.ArgumentParser()
ap.add_argument("--endpoint", default=os.environ.get("GW_ENDPOINT", "http://127.0.0.1:2379"))
ap.add_argument("--label", default=os.environ.get("GW_LABEL", "etcd3gw"))
args = ap.parse_args()

hostport = args.endpoint.split("://", 1)[-1].rstrip("/")
host, port = hostport.rsplit(":", 1)
client = Etcd3Client(host=host, port=int(port), api_path="/v3/", timeout=10)
# Keys of this run live under their own prefix, so reruns and a shared
# etcd do not see each other's data.
P = "gw-%s/" % uuid.uuid4().hex[:8]
failed = 0


def check(name):
    def run(fn):
        global failed
        try:
            fn()
            print("PASS %s.%s" % (args.label, name), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            print("FAIL %s.%s: %r" % (args.label, name, e), flush=True)
            traceback.print_exc(file=sys.stderr)
        return fn
    return run


def wait_until(pred, secs=10.0, what="condition"):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def next_event(it, secs=10.0):
    """Next item of an etcd3gw watch iterator, with a deadline."""
    q = queue.Queue()
    threading.Thread(target=lambda: q.put(next(it)), daemon=True).start()
    return q.get(timeout=secs)


@check("status_and_members")
def _():
    st = client.status()
    assert st["leader"] == st["header"]["member_id"] or int(st["leader"]) > 0, st
    assert "version" in st and "dbSize" in st, st
    members = client.members()
    assert len(members) >= 1 and all("ID" in m and "name" in m for m in members), members


@check("put_get")
def _():
    assert client.put(P + "a", "1") is True
    assert client.get(P + "a") == [b"1"]
    assert client.get(P + "missing") == []
    value, meta = client.get(P + "a", metadata=True)[0]
    assert value == b"1" and meta["key"] == (P + "a").encode(), meta
    assert meta["version"] == "1" and int(meta["create_revision"]) == int(meta["mod_revision"]), meta


@check("binary_and_unicode_values")
def _():
    blob = bytes(range(256))
    client.put(P + "bin", blob)
    assert client.get(P + "bin") == [blob]
    client.put(P + "uni", "h\u00e9llo \u2603".encode("utf-8"))
    assert client.get(P + "uni")[0].decode("utf-8") == "h\u00e9llo \u2603"


@check("get_prefix_sorted")
def _():
    for k in ("p/c", "p/a", "p/b"):
        client.put(P + k, k.upper())
    got = client.get_prefix(P + "p/", sort_order="descend", sort_target="key")
    assert [m["key"] for _, m in got] == [(P + k).encode() for k in ("p/c", "p/b", "p/a")], got
    assert [v for v, _ in got] == [b"P/C", b"P/B", b"P/A"]


@check("create_if_absent_and_replace")
def _():
    assert client.create(P + "c", "first") is True
    assert client.create(P + "c", "second") is False
    assert client.get(P + "c") == [b"first"]
    assert client.replace(P + "c", "first", "third") is True
    assert client.replace(P + "c", "first", "fourth") is False
    assert client.get(P + "c") == [b"third"]


@check("delete_and_delete_prefix")
def _():
    assert client.delete(P + "a") is True
    assert client.delete(P + "a") is False
    assert client.get(P + "a") == []
    assert client.delete_prefix(P + "p/") is True
    assert client.get_prefix(P + "p/") == []


@check("transaction")
def _():
    import base64

    def b(s):
        return base64.b64encode(s.encode()).decode()
    client.put(P + "t", "v1")
    r = client.transaction({
        "compare": [{"key": b(P + "t"), "result": "EQUAL", "target": "VALUE", "value": b("v1")}],
        "success": [{"request_put": {"key": b(P + "t2"), "value": b("yes")}},
                    {"request_range": {"key": b(P + "t")}}],
        "failure": [{"request_put": {"key": b(P + "t2"), "value": b("no")}}],
    })
    assert r["succeeded"] is True, r
    assert r["responses"][1]["response_range"]["kvs"][0]["value"] == b("v1"), r
    r = client.transaction({
        "compare": [{"key": b(P + "t"), "result": "GREATER", "target": "VERSION", "version": 5}],
        "success": [],
        "failure": [{"request_delete_range": {"key": b(P + "t2"), "prev_kv": True}}],
    })
    assert "succeeded" not in r, r
    d = r["responses"][0]["response_delete_range"]
    assert d["deleted"] == "1" and d["prev_kvs"][0]["value"] == b("yes"), r


@check("lease_grant_refresh_keys_revoke")
def _():
    lease = client.lease(ttl=60)
    assert lease.id > 0
    ttl = lease.ttl()
    assert 0 < ttl <= 60, ttl
    client.put(P + "leased", "x", lease=lease)
    assert lease.keys() == [(P + "leased").encode()]
    assert lease.refresh() == 60
    assert lease.revoke() is True
    assert client.get(P + "leased") == []
    assert lease.ttl() == -1
    assert lease.refresh() == -1


@check("lease_expiry_deletes_keys")
def _():
    lease = client.lease(ttl=2)
    client.put(P + "short", "x", lease=lease)
    assert client.get(P + "short") == [b"x"]
    wait_until(lambda: client.get(P + "short") == [], secs=20, what="the 2 s lease to expire")


@check("revoke_unknown_lease_is_404")
def _():
    from etcd3gw.lease import Lease
    try:
        Lease(987654321, client=client).revoke()
    except exceptions.Etcd3Exception as e:
        assert "requested lease not found" in str(e.detail_text), e.detail_text
        return
    raise AssertionError("revoking an unknown lease succeeded")


@check("watch_key")
def _():
    events, cancel = client.watch(P + "w")
    try:
        time.sleep(0.2)  # the watch is created asynchronously by etcd3gw
        client.put(P + "w", "1")
        ev = next_event(events)
        assert ev["kv"]["key"] == (P + "w").encode() and ev["kv"]["value"] == b"1", ev
        assert "type" not in ev, ev
        client.delete(P + "w")
        ev = next_event(events)
        assert ev.get("type") == "DELETE" and ev["kv"]["key"] == (P + "w").encode(), ev
    finally:
        cancel()


@check("watch_prefix_with_prev_kv")
def _():
    client.put(P + "wp/x", "old")
    events, cancel = client.watch_prefix(P + "wp/", prev_kv=True)
    try:
        time.sleep(0.2)
        client.put(P + "wp/x", "new")
        client.put(P + "wq", "outside the prefix")
        client.put(P + "wp/y", "y")
        ev1, ev2 = next_event(events), next_event(events)
        assert ev1["kv"]["value"] == b"new" and ev1["prev_kv"]["value"] == "b2xk", ev1
        assert ev2["kv"]["key"] == (P + "wp/y").encode(), ev2
    finally:
        cancel()


@check("watch_from_start_revision")
def _():
    client.put(P + "h", "h1")
    rev = int(client.get(P + "h", metadata=True)[0][1]["mod_revision"])
    client.put(P + "h", "h2")
    events, cancel = client.watch(P + "h", start_revision=rev)
    try:
        vals = [next_event(events)["kv"]["value"], next_event(events)["kv"]["value"]]
        assert vals == [b"h1", b"h2"], vals
    finally:
        cancel()


@check("watch_once_timeout")
def _():
    try:
        client.watch_once(P + "never", timeout=0.5)
    except exceptions.WatchTimedOut:
        return
    raise AssertionError("watch_once returned without an event")


@check("lock")
def _():
    lock = client.lock(P + "lk", ttl=30)
    assert lock.acquire() is True
    assert lock.is_acquired() is True
    other = client.lock(P + "lk", ttl=30)
    assert other.acquire() is False  # held: etcd3gw's acquire does not wait
    assert other.is_acquired() is False
    assert lock.release() is True
    assert lock.is_acquired() is False
    assert other.acquire() is True
    assert other.release() is True
    lock.lease.revoke()


@check("cleanup")
def _():
    client.delete_prefix(P)
    assert client.get_prefix(P) == []


print("%d failed" % failed, file=sys.stderr)
sys.exit(1 if failed else 0)
