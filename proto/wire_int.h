/*
 * wire_int.h - what the files of the wire codec share, and nobody else uses.
 *
 *   wire_buf.c    the arena, the output buffer and the bounds-checked reader
 *   wire.c        the encoder and decoder of every message; frames and helpers
 */
#ifndef EF_WIRE_INT_H
#define EF_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* ------------------------------------------------------------------ */
/* Output buffer internals shared with the encoder. */

/* Make room for n more bytes; 0 or EF_E_NOMEM (sticky in b->err). */
int wire_wbuf_grow(ef_wbuf *b, size_t n);

/* Pointer to n writable bytes at the end of b (len advanced), or NULL. */
static inline uint8_t *wire_wbuf_room(ef_wbuf *b, size_t n)
{
	uint8_t *p;

	if (b->cap - b->len < n || b->err)
		if (wire_wbuf_grow(b, n))
			return NULL;
	p = b->p + b->len;
	b->len += n;
	return p;
}

#endif
