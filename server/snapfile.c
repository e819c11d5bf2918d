/*
 * snapfile.c - snapshot files: DIR/snap/<term 16 hex>-<index 16 hex>.snap.
 *
 * A snapshot file is a fixed-size header followed by a zstd stream of a
 * source file (an LMDB environment copy made by the store).  Header, all
 * integers big-endian:
 *
 *     offset size field
 *          0    4 magic 0x45465350 ("EFSP")
 *          4    4 version 1
 *          8    8 index
 *         16    8 term
 *         24    4 n_voters (<= RAFT_MAX_VOTERS)
 *         28  128 voters[16] (unused slots 0)
 *        156    8 uncompressed size
 *        164    8 compressed size (bytes after the header)
 *        172   32 SHA-256 of the compressed payload
 *        204    4 CRC32C of bytes 0..203
 *        208      payload
 *
 * Both directions stream in fixed-size chunks (ZSTD_compressStream2 at level
 * 3, ZSTD_decompressStream) so a multi-GiB database never sits in memory.
 * Every file reaches its final name only complete and durable: it is written
 * as NAME.tmp, the header is filled in last, then fsync, rename, fsync of the
 * directory.  A crash leaves at worst a *.tmp, which snapfile_prune removes.
 *
 * Checking: the header CRC catches a damaged header; the SHA-256 over the
 * compressed bytes catches any change in the payload before a single
 * decompressed byte is trusted (snapfile_read writes to a temp name and
 * renames only after the digest and the uncompressed size both match).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "../proto/errors.h"
#include "../proto/wire.h"
#include "wal.h"

#define SNAP_MAGIC 0x45465350u
#define SNAP_VERSION 1u
#define SNAP_HDR_LEN 208
#define SNAP_CHUNK (256u * 1024u)
#define SNAP_LEVEL 3

struct snap_hdr {
	raft_snapshot_meta m;
	uint64_t raw_size, comp_size;
	uint8_t sha[32];
};

static void hdr_encode(uint8_t *p, const struct snap_hdr *h)
{
	memset(p, 0, SNAP_HDR_LEN);
	ef_be32(p, SNAP_MAGIC);
	ef_be32(p + 4, SNAP_VERSION);
	ef_be64(p + 8, h->m.index);
	ef_be64(p + 16, h->m.term);
	ef_be32(p + 24, h->m.n_voters);
	for (uint32_t i = 0; i < h->m.n_voters && i < RAFT_MAX_VOTERS; i++)
		ef_be64(p + 28 + 8 * i, h->m.voters[i]);
	ef_be64(p + 156, h->raw_size);
	ef_be64(p + 164, h->comp_size);
	memcpy(p + 172, h->sha, 32);
	ef_be32(p + 204, ef_crc32c(0, p, 204));
}

static int hdr_decode(const uint8_t *p, struct snap_hdr *h)
{
	if (ef_get_be32(p + 204) != ef_crc32c(0, p, 204) || ef_get_be32(p) != SNAP_MAGIC ||
	    ef_get_be32(p + 4) != SNAP_VERSION)
		return EF_E_CORRUPT;
	memset(h, 0, sizeof(*h));
	h->m.index = ef_get_be64(p + 8);
	h->m.term = ef_get_be64(p + 16);
	h->m.n_voters = ef_get_be32(p + 24);
	if (h->m.n_voters > RAFT_MAX_VOTERS)
		return EF_E_CORRUPT;
	for (uint32_t i = 0; i < h->m.n_voters; i++)
		h->m.voters[i] = ef_get_be64(p + 28 + 8 * i);
	h->raw_size = ef_get_be64(p + 156);
	h->comp_size = ef_get_be64(p + 164);
	memcpy(h->sha, p + 172, 32);
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t r = write(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* read() until n bytes or EOF; returns bytes read or -1. */
static ssize_t read_some(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (uint8_t *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* fsync the directory holding path. */
static int fsync_parent(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r == 0 || errno == EINVAL ? 0 : -1;
}

static int parse_name(const char *name, uint64_t *term, uint64_t *index)
{
	int used = 0;
	if (sscanf(name, "%16" SCNx64 "-%16" SCNx64 "%n", term, index, &used) != 2 || used != 33)
		return -1;
	return strcmp(name + used, ".snap") == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

int snapfile_write(const char *dir, const raft_snapshot_meta *m, const char *src_path,
		   char *out_path, size_t out_len)
{
	if (m->n_voters > RAFT_MAX_VOTERS)
		return EF_E_INVALID;
	char sdir[4096], fin[4200], tmp[4300];
	snprintf(sdir, sizeof(sdir), "%s/snap", dir);
	if ((mkdir(dir, 0755) != 0 && errno != EEXIST) ||
	    (mkdir(sdir, 0755) != 0 && errno != EEXIST))
		return EF_E_IO;
	snprintf(fin, sizeof(fin), "%s/%016" PRIx64 "-%016" PRIx64 ".snap", sdir, m->term,
		 m->index);
	snprintf(tmp, sizeof(tmp), "%s.tmp", fin);

	int rc = EF_E_IO;
	int in = -1, out = -1;
	uint8_t *ibuf = NULL, *obuf = NULL;
	ZSTD_CCtx *cz = NULL;
	EVP_MD_CTX *md = NULL;
	struct snap_hdr h = {.m = *m};
	uint8_t hb[SNAP_HDR_LEN];

	in = open(src_path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = errno == ENOENT ? EF_E_NOT_FOUND : EF_E_IO;
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		goto out;
	size_t olen = ZSTD_CStreamOutSize();
	ibuf = malloc(SNAP_CHUNK);
	obuf = malloc(olen);
	cz = ZSTD_createCCtx();
	md = EVP_MD_CTX_new();
	if (!ibuf || !obuf || !cz || !md) {
		rc = EF_E_NOMEM;
		goto out;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(cz, ZSTD_c_compressionLevel, SNAP_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cz, ZSTD_c_checksumFlag, 1)) ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	hdr_encode(hb, &h); /* placeholder, rewritten once sizes and digest are known */
	if (write_all(out, hb, SNAP_HDR_LEN) != 0)
		goto out;

	for (;;) {
		ssize_t n = read_some(in, ibuf, SNAP_CHUNK);
		if (n < 0)
			goto out;
		h.raw_size += (uint64_t)n;
		ZSTD_EndDirective mode = n < (ssize_t)SNAP_CHUNK ? ZSTD_e_end : ZSTD_e_continue;
		ZSTD_inBuffer zin = {ibuf, (size_t)n, 0};
		int finished = 0;
		do {
			ZSTD_outBuffer zout = {obuf, olen, 0};
			size_t left = ZSTD_compressStream2(cz, &zout, &zin, mode);
			if (ZSTD_isError(left))
				goto out;
			if (zout.pos && (write_all(out, obuf, zout.pos) != 0 ||
					 EVP_DigestUpdate(md, obuf, zout.pos) != 1))
				goto out;
			h.comp_size += zout.pos;
			finished = mode == ZSTD_e_end ? left == 0 : zin.pos == zin.size;
		} while (!finished);
		if (mode == ZSTD_e_end)
			break;
	}
	unsigned int dl = 0;
	if (EVP_DigestFinal_ex(md, h.sha, &dl) != 1 || dl != 32)
		goto out;
	hdr_encode(hb, &h);
	if (pwrite(out, hb, SNAP_HDR_LEN, 0) != SNAP_HDR_LEN || fsync(out) != 0)
		goto out;
	if (close(out) != 0) {
		out = -1;
		goto out;
	}
	out = -1;
	if (rename(tmp, fin) != 0 || fsync_parent(fin) != 0)
		goto out;
	if (out_path && out_len)
		snprintf(out_path, out_len, "%s", fin);
	rc = 0;
	snapfile_prune(dir, SNAPFILE_KEEP);
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (rc)
		unlink(tmp);
	free(ibuf);
	free(obuf);
	ZSTD_freeCCtx(cz);
	EVP_MD_CTX_free(md);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* Stream the payload of snap_path: digest it and, when dst >= 0, decompress
 * it into dst.  Fills h. */
static int snap_stream(const char *snap_path, int dst, struct snap_hdr *h)
{
	int fd = open(snap_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? EF_E_NOT_FOUND : EF_E_IO;
	int rc = EF_E_IO;
	uint8_t hb[SNAP_HDR_LEN];
	uint8_t *ibuf = NULL, *obuf = NULL;
	ZSTD_DCtx *dz = NULL;
	EVP_MD_CTX *md = NULL;
	size_t olen = ZSTD_DStreamOutSize();
	struct stat st;

	ssize_t n = read_some(fd, hb, SNAP_HDR_LEN);
	if (n < 0)
		goto out;
	if (n < SNAP_HDR_LEN || hdr_decode(hb, h) != 0 || fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_size != SNAP_HDR_LEN + h->comp_size) {
		rc = n < 0 ? EF_E_IO : EF_E_CORRUPT;
		goto out;
	}
	ibuf = malloc(SNAP_CHUNK);
	obuf = malloc(olen);
	md = EVP_MD_CTX_new();
	dz = dst >= 0 ? ZSTD_createDCtx() : NULL;
	if (!ibuf || !obuf || !md || (dst >= 0 && !dz)) {
		rc = EF_E_NOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	uint64_t raw = 0;
	size_t zleft = 1; /* ZSTD_decompressStream's hint: 0 once a frame is complete */
	for (;;) {
		n = read_some(fd, ibuf, SNAP_CHUNK);
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, ibuf, (size_t)n) != 1)
			goto out;
		if (!dz)
			continue;
		ZSTD_inBuffer zin = {ibuf, (size_t)n, 0};
		ZSTD_outBuffer zout;
		do {
			zout = (ZSTD_outBuffer){obuf, olen, 0};
			zleft = ZSTD_decompressStream(dz, &zout, &zin);
			if (ZSTD_isError(zleft)) {
				rc = EF_E_CORRUPT;
				goto out;
			}
			raw += zout.pos;
			if (raw > h->raw_size) {
				rc = EF_E_CORRUPT;
				goto out;
			}
			if (zout.pos && write_all(dst, obuf, zout.pos) != 0)
				goto out;
		} while (zin.pos < zin.size || zout.pos == olen);
	}
	if (dz) {
		/* Flush what the decoder still holds. */
		for (;;) {
			ZSTD_inBuffer zin = {NULL, 0, 0};
			ZSTD_outBuffer zout = {obuf, olen, 0};
			if (zleft == 0)
				break;
			zleft = ZSTD_decompressStream(dz, &zout, &zin);
			if (ZSTD_isError(zleft) || zout.pos == 0)
				break;
			raw += zout.pos;
			if (raw > h->raw_size || write_all(dst, obuf, zout.pos) != 0)
				break;
		}
	}
	uint8_t sha[32];
	unsigned int dl = 0;
	if (EVP_DigestFinal_ex(md, sha, &dl) != 1 || dl != 32)
		goto out;
	if (memcmp(sha, h->sha, 32) != 0 || (dz && (zleft != 0 || raw != h->raw_size))) {
		rc = EF_E_CORRUPT;
		goto out;
	}
	rc = 0;
out:
	close(fd);
	free(ibuf);
	free(obuf);
	ZSTD_freeDCtx(dz);
	EVP_MD_CTX_free(md);
	return rc;
}

int snapfile_verify(const char *snap_path, raft_snapshot_meta *m)
{
	struct snap_hdr h;
	int rc = snap_stream(snap_path, -1, &h);
	if (!rc && m)
		*m = h.m;
	return rc;
}

int snapfile_read(const char *snap_path, const char *dst_path, raft_snapshot_meta *m)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return EF_E_IO;
	struct snap_hdr h;
	int rc = snap_stream(snap_path, fd, &h);
	if (!rc && fsync(fd) != 0)
		rc = EF_E_IO;
	if (close(fd) != 0 && !rc)
		rc = EF_E_IO;
	if (!rc && (rename(tmp, dst_path) != 0 || fsync_parent(dst_path) != 0))
		rc = EF_E_IO;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	if (m)
		*m = h.m;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Listing                                                              */

struct snap_ent {
	uint64_t term, index; /* the file is named <term>-<index>.snap */
};

static int snap_ent_newer_first(const void *a, const void *b)
{
	const struct snap_ent *x = a, *y = b;
	if (x->index != y->index)
		return x->index > y->index ? -1 : 1;
	if (x->term != y->term)
		return x->term > y->term ? -1 : 1;
	return 0;
}

/* Snapshot files (<term>-<index>.snap) in sdir, newest first.  *out NULL and 0 when the
 * directory does not exist. */
static int snap_list(const char *sdir, struct snap_ent **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	DIR *d = opendir(sdir);
	if (!d)
		return errno == ENOENT ? 0 : EF_E_IO;
	struct snap_ent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t t, i;
		if (parse_name(de->d_name, &t, &i) != 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			struct snap_ent *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return EF_E_NOMEM;
			}
			v = nv;
		}
		v[n].term = t;
		v[n].index = i;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), snap_ent_newer_first);
	*out = v;
	*n_out = n;
	return 0;
}

int snapfile_latest(const char *dir, char *out_path, size_t out_len, raft_snapshot_meta *m)
{
	if (out_path && out_len)
		out_path[0] = 0;
	char sdir[4096], path[4200];
	snprintf(sdir, sizeof(sdir), "%s/snap", dir);
	struct snap_ent *v;
	size_t n;
	int rc = snap_list(sdir, &v, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%016" PRIx64 ".snap", sdir,
			 v[i].term, v[i].index);
		raft_snapshot_meta sm;
		if (snapfile_verify(path, &sm) != 0)
			continue; /* damaged: fall back to an older one */
		if (sm.index != v[i].index || sm.term != v[i].term)
			continue; /* header disagrees with its name */
		if (out_path && out_len)
			snprintf(out_path, out_len, "%s", path);
		if (m)
			*m = sm;
		break;
	}
	free(v);
	return 0;
}

int snapfile_prune(const char *dir, int keep)
{
	char sdir[4096], path[4400];
	snprintf(sdir, sizeof(sdir), "%s/snap", dir);
	struct snap_ent *v;
	size_t n;
	int rc = snap_list(sdir, &v, &n);
	if (rc)
		return rc;
	for (size_t i = keep > 0 ? (size_t)keep : 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%016" PRIx64 ".snap", sdir,
			 v[i].term, v[i].index);
		if (unlink(path) != 0 && errno != ENOENT)
			rc = EF_E_IO;
	}
	free(v);
	/* Leftovers of writes a crash interrupted. */
	DIR *d = opendir(sdir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);
			if (l > 9 && strcmp(de->d_name + l - 9, ".snap.tmp") == 0) {
				snprintf(path, sizeof(path), "%s/%s", sdir, de->d_name);
				unlink(path);
			}
		}
		closedir(d);
	}
	return rc;
}
