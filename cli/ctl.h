/*
 * ctl.h - what the files of etcfsctl share: global options, the cobra-like
 * flag parser, error exits with etcdctl's exit codes, and the printers.
 *
 * etcfsctl mirrors etcdctl v3 (etcd 3.4): same verbs, same flags, same
 * output byte for byte where the data is the same, same exit codes.
 */
#ifndef EF_CTL_H
#define EF_CTL_H

#include <stdint.h>
#include <stdio.h>

#include "../proto/client.h"

/* etcdctl's exit codes (ctlv3/command/error.go). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_ERROR = 1,
	CTL_EXIT_BAD_CONNECTION = 2,
	CTL_EXIT_INVALID_INPUT = 3,
	CTL_EXIT_BAD_FEATURE = 4,
	CTL_EXIT_INTERRUPTED = 5,
	CTL_EXIT_IO = 6,
	CTL_EXIT_BAD_ARGS = 128
};

enum ctl_wfmt {
	W_SIMPLE,
	W_JSON,
	W_FIELDS,
	W_TABLE
};

/* Global options, filled by the flag parser before any verb runs. */
struct ctl_global {
	const char *endpoints; /* as given (comma list), never NULL after parsing */
	int dial_ms, cmd_ms;
	int wfmt; /* enum ctl_wfmt */
	int hex;
	efc_client *client; /* opened lazily by ctl_client() */
};
extern struct ctl_global g_ctl;

/* ---- flags ---------------------------------------------------------- */

enum ctl_flag_kind {
	F_BOOL,
	F_STR,
	F_INT,
	F_DUR,
	F_UINT_HEX
};

struct ctl_flag {
	const char *name; /* long name without "--", NULL ends a table */
	char shorthand;   /* 0 = none */
	int kind;         /* enum ctl_flag_kind */
	void *ptr;        /* int*, const char**, int64_t*, int* (ms), uint64_t* */
};

/* Parsed command line of one verb: positionals and the words after "--". */
struct ctl_args {
	char **pos;
	int npos;
	char **exec; /* NULL when there was no "--" */
	int nexec;
};

/* Parse args (the verb's arguments, verb word removed) against the global
 * flags and `flags`; exits with "Error: unknown flag" etc. on bad input. */
void ctl_parse(int argc, char **argv, const struct ctl_flag *flags, struct ctl_args *out);
/* Index of the first positional word in argv (skipping global flags and
 * their values), or -1.  Used to find verbs and sub-verbs. */
int ctl_find_word(int argc, char **argv);
/* Remove argv[i] in place. */
void ctl_remove_arg(int *argc, char **argv, int i);

/* Go duration ("500ms", "2s", "1m30s") to milliseconds; -1 when invalid. */
int64_t ctl_parse_duration_ms(const char *s);
/* Go's time.Duration.String() of a nanosecond count. */
void ctl_format_duration(int64_t ns, char *out, size_t n);

/* ---- errors and the client -------------------------------------------- */

/* Print "Error: <fmt>" on stderr and exit with code. */
__attribute__((noreturn, format(printf, 2, 3))) void ctl_die(int code, const char *fmt, ...);
/* Exit for a failed client call: "Error: <library message>", exit 1. */
__attribute__((noreturn)) void ctl_die_rv(int rv);
/* The shared client for g_ctl.endpoints (opened on first use). */
efc_client *ctl_client(void);
/* A client for exactly one endpoint (endpoint status/health). */
int ctl_open_one(const char *endpoint, efc_client **out);
/* efc_call on the shared client; dies on error. */
void ctl_call(const ef_msg *req, ef_msg *resp, ef_arena *a);
/* Arena or die. */
ef_arena *ctl_arena(void);

/* ---- printing ---------------------------------------------------------- */

/* Go's strconv.Quote of a byte string, written to f. */
void ctl_quote(FILE *f, const uint8_t *p, size_t n);
/* A key or value line as etcdctl's printKV writes it (raw, or \xNN with --hex). */
void ctl_print_bytes_line(const uint8_t *p, size_t n);
/* printKV: key line (unless value_only), then value line. */
void ctl_print_kv(const ef_kv *kv, int value_only);
/* humanize.Bytes (SI): "20 kB". */
void ctl_human_bytes(uint64_t n, char *out, size_t len);

/* etcdctl's tablewriter look: header centred, cells right-aligned. */
struct ctl_table;
struct ctl_table *ctl_table_new(int ncols, const char *const *header);
void ctl_table_row(struct ctl_table *t, const char *const *cells);
void ctl_table_print(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* JSON (jansson) helpers.  Go prints uint64 ids as plain numbers, which
 * json_int_t cannot hold past 2^63; ctl_ju64 marks such values and
 * ctl_json_print writes them as bare numbers. */
#include <jansson.h>
json_t *ctl_ju64(uint64_t v);
json_t *ctl_jbase64(const uint8_t *p, size_t n);
json_t *ctl_jheader(const ef_resp_header *h, int with_revision);
json_t *ctl_jkv(const ef_kv *kv);
/* Dump compact, followed by a newline, to stdout; steals j. */
void ctl_json_print(json_t *j);

/* "ClusterID" ... "RaftTerm" lines of -w fields. */
void ctl_fields_header(const ef_resp_header *h);
/* "Key" ... "Lease" lines of -w fields (prefix "Prev" for previous values). */
void ctl_fields_kv(const ef_kv *kv, const char *prefix);

/* Output of one response per format, shared by put/get/del and txn. */
void ctl_print_range(const ef_msg *resp, const ef_range_resp *r, int value_only, int keys_only);
void ctl_print_put(const ef_msg *resp, const ef_put_resp *r);
void ctl_print_del(const ef_msg *resp, const ef_delete_resp *r);

/* ---- verbs ---------------------------------------------------------------- */

int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_del(int argc, char **argv);
int cmd_txn(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_lease(int argc, char **argv);
int cmd_endpoint(int argc, char **argv);
int cmd_member(int argc, char **argv);
int cmd_move_leader(int argc, char **argv);
int cmd_lock(int argc, char **argv);
int cmd_elect(int argc, char **argv);

/* Parse a hex lease/member id as etcdctl does (strconv.ParseInt(s, 16, 64)). */
int ctl_parse_hex_id(const char *s, int64_t *out);

#define CTL_VERSION "0.1.0"
#define CTL_API_VERSION "3.4"

#endif
