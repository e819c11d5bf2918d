/*
 * kv.c - the key-value verbs of etcfsctl: put, get, del, txn, compact.
 *
 * Each verb turns its arguments into one ef_msg request exactly as etcdctl
 * builds its gRPC request (prefix -> range_end = prefix + 1, --from-key ->
 * range_end "\0", --sort-by without --order -> ASCEND, ...), sends it with
 * efc_call and prints the response with print.c.  txn reads etcdctl's
 * three-block syntax from stdin (compares, blank line, success requests,
 * blank line, failure requests) and reuses the put/get/del argument parsers
 * for the request lines, so a txn line accepts the same flags as the verb.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static void no_table(void)
{
	if (g_ctl.wfmt == W_TABLE)
		ctl_die(CTL_EXIT_BAD_FEATURE, "table not supported as output format");
}

/* Words after "--" are ordinary arguments for put/get/del ("put -- -k -v"). */
static void merge_exec(struct ctl_args *a)
{
	for (int i = 0; i < a->nexec; i++)
		a->pos[a->npos++] = a->exec[i];
	a->nexec = 0;
	a->exec = NULL;
}

static const uint8_t zero_byte[1] = {0};

/* ------------------------------------------------------------------ */
/* Request builders (shared with txn request lines).                    */

struct put_opts {
	const char *lease;
	int prev_kv, ignore_value, ignore_lease;
};

/* Builds a put op from positionals; stdin_ok: read the value from stdin
 * when it is missing (not inside txn). */
static void build_put(ef_arena *ar, struct ctl_args *a, struct put_opts *o, int stdin_ok,
		      ef_put_req *p)
{
	memset(p, 0, sizeof *p);
	int need = o->ignore_value ? 1 : 2;
	if (a->npos == 0 || a->npos > 2 || (a->npos < need && !stdin_ok))
		ctl_die(CTL_EXIT_BAD_ARGS,
			"put command needs 1 argument and input from stdin or 2 arguments");
	p->key = ef_str(a->pos[0]);
	if (a->npos == 2) {
		p->value = ef_str(a->pos[1]);
	} else if (!o->ignore_value) {
		/* etcdctl reads all of stdin; the value keeps its bytes as they are */
		size_t cap = 4096, len = 0;
		uint8_t *buf = malloc(cap);
		ssize_t n;
		while (buf && (n = read(0, buf + len, cap - len)) > 0) {
			len += (size_t)n;
			if (len == cap) {
				cap *= 2;
				uint8_t *nb = realloc(buf, cap);
				if (!nb)
					free(buf);
				buf = nb;
			}
		}
		if (!buf)
			ctl_die(CTL_EXIT_ERROR, "out of memory");
		if (len == 0)
			ctl_die(CTL_EXIT_BAD_ARGS,
				"put command needs 1 argument and input from stdin or 2 arguments");
		p->value.p = ef_arena_dup(ar, buf, len);
		p->value.n = (uint32_t)len;
		free(buf);
	}
	if (o->lease) {
		int64_t id;
		if (ctl_parse_hex_id(o->lease, &id) != 0)
			ctl_die(CTL_EXIT_BAD_ARGS,
				"bad lease ID (strconv.ParseInt: parsing \"%s\": invalid syntax), "
				"expecting ID in Hex",
				o->lease);
		p->lease = id;
	}
	p->prev_kv = (uint8_t)o->prev_kv;
	p->ignore_value = (uint8_t)o->ignore_value;
	p->ignore_lease = (uint8_t)o->ignore_lease;
}

struct get_opts {
	int prefix, from_key, keys_only, count_only, value_only;
	int64_t rev, limit;
	const char *sort_by, *order, *consistency;
};

/* key [range_end] with --prefix / --from-key, as etcdctl's getGetOp. */
static void key_range(ef_arena *ar, struct ctl_args *a, int prefix, int from_key, const char *verb,
		      ef_buf *key, ef_buf *end)
{
	if (a->npos == 0 || a->npos > 2)
		ctl_die(CTL_EXIT_BAD_ARGS,
			"%s command needs one argument as key and an optional argument as range_end",
			verb);
	if (prefix && from_key)
		ctl_die(CTL_EXIT_BAD_ARGS,
			"`--prefix` and `--from-key` cannot be set at the same time, choose one");
	if ((prefix || from_key) && a->npos == 2)
		ctl_die(CTL_EXIT_BAD_ARGS, "too many arguments, only accept one argument when "
					   "`--prefix` or `--from-key` is set");
	*key = ef_str(a->pos[0]);
	end->p = NULL;
	end->n = 0;
	if (a->npos == 2) {
		*end = ef_str(a->pos[1]);
	} else if (prefix) {
		*end = ef_prefix_end(ar, *key);
		if (key->n == 0)
			*key = (ef_buf){zero_byte, 1};
	} else if (from_key) {
		*end = (ef_buf){zero_byte, 1};
		if (key->n == 0)
			*key = (ef_buf){zero_byte, 1};
	}
}

static void build_get(ef_arena *ar, struct ctl_args *a, struct get_opts *o, ef_range_req *r)
{
	memset(r, 0, sizeof *r);
	key_range(ar, a, o->prefix, o->from_key, "get", &r->key, &r->range_end);
	r->revision = o->rev;
	r->limit = o->limit;
	r->keys_only = (uint8_t)o->keys_only;
	r->count_only = (uint8_t)o->count_only;
	if (o->consistency) {
		if (strcmp(o->consistency, "s") == 0)
			r->serializable = 1;
		else if (strcmp(o->consistency, "l") != 0)
			ctl_die(CTL_EXIT_BAD_FEATURE, "unknown consistency flag \"%s\"",
				o->consistency);
	}
	int order = EF_SORT_NONE, target = EF_SORT_KEY;
	if (o->order && *o->order) {
		if (strcmp(o->order, "ASCEND") == 0)
			order = EF_SORT_ASCEND;
		else if (strcmp(o->order, "DESCEND") == 0)
			order = EF_SORT_DESCEND;
		else
			ctl_die(CTL_EXIT_BAD_FEATURE, "bad sort order %s", o->order);
	}
	if (o->sort_by && *o->sort_by) {
		static const struct {
			const char *n;
			int t;
		} t[] = {{"CREATE", EF_SORT_CREATE},
			 {"KEY", EF_SORT_KEY},
			 {"MODIFY", EF_SORT_MOD},
			 {"VALUE", EF_SORT_VALUE},
			 {"VERSION", EF_SORT_VERSION}};
		size_t i;
		for (i = 0; i < 5; i++)
			if (strcmp(o->sort_by, t[i].n) == 0)
				break;
		if (i == 5)
			ctl_die(CTL_EXIT_BAD_FEATURE, "bad sort target %s", o->sort_by);
		target = t[i].t;
		if (order == EF_SORT_NONE)
			order = EF_SORT_ASCEND;
	}
	r->sort_order = (uint8_t)order;
	r->sort_target = (uint8_t)target;
}

struct del_opts {
	int prefix, from_key, prev_kv;
};

static void build_del(ef_arena *ar, struct ctl_args *a, struct del_opts *o, ef_delete_req *d)
{
	memset(d, 0, sizeof *d);
	key_range(ar, a, o->prefix, o->from_key, "del", &d->key, &d->range_end);
	d->prev_kv = (uint8_t)o->prev_kv;
}

/* Flag tables bound to option structs. */
#define PUT_FLAGS(o)                                                           \
	{"lease", 0, F_STR, &(o).lease}, {"prev-kv", 0, F_BOOL, &(o).prev_kv}, \
		{"ignore-value", 0, F_BOOL, &(o).ignore_value},                \
		{"ignore-lease", 0, F_BOOL, &(o).ignore_lease},                \
	{                                                                      \
		NULL, 0, 0, NULL                                               \
	}
#define GET_FLAGS(o)                                                                           \
	{"prefix", 0, F_BOOL, &(o).prefix}, {"from-key", 0, F_BOOL, &(o).from_key},            \
		{"keys-only", 0, F_BOOL, &(o).keys_only},                                      \
		{"count-only", 0, F_BOOL, &(o).count_only},                                    \
		{"print-value-only", 0, F_BOOL, &(o).value_only}, {"rev", 0, F_INT, &(o).rev}, \
		{"limit", 0, F_INT, &(o).limit}, {"sort-by", 0, F_STR, &(o).sort_by},          \
		{"order", 0, F_STR, &(o).order}, {"consistency", 0, F_STR, &(o).consistency},  \
	{                                                                                      \
		NULL, 0, 0, NULL                                                               \
	}
#define DEL_FLAGS(o)                                                                \
	{"prefix", 0, F_BOOL, &(o).prefix}, {"from-key", 0, F_BOOL, &(o).from_key}, \
		{"prev-kv", 0, F_BOOL, &(o).prev_kv},                               \
	{                                                                           \
		NULL, 0, 0, NULL                                                    \
	}

/* ------------------------------------------------------------------ */

int cmd_put(int argc, char **argv)
{
	struct put_opts o = {0};
	const struct ctl_flag flags[] = {PUT_FLAGS(o)};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	merge_exec(&a);
	no_table();
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_PUT}, resp;
	build_put(ar, &a, &o, 1, &req.u.put);
	ctl_call(&req, &resp, ar);
	ctl_print_put(&resp, &resp.u.put_resp);
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

int cmd_get(int argc, char **argv)
{
	struct get_opts o = {0};
	const struct ctl_flag flags[] = {GET_FLAGS(o)};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	merge_exec(&a);
	no_table();
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	build_get(ar, &a, &o, &req.u.range);
	ctl_call(&req, &resp, ar);
	if (o.count_only && g_ctl.wfmt == W_SIMPLE)
		printf("%lld\n", (long long)resp.u.range_resp.count);
	else
		ctl_print_range(&resp, &resp.u.range_resp, o.value_only, o.keys_only);
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

int cmd_del(int argc, char **argv)
{
	struct del_opts o = {0};
	const struct ctl_flag flags[] = {DEL_FLAGS(o)};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	merge_exec(&a);
	no_table();
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_DELETE}, resp;
	build_del(ar, &a, &o, &req.u.del);
	ctl_call(&req, &resp, ar);
	ctl_print_del(&resp, &resp.u.del_resp);
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

int cmd_compact(int argc, char **argv)
{
	int physical = 0;
	const struct ctl_flag flags[] = {{"physical", 0, F_BOOL, &physical}, {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	if (a.npos != 1)
		ctl_die(CTL_EXIT_BAD_ARGS, "compaction command needs 1 argument");
	char *end;
	errno = 0;
	long long rev = strtoll(a.pos[0], &end, 10);
	if (!*a.pos[0] || *end || errno)
		ctl_die(CTL_EXIT_ERROR, "strconv.ParseInt: parsing \"%s\": invalid syntax",
			a.pos[0]);
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_COMPACT}, resp;
	req.u.compact.revision = rev;
	req.u.compact.physical = (uint8_t)physical;
	ctl_call(&req, &resp, ar);
	printf("compacted revision %lld\n", rev);
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}

/* ------------------------------------------------------------------ */
/* txn                                                                  */

/* One line of stdin without its newline; NULL at EOF.  Caller frees. */
static char *read_line(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	return line;
}

/* Go-style %q scan at *pp: a double-quoted string with backslash escapes.
 * Returns a malloc'ed string (length in *len) or NULL. */
static char *scan_quoted(const char **pp, size_t *len)
{
	const char *p = *pp;
	if (*p != '"')
		return NULL;
	p++;
	char *out = malloc(strlen(p) + 1);
	size_t o = 0;
	while (*p && *p != '"') {
		if (*p == '\\' && p[1]) {
			p++;
			switch (*p) {
			case 'n':
				out[o++] = '\n';
				break;
			case 't':
				out[o++] = '\t';
				break;
			case 'r':
				out[o++] = '\r';
				break;
			case '0':
				out[o++] = 0;
				break;
			case 'x':
				if (isxdigit((unsigned char)p[1]) &&
				    isxdigit((unsigned char)p[2])) {
					char h[3] = {p[1], p[2], 0};
					out[o++] = (char)strtol(h, NULL, 16);
					p += 2;
				} else {
					out[o++] = 'x';
				}
				break;
			default:
				out[o++] = *p;
			}
			p++;
			continue;
		}
		out[o++] = *p++;
	}
	if (*p != '"') {
		free(out);
		return NULL;
	}
	*pp = p + 1;
	out[o] = 0;
	*len = o;
	return out;
}

/* `target("key") op "value"`, as etcdctl's parseCompare. */
static void parse_compare(ef_arena *ar, const char *line, ef_compare *c)
{
	memset(c, 0, sizeof *c);
	const char *lp = strchr(line, '(');
	if (!lp)
		ctl_die(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s", line);
	size_t tlen = (size_t)(lp - line);
	const char *p = lp + 1;
	size_t klen = 0, vlen = 0;
	char *key = scan_quoted(&p, &klen);
	char op[4] = "";
	char *val = NULL;
	if (key && *p == ')') {
		p++;
		while (*p == ' ')
			p++;
		size_t n = 0;
		while (*p && *p != ' ' && n < 3)
			op[n++] = *p++;
		op[n] = 0;
		while (*p == ' ')
			p++;
		val = scan_quoted(&p, &vlen);
	}
	if (!key || !val || !op[0])
		ctl_die(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s", line);
	if (strcmp(op, "=") == 0 || strcmp(op, "==") == 0)
		c->result = EF_CMP_EQUAL;
	else if (strcmp(op, "!=") == 0)
		c->result = EF_CMP_NOT_EQUAL;
	else if (strcmp(op, "<") == 0)
		c->result = EF_CMP_LESS;
	else if (strcmp(op, ">") == 0)
		c->result = EF_CMP_GREATER;
	else
		ctl_die(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s (unknown op %s)", line,
			op);
	c->key.p = ef_arena_dup(ar, key, klen ? klen : 1);
	c->key.n = (uint32_t)klen;
#define T(s) (tlen == strlen(s) && strncmp(line, s, tlen) == 0)
	int numeric = 1;
	if (T("ver") || T("version")) {
		c->target = EF_CMP_VERSION;
	} else if (T("c") || T("create")) {
		c->target = EF_CMP_CREATE;
	} else if (T("m") || T("mod")) {
		c->target = EF_CMP_MOD;
	} else if (T("val") || T("value")) {
		c->target = EF_CMP_VALUE;
		numeric = 0;
		c->value.p = ef_arena_dup(ar, val, vlen ? vlen : 1);
		c->value.n = (uint32_t)vlen;
	} else if (T("lease")) {
		c->target = EF_CMP_LEASE;
		numeric = 2;
	} else {
		ctl_die(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s (unknown target %.*s)",
			line, (int)tlen, line);
	}
#undef T
	if (numeric) {
		char *end;
		errno = 0;
		long long v = strtoll(val, &end, numeric == 2 ? 16 : 10);
		if (!*val || *end || errno)
			ctl_die(CTL_EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
		c->number = v;
	}
	free(key);
	free(val);
}

/* Shell-like word splitting of a request line (etcdctl's argify). */
static int argify(char *line, char **words, int max)
{
	int n = 0;
	char *p = line, *w = line;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (n == max)
			return -1;
		char *start = w;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '"' || *p == '\'') {
				char q = *p++;
				while (*p && *p != q) {
					if (q == '"' && *p == '\\' && p[1])
						p++;
					*w++ = *p++;
				}
				if (*p)
					p++;
			} else {
				*w++ = *p++;
			}
		}
		if (*p)
			p++;
		*w++ = 0;
		words[n++] = start;
	}
	return n;
}

/* One request line into op (put, get, del with their flags). */
static void parse_request(ef_arena *ar, char *line, ef_op *op)
{
	char *words[64];
	int n = argify(line, words, 64);
	if (n <= 0)
		ctl_die(CTL_EXIT_INVALID_INPUT, "invalid txn request: %s", line);
	struct ctl_args a;
	/* The words must outlive this call: they are referenced by op. */
	char **w = ef_arena_alloc(ar, sizeof(char *) * (size_t)n);
	for (int i = 0; i < n; i++)
		w[i] = ef_arena_dup(ar, words[i], strlen(words[i]) + 1);
	int saved_fmt = g_ctl.wfmt, saved_hex = g_ctl.hex;
	const char *saved_ep = g_ctl.endpoints;
	if (strcmp(w[0], "put") == 0) {
		struct put_opts o = {0};
		const struct ctl_flag flags[] = {PUT_FLAGS(o)};
		ctl_parse(n - 1, w + 1, flags, &a);
		merge_exec(&a);
		op->type = EF_OP_PUT;
		build_put(ar, &a, &o, 0, &op->u.put);
	} else if (strcmp(w[0], "get") == 0) {
		struct get_opts o = {0};
		const struct ctl_flag flags[] = {GET_FLAGS(o)};
		ctl_parse(n - 1, w + 1, flags, &a);
		merge_exec(&a);
		op->type = EF_OP_RANGE;
		build_get(ar, &a, &o, &op->u.range);
	} else if (strcmp(w[0], "del") == 0 || strcmp(w[0], "delete") == 0) {
		struct del_opts o = {0};
		const struct ctl_flag flags[] = {DEL_FLAGS(o)};
		ctl_parse(n - 1, w + 1, flags, &a);
		merge_exec(&a);
		op->type = EF_OP_DELETE;
		build_del(ar, &a, &o, &op->u.del);
	} else {
		ctl_die(CTL_EXIT_INVALID_INPUT, "invalid txn request: %s", line);
	}
	/* ctl_parse re-applies global flags; a request line must not change them */
	g_ctl.wfmt = saved_fmt;
	g_ctl.hex = saved_hex;
	g_ctl.endpoints = saved_ep;
	free(a.pos);
}

/* Read lines until a blank line or EOF; returns the number read. */
static char **read_block(int *n)
{
	char **lines = NULL;
	*n = 0;
	char *l;
	while ((l = read_line()) != NULL) {
		if (l[0] == 0) {
			free(l);
			break;
		}
		lines = realloc(lines, sizeof(char *) * (size_t)(*n + 1));
		lines[(*n)++] = l;
	}
	return lines;
}

static void read_ops(ef_arena *ar, ef_op **ops, uint32_t *n_ops)
{
	int n;
	char **lines = read_block(&n);
	*ops = n ? ef_arena_alloc(ar, sizeof(ef_op) * (size_t)n) : NULL;
	for (int i = 0; i < n; i++) {
		parse_request(ar, lines[i], &(*ops)[i]);
		free(lines[i]);
	}
	free(lines);
	*n_ops = (uint32_t)n;
}

static const char *op_resp_name(uint8_t t)
{
	return t == EF_OP_PUT      ? "ResponsePut"
	       : t == EF_OP_DELETE ? "ResponseDeleteRange"
				   : "ResponseRange";
}

static void print_txn(const ef_msg *resp)
{
	const ef_txn_resp *t = &resp->u.txn_resp;
	/* per-op responses carry only the revision in their header, like etcd's */
	ef_msg sub = {0};
	sub.hdr.revision = resp->hdr.revision;
	if (g_ctl.wfmt == W_JSON) {
		json_t *j = json_object();
		json_object_set_new(j, "header", ctl_jheader(&resp->hdr, 1));
		if (t->succeeded)
			json_object_set_new(j, "succeeded", json_true());
		if (t->n_responses) {
			json_t *arr = json_array();
			for (uint32_t i = 0; i < t->n_responses; i++) {
				const ef_op_resp *r = &t->responses[i];
				json_t *o = json_object();
				json_object_set_new(o, "header", ctl_jheader(&sub.hdr, 1));
				if (r->type == EF_OP_RANGE) {
					const ef_range_resp *rr = &r->u.range;
					if (rr->n_kvs) {
						json_t *kvs = json_array();
						for (uint32_t k = 0; k < rr->n_kvs; k++)
							json_array_append_new(kvs,
									      ctl_jkv(&rr->kvs[k]));
						json_object_set_new(o, "kvs", kvs);
					}
					if (rr->more)
						json_object_set_new(o, "more", json_true());
					if (rr->count)
						json_object_set_new(o, "count",
								    json_integer(rr->count));
				} else if (r->type == EF_OP_PUT) {
					if (r->u.put.prev_kv)
						json_object_set_new(o, "prev_kv",
								    ctl_jkv(r->u.put.prev_kv));
				} else {
					const ef_delete_resp *d = &r->u.del;
					if (d->deleted)
						json_object_set_new(o, "deleted",
								    json_integer(d->deleted));
					if (d->n_prev_kvs) {
						json_t *kvs = json_array();
						for (uint32_t k = 0; k < d->n_prev_kvs; k++)
							json_array_append_new(
								kvs, ctl_jkv(&d->prev_kvs[k]));
						json_object_set_new(o, "prev_kvs", kvs);
					}
				}
				json_t *inner = json_object();
				json_object_set_new(inner, op_resp_name(r->type), o);
				json_t *outer = json_object();
				json_object_set_new(outer, "Response", inner);
				json_array_append_new(arr, outer);
			}
			json_object_set_new(j, "responses", arr);
		}
		ctl_json_print(j);
		return;
	}
	if (g_ctl.wfmt == W_FIELDS) {
		ctl_fields_header(&resp->hdr);
		printf("\"Succeeded\" : %s\n", t->succeeded ? "true" : "false");
	} else {
		puts(t->succeeded ? "SUCCESS" : "FAILURE");
	}
	for (uint32_t i = 0; i < t->n_responses; i++) {
		const ef_op_resp *r = &t->responses[i];
		if (g_ctl.wfmt == W_SIMPLE)
			putchar('\n');
		if (r->type == EF_OP_RANGE)
			ctl_print_range(&sub, &r->u.range, 0, 0);
		else if (r->type == EF_OP_PUT)
			ctl_print_put(&sub, &r->u.put);
		else
			ctl_print_del(&sub, &r->u.del);
	}
}

int cmd_txn(int argc, char **argv)
{
	int interactive = 0;
	const struct ctl_flag flags[] = {{"interactive", 'i', F_BOOL, &interactive},
					 {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	if (a.npos != 0)
		ctl_die(CTL_EXIT_BAD_ARGS, "txn command does not accept argument");
	no_table();
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_TXN}, resp;
	ef_txn_req *t = &req.u.txn;

	if (interactive) {
		puts("compares:");
		fflush(stdout);
	}
	int n;
	char **lines = read_block(&n);
	t->cmp = n ? ef_arena_alloc(ar, sizeof(ef_compare) * (size_t)n) : NULL;
	for (int i = 0; i < n; i++) {
		parse_compare(ar, lines[i], &t->cmp[i]);
		free(lines[i]);
	}
	free(lines);
	t->n_cmp = (uint32_t)n;
	if (interactive) {
		puts("success requests (get, put, del):");
		fflush(stdout);
	}
	read_ops(ar, &t->success, &t->n_success);
	if (interactive) {
		puts("failure requests (get, put, del):");
		fflush(stdout);
	}
	read_ops(ar, &t->failure, &t->n_failure);

	ctl_call(&req, &resp, ar);
	print_txn(&resp);
	ef_arena_free(ar);
	free(a.pos);
	return 0;
}
