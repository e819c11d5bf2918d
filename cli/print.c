/*
 * print.c - etcfsctl's output formats, shaped exactly like etcdctl's.
 *
 *   simple  printKV: the key on one line, the value on the next (raw bytes,
 *           or "\x66\x6f" with --hex); verbs add "OK", counts, etc.
 *   json    Go's encoding/json of the etcd protobuf structs: snake_case
 *           fields, byte strings base64, zero values omitted (omitempty),
 *           64-bit ids as bare numbers.  Built with jansson, never by hand;
 *           the one trick is ctl_ju64 for ids above 2^63, which jansson's
 *           signed integers cannot hold (see ctl_json_print).
 *   fields  "Name" : value lines, strings quoted like Go's %q.
 *   table   olekukonko/tablewriter as etcdctl configures it: centred
 *           header, right-aligned cells, +---+ borders.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* Quoting.                                                             */

/* Length of the valid UTF-8 sequence at p (1..4) or 0 when invalid. */
static int utf8_len(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t c = p[0];
	int len;
	uint32_t v;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2;
		v = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		v = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)len > n)
		return 0;
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

void ctl_quote(FILE *f, const uint8_t *p, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		uint32_t cp;
		int l = utf8_len(p + i, n - i, &cp);
		if (l == 0) {
			fprintf(f, "\\x%02x", c);
			i++;
			continue;
		}
		if (l > 1) {
			/* Non-ASCII printable runes are written as is; C1 controls escaped. */
			if (cp < 0xa0)
				fprintf(f, "\\u%04x", cp);
			else
				fwrite(p + i, 1, (size_t)l, f);
			i += (size_t)l;
			continue;
		}
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\a':
			fputs("\\a", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\v':
			fputs("\\v", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\x%02x", c);
			else
				fputc(c, f);
		}
		i++;
	}
	fputc('"', f);
}

void ctl_print_bytes_line(const uint8_t *p, size_t n)
{
	if (g_ctl.hex) {
		for (size_t i = 0; i < n; i++)
			printf("\\x%02x", p[i]);
	} else if (n) {
		fwrite(p, 1, n, stdout);
	}
	putchar('\n');
}

void ctl_print_kv(const ef_kv *kv, int value_only)
{
	if (!value_only)
		ctl_print_bytes_line(kv->key.p, kv->key.n);
	ctl_print_bytes_line(kv->value.p, kv->value.n);
}

void ctl_human_bytes(uint64_t n, char *out, size_t len)
{
	static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	if (n < 10) {
		snprintf(out, len, "%llu B", (unsigned long long)n);
		return;
	}
	double v = (double)n;
	int e = 0;
	while (v >= 1000 && e < 6) {
		v /= 1000;
		e++;
	}
	/* humanize rounds to one decimal first: floor(v*10+0.5)/10 */
	double r = (double)(long long)(v * 10 + 0.5) / 10;
	snprintf(out, len, r < 10 ? "%.1f %s" : "%.0f %s", r, units[e]);
}

/* ------------------------------------------------------------------ */
/* Tables.                                                              */

struct ctl_table {
	int ncols;
	char **cells; /* rows * ncols, row 0 = header */
	int nrows;
};

struct ctl_table *ctl_table_new(int ncols, const char *const *header)
{
	struct ctl_table *t = calloc(1, sizeof *t);
	if (!t)
		ctl_die(CTL_EXIT_ERROR, "out of memory");
	t->ncols = ncols;
	ctl_table_row(t, header);
	return t;
}

void ctl_table_row(struct ctl_table *t, const char *const *cells)
{
	char **nc = realloc(t->cells, sizeof(char *) * (size_t)(t->nrows + 1) * (size_t)t->ncols);
	if (!nc)
		ctl_die(CTL_EXIT_ERROR, "out of memory");
	t->cells = nc;
	for (int i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "");
	t->nrows++;
}

/* Display width: count UTF-8 code points, not bytes. */
static int dwidth(const char *s)
{
	int w = 0;
	for (; *s; s++)
		if (((uint8_t)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void rule(FILE *f, const int *w, int n)
{
	fputc('+', f);
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < w[i] + 2; k++)
			fputc('-', f);
		fputc('+', f);
	}
	fputc('\n', f);
}

void ctl_table_print(struct ctl_table *t, FILE *f)
{
	int *w = calloc((size_t)t->ncols, sizeof(int));
	if (!w)
		return;
	for (int r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			int l = dwidth(t->cells[r * t->ncols + c]);
			if (l > w[c])
				w[c] = l;
		}
	rule(f, w, t->ncols);
	for (int r = 0; r < t->nrows; r++) {
		fputc('|', f);
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int gap = w[c] - dwidth(s);
			int left = r == 0 ? gap / 2 : gap;
			int right = gap - left;
			fprintf(f, " %*s%s%*s |", left, "", s, right, "");
		}
		fputc('\n', f);
		if (r == 0)
			rule(f, w, t->ncols);
	}
	rule(f, w, t->ncols);
	free(w);
}

void ctl_table_free(struct ctl_table *t)
{
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* ------------------------------------------------------------------ */
/* JSON.                                                                */

#define U64_MARK "\x01u64:"

json_t *ctl_ju64(uint64_t v)
{
	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	char buf[40];
	snprintf(buf, sizeof buf, U64_MARK "%llu", (unsigned long long)v);
	return json_string(buf);
}

json_t *ctl_jbase64(const uint8_t *p, size_t n)
{
	char *out = malloc(b64_encoded_len(n) + 1);
	if (!out)
		ctl_die(CTL_EXIT_ERROR, "out of memory");
	b64_encode(p, n, out);
	json_t *j = json_string(out);
	free(out);
	return j;
}

json_t *ctl_jheader(const ef_resp_header *h, int with_revision)
{
	json_t *j = json_object();
	if (h->cluster_id)
		json_object_set_new(j, "cluster_id", ctl_ju64(h->cluster_id));
	if (h->member_id)
		json_object_set_new(j, "member_id", ctl_ju64(h->member_id));
	if (with_revision && h->revision)
		json_object_set_new(j, "revision", json_integer(h->revision));
	if (h->raft_term)
		json_object_set_new(j, "raft_term", ctl_ju64(h->raft_term));
	return j;
}

json_t *ctl_jkv(const ef_kv *kv)
{
	json_t *j = json_object();
	if (kv->key.n)
		json_object_set_new(j, "key", ctl_jbase64(kv->key.p, kv->key.n));
	if (kv->create_revision)
		json_object_set_new(j, "create_revision", json_integer(kv->create_revision));
	if (kv->mod_revision)
		json_object_set_new(j, "mod_revision", json_integer(kv->mod_revision));
	if (kv->version)
		json_object_set_new(j, "version", json_integer(kv->version));
	if (kv->value.n)
		json_object_set_new(j, "value", ctl_jbase64(kv->value.p, kv->value.n));
	if (kv->lease)
		json_object_set_new(j, "lease", json_integer(kv->lease));
	return j;
}

void ctl_json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		ctl_die(CTL_EXIT_ERROR, "out of memory");
	/* "\u0001u64:123" -> 123 */
	static const char mark[] = "\"\\u0001u64:";
	char *r = s, *w = s;
	while (*r) {
		if (strncmp(r, mark, sizeof mark - 1) == 0) {
			r += sizeof mark - 1;
			while (*r && *r != '"')
				*w++ = *r++;
			if (*r == '"')
				r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = 0;
	puts(s);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Fields.                                                              */

void ctl_fields_header(const ef_resp_header *h)
{
	printf("\"ClusterID\" : %llu\n", (unsigned long long)h->cluster_id);
	printf("\"MemberID\" : %llu\n", (unsigned long long)h->member_id);
	printf("\"Revision\" : %lld\n", (long long)h->revision);
	printf("\"RaftTerm\" : %llu\n", (unsigned long long)h->raft_term);
}

void ctl_fields_kv(const ef_kv *kv, const char *prefix)
{
	printf("\"%sKey\" : ", prefix);
	ctl_quote(stdout, kv->key.p, kv->key.n);
	printf("\n\"%sCreateRevision\" : %lld\n", prefix, (long long)kv->create_revision);
	printf("\"%sModRevision\" : %lld\n", prefix, (long long)kv->mod_revision);
	printf("\"%sVersion\" : %lld\n", prefix, (long long)kv->version);
	printf("\"%sValue\" : ", prefix);
	ctl_quote(stdout, kv->value.p, kv->value.n);
	printf("\n\"%sLease\" : %lld\n", prefix, (long long)kv->lease);
}

/* ------------------------------------------------------------------ */
/* Responses shared by the kv verbs and txn.                            */

static json_t *jrange(const ef_msg *resp, const ef_range_resp *r, int full_header)
{
	json_t *j = json_object();
	json_object_set_new(j, "header", ctl_jheader(&resp->hdr, 1));
	if (r->n_kvs) {
		json_t *a = json_array();
		for (uint32_t i = 0; i < r->n_kvs; i++)
			json_array_append_new(a, ctl_jkv(&r->kvs[i]));
		json_object_set_new(j, "kvs", a);
	}
	if (r->more)
		json_object_set_new(j, "more", json_true());
	if (r->count)
		json_object_set_new(j, "count", json_integer(r->count));
	return j;
}

void ctl_print_range(const ef_msg *resp, const ef_range_resp *r, int value_only, int keys_only)
{
	switch (g_ctl.wfmt) {
	case W_JSON:
		ctl_json_print(jrange(resp, r, 1));
		break;
	case W_FIELDS:
		ctl_fields_header(&resp->hdr);
		for (uint32_t i = 0; i < r->n_kvs; i++)
			ctl_fields_kv(&r->kvs[i], "");
		printf("\"More\" : %s\n", r->more ? "true" : "false");
		printf("\"Count\" : %lld\n", (long long)r->count);
		break;
	default:
		for (uint32_t i = 0; i < r->n_kvs; i++) {
			if (keys_only) {
				ctl_print_bytes_line(r->kvs[i].key.p, r->kvs[i].key.n);
				putchar('\n');
			} else {
				ctl_print_kv(&r->kvs[i], value_only);
			}
		}
	}
}

void ctl_print_put(const ef_msg *resp, const ef_put_resp *r)
{
	switch (g_ctl.wfmt) {
	case W_JSON: {
		json_t *j = json_object();
		json_object_set_new(j, "header", ctl_jheader(&resp->hdr, 1));
		if (r->prev_kv)
			json_object_set_new(j, "prev_kv", ctl_jkv(r->prev_kv));
		ctl_json_print(j);
		break;
	}
	case W_FIELDS:
		ctl_fields_header(&resp->hdr);
		if (r->prev_kv)
			ctl_fields_kv(r->prev_kv, "Prev");
		break;
	default:
		puts("OK");
		if (r->prev_kv)
			ctl_print_kv(r->prev_kv, 0);
	}
}

void ctl_print_del(const ef_msg *resp, const ef_delete_resp *r)
{
	switch (g_ctl.wfmt) {
	case W_JSON: {
		json_t *j = json_object();
		json_object_set_new(j, "header", ctl_jheader(&resp->hdr, 1));
		if (r->deleted)
			json_object_set_new(j, "deleted", json_integer(r->deleted));
		if (r->n_prev_kvs) {
			json_t *a = json_array();
			for (uint32_t i = 0; i < r->n_prev_kvs; i++)
				json_array_append_new(a, ctl_jkv(&r->prev_kvs[i]));
			json_object_set_new(j, "prev_kvs", a);
		}
		ctl_json_print(j);
		break;
	}
	case W_FIELDS:
		ctl_fields_header(&resp->hdr);
		printf("\"Deleted\" : %lld\n", (long long)r->deleted);
		for (uint32_t i = 0; i < r->n_prev_kvs; i++)
			ctl_fields_kv(&r->prev_kvs[i], "Prev");
		break;
	default:
		printf("%lld\n", (long long)r->deleted);
		for (uint32_t i = 0; i < r->n_prev_kvs; i++)
			ctl_print_kv(&r->prev_kvs[i], 0);
	}
}
