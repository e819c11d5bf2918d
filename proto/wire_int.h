/*
 * wire_int.h - what the files of the wire codec share, and nobody else uses.
 *
 *   wire_buf.c    the arena, the output buffer and the bounds-checked reader
 *   wire_table.c  one field table per message body: the wire layout, written once
 *   wire.c        the walkers: encode, decode, deep copy and request size all
 *                 follow those tables; frames and helpers
 *
 * A body on the wire is its fields in table order, nothing in between:
 *
 *   kind         C member            on the wire
 *   WK_BOOL      uint8_t             u8, 0 or 1 (nonzero is sent as 1; 2..255 rejected)
 *   WK_ENUM      uint8_t             u8 in 0..max (out of range refused both ways)
 *   WK_U32       uint32_t            u32
 *   WK_U64       uint64_t            u64
 *   WK_I64       int64_t             i64 (two's complement u64)
 *   WK_BYTES     ef_buf              u32 length + the bytes
 *   WK_STRUCT    struct T            T's fields, inline
 *   WK_OPT       struct T *          u8 presence (0/1), then T's fields when 1
 *   WK_ARRAY     E * + uint32_t n    u32 count, then count elements; E is one of
 *                                    WK_I64, WK_BYTES or WK_STRUCT
 *   WK_UNION     uint8_t tag + union u8 tag, then the fields of the variant the
 *                                    tag selects (an unknown tag is refused)
 *
 * All integers are big-endian.  The table macros (W_I64, W_BYTES, ...) check
 * at compile time that the member has the C type its kind needs, so a table
 * line cannot silently read an int64_t as a uint64_t.
 */
#ifndef EF_WIRE_INT_H
#define EF_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum wire_kind {
	WK_BOOL = 1,
	WK_ENUM,
	WK_U32,
	WK_U64,
	WK_I64,
	WK_BYTES,
	WK_STRUCT,
	WK_OPT,
	WK_ARRAY,
	WK_UNION,
};

struct wire_struct;

/* One member of a C struct and its place on the wire. */
struct wire_field {
	const char *name; /* the member's name, for tests and messages */
	uint8_t kind;     /* enum wire_kind */
	uint8_t elem;     /* WK_ARRAY: kind of one element (WK_I64, WK_BYTES, WK_STRUCT) */
	uint8_t max;      /* WK_ENUM: largest valid value; WK_UNION: largest tag */
	uint16_t off;     /* offsetof the member (the tag for WK_UNION) */
	uint16_t aux;     /* WK_ARRAY: offsetof the uint32_t count; WK_UNION: offsetof the union */
	uint32_t esize;   /* WK_ARRAY: sizeof one element */
	/* WK_STRUCT, WK_OPT, WK_ARRAY of WK_STRUCT: the element's table.
	 * WK_UNION: variants[tag] for tag 0..max, NULL where a tag is invalid. */
	const struct wire_struct *sub;
	const struct wire_struct *const *variants;
};

/* A C struct as the wire sees it: every member is one field (padding aside). */
struct wire_struct {
	const char *name;
	size_t size; /* sizeof the C struct */
	const struct wire_field *fields;
	uint32_t n_fields;
};

/* One message type: invariant, name != NULL exactly for the known types. */
struct wire_msg {
	const char *name;
	const struct wire_struct *body; /* the ef_msg.u member the type uses */
	uint8_t hdr;                    /* the body starts with an ef_resp_header */
};

/* Indexed by type: the set of known types is the set of named entries. */
extern const struct wire_msg wire_msgs[256];
extern const struct wire_struct wire_resp_header;

/* Every struct table (NULL-terminated), for the tests' coverage check. */
extern const struct wire_struct *const wire_structs[];

/* ------------------------------------------------------------------ */
/* Table lines.  W_CHECK is 0 at run time and a compile error when member
 * m of T is not of type ty. */

#define W_CHECK(T, m, ty)                                                                  \
	(0 * sizeof(struct {                                                               \
		 _Static_assert(__builtin_types_compatible_p(__typeof__(((T *)0)->m), ty), \
				#T "." #m " is not " #ty);                                 \
		 int x_;                                                                   \
	 }))
#define W_OFF(T, m, ty) (uint16_t)(offsetof(T, m) + W_CHECK(T, m, ty))

#define W_FIELD(T, m, k, ty)                                    \
	{                                                       \
		.name = #m, .kind = (k), .off = W_OFF(T, m, ty) \
	}
#define W_BOOL(T, m) W_FIELD(T, m, WK_BOOL, uint8_t)
#define W_U32(T, m) W_FIELD(T, m, WK_U32, uint32_t)
#define W_U64(T, m) W_FIELD(T, m, WK_U64, uint64_t)
#define W_I64(T, m) W_FIELD(T, m, WK_I64, int64_t)
#define W_BYTES(T, m) W_FIELD(T, m, WK_BYTES, ef_buf)
#define W_ENUM(T, m, mx)                                                              \
	{                                                                             \
		.name = #m, .kind = WK_ENUM, .max = (mx), .off = W_OFF(T, m, uint8_t) \
	}
#define W_STRUCT(T, m, ty, desc)                                                      \
	{                                                                             \
		.name = #m, .kind = WK_STRUCT, .off = W_OFF(T, m, ty), .sub = &(desc) \
	}
#define W_OPT(T, m, ty, desc)                                                        \
	{                                                                            \
		.name = #m, .kind = WK_OPT, .off = W_OFF(T, m, ty *), .sub = &(desc) \
	}
/* Array of scalars (WK_I64, WK_BYTES) of C type ty, count in member n. */
#define W_ARRAY(T, m, n, k, ty)                                                      \
	{                                                                            \
		.name = #m, .kind = WK_ARRAY, .elem = (k), .off = W_OFF(T, m, ty *), \
		.aux = W_OFF(T, n, uint32_t), .esize = sizeof(ty)                    \
	}
/* Array of structs of C type ty described by desc, count in member n. */
#define W_ARRAY_OF(T, m, n, ty, desc)                                                      \
	{                                                                                  \
		.name = #m, .kind = WK_ARRAY, .elem = WK_STRUCT, .off = W_OFF(T, m, ty *), \
		.aux = W_OFF(T, n, uint32_t), .esize = sizeof(ty), .sub = &(desc)          \
	}
/* A uint8_t tag and the union u it selects a member of; vars[tag] for tag 0..mx. */
#define W_UNION(T, tag, u, mx, vars)                                                        \
	{                                                                                   \
		.name = #tag, .kind = WK_UNION, .max = (mx), .off = W_OFF(T, tag, uint8_t), \
		.aux = (uint16_t)offsetof(T, u), .variants = (vars)                         \
	}

/* static const struct wire_struct id: struct T described by the array
 * id##_fields, one line per member in wire order. */
#define W_TABLE(id, T)                                                    \
	static const struct wire_struct id = {#T, sizeof(T), id##_fields, \
					      sizeof(id##_fields) / sizeof(id##_fields[0])}

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
