/*
 * main.c - `etcfs` / `mount.etcfs`: parse the command line, mount, run the
 * multi-threaded FUSE loop, unmount.
 *
 *   etcfs [--endpoints URLS] [--prefix PREFIX] MOUNTPOINT [-f] [-d] [-o OPTIONS]
 *   mount.etcfs SPEC MOUNTPOINT [-o OPTIONS] [-n] [-s] [-v] [-f] [-t TYPE]
 *
 * As mount.etcfs (called by mount(8) for `mount -t etcfs` and fstab lines)
 * SPEC is the endpoint list, or "etcfs"/"none" for the default, and the
 * flags are mount(8)'s: -f is "fake" (check the arguments, mount nothing),
 * not "foreground", and -t names the type.  Options
 * that etcfs understands are taken out of -o (see man/etcfs.1); options
 * meant for mount(8) only (defaults, noauto, _netdev, x-systemd.*, ...) are
 * dropped; the rest go to the kernel through libfuse.  `ro` is enforced by
 * the daemon, not the kernel, so the reflector can still replay remote
 * changes on a read-only mount.
 *
 * Order matters: the session is mounted before daemonizing (so mount(8)
 * sees errors), and the client library and the reflector thread start after
 * the fork (threads do not survive it).  main unwinds with a goto ladder.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache.h"
#include "etcfs.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: etcfs [--endpoints URLS] [--prefix PREFIX] MOUNTPOINT [-f] [-d] "
		   "[-o OPTIONS]\n"
		   "       mount.etcfs SPEC MOUNTPOINT [-o OPTIONS] [-fnsv]\n"
		   "options (-o): endpoints=URL|URL, prefix=P, consistency=linearizable|"
		   "serializable|cached,\n"
		   "  cache_fallback, occ, tmpfiles=local|cluster, timeout=MS, dial_timeout=MS,\n"
		   "  ro, uid=N, gid=N, umask=OOO, metrics=HOST:PORT, cache_dir=DIR, allow_other,\n"
		   "  and other FUSE mount options.\n"
		   "See etcfs(1).\n");
}

static int add_kopt(char **kopts, const char *o)
{
	size_t old = *kopts ? strlen(*kopts) : 0;
	char *n = realloc(*kopts, old + strlen(o) + 2);
	if (!n)
		return ENOMEM;
	if (old)
		n[old++] = ',';
	strcpy(n + old, o);
	*kopts = n;
	return 0;
}

/* Endpoints inside -o are separated by '|' or ';' (',' separates options). */
static char *endpoints_from_opt(const char *v)
{
	char *s = strdup(v);
	if (s)
		for (char *p = s; *p; p++)
			if (*p == '|' || *p == ';')
				*p = ',';
	return s;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : ENOMEM;
}

/* One -o option.  Returns 0, or -1 for an invalid value. */
static int parse_opt(struct fs_opts *o, char **kopts, const char *opt)
{
	const char *eq = strchr(opt, '=');
	size_t kl = eq ? (size_t)(eq - opt) : strlen(opt);
	const char *v = eq ? eq + 1 : "";
#define IS(name) (kl == strlen(name) && strncmp(opt, name, kl) == 0)
	char *end = NULL;
	if (IS("endpoints")) {
		free(o->endpoints);
		o->endpoints = endpoints_from_opt(v);
	} else if (IS("prefix")) {
		set_str(&o->prefix, v);
	} else if (IS("consistency")) {
		if (!strcmp(v, "linearizable"))
			o->consistency = FS_LINEARIZABLE;
		else if (!strcmp(v, "serializable"))
			o->consistency = FS_SERIALIZABLE;
		else if (!strcmp(v, "cached"))
			o->consistency = FS_CACHED;
		else
			return -1;
	} else if (IS("serializable")) {
		o->consistency = FS_SERIALIZABLE;
	} else if (IS("cached")) {
		o->consistency = FS_CACHED;
	} else if (IS("cache_fallback")) {
		o->cache_fallback = 1;
	} else if (IS("occ")) {
		o->occ = 1;
	} else if (IS("tmpfiles")) {
		if (!strcmp(v, "local"))
			o->tmp_cluster = 0;
		else if (!strcmp(v, "cluster"))
			o->tmp_cluster = 1;
		else
			return -1;
	} else if (IS("ro")) {
		o->ro = 1;
	} else if (IS("rw")) {
		o->ro = 0;
	} else if (IS("timeout")) {
		o->timeout_ms = (int)strtol(v, &end, 10);
		if (*end || o->timeout_ms <= 0)
			return -1;
	} else if (IS("dial_timeout")) {
		o->dial_timeout_ms = (int)strtol(v, &end, 10);
		if (*end || o->dial_timeout_ms <= 0)
			return -1;
	} else if (IS("uid")) {
		o->uid = (unsigned)strtoul(v, &end, 10);
		o->have_uid = 1;
		if (*end || !*v)
			return -1;
	} else if (IS("gid")) {
		o->gid = (unsigned)strtoul(v, &end, 10);
		o->have_gid = 1;
		if (*end || !*v)
			return -1;
	} else if (IS("umask")) {
		o->umask = (unsigned)strtoul(v, &end, 8) & 0777;
		o->have_umask = 1;
		if (*end || !*v)
			return -1;
	} else if (IS("metrics")) {
		set_str(&o->metrics, v);
	} else if (IS("cache_dir")) {
		if (!*v)
			return -1;
		set_str(&o->cache_dir, v);
		o->cache_fallback = 1; /* the memory copies answer too */
	} else if (IS("defaults") || IS("auto") || IS("noauto") || IS("user") || IS("users") ||
		   IS("nouser") || IS("nofail") || IS("_netdev") || IS("owner") || IS("group") ||
		   IS("comment") || strncmp(opt, "x-", 2) == 0) {
		/* for mount(8) only */
	} else {
		add_kopt(kopts, opt);
	}
#undef IS
	return 0;
}

static int parse_opts(struct fs_opts *o, char **kopts, const char *list)
{
	char *s = strdup(list), *save = NULL;
	if (!s)
		return -1;
	int rv = 0;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (parse_opt(o, kopts, t)) {
			fprintf(stderr, "etcfs: bad option value: %s\n", t);
			rv = -1;
		}
	free(s);
	return rv;
}

static int parse_args(int argc, char **argv, struct fs_opts *o, char **mnt, char **kopts, int *fake)
{
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	int helper = strncmp(base, "mount.", 6) == 0 || strncmp(base, "mount.fuse", 10) == 0;
	char *spec = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-o") && i + 1 < argc) {
			if (parse_opts(o, kopts, argv[++i]))
				return -1;
		} else if (!strncmp(a, "-o", 2) && a[2]) {
			if (parse_opts(o, kopts, a + 2))
				return -1;
		} else if (!strcmp(a, "--endpoints") && i + 1 < argc) {
			set_str(&o->endpoints, argv[++i]);
		} else if (!strncmp(a, "--endpoints=", 12)) {
			set_str(&o->endpoints, a + 12);
		} else if (!strcmp(a, "--prefix") && i + 1 < argc) {
			set_str(&o->prefix, argv[++i]);
		} else if (!strncmp(a, "--prefix=", 9)) {
			set_str(&o->prefix, a + 9);
		} else if (helper && !strcmp(a, "-f")) {
			*fake = 1; /* mount -f: do everything but the mount */
		} else if (helper && !strcmp(a, "-t") && i + 1 < argc) {
			i++; /* mount(8) names the type (etcfs, fuse.etcfs) */
		} else if (!strcmp(a, "-f")) {
			o->foreground = 1;
		} else if (!strcmp(a, "-d")) {
			o->foreground = o->debug = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (helper && (!strcmp(a, "-n") || !strcmp(a, "-s") || !strcmp(a, "-v"))) {
			/* mount(8) helper flags: no mtab, sloppy, verbose */
		} else if (a[0] == '-') {
			fprintf(stderr, "etcfs: unknown argument %s\n", a);
			return -1;
		} else if (helper && !spec) {
			spec = argv[i];
		} else if (!*mnt) {
			*mnt = argv[i];
		} else {
			fprintf(stderr, "etcfs: unexpected argument %s\n", a);
			return -1;
		}
	}
	if (spec && strcmp(spec, "etcfs") && strcmp(spec, "none") && !o->endpoints)
		set_str(&o->endpoints, spec);
	if (!*mnt) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* A FUSE mount whose daemon died stays mounted and answers every access
 * with ENOTCONN ("Transport endpoint is not connected"); mounting over it
 * would stack a new mount on the dead one.  Refuse, and say how to clear
 * it (../shared/NOTES-fuse.md, Mounting).  1 when refused. */
static int dead_mount(const char *dir)
{
	/* statfs: stat may be answered from attributes the kernel cached */
	struct statvfs sv;
	if (statvfs(dir, &sv) == 0 || errno != ENOTCONN)
		return 0;
	char fstype[64] = "";
	FILE *f = fopen("/proc/self/mounts", "r");
	if (f) {
		char src[4096], mp[4096], ty[64];
		while (fscanf(f, "%4095s %4095s %63s %*[^\n]", src, mp, ty) == 3)
			if (strcmp(mp, dir) == 0)
				snprintf(fstype, sizeof fstype, "%s",
					 ty); /* the last one is on top */
		fclose(f);
	}
	fprintf(stderr,
		"etcfs: %s: a dead %s mount is still there (its daemon exited: \"%s\"); "
		"unmount it first with: fusermount3 -u %s\n",
		dir,
		strcmp(fstype, "fuse.etcfs") == 0 ? "etcfs"
		: fstype[0]                       ? fstype
						  : "FUSE",
		strerror(ENOTCONN), dir);
	return 1;
}

static int init_mount(struct fs_mount *m)
{
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->own_cv, NULL);
	m->prefix = (uint8_t *)m->o.prefix;
	m->plen = (uint32_t)strlen(m->o.prefix);
	m->mount_time_ns = clock_wall_ns();
	m->uid = m->o.have_uid ? m->o.uid : getuid();
	m->gid = m->o.have_gid ? m->o.gid : getgid();
	if (!m->o.have_umask)
		m->o.umask = 022;
	return inode_table_init(m);
}

static int open_client(struct fs_mount *m)
{
	efc_opts eo = {.endpoints = m->o.endpoints,
		       .dial_timeout_ms = m->o.dial_timeout_ms,
		       .command_timeout_ms = m->o.timeout_ms};
	char err[256] = "";
	int rv = efc_open(&eo, &m->c, err, sizeof err);
	if (rv == 0) {
		rv = efc_open(&eo, &m->wc, err, sizeof err);
		if (rv) {
			efc_close(m->c);
			m->c = NULL;
		}
	}
	if (rv)
		fprintf(stderr, "etcfs: %s\n", err[0] ? err : ef_strerror(rv));
	return rv;
}

int main(int argc, char **argv)
{
	static struct fs_mount mount_state;
	struct fs_mount *m = &mount_state;
	char *mnt = NULL, *kopts = NULL;
	char *fargv[5];
	int fargc = 0, rc = 1, fake = 0;
	struct fuse_loop_config cfg = {.clone_fd = 0, .max_idle_threads = 16};

	m->o.timeout_ms = 5000;
	m->o.dial_timeout_ms = 2000;
	if (parse_args(argc, argv, &m->o, &mnt, &kopts, &fake))
		return 1;
	if (!m->o.endpoints) {
		const char *e = getenv("ETCFS_ENDPOINTS");
		set_str(&m->o.endpoints, e && *e ? e : "tcp://127.0.0.1:2378");
	}
	if (!m->o.prefix)
		set_str(&m->o.prefix, "");
	m->mountpoint = realpath(mnt, NULL);
	if (!m->mountpoint) {
		fprintf(stderr, "etcfs: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	if (dead_mount(m->mountpoint))
		goto out_free;
	/* validate the endpoint list now, while errors still reach the caller */
	if (open_client(m))
		goto out_free;
	efc_close(m->c);
	efc_close(m->wc);
	m->c = m->wc = NULL;
	if (fake) {
		rc = 0;
		goto out_free;
	}
	if (init_mount(m))
		goto out_free;
	if (fsmetrics_init(m)) /* binds -o metrics now, while errors reach the caller */
		goto out_table;
	if (m->o.cache_dir && cache_open(m, m->o.cache_dir)) /* the same */
		goto out_table;

	if (add_kopt(&kopts, "fsname=etcfs,subtype=etcfs,default_permissions"))
		goto out_table;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-o";
	fargv[fargc++] = kopts;
	if (m->o.debug)
		fargv[fargc++] = "-d";
	fargv[fargc] = NULL;
	struct fuse_args args = {.argc = fargc, .argv = fargv, .allocated = 0};
	m->se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, m);
	if (!m->se)
		goto out_table;
	if (fuse_set_signal_handlers(m->se))
		goto out_session;
	if (fuse_session_mount(m->se, m->mountpoint))
		goto out_signals;
	if (fuse_daemonize(m->o.foreground))
		goto out_unmount;
	if (open_client(m))
		goto out_unmount;
	if (fsmetrics_start(m))
		goto out_client;
	if (cache_start(m)) /* before the watch: its events update the cache */
		goto out_metrics;
	if (reflect_start(m))
		goto out_cache;

	rc = fuse_session_loop_mt(m->se, &cfg) ? 1 : 0;

	reflect_stop(m);
out_cache:
	cache_stop(m);
out_metrics:
	fsmetrics_stop(m); /* before efc_close: a scrape reads the client */
out_client:
	efc_close(m->c);
	efc_close(m->wc);
out_unmount:
	fuse_session_unmount(m->se);
out_signals:
	fuse_remove_signal_handlers(m->se);
out_session:
	fuse_session_destroy(m->se);
out_table:
	fsmetrics_stop(m); /* closes the listening socket if never started */
	cache_close(m);
	inode_table_free(m);
out_free:
	free(kopts);
	free(m->mountpoint);
	free(m->o.endpoints);
	free(m->o.prefix);
	free(m->o.metrics);
	free(m->o.cache_dir);
	return rc;
}
