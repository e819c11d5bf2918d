/*
 * test_wire.c - unit tests of the wire codec (proto/wire*.c): arena, buffers,
 * round trips of every message type with binary data, the exact bytes of a
 * frame, and the decoder's refusals (truncation at every length, trailing
 * bytes, bit flips, bad header fields, hostile counts, non-0/1 booleans),
 * and the field tables against the C structs they describe.
 *
 * With WIRE_WRITE_CORPUS=dir set, every sample frame is also written to dir
 * (that is how tests/fuzz/corpus/ was seeded).
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
TEST(arena_alignment_zero_and_reset)
{
	ef_arena *a = ef_arena_new();
	int ok = 1;

	CHECK(a != NULL);
	for (size_t n = 0; n < 3000; n++) {
		uint8_t *p = ef_arena_alloc(a, n % 97 + (n % 500 == 0 ? 100000 : 0));
		size_t len = n % 97 + (n % 500 == 0 ? 100000 : 0);

		if (!p || ((uintptr_t)p & 15) != 0) {
			ok = 0;
			break;
		}
		for (size_t i = 0; i < len; i++)
			if (p[i] != 0)
				ok = 0;
		memset(p, 0xff, len);
	}
	CHECK(ok);
	ef_arena_reset(a);
	for (int n = 0; n < 200 && ok; n++) {
		uint8_t *p = ef_arena_alloc(a, 64);

		CHECK(p != NULL && ((uintptr_t)p & 15) == 0);
		for (int i = 0; i < 64; i++)
			if (p[i] != 0)
				ok = 0;
		memset(p, 0xff, 64);
	}
	CHECK(ok); /* memory reused after reset comes back zeroed */
	{
		char *d = ef_arena_dup(a, "a\0b", 3);

		CHECK(d != NULL && memcmp(d, "a\0b", 3) == 0);
	}
	CHECK(ef_arena_alloc(a, SIZE_MAX - 8) == NULL); /* overflow is refused, not wrapped */
	ef_arena_free(a);
	ef_arena_free(NULL);
}

TEST(wbuf_and_rbuf)
{
	ef_wbuf w;
	ef_rbuf r;
	uint8_t u8 = 0;
	uint32_t u32 = 0;
	uint64_t u64 = 0;
	int64_t i64 = 0;
	static const uint8_t want[] = {0xab, 0x01, 0x02, 0x03, 0x04, 0x80, 0,    0,    0,    0,
				       0,    0,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xfe, 0,    0,    0,    3,    'x',  0,    'y'};

	ef_wbuf_init(&w);
	ef_wbuf_u8(&w, 0xab);
	ef_wbuf_u32(&w, 0x01020304);
	ef_wbuf_u64(&w, 0x80000000000000ffULL);
	ef_wbuf_u64(&w, (uint64_t)-2);
	ef_wbuf_bytes(&w, "x\0y", 3);
	ef_wbuf_put(&w, NULL, 0);
	CHECK_EQ(w.err, 0);
	CHECK_EQ(w.len, sizeof(want));
	CHECK(memcmp(w.p, want, sizeof(want)) == 0);

	r.p = w.p;
	r.end = w.p + w.len;
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(u8, 0xab);
	CHECK_EQ(ef_rbuf_u32(&r, &u32), 0);
	CHECK_EQ(u32, 0x01020304);
	CHECK_EQ(ef_rbuf_u64(&r, &u64), 0);
	CHECK(u64 == 0x80000000000000ffULL);
	CHECK_EQ(ef_rbuf_i64(&r, &i64), 0);
	CHECK_EQ(i64, -2);
	CHECK_EQ(ef_rbuf_u32(&r, &u32), 0);
	CHECK_EQ(u32, 3);
	/* 3 bytes left: the 4- and 8-byte getters refuse without moving. */
	CHECK_EQ(ef_rbuf_u32(&r, &u32), EF_E_TRUNCATED);
	CHECK_EQ(ef_rbuf_u64(&r, &u64), EF_E_TRUNCATED);
	CHECK_EQ(ef_rbuf_i64(&r, &i64), EF_E_TRUNCATED);
	CHECK_EQ(r.end - r.p, 3);
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(u8, 'y');
	CHECK_EQ(ef_rbuf_u8(&r, &u8), EF_E_TRUNCATED);

	/* Growth across many appends, then reset keeps the memory. */
	for (int i = 0; i < 100000; i++)
		ef_wbuf_u32(&w, (uint32_t)i);
	CHECK_EQ(w.len, sizeof(want) + 400000);
	CHECK_EQ(ef_get_be32(w.p + sizeof(want) + 4 * 99999), 99999);
	{
		size_t cap = w.cap;
		uint8_t *p = w.p;

		ef_wbuf_reset(&w);
		CHECK_EQ(w.len, 0);
		CHECK(w.cap == cap && w.p == p);
	}
	ef_wbuf_free(&w);
	CHECK(w.p == NULL && w.len == 0 && w.cap == 0);
}

/* The exact bytes of one frame, written by hand from the layout in wire_table.c. */
TEST(golden_put_frame)
{
	static const uint8_t want[] = {
		'E',  'T',        'C',  'F',
		1,    EF_MSG_PUT, 0,    0, /* magic, version, type, flags */
		0,    0,          0,    0,
		0,    0,          0x01, 0x02,                  /* request id */
		0,    0,          0,    4 + 2 + 4 + 1 + 8 + 3, /* body length */
		0,    0,          0,    2,
		'k',  0, /* key */
		0,    0,          0,    1,
		0xff, /* value */
		0xff, 0xff,       0xff, 0xff,
		0xff, 0xff,       0xff, 0xfe, /* lease -2 */
		1,    0,          1,          /* prev_kv, ignore_value, ignore_lease */
	};
	ef_msg m, d;
	ef_wbuf w;
	ef_frame_hdr h;

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.id = 0x102;
	m.u.put.key = BIN("k\0");
	m.u.put.value = BIN("\xff");
	m.u.put.lease = -2;
	m.u.put.prev_kv = 1;
	m.u.put.ignore_lease = 1;
	ef_wbuf_init(&w);
	CHECK_EQ(ef_encode(&m, &w), 0);
	CHECK_EQ(w.len, sizeof(want));
	CHECK(w.len == sizeof(want) && memcmp(w.p, want, sizeof(want)) == 0);

	CHECK_EQ(ef_decode_header(want, sizeof(want), 1000, &h), 0);
	CHECK_EQ(h.version, 1);
	CHECK_EQ(h.type, EF_MSG_PUT);
	CHECK_EQ(h.flags, 0);
	CHECK_EQ(h.id, 0x102);
	CHECK_EQ(h.body_len, sizeof(want) - EF_WIRE_HDR_LEN);

	/* Zero copy: decoded strings point into the input; no arena needed
	 * for a message without arrays. */
	CHECK_EQ(ef_decode(want, sizeof(want), 1000, NULL, &d), 0);
	CHECK(d.u.put.key.p == want + 24);
	CHECK(d.u.put.value.p == want + 30);
	CHECK(wire_msg_eq(&m, &d));

	/* Body-only encoding is the frame minus its header. */
	ef_wbuf_reset(&w);
	CHECK_EQ(ef_encode_body(&m, &w), 0);
	CHECK(w.len == sizeof(want) - 20 && memcmp(w.p, want + 20, w.len) == 0);
	ef_wbuf_free(&w);
}

TEST(roundtrip_every_type)
{
	ef_arena *a = ef_arena_new(), *b = ef_arena_new();
	ef_wbuf w, w2;
	ef_msg m, d;

	ef_wbuf_init(&w);
	ef_wbuf_init(&w2);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];
		ef_frame_hdr h;
		int eq;

		ef_arena_reset(b);
		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		CHECK_EQ(ef_decode_header(w.p, w.len, w.len, &h), 0);
		CHECK_EQ(h.type, t);
		CHECK(h.id == m.id);
		CHECK_EQ(h.body_len, w.len - EF_WIRE_HDR_LEN);
		CHECK_EQ(ef_decode(w.p, w.len, w.len, b, &d), 0);
		eq = wire_msg_eq(&m, &d);
		if (!eq)
			fprintf(stderr, "  %s: decoded message differs\n", ef_msg_type_name(t));
		CHECK(eq);
		/* Encoding the decoded message gives the same bytes. */
		ef_wbuf_reset(&w2);
		CHECK_EQ(ef_encode(&d, &w2), 0);
		CHECK(w2.len == w.len && memcmp(w2.p, w.p, w.len) == 0);
		/* Body-only path agrees with the frame. */
		ef_wbuf_reset(&w2);
		CHECK_EQ(ef_encode_body(&m, &w2), 0);
		CHECK(w2.len == w.len - 20 && memcmp(w2.p, w.p + 20, w2.len) == 0);
		CHECK_EQ(ef_decode_body(t, w2.p, w2.len, b, &d), 0);
		d.id = m.id;
		CHECK(wire_msg_eq(&m, &d));
		/* The fuzz target's full property check passes on every sample. */
		CHECK_EQ(wire_check_input(w.p, w.len), 0);
		CHECK(strcmp(ef_msg_type_name(t), "UNKNOWN") != 0);
		if (getenv("WIRE_WRITE_CORPUS")) {
			char path[512];
			FILE *f;

			snprintf(path, sizeof(path), "%s/%s", getenv("WIRE_WRITE_CORPUS"),
				 ef_msg_type_name(t));
			f = fopen(path, "wb");
			if (f) {
				fwrite(w.p, 1, w.len, f);
				fclose(f);
			}
			snprintf(path, sizeof(path), "%s/body_%s", getenv("WIRE_WRITE_CORPUS"),
				 ef_msg_type_name(t));
			f = fopen(path, "wb");
			if (f) {
				fputc(t, f);
				fwrite(w.p + 20, 1, w.len - 20, f);
				fclose(f);
			}
		}
	}
	/* Several frames back to back in one buffer: each decodes alone. */
	ef_wbuf_reset(&w);
	make_msg(a, EF_MSG_PUT, &m);
	CHECK_EQ(ef_encode(&m, &w), 0);
	{
		size_t first = w.len;

		make_msg(a, EF_MSG_ERROR, &m);
		CHECK_EQ(ef_encode(&m, &w), 0);
		CHECK_EQ(ef_decode(w.p + first, w.len - first, 1 << 20, b, &d), 0);
		CHECK(wire_msg_eq(&m, &d));
		CHECK_EQ(ef_decode(w.p, first, 1 << 20, b, &d), 0);
		CHECK_EQ(d.type, EF_MSG_PUT);
	}
	ef_wbuf_free(&w);
	ef_wbuf_free(&w2);
	ef_arena_free(a);
	ef_arena_free(b);
}

TEST(empty_and_edge_values_roundtrip)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;

	ef_wbuf_init(&w);
	/* All-zero messages of every type (empty strings, NULL arrays). */
	for (size_t i = 0; i < N_TYPES; i++) {
		memset(&m, 0, sizeof(m));
		m.type = all_types[i];
		ef_wbuf_reset(&w);
		CHECK_EQ(ef_encode(&m, &w), 0);
		CHECK_EQ(ef_decode(w.p, w.len, w.len, a, &d), 0);
		CHECK(wire_msg_eq(&m, &d));
	}
	/* A 1 MiB value of every byte value. */
	{
		size_t n = 1 << 20;
		uint8_t *big = malloc(n);

		for (size_t i = 0; i < n; i++)
			big[i] = (uint8_t)(i * 7);
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_PUT;
		m.u.put.key = BIN("\xff\xff\xff");
		m.u.put.value.p = big;
		m.u.put.value.n = (uint32_t)n;
		ef_wbuf_reset(&w);
		CHECK_EQ(ef_encode(&m, &w), 0);
		CHECK_EQ(ef_decode(w.p, w.len, w.len - 20 - 1, a, &d), EF_E_TOO_LARGE);
		CHECK_EQ(ef_decode(w.p, w.len, w.len - 20, a, &d), 0);
		CHECK(wire_msg_eq(&m, &d));
		CHECK_EQ(ef_request_size(&d), n + 3);
		free(big);
	}
	/* An empty body still leaves the buffer pointing at memory, and a NULL
	 * body of length 0 decodes. */
	{
		ef_wbuf e;

		ef_wbuf_init(&e);
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_STATUS;
		CHECK_EQ(ef_encode_body(&m, &e), 0);
		CHECK(e.p != NULL && e.len == 0);
		CHECK_EQ(ef_decode_body(EF_MSG_STATUS, NULL, 0, a, &d), 0);
		CHECK_EQ(ef_decode_body(EF_MSG_STATUS, NULL, 1, a, &d), EF_E_INVALID);
		CHECK_EQ(ef_decode_body(EF_MSG_PUT, NULL, 0, a, &d), EF_E_TRUNCATED);
		ef_wbuf_free(&e);
	}
	/* Booleans other than 0/1 are sent as 1. */
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.u.put.prev_kv = 7;
	ef_wbuf_reset(&w);
	CHECK_EQ(ef_encode(&m, &w), 0);
	CHECK_EQ(ef_decode(w.p, w.len, w.len, a, &d), 0);
	CHECK_EQ(d.u.put.prev_kv, 1);
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(every_truncation_fails)
{
	ef_arena *a = ef_arena_new(), *b = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;
	int bad = 0;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];
		uint8_t *copy;

		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		for (size_t n = 0; n < w.len; n++) {
			/* A fresh allocation of exactly n bytes, so ASan sees any
			 * read past the end. */
			copy = malloc(n ? n : 1);
			memcpy(copy, w.p, n);
			ef_arena_reset(b);
			if (ef_decode(copy, n, 1 << 20, b, &d) != EF_E_TRUNCATED)
				bad++;
			if (n >= 20 &&
			    ef_decode_body(t, copy + 20, n - 20, b, &d) != EF_E_TRUNCATED)
				bad++;
			free(copy);
		}
	}
	CHECK_EQ(bad, 0);
	ef_wbuf_free(&w);
	ef_arena_free(a);
	ef_arena_free(b);
}

TEST(trailing_bytes_rejected)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];

		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		/* A byte after the frame. */
		ef_wbuf_u8(&w, 0);
		CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_MALFORMED);
		/* The same byte counted in the body length: trailing inside the body. */
		ef_be32(w.p + 16, (uint32_t)(w.len - 20));
		CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_MALFORMED);
		CHECK_EQ(ef_decode_body(t, w.p + 20, w.len - 20, a, &d), EF_E_MALFORMED);
	}
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(bit_flips_never_crash)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m;
	long accepted = 0, rejected = 0, broken = 0;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		CHECK_EQ(encode_sample(all_types[i], a, &w, &m), 0);
		for (size_t bit = 0; bit < w.len * 8; bit++) {
			uint8_t *copy = malloc(w.len);
			ef_arena *b = ef_arena_new();
			ef_msg d;
			int rc;

			memcpy(copy, w.p, w.len);
			copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rc = ef_decode(copy, w.len, 1 << 20, b, &d);
			if (rc == 0)
				accepted++;
			else
				rejected++;
			/* Either way the fuzz properties hold: a valid code on
			 * failure, an exact round trip on success. */
			if (wire_check_input(copy, w.len))
				broken++;
			/* Header fields map to their own codes. */
			if (bit / 8 < 4 && rc != EF_E_BAD_MAGIC)
				broken++;
			if (bit / 8 == 4 && rc != EF_E_VERSION)
				broken++;
			if ((bit / 8 == 6 || bit / 8 == 7) && rc != EF_E_MALFORMED)
				broken++;
			if (bit / 8 >= 8 && bit / 8 < 16 && rc != 0)
				broken++; /* the request id is opaque */
			ef_arena_free(b);
			free(copy);
		}
	}
	CHECK_EQ(broken, 0);
	CHECK(accepted > 0 && rejected > 0);
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(header_errors)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;
	ef_frame_hdr h;
	static const uint8_t unknown[] = {0, 21, 0x7f, 0x80, 0x8d, 0x8e, 0x95, 0xfe};

	ef_wbuf_init(&w);
	CHECK_EQ(encode_sample(EF_MSG_RANGE, a, &w, &m), 0);
	CHECK_EQ(ef_decode_header(w.p, 19, 1 << 20, &h), EF_E_TRUNCATED);
	CHECK_EQ(ef_decode_header(NULL, 0, 1 << 20, &h), EF_E_TRUNCATED);
	CHECK_EQ(ef_decode(NULL, 0, 1 << 20, a, &d), EF_E_TRUNCATED);

	w.p[4] = 2;
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_VERSION);
	w.p[4] = 0;
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_VERSION);
	w.p[4] = 1;
	for (size_t i = 0; i < sizeof(unknown); i++) {
		w.p[5] = unknown[i];
		CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_UNKNOWN_TYPE);
		CHECK_EQ(ef_decode_body(unknown[i], w.p + 20, w.len - 20, a, &d),
			 EF_E_UNKNOWN_TYPE);
		CHECK(strcmp(ef_msg_type_name(unknown[i]), "UNKNOWN") == 0);
	}
	w.p[5] = EF_MSG_RANGE;
	w.p[7] = 1;
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_MALFORMED);
	w.p[7] = 0;
	w.p[0] = 'e';
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_BAD_MAGIC);
	w.p[0] = 'E';
	/* Body limit: exactly at the limit passes, one under fails. */
	CHECK_EQ(ef_decode(w.p, w.len, w.len - 20, a, &d), 0);
	CHECK_EQ(ef_decode(w.p, w.len, w.len - 21, a, &d), EF_E_TOO_LARGE);
	CHECK_EQ(ef_decode_header(w.p, 20, w.len - 21, &h), EF_E_TOO_LARGE);
	/* A header announcing 4 GiB fails on the limit before anything else. */
	ef_be32(w.p + 16, UINT32_MAX);
	CHECK_EQ(ef_decode(w.p, w.len, EF_DEFAULT_MAX_REQUEST_BYTES, a, &d), EF_E_TOO_LARGE);
	CHECK_EQ(ef_decode(w.p, w.len, SIZE_MAX, a, &d), EF_E_TRUNCATED);

	/* Encoding an unknown type appends nothing. */
	ef_wbuf_reset(&w);
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(unknown); i++) {
		m.type = unknown[i];
		CHECK_EQ(ef_encode(&m, &w), EF_E_UNKNOWN_TYPE);
		CHECK_EQ(ef_encode_body(&m, &w), EF_E_UNKNOWN_TYPE);
	}
	CHECK_EQ(w.len, 0);
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

/* Build a frame of type t around body bytes. */
static void frame(ef_wbuf *w, uint8_t t, const uint8_t *body, size_t n)
{
	ef_wbuf_reset(w);
	ef_wbuf_u32(w, EF_WIRE_MAGIC);
	ef_wbuf_u8(w, 1);
	ef_wbuf_u8(w, t);
	ef_wbuf_u8(w, 0);
	ef_wbuf_u8(w, 0);
	ef_wbuf_u64(w, 9);
	ef_wbuf_u32(w, (uint32_t)n);
	ef_wbuf_put(w, body, n);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(huge_counts_fail_fast)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w, body;
	ef_msg d;
	double t0 = now_s();
	static const uint8_t types[] = {
		EF_MSG_TXN,        EF_MSG_RANGE_RESP,      EF_MSG_DELETE_RESP,
		EF_MSG_TXN_RESP,   EF_MSG_LEASE_TTL_RESP,  EF_MSG_LEASE_LIST_RESP,
		EF_MSG_WATCH_RESP, EF_MSG_MEMBER_LIST_RESP};

	ef_wbuf_init(&w);
	ef_wbuf_init(&body);
	for (size_t i = 0; i < sizeof(types); i++) {
		uint8_t t = types[i];
		uint32_t counts[] = {UINT32_MAX, 0x80000000u, 1000000, 3};

		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			ef_wbuf_reset(&body);
			if (t != EF_MSG_TXN) /* responses: the header first */
				ef_wbuf_put(&body, (const uint8_t[32]){0}, 32);
			switch (t) {
			case EF_MSG_DELETE_RESP:
				ef_wbuf_u64(&body, 1); /* deleted */
				break;
			case EF_MSG_TXN_RESP:
				ef_wbuf_u8(&body, 1); /* succeeded */
				break;
			case EF_MSG_LEASE_TTL_RESP:
				ef_wbuf_put(&body, (const uint8_t[24]){0}, 24);
				break;
			case EF_MSG_WATCH_RESP:
				ef_wbuf_put(&body, (const uint8_t[18]){0}, 18);
				ef_wbuf_u32(&body, 0); /* cancel_reason */
				break;
			}
			ef_wbuf_u32(&body, counts[c]);
			ef_wbuf_put(&body, (const uint8_t[10]){0}, 10); /* a few stray bytes */
			frame(&w, t, body.p, body.len);
			ef_arena_reset(a);
			if (counts[c] > 3) /* refused by the count check itself */
				CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_TRUNCATED);
			else /* 3 small elements may fit; zero bytes still are no valid elements */
				CHECK(ef_decode(w.p, w.len, 1 << 20, a, &d) != 0);
		}
	}
	/* A count that is exactly backed by bytes is accepted. */
	ef_wbuf_reset(&body);
	ef_wbuf_put(&body, (const uint8_t[32]){0}, 32);
	ef_wbuf_u32(&body, 2);
	ef_wbuf_u64(&body, 5);
	ef_wbuf_u64(&body, (uint64_t)-5);
	frame(&w, EF_MSG_LEASE_LIST_RESP, body.p, body.len);
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), 0);
	CHECK_EQ(d.u.lease_list_resp.n_ids, 2);
	CHECK_EQ(d.u.lease_list_resp.ids[1], -5);
	/* ... and needs an arena: without one it is out of memory. */
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, NULL, &d), EF_E_NOMEM);
	CHECK(now_s() - t0 < 1.0);
	ef_wbuf_free(&w);
	ef_wbuf_free(&body);
	ef_arena_free(a);
}

/* Patch one byte of a valid body and expect code. */
static int patched(uint8_t t, const ef_wbuf *body, size_t off, uint8_t v, ef_arena *a)
{
	uint8_t *copy = malloc(body->len);
	ef_msg d;
	int rc;

	memcpy(copy, body->p, body->len);
	copy[off] = v;
	rc = ef_decode_body(t, copy, body->len, a, &d);
	free(copy);
	return rc;
}

TEST(booleans_enums_and_op_types)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf b;
	ef_msg m;

	ef_wbuf_init(&b);
	/* PUT: booleans are the last three bytes. */
	make_msg(a, EF_MSG_PUT, &m);
	CHECK_EQ(ef_encode_body(&m, &b), 0);
	CHECK_EQ(patched(EF_MSG_PUT, &b, b.len - 1, 0, a), 0);
	CHECK_EQ(patched(EF_MSG_PUT, &b, b.len - 1, 2, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_PUT, &b, b.len - 3, 0xff, a), EF_E_MALFORMED);

	/* RANGE: sort_order at 4+3+4+2+16 = 29, sort_target 30. */
	ef_wbuf_reset(&b);
	make_msg(a, EF_MSG_RANGE, &m);
	CHECK_EQ(ef_encode_body(&m, &b), 0);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 29, EF_SORT_ASCEND, a), 0);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 29, 3, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 30, EF_SORT_KEY, a), 0);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 30, 5, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 31, 2, a), EF_E_MALFORMED);

	/* PUT_RESP: the presence flag of prev_kv follows the 32-byte header. */
	ef_wbuf_reset(&b);
	make_msg(a, EF_MSG_PUT_RESP, &m);
	CHECK_EQ(ef_encode_body(&m, &b), 0);
	CHECK_EQ(patched(EF_MSG_PUT_RESP, &b, 32, 2, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_PUT_RESP, &b, 32, 0, a), EF_E_MALFORMED); /* kv bytes now trail */

	/* TXN: the first success op's type byte; nested txn (4) is not an op. */
	{
		ef_txn_req one;
		ef_op op;

		memset(&m, 0, sizeof(m));
		memset(&op, 0, sizeof(op));
		op.type = EF_OP_DELETE;
		op.u.del.key = BIN("k");
		memset(&one, 0, sizeof(one));
		one.success = &op;
		one.n_success = 1;
		m.type = EF_MSG_TXN;
		m.u.txn = one;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), 0);
		/* u32 n_cmp=0, u32 n_success=1, then the op type at 8. */
		CHECK_EQ(b.p[8], EF_OP_DELETE);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 8, 0, a), EF_E_MALFORMED);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 8, 4, a), EF_E_MALFORMED);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 8, 0xff, a), EF_E_MALFORMED);
		/* Encoding refuses an op it could not decode back. */
		op.type = 4;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), EF_E_INVALID);
		CHECK_EQ(b.len, 0);
	}
	/* Compare result/target and event types are range-checked. */
	{
		ef_compare c;
		ef_txn_req t;

		memset(&c, 0, sizeof(c));
		memset(&t, 0, sizeof(t));
		c.result = EF_CMP_NOT_EQUAL;
		c.target = EF_CMP_LEASE;
		t.cmp = &c;
		t.n_cmp = 1;
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_TXN;
		m.u.txn = t;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), 0);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 4, 4, a), EF_E_MALFORMED);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 5, 5, a), EF_E_MALFORMED);
		c.target = 9;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), EF_E_INVALID);
	}
	ef_wbuf_free(&b);
	ef_arena_free(a);
}

int main(void)
{
	RUN(arena_alignment_zero_and_reset);
	RUN(wbuf_and_rbuf);
	RUN(golden_put_frame);
	RUN(roundtrip_every_type);
	RUN(empty_and_edge_values_roundtrip);
	RUN(every_truncation_fails);
	RUN(trailing_bytes_rejected);
	RUN(bit_flips_never_crash);
	RUN(header_errors);
	RUN(huge_counts_fail_fast);
	RUN(booleans_enums_and_op_types);
	TEST_EXIT();
}
