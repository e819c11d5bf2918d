#!/bin/bash
# The Raft core stays a pure state machine: no sockets, clock, disk, threads
# or libc randomness inside server/raft/ (the host feeds all of that in).
cd "$(dirname "$0")/../.." || exit 1
bad=$(grep -nE '#include <(nng|lmdb|fuse|pthread|sys/socket|sys/time|time|fcntl|unistd|stdio)\.?h?|\b(clock_gettime|gettimeofday|time\(|fopen|fsync|socket\(|pthread_|rand\(|random\(|srand|getrandom|sleep\()' server/raft/*.c server/raft/*.h | grep -v '^\s*\*' | grep -vE ':\s*(/\*|\*)')
if [ -z "$bad" ]; then echo "PASS raft core has no I/O, clock, threads or libc randomness"; else
	echo "$bad"; echo "FAIL raft core has no I/O, clock, threads or libc randomness"; exit 1; fi
