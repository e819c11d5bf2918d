/*
 * metrics.h - process-wide counters, gauges and histograms rendered in the
 * Prometheus text format (prefix metrics_).  Registration happens once at
 * start-up; updates are lock-free atomics and cost a few nanoseconds, so the
 * hot path may call them freely.  Shared by etcfsd and the etcfs mount.
 */
#ifndef EF_METRICS_H
#define EF_METRICS_H

#include <stdint.h>

#include "../proto/wire.h"

typedef struct metric metric;

/* name as Prometheus wants it (e.g. "etcd_server_proposals_committed_total"),
 * help text; labels is "" or a fixed label set such as "method=\"put\"". */
metric *metrics_counter(const char *name, const char *help, const char *labels);
metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* Exponential buckets in seconds: start, factor, count (etcd uses 0.001, 2, 14). */
metric *metrics_histogram(const char *name, const char *help, const char *labels, double start,
			  double factor, int count);

void metrics_inc(metric *m);
void metrics_add(metric *m, uint64_t v);
void metrics_set(metric *m, int64_t v);
void metrics_observe(metric *m, double seconds);

/* Gauges computed at scrape time. */
typedef int64_t (*metrics_fn)(void *ud);
metric *metrics_gauge_fn(const char *name, const char *help, const char *labels, metrics_fn fn,
			 void *ud);

/* Append the whole registry in text exposition format 0.0.4. */
void metrics_render(ef_wbuf *out);

#endif
