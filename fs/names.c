/*
 * names.c - how keys become file names and back.
 *
 * A key PREFIX + "a/b/c" is the file MOUNT/a/b/c: every '/' separates a
 * directory level.  Some key segments cannot be a file name as they are; a
 * name starting with '%' is an escape (documented in man/etcfs.1, ESCAPING):
 *
 *   plain        a segment that is non-empty, not "." or "..", does not start
 *                with '%', has no NUL byte and is at most NAME_MAX bytes
 *   %<pct>       any other segment: '%', then the segment with '%', NUL and
 *                a leading '+' or '=' written as %XX ("%" alone is the empty
 *                segment, "%." is ".", "%%25x" is "%x")
 *   %=<pct>      the FILE whose key is this segment, listed under this name
 *                when the same segment is also a directory (keys "a/b" and
 *                "a/b/c": "b" is the directory, "%=b" the file)
 *   %+<pct>      a directory standing for the first bytes of a segment too
 *                long for NAME_MAX; the rest of the segment continues in the
 *                names below it, with no '/' in between
 *
 * Decoding is purely syntactic (no cluster access), so every key has exactly
 * one path and every escaped name maps to exactly one key.
 *
 * Editor temporaries (vim's .x.swp and 4913, x~, sed's sedXXXXXX, emacs
 * lock files) are recognised by name: by default they stay local to the
 * mount (see ops/namespace.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "etcfs.h"

static int is_plain(const uint8_t *s, uint32_t n)
{
	if (n == 0 || n > NAME_MAX || s[0] == '%')
		return 0;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	return memchr(s, 0, n) == NULL;
}

static int needs_pct(const uint8_t *s, uint32_t i)
{
	uint8_t b = s[i];
	return b == '%' || b == '/' || b == 0 || (i == 0 && (b == '+' || b == '='));
}

/* Append pct(s[0..n)) to out at *pos, at most max bytes in total; returns the
 * number of input bytes written. */
static uint32_t pct_append(const uint8_t *s, uint32_t n, char *out, size_t *pos, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	uint32_t i;
	for (i = 0; i < n; i++) {
		if (needs_pct(s, i)) {
			if (*pos + 3 > max)
				break;
			out[(*pos)++] = '%';
			out[(*pos)++] = hex[s[i] >> 4];
			out[(*pos)++] = hex[s[i] & 15];
		} else {
			if (*pos + 1 > max)
				break;
			out[(*pos)++] = (char)s[i];
		}
	}
	return i;
}

uint32_t names_encode(const uint8_t *seg, uint32_t slen, int kind, char *out)
{
	size_t pos = 0;
	if (kind == NAME_ANY && is_plain(seg, slen)) {
		fs_memcpy(out, seg, slen);
		out[slen] = 0;
		return slen;
	}
	out[pos++] = '%';
	if (kind == NAME_FILE)
		out[pos++] = '=';
	uint32_t used = pct_append(seg, slen, out, &pos, NAME_MAX);
	if (used == slen) {
		out[pos] = 0;
		return slen;
	}
	pos = 0;
	out[pos++] = '%';
	out[pos++] = '+';
	used = pct_append(seg, slen, out, &pos, NAME_MAX);
	out[pos] = 0;
	return used;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int names_decode(const char *name, int *kind, uint8_t **seg, uint32_t *slen)
{
	size_t n = strlen(name);
	const char *p = name;
	*kind = NAME_ANY;
	if (name[0] != '%') {
		*seg = malloc(n + 1);
		if (!*seg)
			return ENOMEM;
		fs_memcpy(*seg, name, n);
		*slen = (uint32_t)n;
		return 0;
	}
	p++;
	if (*p == '+') {
		*kind = NAME_CHUNK;
		p++;
	} else if (*p == '=') {
		*kind = NAME_FILE;
		p++;
	}
	uint8_t *out = malloc(n + 1);
	if (!out)
		return ENOMEM;
	uint32_t o = 0;
	while (*p) {
		if (*p == '%') {
			int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
			if (h < 0 || l < 0) {
				free(out);
				return EINVAL;
			}
			out[o++] = (uint8_t)(h << 4 | l);
			p += 3;
		} else {
			out[o++] = (uint8_t)*p++;
		}
	}
	if (*kind == NAME_CHUNK && o == 0) {
		free(out);
		return EINVAL;
	}
	*seg = out;
	*slen = o;
	return 0;
}

int names_is_temp(const char *name)
{
	size_t n = strlen(name);
	if (strcmp(name, "4913") == 0)
		return 1; /* vim's "can I create a file here" probe */
	if (n >= 2 && name[n - 1] == '~')
		return 1; /* backup files */
	size_t v = n;     /* vim's probe for a usable swap name adds an x: .name.swpx */
	if (v > 5 && name[0] == '.' && name[v - 1] == 'x')
		v--;
	if (v > 4 && name[0] == '.' && name[v - 4] == '.' && name[v - 3] == 's' &&
	    name[v - 2] == 'w' && name[v - 1] >= 'a' && name[v - 1] <= 'p')
		return 1; /* vim swap: .name.swp, .swo, ... (.name.swpx) */
	if (v > 3 && v < n && name[0] == '.' && name[v - 3] == '.' && name[v - 2] == 's' &&
	    name[v - 1] == 'w')
		return 1; /* vim: .name.swx */
	if (n == 9 && memcmp(name, "sed", 3) == 0)
		return 1; /* sed -i: sedXXXXXX */
	if (n > 2 && name[0] == '.' && name[1] == '#')
		return 1; /* emacs lock */
	if (n > 2 && name[0] == '#' && name[n - 1] == '#')
		return 1; /* emacs autosave */
	return 0;
}

char *names_key_to_path(struct fs_mount *m, const uint8_t *key, uint32_t klen)
{
	if (klen < m->plen || memcmp(key, m->prefix, m->plen) != 0)
		return NULL;
	const uint8_t *r = key + m->plen;
	uint32_t n = klen - m->plen;
	/* each byte may become 3, plus chunk headers and slashes */
	size_t cap = (size_t)n * 3 + (n / 64 + 2) * 4 + 2;
	char *out = malloc(cap), name[NAME_MAX + 1];
	if (!out)
		return NULL;
	size_t pos = 0;
	uint32_t i = 0;
	while (i <= n) {
		const uint8_t *sl = memchr(r + i, '/', n - i);
		uint32_t end = sl ? (uint32_t)(sl - r) : n;
		uint32_t s = i;
		if (!sl && end == s && s == n && pos > 0)
			break; /* trailing '/': a directory marker names the directory */
		for (;;) {
			uint32_t used = names_encode(r + s, end - s, NAME_ANY, name);
			size_t l = strlen(name);
			if (pos + l + 2 > cap) {
				free(out);
				return NULL;
			}
			if (pos)
				out[pos++] = '/';
			fs_memcpy(out + pos, name, l);
			pos += l;
			s += used;
			if (s >= end)
				break;
		}
		if (!sl)
			break;
		i = end + 1;
	}
	out[pos] = 0;
	return out;
}
