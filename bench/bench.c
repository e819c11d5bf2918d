/*
 * bench.c - etcfs-bench: a closed-loop load generator for etcfsd.
 *
 *   etcfs-bench [--endpoints URLS] [--conns N] [--clients M]
 *               [--duration S | --total N] [--key-size 16] [--val-size 128]
 *               [--keyspace 100000] [--path PATH] [--key KEY]
 *               put|range|range-serial|txn|fs-cat|fs-write|fs-list|watch-latency
 *
 * N connections (one efc_client each, so one nng stream each) are shared by
 * M client threads (client i uses connection i % N); every thread sends one
 * request, waits for the answer, records its latency and sends the next
 * (closed loop: offered load follows the server's speed, as etcd's
 * benchmark tool does).  Keys are drawn uniformly from the keyspace.  At
 * the end one summary line is printed:
 *
 *   put conns=16 clients=16 ops=12345 secs=10.00 ops/s=1234.5 p50=..ms
 *   p99=..ms p999=..ms max=..ms errors=0
 *
 * The fs-* workloads do the same with a syscall sequence on --path instead
 * of a request (fsload.c): fs-cat reads the file, fs-write writes it as a
 * shell's `echo v > path` does, fs-list lists the directory; run them on a
 * mount and on tmpfs to compare.  watch-latency puts --key through the
 * client (one put at a time) and times until inotify reports the
 * IN_CLOSE_WRITE of --path, the file naming that key on a mount.
 *
 * Latencies are kept exactly (one uint32 of microseconds per request, per
 * thread, merged and sorted at the end), so the percentiles are not
 * approximations.  The exit status is 1 when any request failed, 2 on bad
 * usage.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../proto/client.h"
#include "fsload.h"

enum mode {
	M_PUT,
	M_RANGE,
	M_RANGE_SERIAL,
	M_TXN,
	M_FS_CAT,
	M_FS_WRITE,
	M_FS_LIST,
	M_WATCH_LATENCY
};

struct cfg {
	const char *endpoints;
	int conns, clients;
	double duration_s;
	long long total;
	int key_size, val_size;
	long long keyspace;
	int mode;
	int dial_ms, cmd_ms;
	const char *path; /* fs-* and watch-latency */
	const char *key;  /* watch-latency */
};

static int fs_op(int mode)
{
	return mode == M_FS_CAT     ? FSL_CAT
	       : mode == M_FS_WRITE ? FSL_WRITE
	       : mode == M_FS_LIST  ? FSL_LIST
				    : 0;
}

struct worker {
	pthread_t th;
	int idx;
	efc_client *c;
	const struct cfg *cfg;
	uint32_t *lat_us; /* one per completed request */
	size_t n, cap;
	long long errors;
	char first_err[256];
};

static atomic_llong g_issued;
static atomic_int g_stop;
static int64_t g_deadline_ns;

/* xorshift64*: cheap per-thread randomness, no locking. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static void make_key(char *buf, int size, uint64_t idx)
{
	char num[32];
	int n = snprintf(num, sizeof num, "%llu", (unsigned long long)idx);
	/* zero-padded decimal, right-aligned in key_size bytes */
	int pad = size - n;
	if (pad < 0) {
		memcpy(buf, num + (n - size), (size_t)size);
		return;
	}
	memset(buf, '0', (size_t)pad);
	memcpy(buf + pad, num, (size_t)n);
}

/* One finished request: its latency, or (err != NULL) a failure. */
static void record(struct worker *w, int64_t dt_ns, const char *err)
{
	if (err) {
		if (!w->errors)
			snprintf(w->first_err, sizeof w->first_err, "%s", err);
		w->errors++;
		return;
	}
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 4096;
		uint32_t *nl = realloc(w->lat_us, nc * sizeof *nl);
		if (!nl) {
			w->errors++;
			return;
		}
		w->lat_us = nl;
		w->cap = nc;
	}
	int64_t us = dt_ns / 1000;
	w->lat_us[w->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct cfg *cfg = w->cfg;
	uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(w->idx + 1) ^ (uint64_t)clock_mono_ns();
	if (!seed)
		seed = 1;
	char *key = malloc((size_t)cfg->key_size + 1);
	char *val = malloc((size_t)cfg->val_size + 1);
	for (int i = 0; i < cfg->val_size; i++)
		val[i] = (char)('a' + rnd(&seed) % 26);
	ef_arena *a = ef_arena_new();
	for (;;) {
		if (atomic_load(&g_stop))
			break;
		if (cfg->total > 0) {
			if (atomic_fetch_add(&g_issued, 1) >= cfg->total)
				break;
		} else if (clock_mono_ns() >= g_deadline_ns) {
			break;
		}
		if (fs_op(cfg->mode)) {
			char err[256];
			int64_t f0 = clock_mono_ns();
			int e = fsload_op(fs_op(cfg->mode), cfg->path, val, (size_t)cfg->val_size,
					  err, sizeof err);
			record(w, clock_mono_ns() - f0, e ? err : NULL);
			continue;
		}
		make_key(key, cfg->key_size, rnd(&seed) % (uint64_t)cfg->keyspace);
		ef_buf k = {(const uint8_t *)key, (uint32_t)cfg->key_size};
		ef_buf v = {(const uint8_t *)val, (uint32_t)cfg->val_size};
		ef_msg req = {0}, resp;
		ef_compare cmp;
		ef_op op;
		switch (cfg->mode) {
		case M_PUT:
			req.type = EF_MSG_PUT;
			req.u.put.key = k;
			req.u.put.value = v;
			break;
		case M_RANGE:
		case M_RANGE_SERIAL:
			req.type = EF_MSG_RANGE;
			req.u.range.key = k;
			req.u.range.serializable = cfg->mode == M_RANGE_SERIAL;
			break;
		case M_TXN:
			/* if mod(key) < max then put: always true, but goes through
			 * the compare path like a real optimistic update */
			memset(&cmp, 0, sizeof cmp);
			cmp.result = EF_CMP_LESS;
			cmp.target = EF_CMP_MOD;
			cmp.key = k;
			cmp.number = INT64_MAX;
			memset(&op, 0, sizeof op);
			op.type = EF_OP_PUT;
			op.u.put.key = k;
			op.u.put.value = v;
			req.type = EF_MSG_TXN;
			req.u.txn.cmp = &cmp;
			req.u.txn.n_cmp = 1;
			req.u.txn.success = &op;
			req.u.txn.n_success = 1;
			break;
		}
		int64_t t0 = clock_mono_ns();
		int rv = efc_call(w->c, &req, &resp, a);
		int64_t dt = clock_mono_ns() - t0;
		ef_arena_reset(a);
		record(w, dt, rv ? efc_errmsg() : NULL);
	}
	ef_arena_free(a);
	free(key);
	free(val);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)n);
	if (i >= n)
		i = n - 1;
	return v[i] / 1000.0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: etcfs-bench [--endpoints URLS] [--conns N] [--clients M]\n"
		   "                   [--duration SECONDS | --total N] [--key-size 16]\n"
		   "                   [--val-size 128] [--keyspace 100000]\n"
		   "                   [--dial-timeout MS] [--command-timeout MS]\n"
		   "                   [--path PATH] [--key KEY]\n"
		   "                   put|range|range-serial|txn|fs-cat|fs-write|fs-list|"
		   "watch-latency\n");
}

static long long num_arg(const char *name, const char *s, long long min)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < min) {
		fprintf(stderr, "etcfs-bench: bad value for --%s: %s\n", name, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct cfg cfg = {.endpoints = getenv("ETCFSCTL_ENDPOINTS"),
			  .conns = 1,
			  .clients = 0,
			  .duration_s = 0,
			  .total = 0,
			  .key_size = 16,
			  .val_size = 128,
			  .keyspace = 100000,
			  .dial_ms = 2000,
			  .cmd_ms = 5000};
	static const struct option opts[] = {
		{"endpoints", required_argument, NULL, 'e'},
		{"conns", required_argument, NULL, 'c'},
		{"clients", required_argument, NULL, 'C'},
		{"duration", required_argument, NULL, 'd'},
		{"total", required_argument, NULL, 't'},
		{"key-size", required_argument, NULL, 'k'},
		{"val-size", required_argument, NULL, 'v'},
		{"keyspace", required_argument, NULL, 's'},
		{"dial-timeout", required_argument, NULL, 'D'},
		{"command-timeout", required_argument, NULL, 'T'},
		{"path", required_argument, NULL, 'p'},
		{"key", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'e':
			cfg.endpoints = optarg;
			break;
		case 'c':
			cfg.conns = (int)num_arg("conns", optarg, 1);
			break;
		case 'C':
			cfg.clients = (int)num_arg("clients", optarg, 1);
			break;
		case 'd': {
			char *end;
			cfg.duration_s = strtod(optarg, &end);
			if (*end == 's')
				end++;
			if (*end || cfg.duration_s <= 0) {
				fprintf(stderr, "etcfs-bench: bad value for --duration: %s\n",
					optarg);
				return 2;
			}
			break;
		}
		case 't':
			cfg.total = num_arg("total", optarg, 1);
			break;
		case 'k':
			cfg.key_size = (int)num_arg("key-size", optarg, 1);
			break;
		case 'v':
			cfg.val_size = (int)num_arg("val-size", optarg, 0);
			break;
		case 's':
			cfg.keyspace = num_arg("keyspace", optarg, 1);
			break;
		case 'D':
			cfg.dial_ms = (int)num_arg("dial-timeout", optarg, 1);
			break;
		case 'T':
			cfg.cmd_ms = (int)num_arg("command-timeout", optarg, 1);
			break;
		case 'p':
			cfg.path = optarg;
			break;
		case 'K':
			cfg.key = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	const char *mode = argv[optind];
	if (strcmp(mode, "put") == 0)
		cfg.mode = M_PUT;
	else if (strcmp(mode, "range") == 0)
		cfg.mode = M_RANGE;
	else if (strcmp(mode, "range-serial") == 0)
		cfg.mode = M_RANGE_SERIAL;
	else if (strcmp(mode, "txn") == 0)
		cfg.mode = M_TXN;
	else if (strcmp(mode, "fs-cat") == 0)
		cfg.mode = M_FS_CAT;
	else if (strcmp(mode, "fs-write") == 0)
		cfg.mode = M_FS_WRITE;
	else if (strcmp(mode, "fs-list") == 0)
		cfg.mode = M_FS_LIST;
	else if (strcmp(mode, "watch-latency") == 0)
		cfg.mode = M_WATCH_LATENCY;
	else {
		fprintf(stderr, "etcfs-bench: unknown workload '%s'\n", mode);
		usage(stderr);
		return 2;
	}
	if (cfg.key_size > EF_MAX_KEY_BYTES) {
		fprintf(stderr, "etcfs-bench: --key-size above %d\n", EF_MAX_KEY_BYTES);
		return 2;
	}
	if ((fs_op(cfg.mode) || cfg.mode == M_WATCH_LATENCY) && !cfg.path) {
		fprintf(stderr, "etcfs-bench: %s needs --path\n", mode);
		return 2;
	}
	if (cfg.mode == M_WATCH_LATENCY && !cfg.key) {
		fprintf(stderr, "etcfs-bench: watch-latency needs --key\n");
		return 2;
	}
	if (cfg.clients == 0)
		cfg.clients = cfg.conns;
	if (cfg.total == 0 && cfg.duration_s == 0)
		cfg.duration_s = 10;

	efc_client **cs = calloc((size_t)cfg.conns, sizeof *cs);
	for (int i = 0; i < cfg.conns; i++) {
		char err[256] = "";
		efc_opts eo = {.endpoints = cfg.endpoints,
			       .dial_timeout_ms = cfg.dial_ms,
			       .command_timeout_ms = cfg.cmd_ms};
		if (efc_open(&eo, &cs[i], err, sizeof err) != 0) {
			fprintf(stderr, "etcfs-bench: %s\n", err[0] ? err : "cannot open client");
			return 2;
		}
	}
	struct worker *ws = calloc((size_t)cfg.clients, sizeof *ws);
	int64_t start = clock_mono_ns();
	g_deadline_ns = start + (int64_t)(cfg.duration_s * 1e9);
	if (cfg.mode == M_WATCH_LATENCY) {
		/* one put at a time, in this thread */
		cfg.clients = 1;
		int e = fsload_watch_latency(cs[0], cfg.path, cfg.key, (size_t)cfg.val_size,
					     cfg.total, cfg.total > 0 ? INT64_MAX : g_deadline_ns,
					     cfg.cmd_ms, &ws[0].lat_us, &ws[0].n, &ws[0].errors,
					     ws[0].first_err, sizeof ws[0].first_err);
		if (e) {
			fprintf(stderr, "etcfs-bench: %s\n", ws[0].first_err);
			return 2;
		}
	}
	for (int i = 0; i < cfg.clients && cfg.mode != M_WATCH_LATENCY; i++) {
		ws[i].idx = i;
		ws[i].c = cs[i % cfg.conns];
		ws[i].cfg = &cfg;
		pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
	}
	size_t total = 0;
	long long errors = 0;
	for (int i = 0; i < cfg.clients; i++) {
		if (cfg.mode != M_WATCH_LATENCY)
			pthread_join(ws[i].th, NULL);
		total += ws[i].n;
		errors += ws[i].errors;
	}
	double secs = (double)(clock_mono_ns() - start) / 1e9;
	uint32_t *all = malloc((total ? total : 1) * sizeof *all);
	size_t off = 0;
	for (int i = 0; i < cfg.clients; i++) {
		if (ws[i].n)
			memcpy(all + off, ws[i].lat_us, ws[i].n * sizeof *all);
		off += ws[i].n;
		if (ws[i].errors)
			fprintf(stderr, "etcfs-bench: client %d: %lld errors, first: %s\n", i,
				ws[i].errors, ws[i].first_err);
		free(ws[i].lat_us);
	}
	qsort(all, total, sizeof *all, cmp_u32);
	printf("%s conns=%d clients=%d ops=%zu secs=%.2f ops/s=%.1f p50=%.3fms p99=%.3fms "
	       "p999=%.3fms max=%.3fms errors=%lld\n",
	       mode, cfg.conns, cfg.clients, total, secs, secs > 0 ? (double)total / secs : 0,
	       pct_ms(all, total, 0.50), pct_ms(all, total, 0.99), pct_ms(all, total, 0.999),
	       total ? all[total - 1] / 1000.0 : 0, errors);
	free(all);
	free(ws);
	free(cs);
	/* Exit without efc_close(): closing clients with live connections can
	 * block in the library (reported); the kernel closes the sockets. */
	fflush(stdout);
	fflush(stderr);
	_exit(errors ? 1 : 0);
}
