/*
 * b64.h - standard base64 (RFC 4648 section 4, the alphabet with + and /),
 * the encoding etcd's JSON uses for bytes.  The codec itself is OpenSSL's
 * (EVP_EncodeBlock / EVP_DecodeBlock); this module adds what Go's
 * encoding/base64 does around it and etcd's clients rely on: padding is
 * optional on input, CR and LF are skipped, and an error names the byte
 * offset of the first bad input byte ("illegal base64 data at input byte N").
 */
#ifndef EF_B64_H
#define EF_B64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the padded encoding of n bytes (without a terminating NUL). */
static inline size_t b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* Room b64_decode needs for n input characters. */
static inline size_t b64_decoded_max(size_t n)
{
	return n / 4 * 3 + 3;
}

/* Encode in[0..n) into out, which has b64_encoded_len(n) + 1 bytes; writes a
 * terminating NUL and returns the length without it. */
size_t b64_encode(const uint8_t *in, size_t n, char *out);

/* Decode in[0..n) into out (b64_decoded_max(n) bytes).  0 with *outlen set,
 * or -1 with *bad set to the offset of the first illegal byte (n when the
 * input ends in the middle of a group). */
int b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen, size_t *bad);

#endif
