#!/bin/bash
# The HTTP/JSON gateway end to end: one real etcfsd with --listen-http-urls,
# every endpoint driven with curl, the JSON checked field by field (etcd 3.4
# grpc-gateway shapes), bad input of every kind, /health, /readyz, /metrics,
# slow clients.  Needs curl and python3 (for JSON checks only).
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "FAIL gw_curl: curl not installed"; exit 1; }
# The system interpreter starts in a fraction of the time a pyenv shim takes.
PY=$(command -v /usr/bin/python3 || command -v python3)
cluster_start 1
E="http://127.0.0.1:${M_HPORT[1]}"
wait_for 30 "HTTP gateway answers" curl -sf -o /dev/null "$E/health"

R="$T_DIR/resp" # body of the last response
ST=""           # HTTP status of the last response

post() { # post PATH BODY [curl flags...]
	local path=$1 body=$2; shift 2
	ST=$(curl -s -m 20 -o "$R" -w '%{http_code}' -X POST "$E$path" --data-binary "$body" "$@")
}
get() { # get PATH
	ST=$(curl -s -m 20 -o "$R" -w '%{http_code}' "$E$1")
}
# j 'python expression over d (the parsed body)' -> exit 0 when true
j() { "$PY" -c 'import json,sys,base64
d=json.load(open(sys.argv[1]))
b=lambda s: base64.b64encode(s.encode()).decode()
sys.exit(0 if eval(sys.argv[2]) else 1)' "$R" "$1" 2>/dev/null; }
b64() { printf '%s' "$1" | base64 -w0; }
# okj NAME STATUS EXPR: status and JSON check in one PASS/FAIL line
okj() {
	if [ "$ST" = "$2" ] && j "$3"; then pass "$1"; else fail "$1" "status $ST body $(head -c 400 "$R")"; fi
}

# ---------------------------------------------------------------- KV
post /v3/kv/range "{\"key\":\"$(b64 foo)\"}"
okj "range of a missing key: header only, no kvs, no count" 200 \
	'set(d)=={"header"} and set(d["header"])<={"cluster_id","member_id","revision","raft_term"} and d["header"]["cluster_id"].isdigit()'
post /v3/kv/put "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 bar)\"}"
okj "put answers a header with revision as a string" 200 'set(d)=={"header"} and int(d["header"]["revision"])>0'
rev1=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["header"]["revision"])' "$R")
post /v3/kv/put "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 baz)\",\"prev_kv\":true}"
okj "put with prev_kv returns the previous kv" 200 \
	'd["prev_kv"]=={"key":b("foo"),"create_revision":d["prev_kv"]["create_revision"],"mod_revision":d["prev_kv"]["mod_revision"],"version":"1","value":b("bar")}'
post /v3/kv/range "{\"key\":\"$(b64 foo)\"}"
okj "range returns kvs with etcd's field names, count as a string" 200 \
	'd["count"]=="1" and d["kvs"][0]["key"]==b("foo") and d["kvs"][0]["value"]==b("baz") and d["kvs"][0]["version"]=="2" and "lease" not in d["kvs"][0] and "more" not in d'
for k in a b c; do post /v3/kv/put "{\"key\":\"$(b64 pfx/$k)\",\"value\":\"$(b64 v$k)\"}"; done
post /v3/kv/range "{\"key\":\"$(b64 pfx/)\",\"range_end\":\"$(b64 pfx0)\",\"sort_order\":\"DESCEND\",\"sort_target\":\"KEY\",\"limit\":\"2\"}"
okj "prefix range, enum names, limit: more and total count" 200 \
	'[kv["key"] for kv in d["kvs"]]==[b("pfx/c"),b("pfx/b")] and d["more"] is True and d["count"]=="3"'
post /v3/kv/range "{\"key\":\"$(b64 pfx/)\",\"range_end\":\"$(b64 pfx0)\",\"sort_order\":1,\"sort_target\":4,\"keys_only\":true}"
okj "enum numbers accepted; keys_only leaves values out" 200 \
	'[kv["key"] for kv in d["kvs"]]==[b("pfx/a"),b("pfx/b"),b("pfx/c")] and all("value" not in kv for kv in d["kvs"])'
post /v3/kv/range "{\"key\":\"AA==\",\"range_end\":\"AA==\",\"count_only\":true,\"serializable\":true}"
okj "count_only over every key" 200 'int(d["count"])==4 and "kvs" not in d'
post /v3/kv/range "{\"key\":\"$(b64 foo)\",\"revision\":$rev1}"
okj "range at an old revision (number, not string)" 200 'd["kvs"][0]["value"]==b("bar")'

post /v3/kv/deleterange "{\"key\":\"$(b64 pfx/)\",\"range_end\":\"$(b64 pfx0)\",\"prev_kv\":true}"
okj "deleterange with prev_kv" 200 'd["deleted"]=="3" and len(d["prev_kvs"])==3'
post /v3/kv/deleterange "{\"key\":\"$(b64 nothing)\"}"
okj "deleterange of nothing: deleted omitted" 200 'set(d)=={"header"}'

# ---------------------------------------------------------------- txn
post /v3/kv/txn "{\"compare\":[{\"key\":\"$(b64 foo)\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\"$(b64 baz)\"}],\"success\":[{\"request_put\":{\"key\":\"$(b64 t1)\",\"value\":\"$(b64 1)\"}},{\"request_range\":{\"key\":\"$(b64 foo)\"}},{\"request_delete_range\":{\"key\":\"$(b64 nope)\"}}],\"failure\":[{\"request_put\":{\"key\":\"$(b64 t2)\",\"value\":\"$(b64 2)\"}}]}"
okj "txn success branch: succeeded, responses with inner revision headers" 200 \
	'd["succeeded"] is True and list(d["responses"][0])==["response_put"] and d["responses"][1]["response_range"]["kvs"][0]["value"]==b("baz") and d["responses"][1]["response_range"]["header"]=={"revision":d["header"]["revision"]} and "response_delete_range" in d["responses"][2]'
post /v3/kv/txn "{\"compare\":[{\"key\":\"$(b64 foo)\",\"result\":3,\"target\":2,\"mod_revision\":\"1\"},{\"key\":\"$(b64 foo)\",\"result\":\"LESS\",\"target\":\"VERSION\",\"version\":\"1\"}],\"failure\":[{\"request_range\":{\"key\":\"$(b64 t1)\"}}]}"
okj "txn failure branch: succeeded omitted" 200 \
	'"succeeded" not in d and d["responses"][0]["response_range"]["kvs"][0]["value"]==b("1")'
post /v3/kv/txn '{}'
okj "empty txn succeeds" 200 'd["succeeded"] is True and "responses" not in d'

# ---------------------------------------------------------------- compaction
post /v3/kv/compaction "{\"revision\":\"$((rev1 + 1))\"}"
okj "compaction" 200 'set(d)=={"header"}'
post /v3/kv/range "{\"key\":\"$(b64 foo)\",\"revision\":\"$rev1\"}"
okj "range below the compacted revision: 400, OutOfRange (11)" 400 \
	'd["code"]==11 and "compacted" in d["error"] and d["error"]==d["message"]'
post /v3/kv/compaction '{"revision":"99999999"}'
okj "compaction to a future revision: 400, code 11" 400 'd["code"]==11 and "future revision" in d["message"]'

# ---------------------------------------------------------------- leases
post /v3/lease/grant '{"TTL":"60","ID":"4242"}'
okj "lease grant with ID and TTL as etcd names them" 200 'd["ID"]=="4242" and d["TTL"]=="60"'
post /v3/lease/grant '{"TTL":60}'
okj "lease grant: server-chosen ID" 200 'int(d["ID"])>0 and d["TTL"]=="60"'
post /v3/kv/put "{\"key\":\"$(b64 leased)\",\"value\":\"$(b64 x)\",\"lease\":\"4242\"}"
okj "put attached to a lease" 200 'True'
post /v3/lease/keepalive '{"ID":"4242"}'
okj "keepalive is wrapped in result" 200 'd["result"]["ID"]=="4242" and d["result"]["TTL"]=="60" and "header" in d["result"]'
post /v3/lease/timetolive '{"ID":"4242","keys":true}'
okj "timetolive with keys" 200 'd["ID"]=="4242" and 0<int(d["TTL"])<=60 and d["grantedTTL"]=="60" and d["keys"]==[b("leased")]'
post /v3/kv/lease/timetolive '{"ID":"4242"}'
okj "timetolive under /v3/kv/lease/ (etcd's alias)" 200 'd["ID"]=="4242" and "keys" not in d'
post /v3/lease/leases '{}'
okj "leases lists both" 200 '{"ID":"4242"} in d["leases"] and len(d["leases"])==2'
post /v3/lease/revoke '{"ID":"4242"}'
okj "revoke" 200 'set(d)=={"header"}'
post /v3/kv/range "{\"key\":\"$(b64 leased)\"}"
okj "revoke deleted the attached key" 200 '"kvs" not in d'
post /v3/lease/revoke '{"ID":"4242"}'
okj "revoke of an unknown lease: 404, NotFound (5)" 404 'd=={"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}'
post /v3/lease/timetolive '{"ID":"4242"}'
okj "timetolive of an unknown lease: TTL -1" 200 'd["TTL"]=="-1" and d["ID"]=="4242"'
post /v3/lease/keepalive '{"ID":"4242"}'
okj "keepalive of an unknown lease: no TTL" 200 'd["result"]["ID"]=="4242" and "TTL" not in d["result"]'

# ---------------------------------------------------------------- cluster
post /v3/maintenance/status '{}'
okj "status: leader is this member, camelCase fields" 200 \
	'd["leader"]==d["header"]["member_id"] and int(d["raftIndex"])>0 and int(d["dbSize"])>0 and d["version"] and "raftAppliedIndex" in d'
post /v3/cluster/member/list '{}'
okj "member list" 200 'len(d["members"])==1 and d["members"][0]["name"]=="m1" and d["members"][0]["ID"]==d["header"]["member_id"] and d["members"][0]["peerURLs"]'
post /v3beta/kv/range "{\"key\":\"$(b64 foo)\"}"
okj "/v3beta prefix" 200 'd["kvs"][0]["value"]==b("baz")'

# ---------------------------------------------------------------- watch
W="$T_DIR/watch.out"
curl -s -N -m 60 -X POST "$E/v3/watch" \
	--data-binary "{\"create_request\":{\"key\":\"$(b64 w)\",\"prev_kv\":true}}" >"$W" 2>&1 &
T_PIDS+=("$!")
wpid=$!
wait_for 10 "watch created" grep -q '"created":true' "$W"
post /v3/kv/put "{\"key\":\"$(b64 w)\",\"value\":\"$(b64 1)\"}"
post /v3/kv/put "{\"key\":\"$(b64 w)\",\"value\":\"$(b64 2)\"}"
post /v3/kv/deleterange "{\"key\":\"$(b64 w)\"}"
wait_for 10 "delete event" grep -q DELETE "$W"
kill "$wpid" 2>/dev/null
check "watch stream: created, 2 puts (prev_kv on the second), 1 delete, one JSON result per line" \
	"$PY" -c 'import json,sys,base64
b=lambda s: base64.b64encode(s.encode()).decode()
lines=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r=[l["result"] for l in lines]
assert r[0]["created"] is True and "events" not in r[0], r[0]
ev=[e for x in r[1:] for e in x["events"]]
assert [e.get("type","PUT") for e in ev]==["PUT","PUT","DELETE"], ev
assert ev[0]["kv"]["value"]==b("1") and "prev_kv" not in ev[0]
assert ev[1]["prev_kv"]["value"]==b("1") and ev[1]["kv"]["version"]=="2"
assert set(ev[2]["kv"])=={"key","mod_revision"} and ev[2]["prev_kv"]["value"]==b("2")
' "$W"
post /v3/kv/range "{\"key\":\"$(b64 w)\"}"
nowrev=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["header"]["revision"])' "$R")
curl -s -N -m 3 -X POST "$E/v3/watch" \
	--data-binary "{\"create_request\":{\"key\":\"$(b64 w)\",\"start_revision\":\"$((nowrev - 2))\"}}" >"$W.2" 2>&1
check "watch from a past revision replays history" \
	"$PY" -c 'import json,sys
r=[json.loads(l)["result"] for l in open(sys.argv[1]) if l.strip()]
ev=[e for x in r for e in x.get("events",[])]
assert r[0]["created"] and [e.get("type","PUT") for e in ev]==["PUT","PUT","DELETE"], r' "$W.2"
curl -s -N -m 3 -X POST "$E/v3/watch" \
	--data-binary "{\"create_request\":{\"key\":\"$(b64 pw/)\",\"range_end\":\"$(b64 pw0)\",\"filters\":[\"NODELETE\"]}}" >"$W.3" 2>&1 &
T_PIDS+=("$!")
wait_for 10 "prefix watch created" grep -q '"created":true' "$W.3"
post /v3/kv/put "{\"key\":\"$(b64 pw/x)\",\"value\":\"$(b64 1)\"}"
post /v3/kv/deleterange "{\"key\":\"$(b64 pw/x)\"}"
post /v3/kv/put "{\"key\":\"$(b64 pw/y)\",\"value\":\"$(b64 2)\"}"
wait_for 10 "second prefix event" grep -q "$(b64 pw/y)" "$W.3"
check "prefix watch with NODELETE filter" \
	"$PY" -c 'import json,sys
r=[json.loads(l)["result"] for l in open(sys.argv[1]) if l.strip()]
ev=[e for x in r for e in x.get("events",[])]
assert [e.get("type","PUT") for e in ev]==["PUT","PUT"], ev' "$W.3"
post /v3/watch '{"create_request":{"key":5}}'
okj "watch with a bad create_request: 400" 400 'd["code"]==3'

# ---------------------------------------------------------------- health, metrics
get /health
okj "/health with a leader" 200 'd=={"health":"true"}'
get /readyz
okj "/readyz" 200 'd=={"ready":"true"}'
get /livez
okj "/livez" 200 'd=={"live":"true"}'
get /metrics
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$E/metrics")
expect_eq "/metrics content type" "$ctype" "text/plain; version=0.0.4; charset=utf-8"
check "/metrics: gateway and member metric names, valid text format, cumulative buckets" \
	"$PY" -c 'import re,sys
t=open(sys.argv[1]).read()
need=["etcfs_http_requests_total{method=\"put\",code=\"200\"}","etcfs_http_request_duration_seconds_bucket{method=\"range\",le=\"+Inf\"}",
 "etcfs_http_request_duration_seconds_sum{method=\"txn\"}","etcfs_http_connections ","etcd_server_has_leader","etcd_disk_wal_fsync_duration_seconds_bucket",
 "etcd_disk_backend_commit_duration_seconds_count","etcd_server_proposals_committed_total","etcd_mvcc_db_total_size_in_bytes"]
miss=[n for n in need if n not in t]
assert not miss, miss
pat=re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|[+-]Inf|NaN)$")
bad=[l for l in t.splitlines() if l and not l.startswith("#") and not pat.match(l)]
assert not bad, bad[:3]
prev={}
for l in t.splitlines():
  m=re.match(r"^(\w+)_bucket\{(.*)le=\"([^\"]+)\"\} (\d+)$", l)
  if m:
    k=(m.group(1),m.group(2)); v=int(m.group(4))
    assert v>=prev.get(k,0), l
    prev[k]=v
' "$R"

# ---------------------------------------------------------------- bad input
post /v3/kv/range '{bad'
okj "malformed JSON: 400, InvalidArgument, etcd error shape" 400 'd["code"]==3 and d["error"]==d["message"] and set(d)=={"error","message","code"}'
post /v3/kv/range '{"key":5}'
okj "wrong type for bytes: 400" 400 '"cannot unmarshal number" in d["error"]'
post /v3/kv/range '{"key":"Zm9v!"}'
okj "invalid base64: 400 with the byte offset" 400 'd["error"]=="illegal base64 data at input byte 4"'
post /v3/kv/range '{"key":"Zm9v","sort_order":"BOGUS"}'
okj "unknown enum name: 400" 400 'd["error"]=="unknown value \"BOGUS\" for enum etcdserverpb.RangeRequest_SortOrder"'
post /v3/kv/range '{"key":"Zm9v","limit":"x"}'
okj "non-numeric int64 string: 400" 400 'd["code"]==3'
post /v3/kv/range '{"key":"Zm9v","limit":{}}'
okj "object for an int64: 400" 400 'd["code"]==3'
post /v3/kv/range '[1,2]'
okj "array instead of object: 400" 400 '"cannot unmarshal array" in d["error"]'
post /v3/kv/put '{"value":"YmFy"}'
okj "put without key: etcd's message" 400 'd["error"]=="etcdserver: key is not provided" and d["code"]==3'
post /v3/kv/range ''
okj "empty body = empty request: key is not provided" 400 'd["error"]=="etcdserver: key is not provided"'
post /v3/kv/txn '{"success":[{"request_txn":{}}]}'
okj "nested txn refused" 400 'd["code"]==3'
post /v3/kv/range "$(head -c 100000 /dev/zero | tr '\0' '[')"
okj "100000 nested arrays: 400, no crash" 400 'd["code"]==3'
post /v3/kv/nope '{}'
okj "unknown path: 404 with an etcd-shaped body" 404 'd["code"]==5 and d["error"]=="Not Found"'
post /nope '{}'
okj "unknown top-level path: 404" 404 'd["code"]==5'
get /v3/kv/range
okj "GET on a POST endpoint: 405" 405 'd["code"]==12'
ST=$(curl -s -o "$R" -w '%{http_code}' -X DELETE "$E/v3/kv/range")
okj "DELETE method: 405" 405 'd["code"]==12'
head -c 4000000 /dev/zero | tr '\0' 'A' >"$T_DIR/big"
ST=$(curl -s -o "$R" -w '%{http_code}' -X POST "$E/v3/kv/put" --data-binary @"$T_DIR/big")
okj "4 MB body: 413 with etcd's too-large message" 413 'd["error"]=="etcdserver: request is too large"'
big_val=$(head -c 1000000 /dev/zero | tr '\0' 'x' | base64 -w0)
printf '{"key":"%s","value":"%s"}' "$(b64 bigkey)" "$big_val" >"$T_DIR/bigput"
ST=$(curl -s -o "$R" -w '%{http_code}' -X POST "$E/v3/kv/put" --data-binary @"$T_DIR/bigput")
okj "1 MB value (1.33 MB of base64) is accepted" 200 '"header" in d'
ST=$(curl -s -o "$R" -w '%{http_code}' -X POST "$E/v3/kv/put" -H 'Transfer-Encoding: chunked' --data-binary '{"key":"YQ=="}')
okj "chunked request body: 411" 411 'd["code"]==3'
check "garbage on the socket: 400 and the connection is closed" "$PY" -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=10)
s.sendall(b"\x00\x01\x02 garbage \xff\r\n\r\n")
data=b""
while True:
  x=s.recv(4096)
  if not x: break
  data+=x
assert data.startswith(b"HTTP/1.1 400 "), data' "${M_HPORT[1]}"
check "keep-alive: 200 requests on one connection, pipelined in pairs" "$PY" -c 'import http.client,json,sys
c=http.client.HTTPConnection("127.0.0.1",int(sys.argv[1]),timeout=10)
for i in range(200):
  c.request("POST","/v3/kv/range",body="{\"key\":\"Zm9v\"}")
  r=c.getresponse(); d=json.loads(r.read())
  assert r.status==200 and d["kvs"][0]["key"]=="Zm9v"
import socket
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=10)
req=b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n{\"key\":\"Zm9v\"}"
s.sendall(req+req)
data=b""
while data.count(b"\"count\":\"1\"}")<2:
  x=s.recv(65536)
  assert x
  data+=x
' "${M_HPORT[1]}"
start=$SECONDS
check "a stalled request head is answered 408 and closed within the head timeout" "$PY" -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=30)
s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\n")
data=b""
while True:
  x=s.recv(4096)
  if not x: break
  data+=x
assert data.startswith(b"HTTP/1.1 408 "), data' "${M_HPORT[1]}"
check "the stalled connection was closed after about 10 s" test $((SECONDS - start)) -le 20
post /v3/kv/put "{\"key\":\"$(b64 alive)\",\"value\":\"$(b64 yes)\"}"
okj "after all the bad input the member still serves" 200 '"header" in d'
get /metrics
grep -q '^etcfs_http_timeouts_total [1-9]' "$R" && pass "etcfs_http_timeouts_total counted the stalled client" || fail "etcfs_http_timeouts_total counted the stalled client"

t_finish
