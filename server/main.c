/*
 * main.c - etcfsd: flags (etcd's names and defaults), start-up order and
 * clean shutdown.  Everything else lives in node/ (the member), net.c (the
 * native client listener) and gateway/ (the HTTP/JSON gateway).
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread and taken with
 * sigwait() here, so shutdown runs in one known place: stop accepting, stop
 * the member (which syncs the WAL and the store), exit 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"
#include "grpc.h"
#include "log.h"
#include "net.h"
#include "node.h"

#define VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: etcfsd [flags]\n"
		"Start an etcfs member (a Raft-replicated key-value store with etcd's API).\n\n"
		"Member:\n"
		"  --name NAME                      human-readable member name (default \"default\")\n"
		"  --data-dir DIR                   data directory (default \"NAME.etcd\")\n"
		"  --listen-client-urls URLS        client listeners: http://HOST:PORT serves etcd's gRPC API and the\n"
		"                                   JSON gateway on one port, tcp://HOST:PORT the native protocol\n"
		"                                   (default tcp://127.0.0.1:2378,http://localhost:2379)\n"
		"  --advertise-client-urls URLS     client URLs published to the cluster (default: listen)\n"
		"  --listen-http-urls URLS          more listeners for the JSON gateway and gRPC, e.g. http://127.0.0.1:2381\n"
		"  --listen-peer-urls URLS          peer listeners, e.g. tcp://127.0.0.1:2380\n"
		"  --heartbeat-interval MS          heartbeat interval (default 100)\n"
		"  --election-timeout MS            election timeout (default 1000)\n"
		"  --snapshot-count N               applied entries between snapshots (default 100000)\n"
		"  --quota-backend-bytes N          backend size before writes fail with 'database space exceeded'\n"
		"                                   (default 2147483648)\n"
		"  --max-request-bytes N            largest request accepted (default 1572864)\n"
		"  --max-txn-ops N                  most operations in one txn (default 128)\n"
		"  --request-timeout MS             how long a request may wait for consensus (default 5000)\n"
		"  --grpc-workers N                 threads running gRPC requests (default 48)\n"
		"  --experimental-watch-progress-notify-interval DURATION  progress notifications to idle\n"
		"                                   watches that asked for them (e.g. 5s; default 10m)\n"
		"Clustering:\n"
		"  --initial-advertise-peer-urls URLS  this member's peer URLs as the others know them\n"
		"  --initial-cluster NAME=URL,...   the cluster's members (default NAME=<advertise peer url>)\n"
		"  --initial-cluster-state new|existing  (default new)\n"
		"  --initial-cluster-token TOKEN    cluster token (default \"etcd-cluster\")\n"
		"  --experimental-auto-promote-learners  the leader promotes a learner once it is in\n"
		"                                   sync (beyond etcd; default off)\n"
		"Logging:\n"
		"  --log-level debug|info|warn|error  (default info)\n"
		"  --help, --version\n");
}

struct opts {
	node_config nc;
	const char *listen_client, *listen_http;
	int grpc_workers;
};

/* Split --listen-client-urls: tcp:// (and bare HOST:PORT) URLs go to the
 * native listener, http:// ones to the gateway, whose accept path hands
 * HTTP/2 connections to the gRPC server.  https:// waits for TLS. */
static int split_client_urls(const char *urls, char *native, size_t nn, char *http, size_t hn)
{
	const char *p = urls;

	native[0] = http[0] = 0;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		int len = comma ? (int)(comma - p) : (int)strlen(p);
		char *dst = native;
		size_t cap = nn;

		if (len > 8 && strncmp(p, "https://", 8) == 0) {
			fprintf(stderr,
				"etcfsd: %.*s: https:// client URLs need TLS, which etcfsd "
				"does not serve yet\n",
				len, p);
			return -1;
		}
		if (len > 7 && strncmp(p, "http://", 7) == 0) {
			dst = http;
			cap = hn;
		}
		if (len && strlen(dst) + (size_t)len + 2 < cap)
			snprintf(dst + strlen(dst), cap - strlen(dst), "%s%.*s", dst[0] ? "," : "",
				 len, p);
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

static int parse_u64(const char *flag, const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-') {
		fprintf(stderr,
			"etcfsd: invalid value \"%s\" for flag %s: want a non-negative integer\n",
			v, flag);
		return -1;
	}
	*out = x;
	return 0;
}

/* Go-style duration with one unit: "500ms", "5s", "10m", "1h". */
static int parse_duration_ms(const char *v, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	unsigned long long mul;

	if (errno || end == v || v[0] == '-')
		return -1;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return -1;
	if (x == 0 || x > UINT32_MAX / mul)
		return -1;
	*out = (uint32_t)(x * mul);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	memset(&o, 0, sizeof o);
	o.nc.name = "default";
	o.nc.heartbeat_ms = 100;
	o.nc.election_ms = 1000;
	o.nc.snapshot_count = 100000;
	o.nc.quota_bytes = 2ull << 30;
	o.nc.max_request_bytes = 1536 * 1024;
	o.nc.max_txn_ops = 128;
	o.nc.request_timeout_ms = 5000;
	o.nc.cluster_state_new = 1;
	o.nc.initial_cluster_token = "etcd-cluster";
	/* As etcd: clients on localhost:2379 (gRPC and JSON); the native
	 * protocol of the mount and etcfsctl next to it on 2378.  tcp:// comes
	 * first: the advertised URLs default to these, and a member forwards
	 * requests to the leader over the first native one. */
	o.listen_client = "tcp://127.0.0.1:2378,http://localhost:2379";
	const char *adv_peer = NULL, *state = "new";

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("etcfsd Version: %s\nAPI version: 3.4\n", VERSION);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "etcfsd: unexpected argument \"%s\" (see --help)\n", a);
			return 2;
		}
		/* a boolean flag, Go style: alone, =true or =false */
		if (strncmp(a, "--experimental-auto-promote-learners", 36) == 0 &&
		    (a[36] == 0 || strcmp(a + 36, "=true") == 0 || strcmp(a + 36, "=false") == 0)) {
			o.nc.auto_promote = a[36] == 0 || a[37] == 't';
			continue;
		}
		char flag[64];
		const char *val;
		char *eq = strchr(a, '=');
		if (eq) {
			snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(flag, sizeof flag, "%s", a);
			if (i + 1 >= argc) {
				fprintf(stderr, "etcfsd: flag needs an argument: %s\n", flag);
				return 2;
			}
			val = argv[++i];
		}
		uint64_t u = 0;
#define NUMFLAG(name, field)                       \
	if (strcmp(flag, name) == 0) {             \
		if (parse_u64(flag, val, &u) != 0) \
			return 2;                  \
		field = u;                         \
		continue;                          \
	}
		NUMFLAG("--heartbeat-interval", o.nc.heartbeat_ms)
		NUMFLAG("--election-timeout", o.nc.election_ms)
		NUMFLAG("--snapshot-count", o.nc.snapshot_count)
		NUMFLAG("--quota-backend-bytes", o.nc.quota_bytes)
		NUMFLAG("--max-request-bytes", o.nc.max_request_bytes)
		NUMFLAG("--max-txn-ops", o.nc.max_txn_ops)
		NUMFLAG("--request-timeout", o.nc.request_timeout_ms)
		NUMFLAG("--grpc-workers", o.grpc_workers)
#undef NUMFLAG
		if (strcmp(flag, "--name") == 0)
			o.nc.name = val;
		else if (strcmp(flag, "--data-dir") == 0)
			o.nc.data_dir = val;
		else if (strcmp(flag, "--listen-client-urls") == 0)
			o.listen_client = val;
		else if (strcmp(flag, "--advertise-client-urls") == 0)
			o.nc.advertise_client_urls = val;
		else if (strcmp(flag, "--experimental-watch-progress-notify-interval") == 0) {
			if (parse_duration_ms(val, &o.nc.watch_progress_notify_interval_ms)) {
				fprintf(stderr,
					"etcfsd: invalid value \"%s\" for flag %s: want a duration "
					"such as 5s, 500ms or 10m\n",
					val, flag);
				return 2;
			}
		} else if (strcmp(flag, "--listen-http-urls") == 0)
			o.listen_http = val;
		else if (strcmp(flag, "--listen-peer-urls") == 0)
			o.nc.listen_peer_urls = val;
		else if (strcmp(flag, "--initial-advertise-peer-urls") == 0)
			adv_peer = val;
		else if (strcmp(flag, "--initial-cluster") == 0)
			o.nc.initial_cluster = val;
		else if (strcmp(flag, "--initial-cluster-state") == 0)
			state = val;
		else if (strcmp(flag, "--initial-cluster-token") == 0)
			o.nc.initial_cluster_token = val;
		else if (strcmp(flag, "--log-level") == 0) {
			if ((log_min_level = log_parse_level(val)) < 0) {
				fprintf(stderr,
					"etcfsd: invalid --log-level \"%s\" (debug, info, warn, error)\n",
					val);
				return 2;
			}
		} else {
			fprintf(stderr, "etcfsd: unknown flag: %s (see --help)\n", flag);
			return 2;
		}
	}
	if (strcmp(state, "new") == 0)
		o.nc.cluster_state_new = 1;
	else if (strcmp(state, "existing") == 0)
		o.nc.cluster_state_new = 0;
	else {
		fprintf(stderr,
			"etcfsd: invalid --initial-cluster-state \"%s\" (new or existing)\n",
			state);
		return 2;
	}
	if (o.nc.heartbeat_ms <= 0 || o.nc.election_ms < 2 * o.nc.heartbeat_ms) {
		fprintf(stderr,
			"etcfsd: --election-timeout must be at least twice --heartbeat-interval\n");
		return 2;
	}
	if (o.nc.max_request_bytes < 64 || o.nc.max_txn_ops < 1) {
		fprintf(stderr, "etcfsd: --max-request-bytes and --max-txn-ops are too small\n");
		return 2;
	}
	char ddir[512], cluster[1024];
	if (!o.nc.data_dir) {
		snprintf(ddir, sizeof ddir, "%s.etcd", o.nc.name);
		o.nc.data_dir = ddir;
	}
	if (!o.nc.advertise_client_urls)
		o.nc.advertise_client_urls = o.listen_client;
	if (!o.nc.initial_cluster) {
		const char *pu = adv_peer                ? adv_peer
				 : o.nc.listen_peer_urls ? o.nc.listen_peer_urls
							 : "tcp://127.0.0.1:2380";
		snprintf(cluster, sizeof cluster, "%s=%.*s", o.nc.name, (int)strcspn(pu, ","), pu);
		o.nc.initial_cluster = cluster;
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char native[1024], http[2048];
	if (split_client_urls(o.listen_client, native, sizeof native, http, sizeof http))
		return 2;
	if (o.listen_http && *o.listen_http)
		snprintf(http + strlen(http), sizeof http - strlen(http), "%s%s",
			 http[0] ? "," : "", o.listen_http);

	char err[1024] = "";
	node *n;
	int rv = node_start(&o.nc, &n, err, sizeof err);
	if (rv) {
		fprintf(stderr, "etcfsd: %s\n", err[0] ? err : "cannot start");
		return 1;
	}
	if (native[0] && net_start(n, native, o.nc.max_request_bytes, err, sizeof err) != 0) {
		fprintf(stderr, "etcfsd: %s\n", err);
		node_stop(n);
		return 1;
	}
	gateway_set_limits(o.nc.max_request_bytes, 0);
	grpcsrv_opts go = {.max_request_bytes = o.nc.max_request_bytes,
			   .workers = o.grpc_workers,
			   .advertise_client_urls = o.nc.advertise_client_urls};
	if (http[0] && (grpcsrv_start(n, &go, err, sizeof err) != 0 ||
			gateway_start(n, http, err, sizeof err) != 0)) {
		fprintf(stderr, "etcfsd: %s\n", err);
		grpcsrv_stop();
		if (native[0])
			net_stop();
		node_stop(n);
		return 1;
	}
	log_info("serving clients: native on %s, gRPC and HTTP/JSON on %s",
		 native[0] ? native : "-", http[0] ? http : "-");
	int sig = 0;
	sigwait(&set, &sig);
	log_info("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	if (http[0]) {
		gateway_stop();
		grpcsrv_stop();
	}
	if (native[0])
		net_stop();
	node_stop(n);
	log_info("stopped");
	fflush(stderr);
	_exit(0); /* connection threads may still run: no exit handlers under them */
}
