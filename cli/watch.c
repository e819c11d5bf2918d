/*
 * watch.c - "etcfsctl watch": print (or run a command for) every event on
 * a key, a range or a prefix, like etcdctl.
 *
 * Events arrive on the client library's delivery thread (efc_watch_cb); the
 * callback prints them and, in exec mode (`watch KEY -- CMD ARGS`), runs
 * CMD once per event with ETCD_WATCH_* variables set exactly as etcdctl
 * sets them (values quoted like Go's %q) plus ETCFS_WATCH_* with the raw
 * values.  The main thread only waits: for SIGINT/SIGTERM (blocked in every
 * thread and taken with sigtimedwait), or for the server to cancel the
 * watch (compaction), which is an error as in etcdctl.  The library resumes
 * a watch after a failover from the revision after the last one delivered,
 * so events are neither lost nor repeated across member changes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

struct watch_ctx {
	char **exec;
	int nexec;
	volatile int canceled; /* set by the callback */
	char reason[300];
};

static char *quoted(const uint8_t *p, size_t n)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		return strdup("\"\"");
	ctl_quote(f, p, n);
	fclose(f);
	return s;
}

static char *env_kv(const char *name, const uint8_t *p, size_t n)
{
	char *s = malloc(strlen(name) + n + 2);
	size_t l = strlen(name);
	memcpy(s, name, l);
	s[l] = '=';
	/* NUL bytes cannot be passed in the environment: cut there */
	size_t k;
	for (k = 0; k < n && p[k]; k++)
		s[l + 1 + k] = (char)p[k];
	s[l + 1 + k] = 0;
	return s;
}

static void run_exec(struct watch_ctx *x, const ef_event *e, const ef_resp_header *h)
{
	const char *type = e->type == EF_EVENT_DELETE ? "DELETE" : "PUT";
	char *qt = quoted((const uint8_t *)type, strlen(type));
	char *qk = quoted(e->kv.key.p, e->kv.key.n);
	char *qv = quoted(e->kv.value.p, e->kv.value.n);
	char rev[64], frev[64];
	snprintf(rev, sizeof rev, "%lld", (long long)h->revision);
	snprintf(frev, sizeof frev, "%lld", (long long)e->kv.mod_revision);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char buf[128];
		snprintf(buf, sizeof buf, "%s", rev);
		setenv("ETCD_WATCH_REVISION", buf, 1);
		setenv("ETCD_WATCH_EVENT_TYPE", qt, 1);
		setenv("ETCD_WATCH_KEY", qk, 1);
		setenv("ETCD_WATCH_VALUE", qv, 1);
		setenv("ETCFS_WATCH_REVISION", frev, 1);
		setenv("ETCFS_WATCH_EVENT_TYPE", type, 1);
		putenv(env_kv("ETCFS_WATCH_KEY", e->kv.key.p, e->kv.key.n));
		putenv(env_kv("ETCFS_WATCH_VALUE", e->kv.value.p, e->kv.value.n));
		sigset_t all;
		sigemptyset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
		execvp(x->exec[0], x->exec);
		fprintf(stderr, "Error: exec %s: %s\n", x->exec[0], strerror(errno));
		_exit(127);
	}
	if (pid > 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	} else {
		fprintf(stderr, "Error: fork: %s\n", strerror(errno));
	}
	free(qt);
	free(qk);
	free(qv);
}

static void print_watch_resp(const ef_watch_resp *w, const ef_resp_header *h)
{
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		json_object_set_new(j, "Header", ctl_jheader(h, 1));
		if (w->n_events) {
			json_t *arr = json_array();
			for (uint32_t i = 0; i < w->n_events; i++) {
				const ef_event *e = &w->events[i];
				json_t *o = json_object();
				if (e->type)
					json_object_set_new(o, "type", json_integer(e->type));
				json_object_set_new(o, "kv", ctl_jkv(&e->kv));
				if (e->prev_kv)
					json_object_set_new(o, "prev_kv", ctl_jkv(e->prev_kv));
				json_array_append_new(arr, o);
			}
			json_object_set_new(j, "Events", arr);
		} else {
			json_object_set_new(j, "Events", json_null());
		}
		json_object_set_new(j, "CompactRevision", json_integer(w->compact_revision));
		json_object_set_new(j, "Canceled", json_boolean(w->canceled));
		json_object_set_new(j, "Created", json_boolean(w->created));
		ctl_json_print(j);
		return;
	}
	if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(h);
		for (uint32_t i = 0; i < w->n_events; i++) {
			const ef_event *e = &w->events[i];
			printf("\"Type\" : %s\n", e->type == EF_EVENT_DELETE ? "DELETE" : "PUT");
			if (e->prev_kv)
				ctl_fields_kv(e->prev_kv, "Prev");
			ctl_fields_kv(&e->kv, "");
		}
		return;
	}
	for (uint32_t i = 0; i < w->n_events; i++) {
		const ef_event *e = &w->events[i];
		puts(e->type == EF_EVENT_DELETE ? "DELETE" : "PUT");
		if (e->prev_kv)
			ctl_print_kv(e->prev_kv, 0);
		ctl_print_kv(&e->kv, 0);
	}
}

static void watch_cb(void *ud, const ef_watch_resp *w, const ef_resp_header *h)
{
	struct watch_ctx *x = ud;
	if (w->created && !w->n_events)
		return; /* clientv3 does not pass "created" on either */
	if (w->canceled) {
		snprintf(x->reason, sizeof x->reason, "%.*s", (int)w->cancel_reason.n,
			 (const char *)w->cancel_reason.p);
		if (!x->reason[0] && w->compact_revision)
			snprintf(x->reason, sizeof x->reason, "%s", ef_strerror(EF_E_COMPACTED));
		fflush(stdout);
		fprintf(stderr, "watch was canceled (%s)\n", x->reason);
		x->canceled = 1;
		return;
	}
	if (!w->n_events && g_ctl.wfmt == W_SIMPLE) {
		printf("progress notify: %lld\n", (long long)h->revision);
	} else {
		print_watch_resp(w, h);
	}
	fflush(stdout);
	if (x->nexec)
		for (uint32_t i = 0; i < w->n_events; i++)
			run_exec(x, &w->events[i], h);
}

struct watch_opts {
	int prefix, prev_kv, progress, interactive;
	int64_t rev;
};

/* Builds the create request from positionals; 0 or -1 with a message. */
static int build_watch(ef_arena *ar, struct ctl_args *a, struct watch_opts *o,
		       ef_watch_create_req *r, char *err, size_t errlen)
{
	static const uint8_t zero[1] = {0};
	memset(r, 0, sizeof *r);
	if (a->npos < 1 || a->npos > 2 || (o->prefix && a->npos == 2)) {
		snprintf(err, errlen, "bad number of arguments");
		return -1;
	}
	r->key = ef_str(a->pos[0]);
	if (a->npos == 2)
		r->range_end = ef_str(a->pos[1]);
	else if (o->prefix) {
		r->range_end = ef_prefix_end(ar, r->key);
		if (r->key.n == 0)
			r->key = (ef_buf){zero, 1};
	}
	r->start_revision = o->rev;
	r->prev_kv = (uint8_t)o->prev_kv;
	r->progress_notify = (uint8_t)o->progress;
	return 0;
}

static efc_watch *start_or_die(const ef_watch_create_req *r, struct watch_ctx *x)
{
	efc_watch *w;
	int rv = efc_watch_start(ctl_client(), r, watch_cb, x, &w);
	if (rv != 0)
		ctl_die(CTL_EXIT_ERROR, "%s", efc_errmsg());
	return w;
}

/* -i: "watch [options] key [range_end]" and "progress" lines from stdin. */
struct iwatch {
	struct watch_ctx x;
	efc_watch *w;
	struct iwatch *next;
};

static void *interactive_reader(void *arg)
{
	struct iwatch **list = arg;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		char *words[64];
		int nw = 0;
		for (char *tok = strtok(line, " \t"); tok && nw < 63; tok = strtok(NULL, " \t"))
			words[nw++] = strdup(tok);
		if (nw == 0)
			continue;
		if (strcmp(words[0], "progress") == 0) {
			efc_watch_progress(ctl_client());
			continue;
		}
		if (strcmp(words[0], "watch") != 0) {
			fprintf(stderr, "Invalid command %s (only support watch)\n", words[0]);
			continue;
		}
		struct watch_opts o = {0};
		const struct ctl_flag flags[] = {{"prefix", 0, F_BOOL, &o.prefix},
						 {"prev-kv", 0, F_BOOL, &o.prev_kv},
						 {"progress-notify", 0, F_BOOL, &o.progress},
						 {"rev", 0, F_INT, &o.rev},
						 {NULL, 0, 0, NULL}};
		struct ctl_args a;
		int fmt = g_ctl.wfmt;
		ctl_parse(nw - 1, words + 1, flags, &a);
		g_ctl.wfmt = fmt;
		struct iwatch *iw = calloc(1, sizeof *iw);
		ef_arena *ar = ctl_arena();
		ef_watch_create_req r;
		char err[128];
		if (build_watch(ar, &a, &o, &r, err, sizeof err) != 0) {
			fprintf(stderr, "Invalid command: %s\n", err);
			free(iw);
		} else {
			if (a.nexec) {
				iw->x.exec = a.exec;
				iw->x.nexec = a.nexec;
			}
			iw->w = start_or_die(&r, &iw->x);
			iw->next = *list;
			*list = iw;
		}
		ef_arena_free(ar);
		free(a.pos);
	}
	free(line);
	return NULL;
}

int cmd_watch(int argc, char **argv)
{
	struct watch_opts o = {0};
	const struct ctl_flag flags[] = {{"prefix", 0, F_BOOL, &o.prefix},
					 {"prev-kv", 0, F_BOOL, &o.prev_kv},
					 {"progress-notify", 0, F_BOOL, &o.progress},
					 {"interactive", 'i', F_BOOL, &o.interactive},
					 {"rev", 0, F_INT, &o.rev},
					 {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	if (g_ctl.wfmt == W_TABLE)
		ctl_die(CTL_EXIT_BAD_FEATURE, "table not supported as output format");
	if (a.exec && a.nexec == 0)
		ctl_die(CTL_EXIT_BAD_ARGS, "bad number of arguments");

	/* Signals are taken by this thread only; the library's threads and the
	 * exec'ed commands' parent never see them asynchronously. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct watch_ctx x = {.exec = a.exec, .nexec = a.nexec};
	efc_watch *w = NULL;
	struct iwatch *ilist = NULL;
	pthread_t reader;
	if (o.interactive) {
		if (a.npos)
			ctl_die(CTL_EXIT_BAD_ARGS, "too many arguments");
		ctl_client();
		pthread_create(&reader, NULL, interactive_reader, &ilist);
		pthread_detach(reader);
	} else {
		ef_arena *ar = ctl_arena();
		ef_watch_create_req r;
		char err[128];
		if (build_watch(ar, &a, &o, &r, err, sizeof err) != 0)
			ctl_die(CTL_EXIT_BAD_ARGS, "%s", err);
		w = start_or_die(&r, &x);
		ef_arena_free(ar);
	}
	int rc = 0;
	for (;;) {
		struct timespec ts = {0, 100 * 1000000L};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		int canceled = x.canceled;
		for (struct iwatch *i = ilist; i; i = i->next)
			canceled |= i->x.canceled;
		if (canceled) {
			rc = CTL_EXIT_INTERRUPTED;
			break;
		}
	}
	if (w)
		efc_watch_stop(w);
	fflush(stdout);
	if (rc)
		ctl_die(rc, "watch is canceled by the server");
	free(a.pos);
	return 0;
}
