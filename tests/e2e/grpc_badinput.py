"""grpc_badinput.py PORT - bad input on etcfsd's gRPC port, each followed by
proof that the member still serves (python grpcio for calls; raw sockets for
HTTP/2 protocol errors and PING, with frames built here by hand because
that is the input under test).  Prints PASS/FAIL lines."""
import socket
import struct
import sys
import time

import grpc
from etcd3.etcdrpc import rpc_pb2

port = int(sys.argv[1])
target = "127.0.0.1:%d" % port
failed = 0


def check(name, cond, detail=""):
    global failed
    if cond:
        print("PASS " + name)
    else:
        failed += 1
        print("FAIL %s%s" % (name, ": " + str(detail) if detail else ""))


ch = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1),
                                            ("grpc.max_receive_message_length", -1)])
raw = lambda path: ch.unary_unary(path)  # bytes in, bytes out


def call(path, body, md=None):
    try:
        return grpc.StatusCode.OK, raw(path)(body, timeout=10, metadata=md), ""
    except grpc.RpcError as e:
        return e.code(), None, e.details()


def serving(name):
    code, out, det = call("/etcdserverpb.KV/Put",
                          rpc_pb2.PutRequest(key=b"alive", value=b"1").SerializeToString())
    check(name + ": member still serves", code == grpc.StatusCode.OK, (code, det))


code, _, det = call("/etcdserverpb.KV/Range", b"\xff\xff\xff\xff")
check("malformed protobuf -> Internal", code == grpc.StatusCode.INTERNAL and "malformed" in det,
      (code, det))
serving("after malformed protobuf")

code, _, det = call("/etcdserverpb.KV/Nope", b"")
check("unknown method -> Unimplemented", code == grpc.StatusCode.UNIMPLEMENTED
      and det == "unknown method Nope for service etcdserverpb.KV", (code, det))
code, _, det = call("/foo.Bar/Baz", b"")
check("unknown service -> Unimplemented", code == grpc.StatusCode.UNIMPLEMENTED
      and det == "unknown service foo.Bar", (code, det))
# a registered method etcfs does not serve yet (MemberAdd was one until the
# membership work landed: it now refuses an empty peer URL list as etcd does)
code, _, det = call("/etcdserverpb.Auth/UserAdd", b"")
check("UserAdd -> Unimplemented", code == grpc.StatusCode.UNIMPLEMENTED
      and det == "method UserAdd not implemented", (code, det))
code, _, det = call("/etcdserverpb.Cluster/MemberAdd", b"")
check("MemberAdd without peer URLs -> InvalidArgument", code == grpc.StatusCode.INVALID_ARGUMENT
      and det == "etcdserver: given member URLs are invalid", (code, det))

# --max-request-bytes is the default 1.5 MiB: 1.8 MB is etcd's "request is
# too large", past 2 MiB the message is refused before decoding.
big = rpc_pb2.PutRequest(key=b"big", value=b"x" * 1800000).SerializeToString()
code, _, det = call("/etcdserverpb.KV/Put", big)
check("1.8 MB put -> request is too large", code == grpc.StatusCode.INVALID_ARGUMENT
      and det == "etcdserver: request is too large", (code, det))
huge = rpc_pb2.PutRequest(key=b"big", value=b"x" * 3000000).SerializeToString()
code, _, det = call("/etcdserverpb.KV/Put", huge)
check("3 MB message -> ResourceExhausted", code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, det))
serving("after oversize messages")

code, _, det = call("/etcdserverpb.KV/Range", rpc_pb2.RangeRequest(key=b"alive").SerializeToString(),
                    md=(("hasleader", "true"),))
check("hasleader with a leader -> OK", code == grpc.StatusCode.OK, (code, det))

# Many concurrent streams on one connection.
futs = [raw("/etcdserverpb.KV/Range").future(
    rpc_pb2.RangeRequest(key=b"alive").SerializeToString(), timeout=30) for _ in range(1000)]
oks = sum(1 for f in futs if rpc_pb2.RangeResponse.FromString(f.result()).count == 1)
check("1000 concurrent streams on one connection", oks == 1000, oks)

# Huge header block (header flood): refused, others unaffected.
code, _, det = call("/etcdserverpb.KV/Range", b"", md=(("x-flood", "a" * 200000),))
check("200 KB of headers refused", code != grpc.StatusCode.OK, code)
serving("after a header flood")


# Watch stream: RequestProgress is answered on the stream (watch_id -1,
# header revision = current); a watch from a compacted revision is
# cancelled with compact_revision set.  python3-etcd3's proto predates
# progress_request (field 3), so that request is written as its bytes.
import queue
import threading

reqs = queue.Queue()
watch = ch.stream_stream("/etcdserverpb.Watch/Watch",
                         request_serializer=lambda b: b,
                         response_deserializer=rpc_pb2.WatchResponse.FromString)
resps = watch(iter(reqs.get, None), timeout=30)
got = queue.Queue()
threading.Thread(target=lambda: [got.put(r) for r in resps], daemon=True).start()
reqs.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"alive"))
         .SerializeToString())
r = got.get(timeout=10)
check("watch created", r.created and r.watch_id >= 0, r)
reqs.put(b"\x1a\x00")
r = got.get(timeout=10)
rev = rpc_pb2.RangeResponse.FromString(raw("/etcdserverpb.KV/Range")(
    rpc_pb2.RangeRequest(key=b"alive").SerializeToString(), timeout=10)).header.revision
check("RequestProgress answered on the stream", r.watch_id == -1 and not r.events
      and r.header.revision == rev, (r, rev))
raw("/etcdserverpb.KV/Compact")(rpc_pb2.CompactionRequest(revision=rev).SerializeToString(),
                                timeout=10)
reqs.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
    key=b"alive", start_revision=1)).SerializeToString())
r = got.get(timeout=10)
if r.created and not r.canceled:
    r = got.get(timeout=10)
check("watch on a compacted revision cancelled with compact_revision",
      r.canceled and r.compact_revision == rev, r)
reqs.put(None)


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def read_frames(s, secs):
    s.settimeout(0.2)
    buf, frames, end = b"", [], time.time() + secs
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        if not d:
            frames.append(("closed",))
            break
        buf += d
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            frames.append((buf[3], buf[4], buf[9:9 + n]))
            buf = buf[9 + n:]
    return frames


# PING: answered with an ACK carrying the same data, no GOAWAY (type 7).
s = socket.create_connection(("127.0.0.1", port))
s.sendall(PREFACE + frame(4, 0, 0))
for i in range(3):
    s.sendall(frame(6, 0, 0, b"ping%04d" % i))
fr = read_frames(s, 1.5)
acks = [f for f in fr if f[0] == 6 and f[1] & 1]
check("PINGs answered with ACK", [f[2] for f in acks] == [b"ping%04d" % i for i in range(3)], fr)
check("no GOAWAY for client pings", not any(f[0] == 7 for f in fr), fr)
s.close()

# Protocol garbage after the preface: GOAWAY or close, others unaffected.
s = socket.create_connection(("127.0.0.1", port))
s.sendall(PREFACE + frame(4, 0, 0) + b"\x00\x00\x02\x01\x05\x00\x00\x00\x02\xff\xff" + b"\x17" * 200)
fr = read_frames(s, 3)
check("HTTP/2 garbage -> GOAWAY or close",
      any(f[0] == 7 for f in fr if len(f) == 3) or ("closed",) in fr, fr)
s.close()
serving("after HTTP/2 garbage")

# A DATA frame on a stream that was never opened, and a bad preface.
s = socket.create_connection(("127.0.0.1", port))
s.sendall(PREFACE + frame(4, 0, 0) + frame(0, 0, 7, b"hello"))
fr = read_frames(s, 2)
check("DATA on an idle stream -> GOAWAY or close",
      any(f[0] == 7 for f in fr if len(f) == 3) or ("closed",) in fr, fr)
s.close()
serving("after a DATA frame on an idle stream")
sys.exit(1 if failed else 0)
