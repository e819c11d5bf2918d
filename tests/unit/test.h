/*
 * test.h - a tiny unit test harness.  Each tests/unit/test_*.c defines
 * TEST(name) functions and lists them in main via RUN(name); every check
 * that fails prints file:line and marks the test failed.  Output is one line
 * "PASS name" or "FAIL name" per test, which tests/run.sh counts.
 */
#ifndef EF_TEST_H
#define EF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed_;
static int t_total_fail_;

#define TEST(name) static void name(void)
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			t_failed_ = 1;                                                             \
		}                                                                                  \
	} while (0)
#define CHECK_EQ(a, b)                                                                          \
	do {                                                                                    \
		long long a_ = (long long)(a), b_ = (long long)(b);                             \
		if (a_ != b_) {                                                                 \
			fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
				__LINE__, #a, a_, #b, b_);                                      \
			t_failed_ = 1;                                                          \
		}                                                                               \
	} while (0)
#define CHECK_MEM(p, n, s) CHECK((n) == strlen(s) && memcmp((p), (s), (n)) == 0)
#define RUN(name)                                                      \
	do {                                                           \
		t_failed_ = 0;                                         \
		name();                                                \
		printf("%s %s\n", t_failed_ ? "FAIL" : "PASS", #name); \
		fflush(stdout);                                        \
		t_total_fail_ += t_failed_;                            \
	} while (0)
#define TEST_EXIT() return t_total_fail_ ? 1 : 0

#endif
