/*
 * errors.h - the one table of etcfs error codes.
 *
 * Every layer (codec, store, raft host, client library, CLI, FUSE mount,
 * HTTP gateway) returns `int`: 0 for success or a positive EF_E_* code.
 * The table below is an X-macro so the enum, the messages, the gRPC status
 * code used by the JSON gateway and the errno used by the mount can never
 * drift apart.  Messages that etcd also has are spelled exactly as etcd
 * spells them, because scripts grep for them.
 *
 * X(name, grpc_code, errno, message)
 */
#ifndef EF_ERRORS_H
#define EF_ERRORS_H

#define EF_ERROR_TABLE(X)                                                                          \
	X(EF_E_NOMEM, 8, ENOMEM, "out of memory")                                                  \
	X(EF_E_TRUNCATED, 3, EIO, "malformed message: truncated")                                  \
	X(EF_E_BAD_MAGIC, 3, EIO, "malformed message: bad magic")                                  \
	X(EF_E_VERSION, 3, EIO, "unsupported protocol version")                                    \
	X(EF_E_UNKNOWN_TYPE, 3, EIO, "unknown message type")                                       \
	X(EF_E_TOO_LARGE, 3, EFBIG, "message too large")                                           \
	X(EF_E_MALFORMED, 3, EIO, "malformed message")                                             \
	X(EF_E_INVALID, 3, EINVAL, "invalid argument")                                             \
	X(EF_E_EMPTY_KEY, 3, EINVAL, "etcdserver: key is not provided")                            \
	X(EF_E_KEY_TOO_LONG, 3, ENAMETOOLONG, "etcdserver: key is too long")                       \
	X(EF_E_REQUEST_TOO_LARGE, 3, EFBIG, "etcdserver: request is too large")                    \
	X(EF_E_TOO_MANY_OPS, 3, EINVAL, "etcdserver: too many operations in txn request")          \
	X(EF_E_DUPLICATE_KEY, 3, EINVAL, "etcdserver: duplicate key given in txn request")         \
	X(EF_E_NESTED_TXN, 3, EINVAL, "etcdserver: nested txn is not supported")                   \
	X(EF_E_COMPACTED, 11, ESTALE, "etcdserver: mvcc: required revision has been compacted")    \
	X(EF_E_FUTURE_REV, 11, EINVAL, "etcdserver: mvcc: required revision is a future revision") \
	X(EF_E_LEASE_NOT_FOUND, 5, ENOENT, "etcdserver: requested lease not found")                \
	X(EF_E_LEASE_EXISTS, 9, EEXIST, "etcdserver: lease already exists")                        \
	X(EF_E_LEASE_TTL_TOO_LARGE, 11, EINVAL, "etcdserver: too large lease TTL")                 \
	X(EF_E_LEASE_PROVIDED, 3, EINVAL, "etcdserver: lease is provided")                         \
	X(EF_E_VALUE_PROVIDED, 3, EINVAL, "etcdserver: value is provided")                         \
	X(EF_E_NO_SPACE, 8, ENOSPC, "etcdserver: mvcc: database space exceeded")                   \
	X(EF_E_NO_LEADER, 14, EIO, "etcdserver: no leader")                                        \
	X(EF_E_NOT_LEADER, 14, EIO, "etcdserver: not leader")                                      \
	X(EF_E_LEADER_CHANGED, 14, EIO, "etcdserver: leader changed")                              \
	X(EF_E_TIMEOUT, 14, EIO, "etcdserver: request timed out")                                  \
	X(EF_E_STOPPING, 14, EIO, "etcdserver: server stopped")                                    \
	X(EF_E_UNAVAILABLE, 14, EIO, "no endpoint reachable (request not sent)")                   \
	X(EF_E_OUTCOME_UNKNOWN, 4, EIO, "request sent but no reply: outcome unknown")              \
	X(EF_E_IO, 13, EIO, "I/O error")                                                           \
	X(EF_E_CORRUPT, 15, EIO, "data corruption detected")                                       \
	X(EF_E_CLUSTER_MISMATCH, 9, EIO, "message from a member of another cluster")               \
	X(EF_E_MEMBER_NOT_FOUND, 5, ENOENT, "etcdserver: member not found")                        \
	X(EF_E_BAD_LEADER_TRANSFEREE, 9, EINVAL, "etcdserver: bad leader transferee")              \
	X(EF_E_LOCKED, 9, EBUSY, "data dir is in use by another etcfsd")                           \
	X(EF_E_WATCH_CANCELED, 1, EIO, "watch canceled")                                           \
	X(EF_E_TXN_FAILED, 9, ESTALE, "compare failed: key changed since it was read")             \
	X(EF_E_EXISTS, 6, EEXIST, "key already exists")                                            \
	X(EF_E_NOT_FOUND, 5, ENOENT, "key not found")                                              \
	X(EF_E_PERMISSION, 7, EACCES, "permission denied")                                         \
	X(EF_E_READ_ONLY, 9, EROFS, "read-only")                                                   \
	X(EF_E_UNSUPPORTED, 12, ENOTSUP, "operation not supported")                                \
	X(EF_E_MEMBER_EXISTS, 9, EEXIST, "etcdserver: member ID already exist")                    \
	X(EF_E_PEER_URL_EXISTS, 9, EEXIST, "etcdserver: Peer URLs already exists")                 \
	X(EF_E_MEMBER_NOT_LEARNER, 9, EINVAL, "etcdserver: can only promote a learner member")     \
	X(EF_E_LEARNER_NOT_READY, 9, EAGAIN,                                                       \
	  "etcdserver: can only promote a learner member which is in sync with leader")            \
	X(EF_E_BAD_URLS, 3, EINVAL, "etcdserver: given member URLs are invalid")                   \
	X(EF_E_CONF_PENDING, 14, EAGAIN, "etcdserver: a membership change is in progress")

enum ef_error {
	EF_OK = 0,
#define EF_X_ENUM(name, grpc, errn, msg) name,
	EF_ERROR_TABLE(EF_X_ENUM)
#undef EF_X_ENUM
	EF_E__COUNT
};

/* Human message for code (never NULL; "success" for 0, "unknown error" past the table). */
const char *ef_strerror(int code);
/* gRPC status code etcd would use for this error (0 for success, 2 UNKNOWN past the table). */
int ef_grpc_code(int code);
/* errno the FUSE mount reports for this error (0 for success, EIO past the table).
 * This is the only errno mapping in the project. */
int ef_errno(int code);
/* Name such as "EF_E_COMPACTED" (for logs and tests). */
const char *ef_error_name(int code);

#endif
