"""grpc_etcd3py.py PORT... - python3-etcd3 (gRPC) against etcfsd.

Prints PASS/FAIL lines; run by grpc_etcd3py.sh with /usr/bin/python3.
"""
import sys
import threading
import time

import etcd3
import etcd3.exceptions

ports = [int(p) for p in sys.argv[1:]]
failed = 0


def check(name, cond, detail=""):
    global failed
    if cond:
        print("PASS " + name)
    else:
        failed += 1
        print("FAIL %s%s" % (name, ": " + str(detail) if detail else ""))


c = etcd3.client(host="127.0.0.1", port=ports[0], timeout=10)
other = etcd3.client(host="127.0.0.1", port=ports[-1], timeout=10)

# KV
c.put("/py/a", "1")
v, meta = c.get("/py/a")
check("put/get", v == b"1" and meta.key == b"/py/a" and meta.version == 1, (v, meta))
v, _ = other.get("/py/a")
check("read on another member", v == b"1", v)
prev = c.put("/py/a", "2", prev_kv=True)
check("put prev_kv", prev.prev_kv.value == b"1", prev)
c.put("/py/b", "3")
got = sorted((m.key, v) for v, m in c.get_prefix("/py/"))
check("get_prefix", got == [(b"/py/a", b"2"), (b"/py/b", b"3")], got)
check("get missing", c.get("/py/none") == (None, None))
check("put_if_not_exists (exists)", c.put_if_not_exists("/py/a", "x") is False)
check("put_if_not_exists (new)", c.put_if_not_exists("/py/c", "x") is True)
check("replace ok", c.replace("/py/c", "x", "y") is True)
check("replace stale", c.replace("/py/c", "x", "z") is False)
check("delete", c.delete("/py/c") is True and c.get("/py/c")[0] is None)
check("delete missing", c.delete("/py/c") is False)

# Txn
ok, resps = c.transaction(
    compare=[c.transactions.value("/py/a") == "2", c.transactions.version("/py/b") > 0],
    success=[c.transactions.put("/py/t", "yes"), c.transactions.get("/py/a")],
    failure=[c.transactions.put("/py/t", "no")])
check("txn success branch", ok and c.get("/py/t")[0] == b"yes", (ok, resps))
check("txn range response", resps[1][0][0] == b"2", resps)
ok, _ = c.transaction(compare=[c.transactions.value("/py/a") == "nope"],
                      success=[c.transactions.put("/py/t", "yes")],
                      failure=[c.transactions.delete("/py/t")])
check("txn failure branch", not ok and c.get("/py/t")[0] is None)

# Watch
events, it_cancel = c.watch("/py/w")
got = []


def consume():
    for ev in events:
        got.append(ev)
        if len(got) == 2:
            break


th = threading.Thread(target=consume)
th.start()
time.sleep(0.5)
other.put("/py/w", "w1")
other.delete("/py/w")
th.join(10)
it_cancel()
check("watch put+delete", len(got) == 2 and isinstance(got[0], etcd3.events.PutEvent)
      and isinstance(got[1], etcd3.events.DeleteEvent) and got[0].value == b"w1", got)

pev, pcancel = c.watch_prefix("/py/p/")
pgot = []


def consume_p():
    for ev in pev:
        pgot.append(ev.key)
        if len(pgot) == 3:
            break


th = threading.Thread(target=consume_p)
th.start()
time.sleep(0.5)
for k in ("/py/p/1", "/py/other", "/py/p/2", "/py/p/3"):
    other.put(k, "v")
th.join(10)
pcancel()
check("watch_prefix", pgot == [b"/py/p/1", b"/py/p/2", b"/py/p/3"], pgot)

cb_got = []
wid = c.add_watch_callback("/py/cb", lambda r: cb_got.extend(e.value for e in r.events))
time.sleep(0.3)
c.put("/py/cb", "cb1")
for _ in range(100):
    if cb_got:
        break
    time.sleep(0.1)
c.cancel_watch(wid)
check("watch callback", cb_got == [b"cb1"], cb_got)

rev = c.get("/py/a")[1].mod_revision
ev = c.watch_once("/py/a", timeout=5, start_revision=rev)
check("watch_once from a past revision", ev.value == b"2", ev)

# Leases
lease = c.lease(60)
c.put("/py/l", "lv", lease=lease)
check("lease ttl", 55 <= lease.remaining_ttl <= 60 and lease.granted_ttl == 60,
      (lease.remaining_ttl, lease.granted_ttl))
check("lease keys", lease.keys == [b"/py/l"], lease.keys)
r = list(lease.refresh())
check("lease refresh (keep-alive stream)", r and r[0].TTL == 60, r)
lease.revoke()
check("revoke deletes the key", c.get("/py/l")[0] is None)
info = c.get_lease_info(lease.id)
check("revoked lease ttl -1", info.TTL == -1, info)
try:
    c.revoke_lease(lease.id)
    check("revoke unknown lease", False, "no error")
except Exception as e:  # etcd3 raises grpc errors as-is for NotFound
    check("revoke unknown lease", "requested lease not found" in str(e), e)

# Locks
lock = c.lock("pylock", ttl=10)
check("lock acquire", lock.acquire(timeout=5))
lock2 = other.lock("pylock", ttl=10)
# timeout=0: this python3-etcd3's waiting path breaks on Debian's tenacity
# (a library bug, etcd too), so contention is probed without waiting
check("second lock refused while held", not lock2.acquire(timeout=0))
lock.release()
check("second lock after release", lock2.acquire(timeout=0))
lock2.release()
with c.lock("pylock2") as l3:
    check("lock context manager", l3.is_acquired())

# Cluster / maintenance
st = c.status()
check("status", st.version.startswith("3.4") and st.leader is not None, st.version)
members = list(c.members)
check("members", len(members) == len(ports) and all(m.client_urls for m in members),
      [(m.name, m.client_urls) for m in members])

# Compaction and its error
rev = c.put("/py/a", "3").header.revision
c.compact(rev)
check("read after compact", c.get("/py/a")[0] == b"3")
try:
    c.compact(1)
    check("compact an old revision fails", False, "no error")
except etcd3.exceptions.Etcd3Exception as e:
    check("compact an old revision fails", True)
except Exception as e:
    check("compact an old revision fails", "compacted" in str(e), e)

c.close()
other.close()
sys.exit(1 if failed else 0)
