/*
 * test_wal.c - the write-ahead log and snapshot files: round trips through
 * close/reopen, overwrite semantics, crash damage (a record torn at every
 * byte offset, garbage in the middle, missing segments, index gaps, failed
 * writes and fsyncs through the wal_fs hook), segment roll-over and release,
 * cluster id checks, and snapshot files (5 MiB round trip, corruption,
 * latest, pruning).  Prints the fsync throughput of wal_sync at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../proto/errors.h"
#include "../../proto/wire.h"
#include "../../server/wal.h"
#include "test.h"

static char base[256];
static int dir_seq;

/* A fresh directory under base. */
static void newdir(char *out, size_t n)
{
	snprintf(out, n, "%s/d%d", base, ++dir_seq);
	mkdir(out, 0755);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Entry data derived from (index, salt) so a reader can check it: binary
 * bytes including 0x00 and 0xff; length varies with the index. */
static uint32_t data_len(uint64_t index)
{
	return (uint32_t)(index % 7 == 0 ? 0 : (index * 37) % 300 + 1);
}
static void fill_data(uint8_t *p, uint32_t len, uint64_t index, uint8_t salt)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(index * 131 + i * 7 + salt) ^ (i % 5 == 0 ? 0xff : 0);
	if (len > 2)
		p[1] = 0;
}

/* Append entries [from, to] with the given term and salt (one call). */
static int append_range(wal *w, uint64_t from, uint64_t to, uint64_t term, uint8_t salt)
{
	size_t n = (size_t)(to - from + 1);
	raft_entry *e = calloc(n, sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		e[i].index = from + i;
		e[i].term = term;
		e[i].type = (uint8_t)(e[i].index % 2);
		e[i].len = data_len(e[i].index);
		e[i].data = e[i].len ? malloc(e[i].len) : NULL;
		fill_data(e[i].data, e[i].len, e[i].index, salt);
	}
	int rc = wal_append(w, e, n);
	for (size_t i = 0; i < n; i++)
		free(e[i].data);
	free(e);
	return rc;
}

static int entry_ok(const raft_entry *e, uint64_t index, uint64_t term, uint8_t salt)
{
	uint8_t buf[400];
	if (e->index != index || e->term != term || e->type != index % 2 ||
	    e->len != data_len(index))
		return 0;
	fill_data(buf, e->len, index, salt);
	return e->len == 0 || memcmp(buf, e->data, e->len) == 0;
}

/* rec holds exactly entries [from, to] of the given term and salt. */
static int entries_ok(const wal_recovered *rec, uint64_t from, uint64_t to, uint64_t term,
		      uint8_t salt)
{
	if (rec->n_entries != (to >= from ? to - from + 1 : 0))
		return 0;
	for (size_t i = 0; i < rec->n_entries; i++)
		if (!entry_ok(&rec->entries[i], from + i, term, salt))
			return 0;
	return 1;
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Path of the k-th (0-based, by name) segment file of dir. */
static int seg_path(const char *dir, int k, char *out, size_t n)
{
	char wd[512];
	snprintf(wd, sizeof(wd), "%s/wal", dir);
	struct dirent **names;
	int cnt = scandir(wd, &names, NULL, alphasort);
	int found = -1, seen = 0;
	for (int i = 0; i < cnt; i++) {
		size_t l = strlen(names[i]->d_name);
		if (l > 4 && strcmp(names[i]->d_name + l - 4, ".wal") == 0 && seen++ == k) {
			snprintf(out, n, "%s/%s", wd, names[i]->d_name);
			found = 0;
		}
		free(names[i]);
	}
	free(names);
	return found;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(sz ? (size_t)sz : 1);
	*n = fread(b, 1, (size_t)sz, f);
	fclose(f);
	return b;
}

static void spit(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

static void patch(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);
	if (pwrite(fd, p, n, (off_t)off) != (ssize_t)n)
		perror("pwrite");
	close(fd);
}

static int open_wal(const char *dir, wal **w, wal_recovered *rec, char *err)
{
	return wal_open(dir, 0xc1, 0x31, w, rec, err, 256);
}

/* ------------------------------------------------------------------ */

TEST(test_crc32c)
{
	CHECK_EQ(ef_crc32c(0, "123456789", 9), 0xE3069283u);
	CHECK_EQ(ef_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	CHECK_EQ(ef_crc32c(0, "", 0), 0);
	uint8_t zeros[32] = {0};
	CHECK_EQ(ef_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
	uint8_t buf[600];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rnd();
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len < 520; len += 13) {
			uint32_t a = ef_crc32c(0, buf + off, len);
			CHECK_EQ(a, ef_crc32c_sw(0, buf + off, len));
			/* chaining */
			size_t cut = len / 3;
			CHECK_EQ(
				ef_crc32c(ef_crc32c(0, buf + off, cut), buf + off + cut, len - cut),
				a);
		}
}

TEST(test_round_trip)
{
	char dir[300], err[256];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.n_entries, 0);
	CHECK_EQ(rec.hs.term, 0);
	CHECK_EQ(rec.snap.index, 0);
	CHECK_EQ(rec.cluster_id, 0xc1);
	wal_recovered_free(&rec);

	CHECK_EQ(append_range(w, 1, 20, 1, 0), 0);
	/* a 100 KiB entry */
	uint8_t *big = malloc(100000);
	for (int i = 0; i < 100000; i++)
		big[i] = (uint8_t)rnd();
	raft_entry be = {.term = 1, .index = 21, .type = 0, .len = 100000, .data = big};
	CHECK_EQ(wal_append(w, &be, 1), 0);
	raft_hard_state hs = {2, 3, 15};
	CHECK_EQ(wal_set_hard_state(w, &hs), 0);
	CHECK_EQ(wal_sync(w), 0);
	CHECK_EQ(wal_fsyncs(w), 1);
	/* a gap is refused */
	CHECK_EQ(append_range(w, 23, 23, 2, 0), EF_E_INVALID);
	CHECK_EQ(append_range(w, 22, 30, 2, 0), 0);
	raft_snapshot_meta sm = {
		.index = 10, .term = 1, .n_voters = 3, .voters = {0x31, 0x32, 0x33}};
	CHECK_EQ(wal_mark_snapshot(w, &sm), 0);
	hs.commit = 28;
	CHECK_EQ(wal_set_hard_state(w, &hs), 0);
	CHECK_EQ(wal_sync(w), 0);
	CHECK_EQ(wal_fsyncs(w), 2);
	CHECK(wal_fsync_ns_total(w) >= wal_fsync_ns_last(w));
	CHECK(wal_bytes_written(w) > 100000);
	/* buffered but not synced: lost, as in a crash */
	CHECK_EQ(append_range(w, 31, 33, 2, 0), 0);
	CHECK_EQ(wal_last_index(w), 33);
	wal_close(w);

	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.hs.term, 2);
	CHECK_EQ(rec.hs.vote, 3);
	CHECK_EQ(rec.hs.commit, 28);
	CHECK_EQ(rec.snap.index, 10);
	CHECK_EQ(rec.snap.term, 1);
	CHECK_EQ(rec.snap.n_voters, 3);
	CHECK_EQ(rec.snap.voters[2], 0x33);
	CHECK_EQ(rec.n_entries, 20); /* 11..30 */
	if (rec.n_entries == 20) {
		int ok = 1;
		for (uint64_t i = 11; i <= 20; i++)
			ok &= entry_ok(&rec.entries[i - 11], i, 1, 0);
		CHECK(ok);
		CHECK_EQ(rec.entries[10].index, 21);
		CHECK_EQ(rec.entries[10].len, 100000);
		CHECK(memcmp(rec.entries[10].data, big, 100000) == 0);
		ok = 1;
		for (uint64_t i = 22; i <= 30; i++)
			ok &= entry_ok(&rec.entries[i - 11], i, 2, 0);
		CHECK(ok);
	}
	CHECK_EQ(wal_last_index(w), 30);
	wal_recovered_free(&rec);
	/* appending after reopen */
	CHECK_EQ(append_range(w, 31, 31, 3, 9), 0);
	CHECK_EQ(wal_sync(w), 0);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.n_entries, 21);
	if (rec.n_entries == 21)
		CHECK(entry_ok(&rec.entries[20], 31, 3, 9));
	wal_recovered_free(&rec);
	wal_close(w);
	free(big);
}

TEST(test_overwrite)
{
	char dir[300], err[256];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	wal_recovered_free(&rec);
	CHECK_EQ(append_range(w, 1, 10, 1, 0), 0);
	CHECK_EQ(wal_sync(w), 0);
	CHECK_EQ(append_range(w, 5, 5, 2, 7), 0); /* 5' replaces 5..10 */
	CHECK_EQ(wal_last_index(w), 5);
	CHECK_EQ(wal_sync(w), 0);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.n_entries, 5);
	if (rec.n_entries == 5) {
		int ok = 1;
		for (uint64_t i = 1; i <= 4; i++)
			ok &= entry_ok(&rec.entries[i - 1], i, 1, 0);
		CHECK(ok);
		CHECK(entry_ok(&rec.entries[4], 5, 2, 7));
	}
	wal_recovered_free(&rec);
	/* overwrite inside one unsynced batch, then extend */
	CHECK_EQ(append_range(w, 6, 12, 2, 1), 0);
	CHECK_EQ(append_range(w, 3, 8, 3, 2), 0);
	CHECK_EQ(wal_sync(w), 0);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.n_entries, 8);
	if (rec.n_entries == 8) {
		CHECK(entry_ok(&rec.entries[1], 2, 1, 0));
		int ok = 1;
		for (uint64_t i = 3; i <= 8; i++)
			ok &= entry_ok(&rec.entries[i - 1], i, 3, 2);
		CHECK(ok);
	}
	wal_recovered_free(&rec);
	wal_close(w);
}

/* Crash damage confined to the last record of the last segment: recovery
 * keeps everything before it, and the log accepts appends afterwards. */
TEST(test_torn_tail_every_offset)
{
	char dir[300], err[256], path[600];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	wal_recovered_free(&rec);
	CHECK_EQ(append_range(w, 1, 8, 1, 0), 0);
	raft_hard_state hs = {1, 0x31, 4};
	CHECK_EQ(wal_set_hard_state(w, &hs), 0);
	CHECK_EQ(wal_sync(w), 0);
	uint64_t off0 = wal_write_offset(w);
	CHECK_EQ(append_range(w, 9, 9, 1, 0), 0); /* the victim: 9 + 17 + 11 bytes */
	CHECK_EQ(wal_sync(w), 0);
	uint64_t off1 = wal_write_offset(w);
	CHECK_EQ(off1 - off0, 9 + 17 + data_len(9));
	wal_close(w);
	CHECK_EQ(seg_path(dir, 0, path, sizeof(path)), 0);
	size_t n;
	uint8_t *orig = slurp(path, &n);
	CHECK(orig && n >= off1);
	if (!orig || n < off1)
		return;
	/* Sanity: undamaged, all 9 come back. */
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK(entries_ok(&rec, 1, 9, 1, 0));
	wal_recovered_free(&rec);
	wal_close(w);

	uint8_t *img = malloc(n);
	int bad = 0, cases = 0;
	for (int variant = 0; variant < 3; variant++) {
		for (uint64_t k = off0; k < off1; k++) {
			memcpy(img, orig, n);
			size_t len = n;
			if (variant == 0) {
				len = (size_t)k; /* file cut short */
			} else if (variant == 1) {
				memset(img + k, 0, n - k); /* the tail never reached the disk */
			} else {
				for (uint64_t j = k; j < off1; j++) /* junk in the torn sector */
					img[j] = (uint8_t)(rnd() | 1);
			}
			spit(path, img, len);
			cases++;
			int rc = open_wal(dir, &w, &rec, err);
			int ok = rc == 0 && entries_ok(&rec, 1, 8, 1, 0) && rec.hs.commit == 4 &&
				 wal_write_offset(w) == off0;
			wal_recovered_free(&rec);
			if (rc == 0) {
				/* The damaged bytes were cut: zeros from off0 on. */
				size_t cn;
				uint8_t *cut = slurp(path, &cn);
				ok &= cut && cn >= off1;
				for (size_t j = off0; ok && j < cn; j++)
					ok &= cut[j] == 0;
				free(cut);
			}
			if (rc == 0) {
				ok &= append_range(w, 9, 10, 2, 5) == 0 && wal_sync(w) == 0;
				wal_close(w);
				rc = open_wal(dir, &w, &rec, err);
				ok &= rc == 0 && rec.n_entries == 10 &&
				      entry_ok(&rec.entries[7], 8, 1, 0) &&
				      entry_ok(&rec.entries[8], 9, 2, 5) &&
				      entry_ok(&rec.entries[9], 10, 2, 5);
				wal_recovered_free(&rec);
				if (rc == 0)
					wal_close(w);
			}
			if (!ok) {
				if (bad++ < 5)
					fprintf(stderr,
						"  torn variant %d at offset %" PRIu64
						": rc %d %s\n",
						variant, k, rc, err);
			}
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(cases, 3 * (int)(off1 - off0));
	free(img);
	free(orig);
}

TEST(test_corruption_detected)
{
	char dir[300], err[256], path[600];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	wal_recovered_free(&rec);
	wal_set_segment_bytes(w, 1 << 20); /* keep it all in one segment */
	for (uint64_t i = 1; i <= 30; i += 10) {
		CHECK_EQ(append_range(w, i, i + 9, 1, 0), 0);
		CHECK_EQ(wal_sync(w), 0);
	}
	uint64_t end = wal_write_offset(w);
	wal_close(w);
	CHECK_EQ(seg_path(dir, 0, path, sizeof(path)), 0);
	size_t n;
	uint8_t *orig = slurp(path, &n);

	/* A flipped bit inside an early record, valid records after it. */
	uint8_t x = orig[200] ^ 0x10;
	patch(path, 200, &x, 1);
	err[0] = 0;
	CHECK_EQ(open_wal(dir, &w, &rec, err), EF_E_CORRUPT);
	CHECK(strstr(err, path) != NULL);
	CHECK(strstr(err, "offset") != NULL);
	fprintf(stderr, "  (expected) %s\n", err);

	/* Garbage over a record boundary in the middle. */
	spit(path, orig, n);
	uint8_t junk[40];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rnd();
	patch(path, end / 2, junk, sizeof(junk));
	CHECK_EQ(open_wal(dir, &w, &rec, err), EF_E_CORRUPT);
	CHECK(strstr(err, path) != NULL);

	/* A record with a valid checksum that skips an index. */
	spit(path, orig, n);
	uint8_t r[9 + 17];
	ef_be64(r + 9, 1);
	ef_be64(r + 17, 32); /* 31 is missing */
	r[25] = 0;
	r[8] = 2;
	ef_be32(r, 17);
	ef_be32(r + 4, ef_crc32c(0, r + 8, 18));
	patch(path, end, r, sizeof(r));
	CHECK_EQ(open_wal(dir, &w, &rec, err), EF_E_CORRUPT);
	CHECK(strstr(err, "gap") != NULL);
	/* The same record with the right index is accepted (format check). */
	ef_be64(r + 17, 31);
	ef_be32(r + 4, ef_crc32c(0, r + 8, 18));
	patch(path, end, r, sizeof(r));
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.n_entries, 31);
	wal_recovered_free(&rec);
	wal_close(w);
	/* Unknown record type with a valid checksum. */
	r[8] = 77;
	ef_be32(r + 4, ef_crc32c(0, r + 8, 18));
	patch(path, end + sizeof(r), r, sizeof(r));
	CHECK_EQ(open_wal(dir, &w, &rec, err), EF_E_CORRUPT);
	free(orig);
}

static int count_wal_files(const char *dir)
{
	char wd[400];
	snprintf(wd, sizeof(wd), "%s/wal", dir);
	return count_files(wd, ".wal");
}

TEST(test_rollover_and_release)
{
	char dir[300], err[256], path[600];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	wal_recovered_free(&rec);
	raft_hard_state hs = {4, 0x32, 0};
	for (uint64_t i = 1; i <= 200; i += 5) {
		CHECK_EQ(append_range(w, i, i + 4, 4, 3), 0);
		hs.commit = i;
		CHECK_EQ(wal_set_hard_state(w, &hs), 0);
		CHECK_EQ(wal_sync(w), 0);
	}
	size_t segs = wal_segment_count(w);
	CHECK(segs >= 5);
	CHECK_EQ(count_wal_files(dir), (int)segs);
	/* An overwrite that crosses into the newest segment. */
	CHECK_EQ(append_range(w, 199, 200, 5, 4), 0);
	CHECK_EQ(wal_sync(w), 0);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.n_entries, 200);
	CHECK_EQ(rec.hs.commit, 196);
	if (rec.n_entries == 200) {
		int ok = 1;
		for (uint64_t i = 1; i <= 198; i++)
			ok &= entry_ok(&rec.entries[i - 1], i, 4, 3);
		CHECK(ok);
		CHECK(entry_ok(&rec.entries[199], 200, 5, 4));
	}
	wal_recovered_free(&rec);

	/* Release needs a durable snapshot marker: nothing goes without one. */
	CHECK_EQ(wal_release_to(w, 150), 0);
	CHECK_EQ(wal_segment_count(w), segs);
	raft_snapshot_meta sm = {.index = 150, .term = 4, .n_voters = 1, .voters = {0x31}};
	CHECK_EQ(wal_mark_snapshot(w, &sm), 0);
	CHECK_EQ(wal_release_to(w, 150), 0); /* marker not synced yet */
	CHECK_EQ(wal_segment_count(w), segs);
	CHECK_EQ(wal_sync(w), 0);
	CHECK_EQ(wal_release_to(w, 150), 0);
	size_t left = wal_segment_count(w);
	CHECK(left < segs && left >= 2);
	CHECK_EQ(count_wal_files(dir), (int)left);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.snap.index, 150);
	CHECK_EQ(rec.snap.term, 4);
	CHECK_EQ(rec.hs.commit, 196);
	CHECK_EQ(rec.n_entries, 50);
	if (rec.n_entries == 50) {
		CHECK(entry_ok(&rec.entries[0], 151, 4, 3));
		CHECK(entry_ok(&rec.entries[49], 200, 5, 4));
	}
	wal_recovered_free(&rec);
	/* Everything covered: only the newest segment stays. */
	sm.index = 200;
	sm.term = 5;
	CHECK_EQ(wal_mark_snapshot(w, &sm), 0);
	CHECK_EQ(wal_sync(w), 0);
	CHECK_EQ(wal_release_to(w, UINT64_MAX), 0);
	CHECK_EQ(wal_segment_count(w), 1);
	CHECK_EQ(count_wal_files(dir), 1);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.snap.index, 200);
	CHECK_EQ(rec.hs.term, 4);
	CHECK_EQ(rec.hs.commit, 196);
	CHECK_EQ(rec.n_entries, 0);
	wal_recovered_free(&rec);
	CHECK_EQ(wal_last_index(w), 200);
	CHECK_EQ(append_range(w, 201, 203, 6, 1), 0);
	CHECK_EQ(wal_sync(w), 0);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK(entries_ok(&rec, 201, 203, 6, 1));
	wal_recovered_free(&rec);
	wal_close(w);

	/* A missing segment in the middle of the sequence is corruption. */
	char dir2[300];
	newdir(dir2, sizeof(dir2));
	CHECK_EQ(open_wal(dir2, &w, &rec, err), 0);
	wal_recovered_free(&rec);
	for (uint64_t i = 1; i <= 100; i += 5) {
		CHECK_EQ(append_range(w, i, i + 4, 1, 0), 0);
		CHECK_EQ(wal_sync(w), 0);
	}
	CHECK(wal_segment_count(w) >= 3);
	wal_close(w);
	CHECK_EQ(seg_path(dir2, 1, path, sizeof(path)), 0);
	char saved[700];
	snprintf(saved, sizeof(saved), "%s.saved", path);
	CHECK_EQ(rename(path, saved), 0);
	CHECK_EQ(open_wal(dir2, &w, &rec, err), EF_E_CORRUPT);
	CHECK(strstr(err, "missing") != NULL);
	fprintf(stderr, "  (expected) %s\n", err);
	CHECK_EQ(rename(saved, path), 0);
	/* A damaged tail in a sealed (not the newest) segment is corruption too. */
	CHECK_EQ(truncate(path, 300), 0);
	CHECK_EQ(open_wal(dir2, &w, &rec, err), EF_E_CORRUPT);
	CHECK(strstr(err, path) != NULL);
}

/* Once the segment holding the only hard state and snapshot records is
 * released, the headers of the newer segments must carry them. */
TEST(test_header_carries_state)
{
	char dir[300], err[256];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	wal_recovered_free(&rec);
	raft_hard_state hs = {7, 0x33, 40};
	CHECK_EQ(wal_set_hard_state(w, &hs), 0);
	CHECK_EQ(append_range(w, 1, 10, 7, 0), 0);
	CHECK_EQ(wal_sync(w), 0);
	raft_snapshot_meta sm = {.index = 10, .term = 7, .n_voters = 2, .voters = {0x31, 0x33}};
	CHECK_EQ(wal_mark_snapshot(w, &sm), 0);
	CHECK_EQ(wal_sync(w), 0);
	/* A batch too big for what is left of the segment starts a new one,
	 * so the first segment holds exactly 1..10, the hs and the marker. */
	CHECK_EQ(append_range(w, 11, 45, 7, 0), 0);
	CHECK_EQ(wal_sync(w), 0);
	CHECK_EQ(wal_segment_count(w), 2);
	for (uint64_t i = 46; i <= 110; i += 5) {
		CHECK_EQ(append_range(w, i, i + 4, 7, 0), 0);
		CHECK_EQ(wal_sync(w), 0);
	}
	size_t segs = wal_segment_count(w);
	CHECK(segs >= 3);
	CHECK_EQ(wal_release_to(w, 10), 0);
	CHECK_EQ(wal_segment_count(w), segs - 1);
	wal_close(w);
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	CHECK_EQ(rec.hs.term, 7);
	CHECK_EQ(rec.hs.vote, 0x33);
	CHECK_EQ(rec.hs.commit, 40);
	CHECK_EQ(rec.snap.index, 10);
	CHECK_EQ(rec.snap.n_voters, 2);
	CHECK_EQ(rec.snap.voters[1], 0x33);
	CHECK(entries_ok(&rec, 11, 110, 7, 0));
	wal_recovered_free(&rec);
	wal_close(w);
}

/* A snapshot marker whose term differs from the log's entry at its index
 * ends that log (Raft paper, Figure 13); a matching one keeps what follows. */
TEST(test_snapshot_marker_vs_log)
{
	char dir[300], err[256];
	wal *w;
	wal_recovered rec;
	for (int match = 0; match <= 1; match++) {
		newdir(dir, sizeof(dir));
		CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
		wal_recovered_free(&rec);
		CHECK_EQ(append_range(w, 1, 10, 1, 0), 0);
		raft_snapshot_meta sm = {.index = 8, .term = match ? 1 : 2, .n_voters = 1};
		CHECK_EQ(wal_mark_snapshot(w, &sm), 0);
		CHECK_EQ(wal_sync(w), 0);
		wal_close(w);
		CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
		CHECK_EQ(rec.snap.index, 8);
		if (match)
			CHECK(entries_ok(&rec, 9, 10, 1, 0));
		else
			CHECK_EQ(rec.n_entries, 0);
		wal_recovered_free(&rec);
		/* a snapshot beyond the log: the log continues after it */
		sm.index = 50;
		sm.term = 3;
		CHECK_EQ(wal_mark_snapshot(w, &sm), 0);
		CHECK_EQ(wal_last_index(w), 50);
		CHECK_EQ(append_range(w, 51, 52, 3, 1), 0);
		CHECK_EQ(wal_sync(w), 0);
		wal_close(w);
		CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
		CHECK_EQ(rec.snap.index, 50);
		CHECK(entries_ok(&rec, 51, 52, 3, 1));
		wal_recovered_free(&rec);
		wal_close(w);
	}
}

TEST(test_cluster_mismatch_and_lock)
{
	char dir[300], err[256];
	newdir(dir, sizeof(dir));
	wal *w, *w2;
	wal_recovered rec;
	CHECK_EQ(wal_open(dir, 1, 2, &w, &rec, err, sizeof(err)), 0);
	wal_recovered_free(&rec);
	CHECK_EQ(wal_open(dir, 1, 2, &w2, &rec, err, sizeof(err)), EF_E_LOCKED);
	CHECK_EQ(append_range(w, 1, 3, 1, 0), 0);
	CHECK_EQ(wal_sync(w), 0);
	wal_close(w);
	CHECK_EQ(wal_open(dir, 9, 2, &w, &rec, err, sizeof(err)), EF_E_CLUSTER_MISMATCH);
	CHECK(strstr(err, "cluster") != NULL);
	CHECK_EQ(wal_open(dir, 1, 9, &w, &rec, err, sizeof(err)), EF_E_CLUSTER_MISMATCH);
	CHECK_EQ(wal_open(dir, 0, 0, &w, &rec, err, sizeof(err)), 0); /* 0 = take what is there */
	CHECK_EQ(rec.cluster_id, 1);
	CHECK_EQ(rec.member_id, 2);
	CHECK_EQ(rec.n_entries, 3);
	wal_recovered_free(&rec);
	wal_close(w);
}

/* ---- fault injection: a write that stops half way, a failing fsync ---- */

static int fi_mode; /* 1: short write then EIO; 2: fdatasync fails */
static long fi_pwrite(void *ud, int fd, const void *p, size_t n, int64_t off)
{
	if (fi_mode == 1) {
		if (n > 1) {
			ssize_t r = pwrite(fd, p, n / 2, (off_t)off);
			(void)r;
		}
		errno = EIO;
		return -1;
	}
	return (long)pwrite(fd, p, n, (off_t)off);
}
static int fi_fdatasync(void *ud, int fd)
{
	if (fi_mode == 2) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}
static const wal_fs fi_fs = {fi_pwrite, fi_fdatasync, NULL};

TEST(test_fault_injection)
{
	char dir[300], err[256];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	for (int mode = 1; mode <= 2; mode++) {
		CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
		uint64_t last = wal_last_index(w);
		wal_recovered_free(&rec);
		CHECK_EQ(append_range(w, last + 1, last + 5, 1, 0), 0);
		CHECK_EQ(wal_sync(w), 0);
		wal_set_fs(&fi_fs);
		fi_mode = mode;
		CHECK_EQ(append_range(w, last + 6, last + 12, 1, 0), 0);
		CHECK_EQ(wal_sync(w), EF_E_IO);
		/* sticky: the wal must be reopened */
		CHECK_EQ(append_range(w, last + 41, last + 41, 1, 0), EF_E_IO);
		CHECK_EQ(wal_sync(w), EF_E_IO);
		fi_mode = 0;
		wal_set_fs(NULL);
		wal_close(w);
		CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
		/* mode 1: the first half of the batch reached the file, so the
		 * records complete in it survive and the rest is a torn tail;
		 * mode 2: everything may or may not have reached the disk. */
		if (mode == 1)
			CHECK(rec.n_entries >= last + 5 && rec.n_entries < last + 12);
		else
			CHECK(rec.n_entries == last + 5 || rec.n_entries == last + 12);
		CHECK(rec.n_entries == 0 || rec.entries[rec.n_entries - 1].index == rec.n_entries);
		uint64_t got = rec.n_entries;
		wal_recovered_free(&rec);
		CHECK_EQ(append_range(w, got + 1, got + 1, 2, 0), 0);
		CHECK_EQ(wal_sync(w), 0);
		wal_close(w);
		CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
		CHECK_EQ(rec.n_entries, got + 1);
		wal_recovered_free(&rec);
		wal_close(w);
	}
}

/* ---- randomized crash loop ---- */

static long crash_after = -1; /* bytes the next pwrite may write before "power fails" */
static long crash_pwrite(void *ud, int fd, const void *p, size_t n, int64_t off)
{
	if (crash_after < 0)
		return (long)pwrite(fd, p, n, (off_t)off);
	size_t k = (size_t)crash_after < n ? (size_t)crash_after : n;
	crash_after = -1;
	if (k && pwrite(fd, p, k, (off_t)off) < 0)
		return -1;
	errno = EIO;
	return -1;
}
static const wal_fs crash_fs = {crash_pwrite, fi_fdatasync, NULL};

#define CL_MAX 4096
struct cl_model {
	uint64_t last;
	uint64_t term[CL_MAX];
	uint8_t salt[CL_MAX];
};

static void cl_apply(struct cl_model *m, uint64_t index, uint64_t term, uint8_t salt)
{
	m->last = index; /* an index <= last truncates first */
	m->term[index] = term;
	m->salt[index] = salt;
}

static int cl_same(const wal_recovered *rec, const struct cl_model *m)
{
	if (rec->n_entries != m->last)
		return 0;
	for (uint64_t i = 1; i <= m->last; i++)
		if (!entry_ok(&rec->entries[i - 1], i, m->term[i], m->salt[i]))
			return 0;
	return 1;
}

/* Crash at a random byte of a random batch, 150 times: what was synced
 * always survives, plus possibly some whole records of the torn batch,
 * and the log keeps working after each reopen.  Batches overwrite earlier
 * entries at times and segments roll over, so crashes also hit segment
 * creation. */
TEST(test_crash_loop)
{
	char dir[300], err[256];
	newdir(dir, sizeof(dir));
	static struct cl_model acked, cand;
	memset(&acked, 0, sizeof(acked));
	uint64_t term = 1;
	int bad = 0, torn_kept = 0;
	wal_set_fs(&crash_fs);
	for (int iter = 0; iter < 150 && !bad; iter++) {
		wal *w;
		wal_recovered rec;
		int rc = open_wal(dir, &w, &rec, err);
		if (rc != 0) {
			fprintf(stderr, "  iteration %d: open: %s\n", iter, err);
			bad++;
			break;
		}
		if (!cl_same(&rec, &acked)) {
			fprintf(stderr,
				"  iteration %d: recovered %zu entries, expected %" PRIu64 "\n",
				iter, rec.n_entries, acked.last);
			bad++;
		}
		wal_recovered_free(&rec);
		int syncs = 1 + (int)(rnd() % 3);
		for (int b = 0; b <= syncs && !bad; b++) {
			int crash = b == syncs;
			uint64_t lo = acked.last > 3 ? acked.last - 3 : 1;
			uint64_t from = lo + rnd() % (acked.last + 2 - lo);
			uint64_t cnt = 1 + rnd() % 8;
			if (from + cnt >= CL_MAX)
				from = acked.last + 1 > 10 ? 1 : from;
			if (from <= acked.last)
				term++;
			uint8_t salt = (uint8_t)rnd();
			if (append_range(w, from, from + cnt - 1, term, salt) != 0) {
				bad++;
				break;
			}
			if (!crash) {
				if (wal_sync(w) != 0) {
					bad++;
					break;
				}
				for (uint64_t i = from; i < from + cnt; i++)
					cl_apply(&acked, i, term, salt);
				continue;
			}
			crash_after = (long)(rnd() % (cnt * 200));
			int src = wal_sync(w);
			crash_after = -1;
			wal_close(w);
			w = NULL;
			/* Which whole records of the torn batch made it? */
			wal_set_fs(NULL);
			rc = open_wal(dir, &w, &rec, err);
			wal_set_fs(&crash_fs);
			int found = 0;
			cand = acked;
			for (uint64_t j = 0; j <= cnt && !found && rc == 0; j++) {
				if (j)
					cl_apply(&cand, from + j - 1, term, salt);
				if (cl_same(&rec, &cand)) {
					found = 1;
					torn_kept += j > 0;
				}
			}
			if (rc || !found) {
				fprintf(stderr,
					"  iteration %d: after crash (sync rc %d): rc %d %s\n",
					iter, src, rc, err);
				bad++;
			} else {
				acked = cand;
			}
			if (rc == 0) {
				wal_recovered_free(&rec);
				wal_close(w);
			}
		}
		if (bad && w)
			wal_close(w);
	}
	wal_set_fs(NULL);
	CHECK_EQ(bad, 0);
	CHECK(acked.last > 0);
	fprintf(stderr,
		"  crash loop: final log %" PRIu64
		" entries, %d crashes kept part of the torn batch\n",
		acked.last, torn_kept);
}

/* ---- snapshot files ---- */

static void make_file(const char *path, size_t n)
{
	uint8_t *b = malloc(n);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd();
		/* half random, half compressible */
		if ((i / 4096) % 2)
			v = i / 4096;
		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
	spit(path, b, n);
	free(b);
}

static int same_file(const char *a, const char *b)
{
	size_t na, nb;
	uint8_t *pa = slurp(a, &na), *pb = slurp(b, &nb);
	int same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
	free(pa);
	free(pb);
	return same;
}

TEST(test_snapfile)
{
	char dir[300], src[400], dst[400], out[600], out2[600], latest[600];
	newdir(dir, sizeof(dir));
	snprintf(src, sizeof(src), "%s/data.mdb", dir);
	snprintf(dst, sizeof(dst), "%s/restored.mdb", dir);
	make_file(src, 5 * 1024 * 1024 + 3);
	raft_snapshot_meta m = {.index = 100, .term = 2, .n_voters = 3, .voters = {7, 8, 9}}, got;

	CHECK_EQ(snapfile_latest(dir, latest, sizeof(latest), &got), 0);
	CHECK_EQ(latest[0], 0);

	CHECK_EQ(snapfile_write(dir, &m, src, out, sizeof(out)), 0);
	CHECK(strstr(out, "/snap/0000000000000002-0000000000000064.snap") != NULL);
	struct stat st;
	CHECK_EQ(stat(out, &st), 0);
	CHECK(st.st_size < 5 * 1024 * 1024); /* the compressible half shrank */
	memset(&got, 0, sizeof(got));
	CHECK_EQ(snapfile_read(out, dst, &got), 0);
	CHECK(same_file(src, dst));
	CHECK_EQ(got.index, 100);
	CHECK_EQ(got.term, 2);
	CHECK_EQ(got.n_voters, 3);
	CHECK_EQ(got.voters[2], 9);
	CHECK_EQ(snapfile_verify(out, NULL), 0);

	/* Corrupt payload: detected, destination untouched. */
	unlink(dst);
	size_t n;
	uint8_t *img = slurp(out, &n);
	uint8_t x = img[n / 2] ^ 1;
	patch(out, n / 2, &x, 1);
	CHECK_EQ(snapfile_read(out, dst, &got), EF_E_CORRUPT);
	CHECK(access(dst, F_OK) != 0);
	char tmpdst[500];
	snprintf(tmpdst, sizeof(tmpdst), "%s.tmp", dst);
	CHECK(access(tmpdst, F_OK) != 0);
	/* Corrupt header, truncated file. */
	spit(out, img, n);
	x = img[10] ^ 1;
	patch(out, 10, &x, 1);
	CHECK_EQ(snapfile_verify(out, NULL), EF_E_CORRUPT);
	spit(out, img, n - 100);
	CHECK_EQ(snapfile_read(out, dst, &got), EF_E_CORRUPT);
	spit(out, img, n);
	CHECK_EQ(snapfile_read(out, dst, &got), 0);
	CHECK_EQ(snapfile_read("/nonexistent/x.snap", dst, &got), EF_E_NOT_FOUND);
	/* A header (with a good CRC) claiming another uncompressed size: the
	 * digest still matches, the decompressed length does not. */
	uint8_t hdr[208];
	memcpy(hdr, img, sizeof(hdr));
	CHECK_EQ(ef_get_be64(hdr + 156), 5 * 1024 * 1024 + 3); /* format: raw size at 156 */
	ef_be64(hdr + 156, 5 * 1024 * 1024 + 4);
	ef_be32(hdr + 204, ef_crc32c(0, hdr, 204));
	patch(out, 0, hdr, sizeof(hdr));
	CHECK_EQ(snapfile_verify(out, NULL), 0);
	CHECK_EQ(snapfile_read(out, dst, &got), EF_E_CORRUPT);
	spit(out, img, n);

	/* latest and pruning: keep the newest two. */
	raft_snapshot_meta m2 = m, m3 = m;
	m2.index = 200;
	m3.index = 300;
	m3.term = 3;
	CHECK_EQ(snapfile_write(dir, &m2, src, out2, sizeof(out2)), 0);
	CHECK_EQ(snapfile_latest(dir, latest, sizeof(latest), &got), 0);
	CHECK_EQ(strcmp(latest, out2), 0);
	CHECK_EQ(got.index, 200);
	CHECK_EQ(snapfile_write(dir, &m3, src, out, sizeof(out)), 0);
	char sdir[400];
	snprintf(sdir, sizeof(sdir), "%s/snap", dir);
	CHECK_EQ(count_files(sdir, ".snap"), 2);
	CHECK_EQ(count_files(sdir, ".tmp"), 0);
	CHECK_EQ(snapfile_latest(dir, latest, sizeof(latest), &got), 0);
	CHECK_EQ(strcmp(latest, out), 0);
	CHECK_EQ(got.index, 300);
	CHECK_EQ(got.term, 3);
	/* The newest damaged: latest falls back to the older valid one. */
	x = 0x55;
	patch(out, 5000, &x, 1);
	CHECK_EQ(snapfile_latest(dir, latest, sizeof(latest), &got), 0);
	CHECK_EQ(strcmp(latest, out2), 0);
	CHECK_EQ(got.index, 200);
	CHECK_EQ(snapfile_prune(dir, 1), 0);
	CHECK_EQ(count_files(sdir, ".snap"), 1);
	free(img);
}

/* Not a check: how fast a lone small entry becomes durable. */
TEST(test_fsync_throughput)
{
	char dir[300], err[256];
	newdir(dir, sizeof(dir));
	wal *w;
	wal_recovered rec;
	wal_set_default_segment_bytes(0); /* the real 64 MiB preallocation */
	CHECK_EQ(open_wal(dir, &w, &rec, err), 0);
	wal_set_default_segment_bytes(4096);
	wal_recovered_free(&rec);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int n = 1000;
	for (int i = 1; i <= n; i++) {
		CHECK_EQ(append_range(w, (uint64_t)i, (uint64_t)i, 1, 0), 0);
		CHECK_EQ(wal_sync(w), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	CHECK_EQ(wal_fsyncs(w), n);
	printf("# wal_sync of 1 small entry: %d syncs in %.3f s = %.0f syncs/s, mean fdatasync "
	       "%.1f us\n",
	       n, s, n / s, (double)wal_fsync_ns_total(w) / n / 1000.0);
	/* group commit: 100 entries per sync */
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 100; i++) {
		uint64_t from = (uint64_t)n + 1 + (uint64_t)i * 100;
		CHECK_EQ(append_range(w, from, from + 99, 1, 0), 0);
		CHECK_EQ(wal_sync(w), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("# wal_sync of 100 entries: 10000 entries in %.3f s = %.0f entries/s\n", s,
	       10000 / s);
	wal_close(w);
}

int main(void)
{
	snprintf(base, sizeof(base), "/tmp/test_wal.XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	wal_set_default_segment_bytes(4096);
	RUN(test_crc32c);
	RUN(test_round_trip);
	RUN(test_overwrite);
	RUN(test_torn_tail_every_offset);
	RUN(test_corruption_detected);
	RUN(test_rollover_and_release);
	RUN(test_header_carries_state);
	RUN(test_snapshot_marker_vs_log);
	RUN(test_cluster_mismatch_and_lock);
	RUN(test_fault_injection);
	RUN(test_crash_loop);
	RUN(test_snapfile);
	RUN(test_fsync_throughput);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", base);
	TEST_EXIT();
}
