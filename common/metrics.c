/*
 * metrics.c - the process-wide metric registry behind metrics.h, rendered in
 * the Prometheus text exposition format 0.0.4.
 *
 * Design:
 *   - Updates are the hot path (every request, every fsync), so a metric is
 *     a plain struct whose value lives in C11 atomics: a counter add or gauge
 *     set is one relaxed atomic operation, a histogram observation is a
 *     bucket search over at most a few dozen bounds plus two atomic adds and
 *     a CAS loop for the floating-point sum.  No lock is ever taken there.
 *   - Registration is rare (start-up, or the first time a label combination
 *     is seen) and takes the registry mutex; so does rendering, which only
 *     reads the atomics.  Metrics are never freed: a registered pointer stays
 *     valid for the life of the process, which is what lets callers cache it.
 *   - Registering the same name, label set and kind twice returns the first
 *     metric, so a lazily-registering caller may race harmlessly.
 *   - Rendering groups every series of one name under a single # HELP and
 *     # TYPE line (the format requires it), in registration order, and
 *     histograms are exposed with cumulative _bucket{le=...} series, a +Inf
 *     bucket, _sum and _count, as the Go client does.
 *
 * Must not: block, allocate or take a lock in metrics_inc/add/set/observe.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

enum metric_kind {
	M_COUNTER,
	M_GAUGE,
	M_GAUGE_FN,
	M_HISTOGRAM
};

struct metric {
	struct metric *next; /* registration order; immutable once linked */
	enum metric_kind kind;
	char *name, *help, *labels; /* labels: "" or `a="b",c="d"` (no braces) */
	_Atomic uint64_t u;         /* counter value, or histogram count */
	_Atomic int64_t i;          /* gauge value */
	_Atomic uint64_t sum_bits;  /* histogram sum, a double stored as its bits */
	metrics_fn fn;              /* M_GAUGE_FN */
	void *ud;
	int nb;                   /* histogram: finite bucket count */
	double *bounds;           /* nb upper bounds, strictly increasing */
	char **bound_str;         /* nb shortest round-trip renderings of bounds */
	_Atomic uint64_t *counts; /* nb + 1 per-bucket (not cumulative) counts; last = +Inf */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *reg_head, *reg_tail; /* guarded by reg_mu */

/* Shortest "%g" rendering that reads back as exactly v (what Go prints). */
static void fmt_double(char *out, size_t n, double v)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static struct metric *find_locked(const char *name, const char *labels, enum metric_kind kind)
{
	for (struct metric *m = reg_head; m; m = m->next)
		if (m->kind == kind && strcmp(m->name, name) == 0 && strcmp(m->labels, labels) == 0)
			return m;
	return NULL;
}

static void free_metric(struct metric *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->help);
	free(m->labels);
	free(m->bounds);
	if (m->bound_str)
		for (int k = 0; k < m->nb; k++)
			free(m->bound_str[k]);
	free(m->bound_str);
	free(m->counts);
	free(m);
}

/* Link m, or return the already registered twin (m is then freed). */
static struct metric *add(struct metric *m)
{
	struct metric *old;

	pthread_mutex_lock(&reg_mu);
	old = find_locked(m->name, m->labels, m->kind);
	if (old) {
		pthread_mutex_unlock(&reg_mu);
		free_metric(m);
		return old;
	}
	if (reg_tail)
		reg_tail->next = m;
	else
		reg_head = m;
	reg_tail = m;
	pthread_mutex_unlock(&reg_mu);
	return m;
}

static struct metric *alloc_metric(enum metric_kind kind, const char *name, const char *help,
				   const char *labels)
{
	struct metric *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->kind = kind;
	m->name = strdup(name);
	m->help = strdup(help ? help : "");
	m->labels = strdup(labels ? labels : "");
	if (!m->name || !m->help || !m->labels) {
		free_metric(m);
		return NULL;
	}
	return m;
}

metric *metrics_counter(const char *name, const char *help, const char *labels)
{
	struct metric *m = alloc_metric(M_COUNTER, name, help, labels);

	return m ? add(m) : NULL;
}

metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
	struct metric *m = alloc_metric(M_GAUGE, name, help, labels);

	return m ? add(m) : NULL;
}

metric *metrics_gauge_fn(const char *name, const char *help, const char *labels, metrics_fn fn,
			 void *ud)
{
	struct metric *m = alloc_metric(M_GAUGE_FN, name, help, labels);

	if (!m)
		return NULL;
	m->fn = fn;
	m->ud = ud;
	return add(m);
}

metric *metrics_histogram(const char *name, const char *help, const char *labels, double start,
			  double factor, int count)
{
	struct metric *m;
	double b = start;
	char tmp[64];

	if (count < 1 || count > 64 || !(start > 0) || !(factor > 1))
		return NULL;
	m = alloc_metric(M_HISTOGRAM, name, help, labels);
	if (!m)
		return NULL;
	m->nb = count;
	m->bounds = calloc((size_t)count, sizeof(double));
	m->bound_str = calloc((size_t)count, sizeof(char *));
	m->counts = calloc((size_t)count + 1, sizeof(*m->counts));
	if (!m->bounds || !m->bound_str || !m->counts) {
		free_metric(m);
		return NULL;
	}
	for (int k = 0; k < count; k++) {
		m->bounds[k] = b;
		fmt_double(tmp, sizeof(tmp), b);
		m->bound_str[k] = strdup(tmp);
		if (!m->bound_str[k]) {
			free_metric(m);
			return NULL;
		}
		b *= factor;
	}
	return add(m);
}

void metrics_inc(metric *m)
{
	if (m)
		atomic_fetch_add_explicit(&m->u, 1, memory_order_relaxed);
}

void metrics_add(metric *m, uint64_t v)
{
	if (!m)
		return;
	if (m->kind == M_GAUGE)
		atomic_fetch_add_explicit(&m->i, (int64_t)v, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&m->u, v, memory_order_relaxed);
}

void metrics_set(metric *m, int64_t v)
{
	if (m)
		atomic_store_explicit(&m->i, v, memory_order_relaxed);
}

void metrics_observe(metric *m, double seconds)
{
	int k;
	uint64_t old, nw;
	double d;

	if (!m || m->kind != M_HISTOGRAM)
		return;
	for (k = 0; k < m->nb; k++)
		if (seconds <= m->bounds[k])
			break;
	atomic_fetch_add_explicit(&m->counts[k], 1, memory_order_relaxed);
	old = atomic_load_explicit(&m->sum_bits, memory_order_relaxed);
	do {
		memcpy(&d, &old, sizeof(d));
		d += seconds;
		memcpy(&nw, &d, sizeof(nw));
	} while (!atomic_compare_exchange_weak_explicit(
		&m->sum_bits, &old, nw, memory_order_relaxed, memory_order_relaxed));
	atomic_fetch_add_explicit(&m->u, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Rendering                                                            */

static void put_str(ef_wbuf *out, const char *s)
{
	ef_wbuf_put(out, s, strlen(s));
}

/* HELP text escaping per the format: backslash and newline. */
static void put_help(ef_wbuf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put_str(out, "\\\\");
		else if (*s == '\n')
			put_str(out, "\\n");
		else
			ef_wbuf_u8(out, (uint8_t)*s);
	}
}

/* name{labels} or name{labels,extra} or name, followed by a space. */
static void put_series(ef_wbuf *out, const char *name, const char *suffix, const char *labels,
		       const char *extra)
{
	put_str(out, name);
	put_str(out, suffix);
	if (*labels || (extra && *extra)) {
		ef_wbuf_u8(out, '{');
		put_str(out, labels);
		if (*labels && extra && *extra)
			ef_wbuf_u8(out, ',');
		if (extra)
			put_str(out, extra);
		ef_wbuf_u8(out, '}');
	}
	ef_wbuf_u8(out, ' ');
}

static void render_one(ef_wbuf *out, struct metric *m)
{
	char num[64], le[96];
	uint64_t cum = 0, count, bits;
	double sum;

	switch (m->kind) {
	case M_COUNTER:
		put_series(out, m->name, "", m->labels, NULL);
		snprintf(num, sizeof(num), "%" PRIu64 "\n",
			 atomic_load_explicit(&m->u, memory_order_relaxed));
		put_str(out, num);
		break;
	case M_GAUGE:
	case M_GAUGE_FN:
		put_series(out, m->name, "", m->labels, NULL);
		snprintf(num, sizeof(num), "%" PRId64 "\n",
			 m->kind == M_GAUGE ? atomic_load_explicit(&m->i, memory_order_relaxed)
					    : m->fn(m->ud));
		put_str(out, num);
		break;
	case M_HISTOGRAM:
		/* Read the buckets first; count is taken as their total so the
		 * +Inf bucket always equals _count even under concurrent updates. */
		for (int k = 0; k <= m->nb; k++) {
			cum += atomic_load_explicit(&m->counts[k], memory_order_relaxed);
			if (k < m->nb)
				snprintf(le, sizeof(le), "le=\"%s\"", m->bound_str[k]);
			else
				snprintf(le, sizeof(le), "le=\"+Inf\"");
			put_series(out, m->name, "_bucket", m->labels, le);
			snprintf(num, sizeof(num), "%" PRIu64 "\n", cum);
			put_str(out, num);
		}
		count = cum;
		bits = atomic_load_explicit(&m->sum_bits, memory_order_relaxed);
		memcpy(&sum, &bits, sizeof(sum));
		put_series(out, m->name, "_sum", m->labels, NULL);
		fmt_double(num, sizeof(num) - 1, sum);
		put_str(out, num);
		ef_wbuf_u8(out, '\n');
		put_series(out, m->name, "_count", m->labels, NULL);
		snprintf(num, sizeof(num), "%" PRIu64 "\n", count);
		put_str(out, num);
		break;
	}
}

static const char *type_name(enum metric_kind k)
{
	switch (k) {
	case M_COUNTER:
		return "counter";
	case M_HISTOGRAM:
		return "histogram";
	default:
		return "gauge";
	}
}

void metrics_render(ef_wbuf *out)
{
	pthread_mutex_lock(&reg_mu);
	for (struct metric *m = reg_head; m; m = m->next) {
		struct metric *p;

		/* Skip names already rendered with an earlier series. */
		for (p = reg_head; p != m; p = p->next)
			if (strcmp(p->name, m->name) == 0)
				break;
		if (p != m)
			continue;
		put_str(out, "# HELP ");
		put_str(out, m->name);
		ef_wbuf_u8(out, ' ');
		put_help(out, m->help);
		put_str(out, "\n# TYPE ");
		put_str(out, m->name);
		ef_wbuf_u8(out, ' ');
		put_str(out, type_name(m->kind));
		ef_wbuf_u8(out, '\n');
		for (p = m; p; p = p->next)
			if (strcmp(p->name, m->name) == 0)
				render_one(out, p);
	}
	pthread_mutex_unlock(&reg_mu);
}
