/*
 * test_common.c - the code every program shares (common/): base64 with Go's
 * input rules on top of OpenSSL's codec, and the clock.
 */
#include <stdint.h>
#include <string.h>

#include "../../common/b64.h"
#include "../../common/clock.h"
#include "test.h"

static int dec(const char *in, char *out, size_t *outlen, size_t *bad)
{
	return b64_decode(in, strlen(in), (uint8_t *)out, outlen, bad);
}

TEST(b64_encode_rfc4648_vectors)
{
	static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
				     "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	char out[32];

	for (size_t i = 0; i < 7; i++) {
		size_t n = b64_encode((const uint8_t *)in[i], strlen(in[i]), out);
		CHECK_EQ(n, strlen(want[i]));
		CHECK_EQ(n, b64_encoded_len(strlen(in[i])));
		CHECK(strcmp(out, want[i]) == 0);
	}
}

TEST(b64_decode_padded_unpadded_and_line_breaks)
{
	char out[64];
	size_t n, bad;

	CHECK(dec("Zm9vYmFy", out, &n, &bad) == 0);
	CHECK_MEM(out, n, "foobar");
	CHECK(dec("Zm9vYg==", out, &n, &bad) == 0);
	CHECK_MEM(out, n, "foob");
	CHECK(dec("Zm9vYg", out, &n, &bad) == 0); /* padding optional */
	CHECK_MEM(out, n, "foob");
	CHECK(dec("Zm9vYmE", out, &n, &bad) == 0);
	CHECK_MEM(out, n, "fooba");
	CHECK(dec("Zm9v\r\nYmFy\n", out, &n, &bad) == 0); /* CR/LF skipped */
	CHECK_MEM(out, n, "foobar");
	CHECK(dec("", out, &n, &bad) == 0);
	CHECK_EQ(n, 0);
}

TEST(b64_decode_errors_name_the_byte)
{
	char out[64];
	size_t n, bad;

	CHECK(dec("Zm9v!mFy", out, &n, &bad) == -1);
	CHECK_EQ(bad, 4);
	CHECK(dec("Z", out, &n, &bad) == -1); /* one symbol of a group */
	CHECK_EQ(bad, 1);
	CHECK(dec("Zm9vY", out, &n, &bad) == -1);
	CHECK_EQ(bad, 5);
	CHECK(dec("Zm9v=", out, &n, &bad) == -1); /* padding too early */
	CHECK_EQ(bad, 4);
	CHECK(dec("Zg==Zg", out, &n, &bad) == -1); /* data after padding */
	CHECK_EQ(bad, 4);
	CHECK(dec("Zm9v-_", out, &n, &bad) == -1); /* URL alphabet is not standard */
	CHECK_EQ(bad, 4);
}

TEST(b64_roundtrip_every_length_and_byte)
{
	uint8_t in[300], back[300 + 3];
	char enc[404 + 1];

	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof in; len++) {
		size_t n = b64_encode(in, len, enc), m, bad;

		CHECK(b64_decode(enc, n, back, &m, &bad) == 0);
		CHECK_EQ(m, len);
		CHECK(memcmp(in, back, len) == 0);
	}
}

TEST(b64_large_value_crosses_chunks)
{
	size_t len = 200000;
	uint8_t *in = malloc(len), *back = malloc(b64_decoded_max(b64_encoded_len(len)));
	char *enc = malloc(b64_encoded_len(len) + 1);
	size_t m, bad;

	for (size_t i = 0; i < len; i++)
		in[i] = (uint8_t)(i ^ (i >> 8));
	size_t n = b64_encode(in, len, enc);
	CHECK_EQ(n, b64_encoded_len(len));
	CHECK(b64_decode(enc, n, back, &m, &bad) == 0);
	CHECK_EQ(m, len);
	CHECK(memcmp(in, back, len) == 0);
	free(in);
	free(back);
	free(enc);
}

TEST(clock_is_monotonic_and_deadlines_normalised)
{
	int64_t a = clock_mono_ns(), b = clock_mono_ns();
	CHECK(b >= a);
	CHECK(clock_mono_ms() >= a / 1000000);
	CHECK(clock_wall_ns() > (int64_t)1600000000 * 1000000000);
	for (int64_t ms = 0; ms < 3000; ms += 333) {
		struct timespec t = clock_after_ms(CLOCK_MONOTONIC, ms);
		CHECK(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
		int64_t at = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
		CHECK(at >= clock_mono_ns() + ms * 1000000 - 50000000);
	}
}

int main(void)
{
	RUN(b64_encode_rfc4648_vectors);
	RUN(b64_decode_padded_unpadded_and_line_breaks);
	RUN(b64_decode_errors_name_the_byte);
	RUN(b64_roundtrip_every_length_and_byte);
	RUN(b64_large_value_crosses_chunks);
	RUN(clock_is_monotonic_and_deadlines_normalised);
	TEST_EXIT();
}
