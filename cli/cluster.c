/*
 * cluster.c - "etcfsctl endpoint status|health", "member list" and
 * "move-leader".
 *
 * endpoint status/health ask every endpoint separately (one client per
 * endpoint, in parallel, so one dead member costs one timeout, not one per
 * member) and print the endpoint exactly as the user wrote it, as etcdctl
 * does.  With --cluster the endpoints are the client URLs of every member
 * from MEMBER_LIST.  health is a linearizable read of the key "health",
 * timed: it passes only when the member can reach a quorum.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "ctl.h"

struct ep_result {
	char *ep;
	int rv;
	char err[300];
	int64_t took_ns;
	ef_arena *ar;
	ef_msg resp;
	int health; /* 1 = health check, 0 = status */
	pthread_t th;
};

static void *ep_worker(void *arg)
{
	struct ep_result *r = arg;
	efc_client *c;
	r->ar = ef_arena_new();
	r->rv = ctl_open_one(r->ep, &c);
	if (r->rv != 0) {
		snprintf(r->err, sizeof r->err, "invalid endpoint %s", r->ep);
		return NULL;
	}
	ef_msg req = {0};
	if (r->health) {
		req.type = EF_MSG_RANGE;
		req.u.range.key = ef_str("health");
	} else {
		req.type = EF_MSG_STATUS;
	}
	int64_t t0 = clock_mono_ns();
	r->rv = efc_call(c, &req, &r->resp, r->ar);
	r->took_ns = clock_mono_ns() - t0;
	if (r->rv != 0)
		snprintf(r->err, sizeof r->err, "%s", efc_errmsg());
	/* not closed: efc_close can block on a live connection (library
	 * issue, reported); the process exits right after printing */
	return NULL;
}

/* Client URLs of every member (comma separated entries split apart). */
static char **cluster_endpoints(int *n)
{
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_MEMBER_LIST}, resp;
	ctl_call(&req, &resp, ar);
	char **eps = NULL;
	*n = 0;
	const ef_member_list_resp *ml = &resp.u.member_list_resp;
	for (uint32_t i = 0; i < ml->n_members; i++)
		for (uint32_t k = 0; k < ml->members[i].n_client_urls; k++) {
			const ef_buf *u = &ml->members[i].client_urls[k];
			eps = realloc(eps, sizeof(char *) * (size_t)(*n + 1));
			eps[(*n)++] = strndup((const char *)u->p, u->n);
		}
	ef_arena_free(ar);
	return eps;
}

static char **given_endpoints(int *n)
{
	char **eps = NULL;
	*n = 0;
	const char *p = g_ctl.endpoints;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len) {
			eps = realloc(eps, sizeof(char *) * (size_t)(*n + 1));
			eps[(*n)++] = strndup(p, len);
		}
		if (!e)
			break;
		p = e + 1;
	}
	return eps;
}

static struct ep_result *run_all(int cluster, int health, int *n)
{
	char **eps = cluster ? cluster_endpoints(n) : given_endpoints(n);
	struct ep_result *r = calloc((size_t)*n + 1, sizeof *r);
	for (int i = 0; i < *n; i++) {
		r[i].ep = eps[i];
		r[i].health = health;
		pthread_create(&r[i].th, NULL, ep_worker, &r[i]);
	}
	for (int i = 0; i < *n; i++)
		pthread_join(r[i].th, NULL);
	free(eps);
	return r;
}

static const char *tf(int b)
{
	return b ? "true" : "false";
}

static int endpoint_status(int argc, char **argv)
{
	int cluster = 0;
	const struct ctl_flag flags[] = {{"cluster", 0, F_BOOL, &cluster}, {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	int n;
	struct ep_result *r = run_all(cluster, 0, &n);
	int ok = 0;
	for (int i = 0; i < n; i++) {
		if (r[i].rv != 0)
			fprintf(stderr, "Failed to get the status of endpoint %s (%s)\n", r[i].ep,
				r[i].err);
		else
			ok++;
	}
	static const char *hdr[] = {"ENDPOINT",           "ID",         "VERSION",   "DB SIZE",
				    "IS LEADER",          "IS LEARNER", "RAFT TERM", "RAFT INDEX",
				    "RAFT APPLIED INDEX", "ERRORS"};
	struct ctl_table *t = g_ctl.wfmt == W_TABLE ? ctl_table_new(10, hdr) : NULL;
	json_t *arr = g_ctl.wfmt == W_JSON ? json_array() : NULL;
	for (int i = 0; i < n; i++) {
		if (r[i].rv != 0)
			continue;
		const ef_msg *m = &r[i].resp;
		const ef_status_resp *s = &m->u.status_resp;
		char id[32], ver[128], db[32], term[32], idx[32], app[32], errs[300];
		snprintf(id, sizeof id, "%llx", (unsigned long long)m->hdr.member_id);
		snprintf(ver, sizeof ver, "%.*s", (int)s->version.n, (const char *)s->version.p);
		ctl_human_bytes((uint64_t)s->db_size, db, sizeof db);
		snprintf(term, sizeof term, "%llu", (unsigned long long)s->raft_term);
		snprintf(idx, sizeof idx, "%llu", (unsigned long long)s->raft_index);
		snprintf(app, sizeof app, "%llu", (unsigned long long)s->raft_applied_index);
		snprintf(errs, sizeof errs, "%.*s", (int)s->errors.n, (const char *)s->errors.p);
		int leader = s->leader != 0 && s->leader == m->hdr.member_id;
		switch (g_ctl.wfmt) {
		case W_TABLE: {
			const char *row[] = {r[i].ep,           id,   ver, db,  tf(leader),
					     tf(s->is_learner), term, idx, app, errs};
			ctl_table_row(t, row);
			break;
		}
		case W_JSON: {
			json_t *st = json_object();
			json_object_set_new(st, "header", ctl_jheader(&m->hdr, 1));
			json_object_set_new(st, "version", json_string(ver));
			json_object_set_new(st, "dbSize", json_integer(s->db_size));
			if (s->leader)
				json_object_set_new(st, "leader", ctl_ju64(s->leader));
			if (s->raft_index)
				json_object_set_new(st, "raftIndex", ctl_ju64(s->raft_index));
			if (s->raft_term)
				json_object_set_new(st, "raftTerm", ctl_ju64(s->raft_term));
			if (s->raft_applied_index)
				json_object_set_new(st, "raftAppliedIndex",
						    ctl_ju64(s->raft_applied_index));
			if (errs[0]) {
				json_t *ea = json_array();
				json_array_append_new(ea, json_string(errs));
				json_object_set_new(st, "errors", ea);
			}
			if (s->db_size_in_use)
				json_object_set_new(st, "dbSizeInUse",
						    json_integer(s->db_size_in_use));
			if (s->is_learner)
				json_object_set_new(st, "isLearner", json_true());
			json_t *o = json_object();
			json_object_set_new(o, "Endpoint", json_string(r[i].ep));
			json_object_set_new(o, "Status", st);
			json_array_append_new(arr, o);
			break;
		}
		case W_FIELDS:
			ctl_fields_header(&m->hdr);
			printf("\"Version\" : \"%s\"\n", ver);
			printf("\"DBSize\" : %lld\n", (long long)s->db_size);
			printf("\"Leader\" : %llu\n", (unsigned long long)s->leader);
			printf("\"IsLearner\" : %s\n", tf(s->is_learner));
			printf("\"RaftIndex\" : %llu\n", (unsigned long long)s->raft_index);
			printf("\"RaftTerm\" : %llu\n", (unsigned long long)s->raft_term);
			printf("\"RaftAppliedIndex\" : %llu\n",
			       (unsigned long long)s->raft_applied_index);
			if (errs[0]) {
				printf("\"Errors\" : [");
				ctl_quote(stdout, (const uint8_t *)errs, strlen(errs));
				printf("]\n");
			} else {
				printf("\"Errors\" : []\n");
			}
			printf("\"Endpoint\" : \"%s\"\n\n", r[i].ep);
			break;
		default:
			printf("%s, %s, %s, %s, %s, %s, %s, %s, %s, %s\n", r[i].ep, id, ver, db,
			       tf(leader), tf(s->is_learner), term, idx, app, errs);
		}
	}
	if (t) {
		ctl_table_print(t, stdout);
		ctl_table_free(t);
	}
	if (arr)
		ctl_json_print(arr);
	for (int i = 0; i < n; i++) {
		ef_arena_free(r[i].ar);
		free(r[i].ep);
	}
	free(r);
	free(a.pos);
	if (ok < n) {
		fflush(stdout);
		return CTL_EXIT_ERROR;
	}
	return 0;
}

static int endpoint_health(int argc, char **argv)
{
	int cluster = 0;
	const struct ctl_flag flags[] = {{"cluster", 0, F_BOOL, &cluster}, {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	int n;
	struct ep_result *r = run_all(cluster, 1, &n);
	int bad = 0;
	static const char *hdr[] = {"ENDPOINT", "HEALTH", "TOOK", "ERROR"};
	struct ctl_table *t = g_ctl.wfmt == W_TABLE ? ctl_table_new(4, hdr) : NULL;
	json_t *arr = g_ctl.wfmt == W_JSON ? json_array() : NULL;
	for (int i = 0; i < n; i++) {
		char took[64];
		ctl_format_duration(r[i].took_ns, took, sizeof took);
		int ok = r[i].rv == 0;
		if (!ok)
			bad++;
		switch (g_ctl.wfmt) {
		case W_TABLE: {
			const char *row[] = {r[i].ep, tf(ok), took, ok ? "" : r[i].err};
			ctl_table_row(t, row);
			break;
		}
		case W_JSON: {
			json_t *o = json_object();
			json_object_set_new(o, "endpoint", json_string(r[i].ep));
			json_object_set_new(o, "health", json_boolean(ok));
			json_object_set_new(o, "took", json_string(took));
			if (!ok)
				json_object_set_new(o, "error", json_string(r[i].err));
			json_array_append_new(arr, o);
			break;
		}
		default:
			if (ok)
				fprintf(stderr,
					"%s is healthy: successfully committed proposal: took = %s\n",
					r[i].ep, took);
			else
				fprintf(stderr, "%s is unhealthy: failed to commit proposal: %s\n",
					r[i].ep, r[i].err);
		}
	}
	if (t) {
		ctl_table_print(t, stdout);
		ctl_table_free(t);
	}
	if (arr)
		ctl_json_print(arr);
	for (int i = 0; i < n; i++) {
		ef_arena_free(r[i].ar);
		free(r[i].ep);
	}
	free(r);
	free(a.pos);
	if (bad)
		ctl_die(CTL_EXIT_ERROR, "unhealthy cluster");
	return 0;
}

int cmd_endpoint(int argc, char **argv)
{
	int i = ctl_find_word(argc, argv);
	if (i < 0)
		ctl_die(CTL_EXIT_BAD_ARGS, "endpoint needs a sub-command: health or status");
	char *sub = argv[i];
	ctl_remove_arg(&argc, argv, i);
	if (strcmp(sub, "status") == 0)
		return endpoint_status(argc, argv);
	if (strcmp(sub, "health") == 0)
		return endpoint_health(argc, argv);
	ctl_die(CTL_EXIT_BAD_ARGS, "unknown command \"%s\" for \"etcfsctl endpoint\"", sub);
}

/* ------------------------------------------------------------------ */

static char *join_urls(const ef_buf *u, uint32_t n, const char *sep)
{
	size_t len = 1;
	for (uint32_t i = 0; i < n; i++)
		len += u[i].n + strlen(sep);
	char *s = calloc(1, len);
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			strcat(s, sep);
		strncat(s, (const char *)u[i].p, u[i].n);
	}
	return s;
}

static json_t *member_json(const ef_member *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "ID", ctl_ju64(m->id));
	if (m->name.n)
		json_object_set_new(o, "name", json_stringn((const char *)m->name.p, m->name.n));
	if (m->n_peer_urls) {
		json_t *pu = json_array();
		for (uint32_t u = 0; u < m->n_peer_urls; u++)
			json_array_append_new(pu, json_stringn((const char *)m->peer_urls[u].p,
							       m->peer_urls[u].n));
		json_object_set_new(o, "peerURLs", pu);
	}
	if (m->n_client_urls) {
		json_t *cu = json_array();
		for (uint32_t u = 0; u < m->n_client_urls; u++)
			json_array_append_new(cu, json_stringn((const char *)m->client_urls[u].p,
							       m->client_urls[u].n));
		json_object_set_new(o, "clientURLs", cu);
	}
	if (m->is_learner)
		json_object_set_new(o, "isLearner", json_true());
	return o;
}

static uint64_t member_id_arg(struct ctl_args *a)
{
	if (a->npos != 1)
		ctl_die(CTL_EXIT_BAD_ARGS, "member ID is not provided");
	char *end;
	errno = 0;
	unsigned long long id = strtoull(a->pos[0], &end, 16);
	if (!a->pos[0][0] || *end || errno || a->pos[0][0] == '-' || a->pos[0][0] == '+')
		ctl_die(CTL_EXIT_BAD_ARGS,
			"bad member ID arg (strconv.ParseUint: parsing \"%s\": invalid syntax), "
			"expecting ID in Hex",
			a->pos[0]);
	return id;
}

/* member add NAME --peer-urls URLS [--learner], remove ID, update ID
 * --peer-urls URLS, promote ID: etcdctl 3.4's output, word for word. */
static int member_change(const char *sub, int argc, char **argv)
{
	const char *purls = NULL;
	int learner = 0;
	struct ctl_args a;
	const struct ctl_flag add_flags[] = {{"peer-urls", 0, F_STR, &purls},
					     {"learner", 0, F_BOOL, &learner},
					     {NULL, 0, 0, NULL}};
	const struct ctl_flag upd_flags[] = {{"peer-urls", 0, F_STR, &purls}, {NULL, 0, 0, NULL}};
	static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
	ef_msg req, resp;
	memset(&req, 0, sizeof req);
	int add = strcmp(sub, "add") == 0, upd = strcmp(sub, "update") == 0;
	ctl_parse(argc, argv, add ? add_flags : upd ? upd_flags : none, &a);
	ef_arena *ar = ctl_arena();
	ef_buf urls[16];
	uint32_t nu = 0;
	if (add) {
		if (a.npos < 1)
			ctl_die(CTL_EXIT_BAD_ARGS, "member name not provided");
		if (a.npos > 1)
			ctl_die(CTL_EXIT_BAD_ARGS,
				"too many arguments, did you mean --peer-urls=%s", a.pos[1]);
		if (!purls || !*purls)
			ctl_die(CTL_EXIT_BAD_ARGS, "member peer urls not provided");
		req.type = EF_MSG_MEMBER_ADD;
		req.u.member.name = ef_str(a.pos[0]);
		req.u.member.is_learner = (uint8_t)learner;
	} else {
		req.u.member.id = member_id_arg(&a);
		if (upd && (!purls || !*purls))
			ctl_die(CTL_EXIT_BAD_ARGS, "member peer urls not provided");
		req.type = upd                          ? EF_MSG_MEMBER_UPDATE
			   : strcmp(sub, "remove") == 0 ? EF_MSG_MEMBER_REMOVE
							: EF_MSG_MEMBER_PROMOTE;
	}
	for (const char *u = purls; u && *u && nu < 16;) {
		const char *c = strchr(u, ',');
		size_t l = c ? (size_t)(c - u) : strlen(u);
		urls[nu++] = (ef_buf){(const uint8_t *)u, (uint32_t)l};
		u = c ? c + 1 : u + l;
	}
	req.u.member.peer_urls = nu ? urls : NULL;
	req.u.member.n_peer_urls = nu;
	ctl_call(&req, &resp, ar);
	const ef_member_resp *mr = &resp.u.member_resp;
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		json_object_set_new(j, "header", ctl_jheader(&resp.hdr, 0));
		if (mr->n_member)
			json_object_set_new(j, "member", member_json(&mr->member[0]));
		json_t *arr = json_array();
		for (uint32_t k = 0; k < mr->n_members; k++)
			json_array_append_new(arr, member_json(&mr->members[k]));
		json_object_set_new(j, "members", arr);
		ctl_json_print(j);
	} else if (add) {
		uint64_t nid = mr->n_member ? mr->member[0].id : 0;
		printf("Member %16llx added to cluster %16llx\n\n", (unsigned long long)nid,
		       (unsigned long long)resp.hdr.cluster_id);
		printf("ETCD_NAME=\"%s\"\n", a.pos[0]);
		printf("ETCD_INITIAL_CLUSTER=\"");
		int first = 1;
		for (uint32_t k = 0; k < mr->n_members; k++) {
			const ef_member *m = &mr->members[k];
			/* The new member is the one with the new id; an unstarted
			 * member (no name yet) on the requested peer URLs is it
			 * too, should the answer not name it (seen after the
			 * leader changed: ETCD_INITIAL_CLUSTER then gave it no
			 * name and the new member refused to start). */
			int is_new =
				m->id == nid || (m->name.n == 0 && m->n_peer_urls &&
						 strncmp(purls, (const char *)m->peer_urls[0].p,
							 m->peer_urls[0].n) == 0);
			for (uint32_t u = 0; u < m->n_peer_urls; u++) {
				if (is_new)
					printf("%s%s=", first ? "" : ",", a.pos[0]);
				else
					printf("%s%.*s=", first ? "" : ",", (int)m->name.n,
					       (const char *)m->name.p);
				printf("%.*s", (int)m->peer_urls[u].n,
				       (const char *)m->peer_urls[u].p);
				first = 0;
			}
		}
		printf("\"\nETCD_INITIAL_ADVERTISE_PEER_URLS=\"%s\"\n", purls);
		printf("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
	} else {
		printf("Member %16llx %s cluster %16llx\n", (unsigned long long)req.u.member.id,
		       upd                                ? "updated in"
		       : req.type == EF_MSG_MEMBER_REMOVE ? "removed from"
							  : "promoted in",
		       (unsigned long long)resp.hdr.cluster_id);
	}
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

int cmd_member(int argc, char **argv)
{
	int i = ctl_find_word(argc, argv);
	if (i >= 0 && (strcmp(argv[i], "add") == 0 || strcmp(argv[i], "remove") == 0 ||
		       strcmp(argv[i], "update") == 0 || strcmp(argv[i], "promote") == 0)) {
		const char *sub = argv[i];
		ctl_remove_arg(&argc, argv, i);
		return member_change(sub, argc, argv);
	}
	if (i < 0 || strcmp(argv[i], "list") != 0)
		ctl_die(CTL_EXIT_BAD_ARGS, "member needs a sub-command: add, list, promote, "
					   "remove or update");
	ctl_remove_arg(&argc, argv, i);
	struct ctl_args a;
	static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
	ctl_parse(argc, argv, none, &a);
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_MEMBER_LIST}, resp;
	ctl_call(&req, &resp, ar);
	const ef_member_list_resp *ml = &resp.u.member_list_resp;
	static const char *hdr[] = {"ID",         "STATUS",       "NAME",
				    "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"};
	struct ctl_table *t = g_ctl.wfmt == W_TABLE ? ctl_table_new(6, hdr) : NULL;
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		json_object_set_new(j, "header", ctl_jheader(&resp.hdr, 0));
		json_t *arr = json_array();
		for (uint32_t k = 0; k < ml->n_members; k++) {
			const ef_member *m = &ml->members[k];
			json_t *o = json_object();
			json_object_set_new(o, "ID", ctl_ju64(m->id));
			if (m->name.n)
				json_object_set_new(
					o, "name",
					json_stringn((const char *)m->name.p, m->name.n));
			json_t *pu = json_array(), *cu = json_array();
			for (uint32_t u = 0; u < m->n_peer_urls; u++)
				json_array_append_new(pu,
						      json_stringn((const char *)m->peer_urls[u].p,
								   m->peer_urls[u].n));
			for (uint32_t u = 0; u < m->n_client_urls; u++)
				json_array_append_new(
					cu, json_stringn((const char *)m->client_urls[u].p,
							 m->client_urls[u].n));
			if (m->n_peer_urls)
				json_object_set_new(o, "peerURLs", pu);
			else
				json_decref(pu);
			if (m->n_client_urls)
				json_object_set_new(o, "clientURLs", cu);
			else
				json_decref(cu);
			if (m->is_learner)
				json_object_set_new(o, "isLearner", json_true());
			json_array_append_new(arr, o);
		}
		json_object_set_new(j, "members", arr);
		ctl_json_print(j);
	} else if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(&resp.hdr);
		for (uint32_t k = 0; k < ml->n_members; k++) {
			const ef_member *m = &ml->members[k];
			printf("\"ID\" : %llu\n\"Name\" : ", (unsigned long long)m->id);
			ctl_quote(stdout, m->name.p, m->name.n);
			putchar('\n');
			for (uint32_t u = 0; u < m->n_peer_urls; u++) {
				printf("\"PeerURL\" : ");
				ctl_quote(stdout, m->peer_urls[u].p, m->peer_urls[u].n);
				putchar('\n');
			}
			for (uint32_t u = 0; u < m->n_client_urls; u++) {
				printf("\"ClientURL\" : ");
				ctl_quote(stdout, m->client_urls[u].p, m->client_urls[u].n);
				putchar('\n');
			}
			printf("\"IsLearner\" : %s\n\n", tf(m->is_learner));
		}
	} else {
		for (uint32_t k = 0; k < ml->n_members; k++) {
			const ef_member *m = &ml->members[k];
			char id[32], name[256];
			snprintf(id, sizeof id, "%llx", (unsigned long long)m->id);
			snprintf(name, sizeof name, "%.*s", (int)m->name.n,
				 (const char *)m->name.p);
			char *pu = join_urls(m->peer_urls, m->n_peer_urls, ",");
			char *cu = join_urls(m->client_urls, m->n_client_urls, ",");
			const char *status = m->name.n ? "started" : "unstarted";
			if (t) {
				const char *row[] = {id, status, name, pu, cu, tf(m->is_learner)};
				ctl_table_row(t, row);
			} else {
				printf("%s, %s, %s, %s, %s, %s\n", id, status, name, pu, cu,
				       tf(m->is_learner));
			}
			free(pu);
			free(cu);
		}
	}
	if (t) {
		ctl_table_print(t, stdout);
		ctl_table_free(t);
	}
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

int cmd_move_leader(int argc, char **argv)
{
	struct ctl_args a;
	static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
	ctl_parse(argc, argv, none, &a);
	if (a.npos != 1)
		ctl_die(CTL_EXIT_BAD_ARGS, "move-leader command needs 1 argument");
	char *end;
	unsigned long long target = strtoull(a.pos[0], &end, 16);
	if (!*a.pos[0] || *end)
		ctl_die(CTL_EXIT_BAD_ARGS, "strconv.ParseUint: parsing \"%s\": invalid syntax",
			a.pos[0]);
	/* Find the leader: MoveLeader must be sent to it. */
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_STATUS}, st;
	ctl_call(&req, &st, ar);
	uint64_t leader = st.u.status_resp.leader;
	if (!leader)
		ctl_die(CTL_EXIT_ERROR, "no leader endpoint given at [%s]", g_ctl.endpoints);
	ef_msg ml;
	req.type = EF_MSG_MEMBER_LIST;
	ctl_call(&req, &ml, ar);
	char *leader_eps = NULL;
	for (uint32_t k = 0; k < ml.u.member_list_resp.n_members; k++) {
		const ef_member *m = &ml.u.member_list_resp.members[k];
		if (m->id == leader && m->n_client_urls)
			leader_eps = join_urls(m->client_urls, m->n_client_urls, ",");
	}
	efc_client *c = NULL;
	if (!leader_eps || ctl_open_one(leader_eps, &c) != 0)
		c = ctl_client();
	ef_msg mv = {.type = EF_MSG_MOVE_LEADER}, resp;
	mv.u.move_leader.target_id = target;
	int rv = efc_call(c, &mv, &resp, ar);
	if (rv != 0)
		ctl_die_rv(rv);
	printf("Leadership transferred from %llx to %llx\n", (unsigned long long)leader, target);
	free(leader_eps);
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}
