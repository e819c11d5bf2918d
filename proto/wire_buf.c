/*
 * wire_buf.c - the three building blocks every codec of the project uses:
 * the arena that owns decoded arrays, the growable output buffer and the
 * bounds-checked reader (wire.h declares them; the WAL, the Raft codec and
 * the store records use them as well as the wire codec).
 *
 * They sit under every encode and decode, so they are small and allocation
 * is rare: the arena hands out memory by bumping a pointer in chunks of
 * doubling size, the output buffer doubles its capacity and keeps it across
 * resets, and the reader is a pair of pointers checked before every read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire_int.h"

/* ================================================================== */
/* Arena                                                               */

/* Chunks of doubling size (4 KiB up to 1 MiB); a block larger than a quarter
 * of the next chunk gets a chunk of its own.  Memory is zeroed when handed
 * out, not when a chunk is made, so a reset arena costs no memset.  An arena
 * is not thread safe: one owner at a time. */

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
	size_t next_cap; /* size of the next regular chunk (doubles up to ARENA_MAX_CHUNK) */
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

/* Keeps the largest chunk of regular size so a reused arena stops calling
 * malloc, but never holds on to the memory of one huge message. */
void ef_arena_reset(ef_arena *a)
{
	struct arena_chunk *c, *next, *keep = NULL;

	for (c = a->head; c; c = c->next)
		if (c->cap <= ARENA_MAX_CHUNK && (!keep || c->cap > keep->cap))
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

/* Doubles from 256 bytes; the failure sticks in b->err. */
int wire_wbuf_grow(ef_wbuf *b, size_t n)
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

void ef_wbuf_put(ef_wbuf *b, const void *p, size_t n)
{
	uint8_t *d;

	if (n == 0)
		return;
	d = wire_wbuf_room(b, n);
	if (d)
		memcpy(d, p, n);
}

void ef_wbuf_u8(ef_wbuf *b, uint8_t v)
{
	uint8_t *d = wire_wbuf_room(b, 1);

	if (d)
		*d = v;
}

void ef_wbuf_u32(ef_wbuf *b, uint32_t v)
{
	uint8_t *d = wire_wbuf_room(b, 4);

	if (d)
		ef_be32(d, v);
}

void ef_wbuf_u64(ef_wbuf *b, uint64_t v)
{
	uint8_t *d = wire_wbuf_room(b, 8);

	if (d)
		ef_be64(d, v);
}

void ef_wbuf_bytes(ef_wbuf *b, const void *p, uint32_t n)
{
	uint8_t *d = wire_wbuf_room(b, 4 + (size_t)n);

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
