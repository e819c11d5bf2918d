/*
 * streamio.h - blocking whole-buffer I/O on an nng byte stream (prefix
 * ef_stream_).  The client library and etcfsd's native listener frame
 * wire.h messages over nng streams with it.
 */
#ifndef EF_STREAMIO_H
#define EF_STREAMIO_H

#include <stddef.h>

#include <nng/nng.h>

/* Send (sending != 0) or receive exactly len bytes, looping over partial
 * transfers.  0, or the nng error (NNG_ECLOSED when the peer closed). */
int ef_stream_io(nng_stream *s, void *buf, size_t len, int sending);
/* The same with a bound of timeout_ms per transfer (NNG_ETIMEDOUT). */
int ef_stream_io_timeout(nng_stream *s, void *buf, size_t len, int sending, int timeout_ms);

#endif
