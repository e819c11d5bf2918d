/*
 * main.c - etcfsctl: the command line client of etcfs, a work-alike of
 * etcdctl v3 (etcd 3.4).
 *
 * This file owns the global options, the cobra-like flag parser (flags may
 * come before or after the verb, "--flag=value" or "--flag value", "--"
 * ends flags), verb dispatch, and the error exits.  Every verb lives in
 * its own file (kv.c, watch.c, lease.c, cluster.c, concurrency.c) and talks
 * to etcfsd only through the client library (proto/client.h); output
 * formats are in print.c.
 *
 * Errors are one line "Error: <message>" on stderr and etcdctl's exit code:
 * 128 for bad arguments, 1 for a failed request.  A write whose outcome is
 * unknown (the request left but no answer came) says so in the message
 * (EF_E_OUTCOME_UNKNOWN from the library), never "failed".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

struct ctl_global g_ctl;

static const char *opt_endpoints;
static int opt_dial_ms = 2000, opt_cmd_ms = 5000;
static const char *opt_wfmt = "simple";
static int opt_hex, opt_debug;

static const struct ctl_flag global_flags[] = {
	{"endpoints", 0, F_STR, &opt_endpoints},
	{"dial-timeout", 0, F_DUR, &opt_dial_ms},
	{"command-timeout", 0, F_DUR, &opt_cmd_ms},
	{"write-out", 'w', F_STR, &opt_wfmt},
	{"hex", 0, F_BOOL, &opt_hex},
	{"debug", 0, F_BOOL, &opt_debug},
	{NULL, 0, 0, NULL},
};

void ctl_die(int code, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(code);
}

void ctl_die_rv(int rv)
{
	ctl_die(CTL_EXIT_ERROR, "%s", efc_errmsg());
}

/* ------------------------------------------------------------------ */
/* Durations.                                                           */

int64_t ctl_parse_duration_ms(const char *s)
{
	/* Go's time.ParseDuration: [sign] (number unit)+, or "0". */
	double total_ns = 0;
	if (!s || !*s)
		return -1;
	if (strcmp(s, "0") == 0)
		return 0;
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || v < 0)
			return -1;
		p = end;
		double unit;
		if (strncmp(p, "ns", 2) == 0)
			unit = 1, p += 2;
		else if (strncmp(p, "us", 2) == 0)
			unit = 1e3, p += 2;
		else if (strncmp(p, "\xc2\xb5s", 3) == 0)
			unit = 1e3, p += 3;
		else if (strncmp(p, "ms", 2) == 0)
			unit = 1e6, p += 2;
		else if (*p == 's')
			unit = 1e9, p += 1;
		else if (*p == 'm')
			unit = 60e9, p += 1;
		else if (*p == 'h')
			unit = 3600e9, p += 1;
		else
			return -1;
		total_ns += v * unit;
	}
	return (int64_t)(total_ns / 1e6 + 0.5);
}

/* Go's fmtFrac/fmtInt for Duration.String(): "1.5s", "2m3s", "4.245014ms". */
void ctl_format_duration(int64_t ns, char *out, size_t n)
{
	char frac[32];
	if (ns == 0) {
		snprintf(out, n, "0s");
		return;
	}
	const char *sign = ns < 0 ? "-" : "";
	uint64_t u = ns < 0 ? (uint64_t)-ns : (uint64_t)ns;
	if (u < 1000000000ull) {
		const char *unit;
		uint64_t div;
		if (u < 1000) {
			snprintf(out, n, "%s%lluns", sign, (unsigned long long)u);
			return;
		} else if (u < 1000000) {
			unit = "\xc2\xb5s";
			div = 1000;
		} else {
			unit = "ms";
			div = 1000000;
		}
		uint64_t ip = u / div, fp = u % div;
		int digits = div == 1000 ? 3 : 6;
		snprintf(frac, sizeof frac, ".%0*llu", digits, (unsigned long long)fp);
		size_t l = strlen(frac);
		while (l > 1 && frac[l - 1] == '0')
			frac[--l] = 0;
		if (l == 1)
			frac[0] = 0;
		snprintf(out, n, "%s%llu%s%s", sign, (unsigned long long)ip, frac, unit);
		return;
	}
	uint64_t secs = u / 1000000000ull, fp = u % 1000000000ull;
	snprintf(frac, sizeof frac, ".%09llu", (unsigned long long)fp);
	size_t l = strlen(frac);
	while (l > 1 && frac[l - 1] == '0')
		frac[--l] = 0;
	if (l == 1)
		frac[0] = 0;
	uint64_t h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
	if (h)
		snprintf(out, n, "%s%lluh%llum%llu%ss", sign, (unsigned long long)h,
			 (unsigned long long)m, (unsigned long long)s, frac);
	else if (m)
		snprintf(out, n, "%s%llum%llu%ss", sign, (unsigned long long)m,
			 (unsigned long long)s, frac);
	else
		snprintf(out, n, "%s%llu%ss", sign, (unsigned long long)s, frac);
}

int ctl_parse_hex_id(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s)
		return -1;
	long long v = strtoll(s, &end, 16);
	if (*end || errno)
		return -1;
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Flags.                                                               */

static const struct ctl_flag *lookup(const struct ctl_flag *t, const char *name, size_t n,
				     char shorthand)
{
	for (; t && t->name; t++) {
		if (shorthand ? t->shorthand == shorthand
			      : strlen(t->name) == n && strncmp(t->name, name, n) == 0)
			return t;
	}
	return NULL;
}

static void set_flag(const struct ctl_flag *f, const char *shown, const char *val)
{
	char *end;
	switch (f->kind) {
	case F_BOOL:
		if (!val || strcmp(val, "true") == 0 || strcmp(val, "1") == 0)
			*(int *)f->ptr = 1;
		else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
			*(int *)f->ptr = 0;
		else
			ctl_die(CTL_EXIT_ERROR,
				"invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: parsing "
				"\"%s\": invalid syntax",
				val, shown, val);
		break;
	case F_STR:
		*(const char **)f->ptr = val;
		break;
	case F_INT: {
		errno = 0;
		long long v = strtoll(val, &end, 10);
		if (!*val || *end || errno)
			ctl_die(CTL_EXIT_ERROR,
				"invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: parsing "
				"\"%s\": invalid syntax",
				val, shown, val);
		*(int64_t *)f->ptr = v;
		break;
	}
	case F_DUR: {
		int64_t ms = ctl_parse_duration_ms(val);
		if (ms < 0)
			ctl_die(CTL_EXIT_ERROR,
				"invalid argument \"%s\" for \"%s\" flag: time: invalid duration \"%s\"",
				val, shown, val);
		*(int *)f->ptr = (int)ms;
		break;
	}
	case F_UINT_HEX: {
		errno = 0;
		unsigned long long v = strtoull(val, &end, 16);
		if (!*val || *end || errno)
			ctl_die(CTL_EXIT_BAD_ARGS, "bad ID %s (expecting ID in Hex)", val);
		*(uint64_t *)f->ptr = v;
		break;
	}
	}
}

/* Does argv[i] (a flag) consume the next word?  Only for known global flags. */
static int global_takes_value(const char *a)
{
	if (a[0] == '-' && a[1] == '-') {
		const char *name = a + 2;
		if (strchr(name, '='))
			return 0;
		const struct ctl_flag *f = lookup(global_flags, name, strlen(name), 0);
		return f && f->kind != F_BOOL;
	}
	if (a[0] == '-' && a[1] && !a[2]) {
		const struct ctl_flag *f = lookup(global_flags, NULL, 0, a[1]);
		return f && f->kind != F_BOOL;
	}
	return 0;
}

int ctl_find_word(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return -1;
		if (a[0] == '-' && a[1]) {
			if (global_takes_value(a))
				i++;
			continue;
		}
		return i;
	}
	return -1;
}

void ctl_remove_arg(int *argc, char **argv, int i)
{
	memmove(&argv[i], &argv[i + 1], sizeof(char *) * (size_t)(*argc - i));
	(*argc)--;
}

void ctl_parse(int argc, char **argv, const struct ctl_flag *flags, struct ctl_args *out)
{
	out->pos = calloc((size_t)argc + 1, sizeof(char *));
	out->npos = 0;
	out->exec = NULL;
	out->nexec = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			out->exec = &argv[i + 1];
			out->nexec = argc - i - 1;
			break;
		}
		if (a[0] != '-' || !a[1]) {
			out->pos[out->npos++] = a;
			continue;
		}
		const struct ctl_flag *f;
		const char *val = NULL;
		char shown[128];
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			f = lookup(flags, name, n, 0);
			if (!f)
				f = lookup(global_flags, name, n, 0);
			if (!f)
				ctl_die(CTL_EXIT_ERROR, "unknown flag: --%.*s", (int)n, name);
			snprintf(shown, sizeof shown, "--%s", f->name);
			if (eq)
				val = eq + 1;
		} else {
			f = lookup(flags, NULL, 0, a[1]);
			if (!f)
				f = lookup(global_flags, NULL, 0, a[1]);
			if (!f)
				ctl_die(CTL_EXIT_ERROR, "unknown shorthand flag: '%c' in %s", a[1],
					a);
			snprintf(shown, sizeof shown, "-%c, --%s", f->shorthand, f->name);
			if (a[2])
				val = a[2] == '=' ? a + 3 : a + 2;
		}
		if (!val && f->kind != F_BOOL) {
			if (i + 1 >= argc)
				ctl_die(CTL_EXIT_ERROR, "flag needs an argument: %s", a);
			val = argv[++i];
		}
		set_flag(f, shown, val);
	}
	/* Global options take effect now. */
	const char *env = getenv("ETCFSCTL_ENDPOINTS");
	g_ctl.endpoints =
		opt_endpoints ? opt_endpoints : (env && *env ? env : "tcp://127.0.0.1:2378");
	g_ctl.dial_ms = opt_dial_ms;
	g_ctl.cmd_ms = opt_cmd_ms;
	g_ctl.hex = opt_hex;
	if (strcmp(opt_wfmt, "simple") == 0)
		g_ctl.wfmt = W_SIMPLE;
	else if (strcmp(opt_wfmt, "json") == 0)
		g_ctl.wfmt = W_JSON;
	else if (strcmp(opt_wfmt, "fields") == 0)
		g_ctl.wfmt = W_FIELDS;
	else if (strcmp(opt_wfmt, "table") == 0)
		g_ctl.wfmt = W_TABLE;
	else
		ctl_die(CTL_EXIT_BAD_FEATURE, "unknown output format %s", opt_wfmt);
}

/* ------------------------------------------------------------------ */
/* Client.                                                              */

efc_client *ctl_client(void)
{
	if (g_ctl.client)
		return g_ctl.client;
	char err[256] = "";
	efc_opts o = {.endpoints = g_ctl.endpoints,
		      .dial_timeout_ms = g_ctl.dial_ms,
		      .command_timeout_ms = g_ctl.cmd_ms};
	int rv = efc_open(&o, &g_ctl.client, err, sizeof err);
	if (rv != 0)
		ctl_die(CTL_EXIT_BAD_ARGS, "%s", err[0] ? err : ef_strerror(rv));
	return g_ctl.client;
}

int ctl_open_one(const char *endpoint, efc_client **out)
{
	char err[256] = "";
	efc_opts o = {.endpoints = endpoint,
		      .dial_timeout_ms = g_ctl.dial_ms,
		      .command_timeout_ms = g_ctl.cmd_ms};
	return efc_open(&o, out, err, sizeof err);
}

ef_arena *ctl_arena(void)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		ctl_die(CTL_EXIT_ERROR, "%s", ef_strerror(EF_E_NOMEM));
	return a;
}

void ctl_call(const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int rv = efc_call(ctl_client(), req, resp, a);
	if (rv != 0)
		ctl_die_rv(rv);
}

/* ------------------------------------------------------------------ */

static int cmd_version(int argc, char **argv)
{
	struct ctl_args a;
	static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
	ctl_parse(argc, argv, none, &a);
	printf("etcfsctl version: %s\n", CTL_VERSION);
	printf("API version: %s\n", CTL_API_VERSION);
	free(a.pos);
	return 0;
}

static void usage(FILE *f)
{
	fputs("NAME:\n"
	      "\tetcfsctl - A simple command line client for etcfs (etcdctl v3 work-alike).\n\n"
	      "USAGE:\n"
	      "\tetcfsctl [global flags] <command> [flags] [args]\n\n"
	      "COMMANDS:\n"
	      "\tget\t\t\tGets the key or a range of keys\n"
	      "\tput\t\t\tPuts the given key into the store\n"
	      "\tdel\t\t\tRemoves the specified key or range of keys [key, range_end)\n"
	      "\ttxn\t\t\tTxn processes all the requests in one transaction\n"
	      "\tcompaction\t\tCompacts the event history in etcfs\n"
	      "\twatch\t\t\tWatches events stream on keys or prefixes\n"
	      "\tlease grant|revoke|timetolive|list|keep-alive\n"
	      "\tmember list\t\tLists all members in the cluster\n"
	      "\tendpoint health|status\n"
	      "\tmove-leader\t\tTransfers leadership to another etcfs cluster member.\n"
	      "\tlock\t\t\tAcquires a named lock\n"
	      "\telect\t\t\tObserves and participates in leader election\n"
	      "\tversion\t\t\tPrints the version of etcfsctl\n\n"
	      "GLOBAL OPTIONS:\n"
	      "      --endpoints=tcp://127.0.0.1:2378\tcomma-separated endpoints (env ETCFSCTL_ENDPOINTS)\n"
	      "      --dial-timeout=2s\t\t\tdial timeout for client connections\n"
	      "      --command-timeout=5s\t\ttimeout for short running command (excluding dial timeout)\n"
	      "  -w, --write-out=\"simple\"\t\tset the output format (fields, json, simple, table)\n"
	      "      --hex[=false]\t\t\tprint byte strings as hex encoded strings\n",
	      f);
}

int main(int argc, char **argv)
{
	int ac = argc - 1;
	char **av = argv + 1;
	int i = ctl_find_word(ac, av);
	if (i < 0) {
		for (int j = 0; j < ac; j++)
			if (strcmp(av[j], "-h") == 0 || strcmp(av[j], "--help") == 0) {
				usage(stdout);
				return 0;
			}
		if (ac > 0) {
			/* flags only: validate them, e.g. --version-like misuse */
			struct ctl_args a;
			static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
			ctl_parse(ac, av, none, &a);
		}
		usage(stderr);
		return CTL_EXIT_BAD_ARGS;
	}
	char *verb = av[i];
	ctl_remove_arg(&ac, av, i);
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} verbs[] = {
		{"put", cmd_put},
		{"get", cmd_get},
		{"del", cmd_del},
		{"txn", cmd_txn},
		{"compact", cmd_compact},
		{"compaction", cmd_compact},
		{"watch", cmd_watch},
		{"lease", cmd_lease},
		{"endpoint", cmd_endpoint},
		{"member", cmd_member},
		{"move-leader", cmd_move_leader},
		{"lock", cmd_lock},
		{"elect", cmd_elect},
		{"version", cmd_version},
	};
	if (strcmp(verb, "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++)
		if (strcmp(verb, verbs[k].name) == 0) {
			int rc = verbs[k].fn(ac, av);
			/* No efc_close(): the process ends here and the kernel
			 * closes the connection; closing a client whose
			 * connection is still open could block at exit in the
			 * library (see the report), which a CLI must never do. */
			fflush(stdout);
			_exit(rc);
		}
	ctl_die(CTL_EXIT_ERROR, "unknown command \"%s\" for \"etcfsctl\"", verb);
}
