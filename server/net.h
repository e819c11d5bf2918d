/*
 * net.h - the native client listener (prefix net_): nng byte streams on
 * --listen-client-urls carrying wire.h frames; each connection has a reader
 * thread, a writer thread with a bounded queue, and hands requests to a
 * shared worker pool that calls node_call().
 */
#ifndef EF_NET_H
#define EF_NET_H

#include <stddef.h>

#include "node.h"

int net_start(node *n, const char *urls, size_t max_request_bytes, char *err, size_t errlen);
void net_stop(void);

#endif
