/*
 * streamio.c - see streamio.h.  One aio per call: the callers are threads
 * that block anyway, and this keeps the helper free of shared state.
 */
#include <stdint.h>

#include "streamio.h"

int ef_stream_io(nng_stream *s, void *buf, size_t len, int sending)
{
	return ef_stream_io_timeout(s, buf, len, sending, NNG_DURATION_INFINITE);
}

int ef_stream_io_timeout(nng_stream *s, void *buf, size_t len, int sending, int timeout_ms)
{
	nng_aio *aio;
	if (nng_aio_alloc(&aio, NULL, NULL) != 0)
		return NNG_ENOMEM;
	uint8_t *p = buf;
	int rv = 0;
	while (len > 0) {
		nng_iov iov = {.iov_buf = p, .iov_len = len};
		nng_aio_set_iov(aio, 1, &iov);
		nng_aio_set_timeout(aio, timeout_ms);
		if (sending)
			nng_stream_send(s, aio);
		else
			nng_stream_recv(s, aio);
		nng_aio_wait(aio);
		if ((rv = nng_aio_result(aio)) != 0)
			break;
		size_t n = nng_aio_count(aio);
		if (n == 0) {
			rv = NNG_ECLOSED;
			break;
		}
		p += n;
		len -= n;
	}
	nng_aio_free(aio);
	return rv;
}
