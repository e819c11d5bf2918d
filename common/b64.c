/*
 * b64.c - base64 through OpenSSL with Go's input rules (see b64.h).
 *
 * Decoding runs in two passes: the first checks the input as Go's decoder
 * does (alphabet, padding only after two or three symbols of a group and
 * then nothing but padding, CR/LF skipped) and copies the symbols into a
 * compact buffer; the second hands whole groups to EVP_DecodeBlock.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "b64.h"

/* EVP_*Block take an int length: work in chunks well below INT_MAX. */
#define B64_CHUNK (3 * 16384)

size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += B64_CHUNK) {
		size_t k = n - i < B64_CHUNK ? n - i : B64_CHUNK;

		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, in + i, (int)k);
	}
	out[o] = 0;
	return o;
}

static int is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen, size_t *bad)
{
	/* Symbols only (no padding, no line breaks), then padded to a group. */
	char *sym = malloc(n + 4);
	size_t ns = 0, o = 0;

	if (!sym) {
		*bad = 0;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			if (ns % 4 < 2) {
				*bad = i;
				goto fail;
			}
			for (size_t j = i + 1; j < n; j++) {
				if (in[j] != '=' && in[j] != '\r' && in[j] != '\n') {
					*bad = j;
					goto fail;
				}
			}
			break;
		}
		if (!is_b64(c)) {
			*bad = i;
			goto fail;
		}
		sym[ns++] = (char)c;
	}
	if (ns % 4 == 1) {
		*bad = n;
		goto fail;
	}
	size_t tail = ns % 4, whole = ns - tail;

	for (size_t i = 0; i < whole; i += 4 * (B64_CHUNK / 3)) {
		size_t k = whole - i < 4 * (B64_CHUNK / 3) ? whole - i : 4 * (B64_CHUNK / 3);

		o += (size_t)EVP_DecodeBlock(out + o, (const unsigned char *)sym + i, (int)k);
	}
	if (tail) {
		unsigned char grp[4] = {'=', '=', '=', '='}, tmp[3];

		memcpy(grp, sym + whole, tail);
		EVP_DecodeBlock(tmp, grp, 4);
		memcpy(out + o, tmp, tail - 1); /* 2 symbols: 1 byte, 3 symbols: 2 */
		o += tail - 1;
	}
	free(sym);
	*outlen = o;
	return 0;
fail:
	free(sym);
	return -1;
}
