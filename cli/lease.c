/*
 * lease.c - "etcfsctl lease grant|revoke|timetolive|keep-alive|list".
 *
 * Lease ids are printed and parsed in hex ("%016x") as etcdctl does.  The
 * JSON of lease responses has the etcd header fields inlined at the top
 * level (clientv3's lease response structs embed *ResponseHeader), unlike
 * the kv responses that nest them under "header".
 *
 * keep-alive without --once sends LEASE_KEEPALIVE every TTL/3 seconds
 * (at least once a second) until the lease is gone or the process is
 * interrupted, printing one line per renewal, like clientv3's KeepAlive.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

static void set_header_inline(json_t *j, const ef_resp_header *h)
{
	json_t *hj = ctl_jheader(h, 1);
	json_object_update(j, hj);
	json_decref(hj);
}

static int64_t need_id(struct ctl_args *a, const char *msg)
{
	if (a->npos != 1)
		ctl_die(CTL_EXIT_BAD_ARGS, "%s", msg);
	int64_t id;
	if (ctl_parse_hex_id(a->pos[0], &id) != 0)
		ctl_die(CTL_EXIT_BAD_ARGS,
			"bad lease ID arg (strconv.ParseInt: parsing \"%s\": invalid syntax), "
			"expecting ID in Hex",
			a->pos[0]);
	return id;
}

static void no_table(void)
{
	if (g_ctl.wfmt == W_TABLE)
		ctl_die(CTL_EXIT_BAD_FEATURE, "table not supported as output format");
}

static int lease_grant(int argc, char **argv)
{
	struct ctl_args a;
	static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
	ctl_parse(argc, argv, none, &a);
	no_table();
	if (a.npos != 1)
		ctl_die(CTL_EXIT_BAD_ARGS, "lease grant command needs TTL argument");
	char *end;
	long long ttl = strtoll(a.pos[0], &end, 10);
	if (!*a.pos[0] || *end)
		ctl_die(CTL_EXIT_BAD_ARGS,
			"bad TTL (strconv.ParseInt: parsing \"%s\": invalid syntax)", a.pos[0]);
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_LEASE_GRANT}, resp;
	req.u.lease.ttl = ttl;
	int rv = efc_call(ctl_client(), &req, &resp, ar);
	if (rv != 0)
		ctl_die(CTL_EXIT_ERROR, "failed to grant lease (%s)", efc_errmsg());
	const ef_lease_resp *l = &resp.u.lease_resp;
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		set_header_inline(j, &resp.hdr);
		json_object_set_new(j, "ID", json_integer(l->id));
		json_object_set_new(j, "TTL", json_integer(l->ttl));
		json_object_set_new(j, "Error", json_string(""));
		ctl_json_print(j);
	} else if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(&resp.hdr);
		printf("\"ID\" : %lld\n\"TTL\" : %lld\n", (long long)l->id, (long long)l->ttl);
	} else {
		printf("lease %016llx granted with TTL(%llds)\n", (unsigned long long)l->id,
		       (long long)l->ttl);
	}
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

static int lease_revoke(int argc, char **argv)
{
	struct ctl_args a;
	static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
	ctl_parse(argc, argv, none, &a);
	no_table();
	int64_t id = need_id(&a, "lease revoke command needs 1 argument");
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_LEASE_REVOKE}, resp;
	req.u.lease.id = id;
	int rv = efc_call(ctl_client(), &req, &resp, ar);
	if (rv != 0)
		ctl_die(CTL_EXIT_ERROR, "failed to revoke lease (%s)", efc_errmsg());
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		json_object_set_new(j, "header", ctl_jheader(&resp.hdr, 1));
		ctl_json_print(j);
	} else if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(&resp.hdr);
	} else {
		printf("lease %016llx revoked\n", (unsigned long long)id);
	}
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

static int lease_timetolive(int argc, char **argv)
{
	int keys = 0;
	const struct ctl_flag flags[] = {{"keys", 0, F_BOOL, &keys}, {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	no_table();
	int64_t id = need_id(&a, "lease timetolive command needs lease ID as argument");
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_LEASE_TTL}, resp;
	req.u.lease.id = id;
	req.u.lease.keys = (uint8_t)keys;
	int rv = efc_call(ctl_client(), &req, &resp, ar);
	ef_lease_resp l = {0};
	if (rv == EF_E_LEASE_NOT_FOUND) {
		/* etcd answers an unknown lease with TTL -1, not an error */
		memset(&resp, 0, sizeof resp);
		l.id = id;
		l.ttl = -1;
	} else if (rv != 0) {
		ctl_die_rv(rv);
	} else {
		l = resp.u.lease_resp;
	}
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		set_header_inline(j, &resp.hdr);
		json_object_set_new(j, "id", json_integer(l.id));
		json_object_set_new(j, "ttl", json_integer(l.ttl));
		json_object_set_new(j, "granted-ttl", json_integer(l.granted_ttl));
		if (l.n_keys) {
			json_t *arr = json_array();
			for (uint32_t i = 0; i < l.n_keys; i++)
				json_array_append_new(arr, ctl_jbase64(l.keys[i].p, l.keys[i].n));
			json_object_set_new(j, "keys", arr);
		} else {
			json_object_set_new(j, "keys", json_null());
		}
		ctl_json_print(j);
	} else if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(&resp.hdr);
		printf("\"ID\" : %lld\n\"TTL\" : %lld\n\"GrantedTTL\" : %lld\n", (long long)l.id,
		       (long long)l.ttl, (long long)l.granted_ttl);
		for (uint32_t i = 0; i < l.n_keys; i++) {
			printf("\"Key\" : ");
			ctl_quote(stdout, l.keys[i].p, l.keys[i].n);
			putchar('\n');
		}
	} else if (l.granted_ttl == 0 && l.ttl == -1) {
		printf("lease %016llx already expired\n", (unsigned long long)id);
	} else {
		printf("lease %016llx granted with TTL(%llds), remaining(%llds)",
		       (unsigned long long)id, (long long)l.granted_ttl, (long long)l.ttl);
		if (keys) {
			printf(", attached keys([");
			for (uint32_t i = 0; i < l.n_keys; i++) {
				if (i)
					putchar(' ');
				fwrite(l.keys[i].p, 1, l.keys[i].n, stdout);
			}
			printf("])");
		}
		putchar('\n');
	}
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

static void print_keepalive(const ef_msg *resp, int64_t id)
{
	const ef_lease_resp *l = &resp->u.lease_resp;
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		set_header_inline(j, &resp->hdr);
		json_object_set_new(j, "ID", json_integer(id));
		json_object_set_new(j, "TTL", json_integer(l->ttl));
		ctl_json_print(j);
	} else if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(&resp->hdr);
		printf("\"ID\" : %lld\n\"TTL\" : %lld\n", (long long)id, (long long)l->ttl);
	} else {
		printf("lease %016llx keepalived with TTL(%lld)\n", (unsigned long long)id,
		       (long long)l->ttl);
	}
	fflush(stdout);
}

static volatile sig_atomic_t ka_stop;
static void on_sig(int s)
{
	ka_stop = 1;
}

static int lease_keepalive(int argc, char **argv)
{
	int once = 0;
	const struct ctl_flag flags[] = {{"once", 0, F_BOOL, &once}, {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	no_table();
	int64_t id = need_id(&a, "lease keep-alive command needs lease ID as argument");
	struct sigaction sa = {0};
	sa.sa_handler = on_sig;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		ef_arena *ar = ctl_arena();
		ef_msg req = {.type = EF_MSG_LEASE_KEEPALIVE}, resp;
		req.u.lease.id = id;
		int rv = efc_call(ctl_client(), &req, &resp, ar);
		if (rv == EF_E_LEASE_NOT_FOUND || (rv == 0 && resp.u.lease_resp.ttl <= 0)) {
			if (once)
				ctl_die(CTL_EXIT_BAD_CONNECTION, "%s",
					rv ? efc_errmsg() : ef_strerror(EF_E_LEASE_NOT_FOUND));
			printf("lease %016llx expired or revoked.\n", (unsigned long long)id);
			ef_arena_free(ar);
			break;
		}
		if (rv != 0) {
			if (once)
				ctl_die(CTL_EXIT_BAD_CONNECTION, "%s", efc_errmsg());
			/* transient (no leader, failover): retry after a short pause */
			fprintf(stderr, "keep-alive failed: %s\n", efc_errmsg());
			ef_arena_free(ar);
			struct timespec ts = {0, 500 * 1000000L};
			nanosleep(&ts, NULL);
			if (ka_stop)
				break;
			continue;
		}
		print_keepalive(&resp, id);
		int64_t ttl = resp.u.lease_resp.ttl;
		ef_arena_free(ar);
		if (once)
			break;
		int64_t wait_ms = ttl * 1000 / 3;
		if (wait_ms < 500)
			wait_ms = 500;
		for (int64_t w = 0; w < wait_ms && !ka_stop; w += 100) {
			struct timespec ts = {0, 100 * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (ka_stop)
			break;
	}
	free(a.pos);
	return 0;
}

static int lease_list(int argc, char **argv)
{
	struct ctl_args a;
	static const struct ctl_flag none[] = {{NULL, 0, 0, NULL}};
	ctl_parse(argc, argv, none, &a);
	no_table();
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_LEASE_LIST}, resp;
	int rv = efc_call(ctl_client(), &req, &resp, ar);
	if (rv != 0)
		ctl_die(CTL_EXIT_ERROR, "failed to list leases (%s)", efc_errmsg());
	const ef_lease_list_resp *l = &resp.u.lease_list_resp;
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		set_header_inline(j, &resp.hdr);
		json_t *arr = json_array();
		for (uint32_t i = 0; i < l->n_ids; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "id", json_integer(l->ids[i]));
			json_array_append_new(arr, o);
		}
		json_object_set_new(j, "leases", arr);
		ctl_json_print(j);
	} else if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(&resp.hdr);
		for (uint32_t i = 0; i < l->n_ids; i++)
			printf("\"ID\" : %lld\n", (long long)l->ids[i]);
	} else {
		printf("found %u leases\n", l->n_ids);
		for (uint32_t i = 0; i < l->n_ids; i++)
			printf("%016llx\n", (unsigned long long)l->ids[i]);
	}
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

int cmd_lease(int argc, char **argv)
{
	int i = ctl_find_word(argc, argv);
	if (i < 0)
		ctl_die(CTL_EXIT_BAD_ARGS,
			"lease needs a sub-command: grant, revoke, timetolive, list or keep-alive");
	char *sub = argv[i];
	ctl_remove_arg(&argc, argv, i);
	if (strcmp(sub, "grant") == 0)
		return lease_grant(argc, argv);
	if (strcmp(sub, "revoke") == 0)
		return lease_revoke(argc, argv);
	if (strcmp(sub, "timetolive") == 0)
		return lease_timetolive(argc, argv);
	if (strcmp(sub, "keep-alive") == 0)
		return lease_keepalive(argc, argv);
	if (strcmp(sub, "list") == 0)
		return lease_list(argc, argv);
	ctl_die(CTL_EXIT_BAD_ARGS, "unknown command \"%s\" for \"etcfsctl lease\"", sub);
}
