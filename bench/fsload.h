/*
 * fsload.h - etcfs-bench's file-system workloads (fsload.c): operations on
 * a path (normally on an etcfs mount, or on tmpfs for comparison) and the
 * remote-put-to-inotify latency.
 */
#ifndef EF_BENCH_FSLOAD_H
#define EF_BENCH_FSLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/client.h"

enum fsload_op {
	FSL_CAT = 1,   /* open(O_RDONLY), read to EOF, close */
	FSL_WRITE = 2, /* what a shell's `echo v > path` does */
	FSL_LIST = 3   /* opendir, readdir to the end, closedir */
};

/* One operation on path; val/vlen is what FSL_WRITE writes.  Returns 0 or
 * an errno, with a message in err. */
int fsload_op(int op, const char *path, const char *val, size_t vlen, char *err, size_t errlen);

/* Remote-change latency: until total puts were measured or deadline_ns
 * (CLOCK_MONOTONIC) passed, put a new value of key through c and time until
 * inotify reports IN_CLOSE_WRITE on path (the file that names key on a
 * mount).  Latencies in microseconds are appended to *lat (malloc'ed, *n
 * of them); a put whose event does not come within timeout_ms counts in
 * *errors.  Returns 0, or an errno when the watch cannot be set up. */
int fsload_watch_latency(efc_client *c, const char *path, const char *key, size_t vlen,
			 long long total, int64_t deadline_ns, int timeout_ms, uint32_t **lat,
			 size_t *n, long long *errors, char *err, size_t errlen);

#endif
