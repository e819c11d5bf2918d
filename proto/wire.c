/*
 * wire.c - the etcfs wire codec (format described in wire.h).
 *
 * This file holds the three building blocks every codec of the project uses
 * (the arena that owns decoded arrays, the growable output buffer and the
 * bounds-checked reader) and the encoder/decoder of every client message.
 *
 * It sits on the hot path of every request, so:
 *   - encoding writes straight into the caller's ef_wbuf, one capacity check
 *     per field and no intermediate copies;
 *   - decoding is zero copy: byte strings point into the input, and only
 *     arrays are allocated, from an arena (bump pointer, no per-field malloc);
 *   - decoding is strict: every byte of an accepted frame is accounted for, so
 *     encode(decode(x)) == x for every accepted x (the fuzzer checks this).
 *
 * Decoding never trusts a count: before an array is allocated its count is
 * checked against the bytes that remain, using the smallest encoded size of
 * one element, so a hostile count cannot make us allocate more than a small
 * constant times the body length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* ================================================================== */
/* Arena                                                               */

#define ARENA_ALIGN 16
#define ARENA_FIRST_CHUNK 4096
#define ARENA_MAX_CHUNK (1u << 20)

struct arena_chunk {
	struct arena_chunk *next;
	size_t cap;  /* bytes usable in data[] */
	size_t used; /* invariant: used <= cap, used % ARENA_ALIGN == 0 */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct ef_arena {
	struct arena_chunk *head; /* chunk allocations come from; older chunks follow */
	size_t next_cap;          /* size of the next regular chunk (doubles up to ARENA_MAX_CHUNK) */
};

static struct arena_chunk *chunk_new(size_t cap)
{
	struct arena_chunk *c;

	if (cap > SIZE_MAX - sizeof(*c))
		return NULL;
	c = malloc(sizeof(*c) + cap);
	if (!c)
		return NULL;
	c->next = NULL;
	c->cap = cap;
	c->used = 0;
	return c;
}

ef_arena *ef_arena_new(void)
{
	ef_arena *a = malloc(sizeof(*a));

	if (!a)
		return NULL;
	a->head = NULL;
	a->next_cap = ARENA_FIRST_CHUNK;
	return a;
}

void *ef_arena_alloc(ef_arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	void *p;

	if (n == 0)
		n = 1;
	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (!c || c->cap - c->used < n) {
		size_t cap = a->next_cap;

		if (n > cap / 4) {
			/* Large block: its own chunk, placed behind the head so the
			 * head keeps serving small allocations. */
			c = chunk_new(n);
			if (!c)
				return NULL;
			c->used = n;
			if (a->head) {
				c->next = a->head->next;
				a->head->next = c;
			} else {
				a->head = c;
			}
			memset(c->data, 0, n);
			return c->data;
		}
		c = chunk_new(cap);
		if (!c)
			return NULL;
		c->next = a->head;
		a->head = c;
		if (a->next_cap < ARENA_MAX_CHUNK)
			a->next_cap *= 2;
	}
	p = c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

void *ef_arena_dup(ef_arena *a, const void *p, size_t n)
{
	void *d = ef_arena_alloc(a, n);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* Keeps the largest chunk so a reused arena stops calling malloc. */
void ef_arena_reset(ef_arena *a)
{
	struct arena_chunk *c, *next, *keep = NULL;

	for (c = a->head; c; c = c->next)
		if (!keep || c->cap > keep->cap)
			keep = c;
	for (c = a->head; c; c = next) {
		next = c->next;
		if (c != keep)
			free(c);
	}
	if (keep) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->head = keep;
}

void ef_arena_free(ef_arena *a)
{
	struct arena_chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/* ================================================================== */
/* Output buffer                                                       */

void ef_wbuf_init(ef_wbuf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

void ef_wbuf_free(ef_wbuf *b)
{
	free(b->p);
	ef_wbuf_init(b);
}

void ef_wbuf_reset(ef_wbuf *b)
{
	b->len = 0;
	b->err = 0;
}

/* Make room for n more bytes; 0 or EF_E_NOMEM (sticky). */
static int wbuf_grow(ef_wbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (n > SIZE_MAX / 2 - b->len) {
		b->err = EF_E_NOMEM;
		return b->err;
	}
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = EF_E_NOMEM;
		return b->err;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Pointer to n writable bytes at the end of b (len advanced), or NULL. */
static inline uint8_t *wbuf_room(ef_wbuf *b, size_t n)
{
	uint8_t *p;

	if (b->cap - b->len < n || b->err)
		if (wbuf_grow(b, n))
			return NULL;
	p = b->p + b->len;
	b->len += n;
	return p;
}

void ef_wbuf_put(ef_wbuf *b, const void *p, size_t n)
{
	uint8_t *d = wbuf_room(b, n);

	if (d && n)
		memcpy(d, p, n);
}

void ef_wbuf_u8(ef_wbuf *b, uint8_t v)
{
	uint8_t *d = wbuf_room(b, 1);

	if (d)
		*d = v;
}

void ef_wbuf_u32(ef_wbuf *b, uint32_t v)
{
	uint8_t *d = wbuf_room(b, 4);

	if (d)
		ef_be32(d, v);
}

void ef_wbuf_u64(ef_wbuf *b, uint64_t v)
{
	uint8_t *d = wbuf_room(b, 8);

	if (d)
		ef_be64(d, v);
}

void ef_wbuf_bytes(ef_wbuf *b, const void *p, uint32_t n)
{
	uint8_t *d = wbuf_room(b, 4 + (size_t)n);

	if (!d)
		return;
	ef_be32(d, n);
	if (n)
		memcpy(d + 4, p, n);
}

/* ================================================================== */
/* Reader                                                              */

int ef_rbuf_u8(ef_rbuf *r, uint8_t *v)
{
	if (r->end - r->p < 1)
		return EF_E_TRUNCATED;
	*v = *r->p++;
	return 0;
}

int ef_rbuf_u32(ef_rbuf *r, uint32_t *v)
{
	if (r->end - r->p < 4)
		return EF_E_TRUNCATED;
	*v = ef_get_be32(r->p);
	r->p += 4;
	return 0;
}

int ef_rbuf_u64(ef_rbuf *r, uint64_t *v)
{
	if (r->end - r->p < 8)
		return EF_E_TRUNCATED;
	*v = ef_get_be64(r->p);
	r->p += 8;
	return 0;
}

int ef_rbuf_i64(ef_rbuf *r, int64_t *v)
{
	uint64_t u;
	int rc = ef_rbuf_u64(r, &u);

	if (!rc)
		*v = (int64_t)u;
	return rc;
}

/* ================================================================== */
/* Messages (being written: these return EF_E_UNSUPPORTED for now)     */

int ef_encode(const ef_msg *m, ef_wbuf *out)
{
	return EF_E_UNSUPPORTED;
}

int ef_encode_body(const ef_msg *m, ef_wbuf *out)
{
	return EF_E_UNSUPPORTED;
}

int ef_decode_header(const uint8_t *p, size_t n, size_t max_body, ef_frame_hdr *h)
{
	return EF_E_UNSUPPORTED;
}

int ef_decode(const uint8_t *p, size_t n, size_t max_body, ef_arena *a, ef_msg *m)
{
	return EF_E_UNSUPPORTED;
}

int ef_decode_body(uint8_t type, const uint8_t *p, size_t n, ef_arena *a, ef_msg *m)
{
	return EF_E_UNSUPPORTED;
}

ef_buf ef_prefix_end(ef_arena *a, ef_buf prefix)
{
	ef_buf b = {NULL, 0};
	return b;
}

size_t ef_request_size(const ef_msg *m)
{
	return 0;
}

int ef_msg_copy(ef_arena *a, ef_msg *dst, const ef_msg *src)
{
	*dst = *src;
	return 0;
}

const char *ef_msg_type_name(uint8_t type)
{
	return "UNKNOWN";
}
