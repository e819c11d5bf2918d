/*
 * http.c - the HTTP/1.1 side of a connection: reading one request (head,
 * then a Content-Length body) under the limits and timeouts listed in
 * gateway_int.h, and writing responses and etcd-shaped errors.  Everything
 * here runs on the connection's own thread with blocking sockets: reads
 * poll with a deadline, writes rely on SO_SNDTIMEO (set in start.c).
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../../common/clock.h"
#include "gateway_int.h"

/* ------------------------------------------------------------------ */
/* Writing responses                                                    */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Request Entity Too Large";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

/* Send every byte of the iovecs; 0 or -1 (peer gone, or no progress for
 * WRITE_TIMEOUT_MS: SO_SNDTIMEO is set on the socket). */
int gw_send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

int gw_send_response(struct conn *c, int status, const char *ctype, const void *body, size_t len,
		     int close)
{
	char h[256];
	int hl;
	struct iovec iov[2];

	hl = snprintf(h, sizeof(h),
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
		      reason(status), ctype, len, close ? "Connection: close\r\n" : "");
	iov[0].iov_base = h;
	iov[0].iov_len = (size_t)hl;
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = len;
	return gw_send_all(c->fd, iov, len ? 2 : 1);
}

/* etcd-shaped error; returns the HTTP status sent. */
int gw_send_error(struct conn *c, int grpc_code, int status, const char *msg, int close)
{
	int st;

	ef_wbuf_reset(&c->out);
	st = gw_encode_error(grpc_code, msg, &c->out);
	if (status)
		st = status;
	if (c->out.err)
		gw_send_response(c, 500, "application/json", "{}", 2, 1);
	else
		gw_send_response(c, st, "application/json", c->out.p, c->out.len, close);
	return st;
}

/* ------------------------------------------------------------------ */
/* Reading requests                                                     */

/* Read more bytes into c->buf (room must exist) until deadline.
 * Returns 1 (bytes read), 0 (peer closed), -1 (timeout, error, stopping). */
int gw_conn_fill(struct conn *c, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		struct pollfd p = {c->fd, POLLIN, 0};
		ssize_t k;
		int r;

		if (atomic_load(&gw.stopping))
			return -1;
		if (left <= 0) {
			metrics_inc(gw.m_timeouts);
			return -1;
		}
		r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0)
			continue;
		k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (k > 0) {
			c->len += (size_t)k;
			return 1;
		}
		if (k == 0)
			return 0;
		if (errno != EINTR && errno != EAGAIN)
			return -1;
	}
}

static int conn_reserve(struct conn *c, size_t need)
{
	char *p;
	size_t cap = c->cap;

	if (need <= c->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(c->buf, cap);
	if (!p)
		return -1;
	c->buf = p;
	c->cap = cap;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = 0;
	return s;
}

/* Read and parse one request (head and body) into r.
 * Returns 0, or -1 when the connection must be closed (an error response,
 * if any was due, has been sent). */
int gw_read_request(struct conn *c, struct http_req *r)
{
	int64_t deadline = clock_mono_ms() + IDLE_TIMEOUT_MS;
	size_t scanned = 0, clen = 0;
	char *end = NULL, *line, *next, *version, *path;
	int have_clen = 0, rc, expect100 = 0;

	memset(r, 0, sizeof(*r));
	/* Skip the empty lines some clients send between requests. */
	for (;;) {
		while (c->len >= 2 && c->buf[0] == '\r' && c->buf[1] == '\n') {
			memmove(c->buf, c->buf + 2, c->len - 2);
			c->len -= 2;
		}
		if (c->len >= 4) {
			end = memmem(c->buf + scanned, c->len - scanned, "\r\n\r\n", 4);
			if (end)
				break;
			scanned = c->len - 3;
		}
		if (c->len >= MAX_HEAD_BYTES) {
			gw_send_error(c, 3, 431, "request header too large", 1);
			return -1;
		}
		if (c->len == c->cap && conn_reserve(c, c->cap * 2))
			return -1;
		if (c->len > 0 && deadline > clock_mono_ms() + HEAD_TIMEOUT_MS)
			deadline = clock_mono_ms() + HEAD_TIMEOUT_MS;
		rc = gw_conn_fill(c, deadline);
		if (rc <= 0) {
			if (rc < 0 && c->len > 0 && !atomic_load(&gw.stopping))
				gw_send_error(c, 4, 408, "request head timed out", 1);
			return -1;
		}
		if (c->len > 0 && deadline > clock_mono_ms() + HEAD_TIMEOUT_MS)
			deadline = clock_mono_ms() + HEAD_TIMEOUT_MS;
	}
	r->head_len = (size_t)(end - c->buf) + 4;
	if (memchr(c->buf, 0, r->head_len)) {
		gw_send_error(c, 3, 400, "malformed request: NUL byte in the head", 1);
		return -1;
	}
	end[2] = 0; /* the head is now one string of CRLF-separated lines */

	/* Request line. */
	line = c->buf;
	next = strstr(line, "\r\n"); /* found: the head ends with CRLF CRLF */
	if (!next) {
		gw_send_error(c, 3, 400, "malformed request line", 1);
		return -1;
	}
	*next = 0;
	next += 2;
	r->method = 0;
	path = strchr(line, ' ');
	if (!path) {
		gw_send_error(c, 3, 400, "malformed request line", 1);
		return -1;
	}
	*path++ = 0;
	r->path = (size_t)(path - c->buf);
	version = strchr(path, ' ');
	if (!version) {
		gw_send_error(c, 3, 400, "malformed request line", 1);
		return -1;
	}
	*version++ = 0;
	if (strncmp(version, "HTTP/1.", 7) != 0) {
		gw_send_error(c, 3, 505, "unsupported HTTP version", 1);
		return -1;
	}
	if (strcmp(version, "HTTP/1.1") != 0)
		r->close = 1; /* HTTP/1.0 unless it asks for keep-alive */

	/* Headers. */
	for (line = next; *line; line = next) {
		char *colon, *val;

		next = strstr(line, "\r\n");
		if (next) {
			*next = 0;
			next += 2;
		} else {
			next = line + strlen(line);
		}
		colon = strchr(line, ':');
		if (!colon) {
			gw_send_error(c, 3, 400, "malformed header line", 1);
			return -1;
		}
		*colon = 0;
		val = trim(colon + 1);
		if (strcasecmp(line, "Content-Length") == 0) {
			char *e;
			unsigned long long v;

			errno = 0;
			v = strtoull(val, &e, 10);
			if (!*val || *e || errno || *val == '-' || (have_clen && v != clen)) {
				gw_send_error(c, 3, 400, "invalid Content-Length", 1);
				return -1;
			}
			if (v > gw.max_body) {
				gw_send_error(c, 3, 413, ef_strerror(EF_E_REQUEST_TOO_LARGE), 1);
				return -1;
			}
			clen = (size_t)v;
			have_clen = 1;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			if (strcasecmp(val, "identity") != 0) {
				gw_send_error(
					c, 3, 411,
					"chunked request bodies are not supported: send Content-Length",
					1);
				return -1;
			}
		} else if (strcasecmp(line, "Connection") == 0) {
			if (strcasestr(val, "close"))
				r->close = 1;
			else if (strcasestr(val, "keep-alive"))
				r->close = 0;
		} else if (strcasecmp(line, "Expect") == 0) {
			expect100 = strcasecmp(val, "100-continue") == 0;
		}
	}

	/* Body. */
	r->body_len = clen;
	if (c->len < r->head_len + clen) {
		if (conn_reserve(c, r->head_len + clen)) {
			gw_send_error(c, 8, 413, "out of memory for request body", 1);
			return -1;
		}
		if (expect100) {
			struct iovec iov = {"HTTP/1.1 100 Continue\r\n\r\n", 25};

			if (gw_send_all(c->fd, &iov, 1))
				return -1;
		}
		deadline = clock_mono_ms() + BODY_TIMEOUT_MS;
		while (c->len < r->head_len + clen) {
			rc = gw_conn_fill(c, deadline);
			if (rc <= 0) {
				if (rc < 0 && !atomic_load(&gw.stopping))
					gw_send_error(c, 4, 408, "request body timed out", 1);
				return -1;
			}
		}
	}
	return 0;
}

void gw_consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	/* Give back the memory of a large body. */
	if (c->cap > 4 * CONN_BUF_INIT && c->len <= CONN_BUF_INIT) {
		char *p = realloc(c->buf, CONN_BUF_INIT);

		if (p) {
			c->buf = p;
			c->cap = CONN_BUF_INIT;
		}
	}
}
