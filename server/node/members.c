/*
 * members.c - the member table, fixed at bootstrap.
 *
 * --initial-cluster names every member; a member's id hashes its name, peer
 * URL and the cluster token, and the cluster id hashes every id (sorted) and
 * the token, so every member computes the same ids without talking.  Client
 * URLs are not configured per peer: each member proposes its own through
 * Raft (a MEMBER_ATTR entry) and they are kept in the store's meta table
 * ("member/<id hex>"), so they travel with snapshots.  There is no
 * membership change.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

static uint64_t hash64(const char *a, const char *b, const char *c)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl;
	EVP_MD_CTX *s = EVP_MD_CTX_new();
	EVP_DigestInit_ex(s, EVP_sha256(), NULL);
	EVP_DigestUpdate(s, a, strlen(a) + 1);
	EVP_DigestUpdate(s, b, strlen(b) + 1);
	EVP_DigestUpdate(s, c, strlen(c) + 1);
	EVP_DigestFinal_ex(s, d, &dl);
	EVP_MD_CTX_free(s);
	uint64_t v = ef_get_be64(d);
	return v ? v : 1;
}

/* ------------------------------------------------------------------ */
/* Members.                                                             */

struct member *node_member_by_id(node *n, uint64_t id)
{
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == id)
			return &n->members[i];
	return NULL;
}

int node_members_parse(node *n, const char *spec, char *err, size_t errlen)
{
	char *copy = strdup(spec), *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (!eq || eq == item || !eq[1]) {
			snprintf(err, errlen, "--initial-cluster: '%s' is not name=url", item);
			free(copy);
			return EF_E_INVALID;
		}
		*eq = 0;
		const char *url = eq + 1;
		char norm[300];
		if (strncmp(url, "http://", 7) == 0)
			snprintf(norm, sizeof norm, "tcp://%s", url + 7);
		else
			snprintf(norm, sizeof norm, "%s", url);
		if (n->n_members >= MAX_MEMBERS) {
			snprintf(err, errlen, "--initial-cluster: at most %d members", MAX_MEMBERS);
			free(copy);
			return EF_E_INVALID;
		}
		struct member *m = &n->members[n->n_members++];
		snprintf(m->name, sizeof m->name, "%s", item);
		snprintf(m->peer_url, sizeof m->peer_url, "%s", norm);
		m->id = hash64(m->name, m->peer_url, n->cfg.initial_cluster_token);
	}
	free(copy);
	if (n->n_members == 0) {
		snprintf(err, errlen, "--initial-cluster is empty");
		return EF_E_INVALID;
	}
	/* cluster id: every member's id and the token, order-independent */
	uint64_t ids[MAX_MEMBERS];
	for (int i = 0; i < n->n_members; i++)
		ids[i] = n->members[i].id;
	for (int i = 0; i < n->n_members; i++)
		for (int j = i + 1; j < n->n_members; j++)
			if (ids[j] < ids[i]) {
				uint64_t t = ids[i];
				ids[i] = ids[j];
				ids[j] = t;
			}
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl;
	EVP_MD_CTX *s = EVP_MD_CTX_new();
	EVP_DigestInit_ex(s, EVP_sha256(), NULL);
	EVP_DigestUpdate(s, ids, sizeof(uint64_t) * (size_t)n->n_members);
	EVP_DigestUpdate(s, n->cfg.initial_cluster_token, strlen(n->cfg.initial_cluster_token));
	EVP_DigestFinal_ex(s, d, &dl);
	EVP_MD_CTX_free(s);
	n->cluster_id = ef_get_be64(d);
	n->id = 0;
	for (int i = 0; i < n->n_members; i++)
		if (strcmp(n->members[i].name, n->cfg.name) == 0)
			n->id = n->members[i].id;
	if (!n->id) {
		snprintf(err, errlen, "--initial-cluster has no member named '%s' (--name)",
			 n->cfg.name);
		return EF_E_INVALID;
	}
	return 0;
}

/* Published client URLs are kept in the store ("member/<id hex>"), so
 * they travel with snapshots; reload them into members[]. */
void node_members_load_attrs(node *n)
{
	ef_arena *a = ef_arena_new();
	for (int i = 0; i < n->n_members; i++) {
		char key[64];
		snprintf(key, sizeof key, "member/%016" PRIx64, n->members[i].id);
		ef_buf v;
		if (store_meta_get(n->st, key, &v, a) == 0) {
			size_t len = v.n < sizeof n->members[i].client_urls - 1
					     ? v.n
					     : sizeof n->members[i].client_urls - 1;
			pthread_mutex_lock(&n->mu);
			memcpy(n->members[i].client_urls, v.p, len);
			n->members[i].client_urls[len] = 0;
			pthread_mutex_unlock(&n->mu);
		}
	}
	ef_arena_free(a);
}

int node_member_list(node *n, ef_msg *resp, ef_arena *a)
{
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_MEMBER_LIST_RESP;
	ef_member *ms = ef_arena_alloc(a, sizeof(ef_member) * (size_t)n->n_members);
	if (!ms)
		return node_set_error(resp, a, EF_E_NOMEM, NULL);
	pthread_mutex_lock(&n->mu);
	for (int i = 0; i < n->n_members; i++) {
		struct member *m = &n->members[i];
		ms[i].id = m->id;
		ms[i].name = (ef_buf){ef_arena_dup(a, m->name, strlen(m->name)),
				      (uint32_t)strlen(m->name)};
		ms[i].peer_urls = ef_arena_alloc(a, sizeof(ef_buf));
		if (ms[i].peer_urls) {
			ms[i].peer_urls[0] =
				(ef_buf){ef_arena_dup(a, m->peer_url, strlen(m->peer_url)),
					 (uint32_t)strlen(m->peer_url)};
			ms[i].n_peer_urls = 1;
		}
		/* client urls: comma list -> array */
		char *cu = m->client_urls;
		uint32_t cnt = 0;
		if (*cu) {
			cnt = 1;
			for (char *q = cu; *q; q++)
				cnt += *q == ',';
		}
		ms[i].client_urls = cnt ? ef_arena_alloc(a, sizeof(ef_buf) * cnt) : NULL;
		if (ms[i].client_urls) {
			const char *s = cu;
			for (uint32_t j = 0; j < cnt; j++) {
				const char *e = strchr(s, ',');
				size_t len = e ? (size_t)(e - s) : strlen(s);
				ms[i].client_urls[j] =
					(ef_buf){ef_arena_dup(a, s, len), (uint32_t)len};
				s = e ? e + 1 : s + len;
			}
			ms[i].n_client_urls = cnt;
		}
	}
	pthread_mutex_unlock(&n->mu);
	resp->u.member_list_resp.members = ms;
	resp->u.member_list_resp.n_members = (uint32_t)n->n_members;
	node_fill_hdr(n, &resp->hdr);
	return 0;
}
