/*
 * test_wire_tables.c - the wire codec's field tables against the C structs
 * they describe, encode-side refusals, prefix ends, request sizes, deep copies,
 * type names, and a replay of the fuzz corpus (tests/fuzz/corpus/wire).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>

#include "../../proto/wire.h"
#include "../../proto/wire_int.h"
#include "test.h"
#include "wire_fixture.h"

TEST(encode_rejects_inconsistent_messages)
{
	ef_wbuf w;
	ef_msg m;

	ef_wbuf_init(&w);
	ef_wbuf_u32(&w, 0xabcdef01); /* something already in the buffer stays */
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.u.put.key.n = 3; /* length without bytes */
	CHECK_EQ(ef_encode(&m, &w), EF_E_INVALID);
	CHECK_EQ(w.len, 4);
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_RANGE_RESP;
	m.u.range_resp.n_kvs = 2; /* count without array */
	CHECK_EQ(ef_encode(&m, &w), EF_E_INVALID);
	CHECK_EQ(w.len, 4);
	CHECK_EQ(w.err, 0);
	CHECK_EQ(ef_get_be32(w.p), 0xabcdef01);
	ef_wbuf_free(&w);
}

static int buf_is(ef_buf b, const char *s, size_t n)
{
	return b.p && b.n == n && memcmp(b.p, s, n) == 0;
}

TEST(prefix_end_cases)
{
	ef_arena *a = ef_arena_new();

	CHECK(buf_is(ef_prefix_end(a, BIN("abc")), "abd", 3));
	CHECK(buf_is(ef_prefix_end(a, BIN("/dir/")), "/dir0", 5));
	CHECK(buf_is(ef_prefix_end(a, BIN("a\xff")), "b", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("a\xff\xff\xff")), "b", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("\x01\xfe\xff")), "\x01\xff", 2));
	CHECK(buf_is(ef_prefix_end(a, BIN("a\x00")), "a\x01", 2));
	CHECK(buf_is(ef_prefix_end(a, BIN("\x00")), "\x01", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("\xff")), "\0", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("\xff\xff")), "\0", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("")), "\0", 1));
	{
		ef_buf empty = {NULL, 0};

		CHECK(buf_is(ef_prefix_end(a, empty), "\0", 1));
	}
	/* The input is not modified (the result is a copy). */
	{
		uint8_t k[] = {'x', 'y'};
		ef_buf in = {k, 2};
		ef_buf out = ef_prefix_end(a, in);

		CHECK(k[1] == 'y' && out.p != k && buf_is(out, "xz", 2));
	}
	ef_arena_free(a);
}

TEST(request_size_counts_user_bytes)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;

	make_msg(a, EF_MSG_PUT, &m);
	CHECK_EQ(ef_request_size(&m), 3 + 8);
	make_msg(a, EF_MSG_RANGE, &m);
	CHECK_EQ(ef_request_size(&m), 3 + 2);
	make_msg(a, EF_MSG_DELETE, &m);
	CHECK_EQ(ef_request_size(&m), 1 + 1);
	make_msg(a, EF_MSG_WATCH_CREATE, &m);
	CHECK_EQ(ef_request_size(&m), 2 + 2);
	/* TXN: compares (4+0+2, 3+3+0) + success (5 + 11 + 2) + failure (1). */
	make_msg(a, EF_MSG_TXN, &m);
	CHECK_EQ(ef_request_size(&m), 6 + 6 + 5 + 11 + 2 + 1);
	make_msg(a, EF_MSG_LEASE_GRANT, &m);
	CHECK_EQ(ef_request_size(&m), 0);
	make_msg(a, EF_MSG_RANGE_RESP, &m);
	CHECK_EQ(ef_request_size(&m), 0);
	ef_arena_free(a);
}

TEST(msg_copy_outlives_input)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];
		ef_arena *dec = ef_arena_new(), *cp = ef_arena_new();
		uint8_t *in;
		ef_msg d, c;
		size_t n;

		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		n = w.len;
		in = malloc(n);
		memcpy(in, w.p, n);
		CHECK_EQ(ef_decode(in, n, n, dec, &d), 0);
		CHECK_EQ(ef_msg_copy(cp, &c, &d), 0);
		/* Destroy everything the decoded message pointed at. */
		memset(in, 0xa5, n);
		free(in);
		ef_arena_free(dec);
		CHECK(wire_msg_eq(&m, &c));
		ef_arena_free(cp);
	}
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(type_names)
{
	CHECK(strcmp(ef_msg_type_name(EF_MSG_RANGE), "RANGE") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_PUT_RESP), "PUT_RESP") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_WATCH_RESP), "WATCH_RESP") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_ERROR), "ERROR") == 0);
	CHECK(strcmp(ef_msg_type_name(0), "UNKNOWN") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_RESP), "UNKNOWN") == 0);
}

/* ------------------------------------------------------------------ */
/* The field tables (proto/wire_table.c) against the C structs.         */

struct span {
	size_t start, len, align;
	const char *name;
};

static int span_cmp(const void *x, const void *y)
{
	const struct span *a = x, *b = y;

	return (a->start > b->start) - (a->start < b->start);
}

/* Bytes of the C member a field of kind k occupies (0 when unknown). */
static size_t kind_width(uint8_t k, const struct wire_field *f)
{
	switch (k) {
	case WK_BOOL:
	case WK_ENUM:
		return 1;
	case WK_U32:
		return 4;
	case WK_U64:
	case WK_I64:
	case WK_OPT:
	case WK_ARRAY:
		return 8;
	case WK_BYTES:
		return sizeof(ef_buf);
	case WK_STRUCT:
		return f->sub->size;
	}
	return 0;
}

/* Every member of every struct has a table line: the fields, sorted by
 * offset, tile the struct with nothing between them but the padding C puts
 * there.  (A member small enough to hide in padding is not seen, but every
 * new member of ef_kv, which has none, is.) */
TEST(tables_cover_every_member)
{
	int bad = 0, structs = 0;

	for (const struct wire_struct *const *sp = wire_structs; *sp; sp++) {
		const struct wire_struct *s = *sp;
		struct span v[64];
		size_t n = 0, cur = 0, maxalign = 1;

		structs++;
		for (uint32_t i = 0; i < s->n_fields && n + 2 <= 64; i++) {
			const struct wire_field *f = &s->fields[i];

			if (f->kind == WK_UNION) {
				size_t body = 0;

				v[n++] = (struct span){f->off, 1, 1, f->name};
				for (unsigned t = 0; t <= f->max; t++)
					if (f->variants[t] && f->variants[t]->size > body)
						body = f->variants[t]->size;
				v[n++] = (struct span){f->aux, body, 8, "union"};
				continue;
			}
			v[n] = (struct span){f->off, kind_width(f->kind, f), 8, f->name};
			if (v[n].len < 8)
				v[n].align = v[n].len;
			if (v[n].len == 0) {
				fprintf(stderr, "  %s.%s: unknown kind %d\n", s->name, f->name,
					f->kind);
				bad++;
			}
			n++;
			if (f->kind == WK_ARRAY)
				v[n++] = (struct span){f->aux, 4, 4, "count"};
		}
		qsort(v, n, sizeof(v[0]), span_cmp);
		for (size_t i = 0; i < n; i++) {
			size_t pad = (v[i].align - cur % v[i].align) % v[i].align;

			if (v[i].start != cur + pad) {
				fprintf(stderr, "  %s: %zu bytes before %s not in the table\n",
					s->name, v[i].start > cur ? v[i].start - cur : 0,
					v[i].name);
				bad++;
			}
			cur = v[i].start + v[i].len;
			if (v[i].align > maxalign)
				maxalign = v[i].align;
		}
		if (s->size != cur + (maxalign - cur % maxalign) % maxalign) {
			fprintf(stderr, "  %s: %zu bytes at the end not in the table\n", s->name,
				s->size - cur);
			bad++;
		}
	}
	CHECK(structs >= 20);
	CHECK_EQ(bad, 0);
	/* Every known type has a body table; the response header exactly for
	 * responses other than ERROR. */
	for (size_t i = 0; i < N_TYPES; i++) {
		const struct wire_msg *t = &wire_msgs[all_types[i]];

		CHECK(t->name != NULL && t->body != NULL);
		CHECK_EQ(t->hdr, all_types[i] >= EF_MSG_RESP && all_types[i] != EF_MSG_ERROR);
	}
}

/* Every file of the fuzz corpus (seeds and inputs the fuzzer once found
 * interesting or crashing) still satisfies the fuzz properties. */
TEST(fuzz_corpus_replay)
{
	const char *root = getenv("ETCFS_ROOT");
	char dir[1024], path[2048];
	DIR *dp;
	struct dirent *de;
	int files = 0, broken = 0;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/wire", root ? root : ".");
	dp = opendir(dir);
	if (!dp) {
		fprintf(stderr, "  no corpus at %s (run from the checkout or set ETCFS_ROOT)\n",
			dir);
		CHECK(dp != NULL);
		return;
	}
	while ((de = readdir(dp))) {
		FILE *f;
		uint8_t *buf;
		long n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc(n > 0 ? (size_t)n : 1);
		if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
			files++;
			if (wire_check_input(buf, (size_t)n)) {
				fprintf(stderr, "  corpus file %s breaks a property\n", de->d_name);
				broken++;
			}
		}
		free(buf);
		fclose(f);
	}
	closedir(dp);
	CHECK(files >= (int)N_TYPES); /* at least the seeds */
	CHECK_EQ(broken, 0);
}

int main(void)
{
	RUN(encode_rejects_inconsistent_messages);
	RUN(prefix_end_cases);
	RUN(request_size_counts_user_bytes);
	RUN(msg_copy_outlives_input);
	RUN(type_names);
	RUN(tables_cover_every_member);
	RUN(fuzz_corpus_replay);
	TEST_EXIT();
}
