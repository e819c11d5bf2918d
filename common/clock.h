/*
 * clock.h - the one clock of etcfs.  Every program (etcfsd, etcfs, etcfsctl,
 * etcfs-bench) reads time through these functions, so there is one place
 * that says which POSIX clock measures what:
 *   - monotonic time for timeouts, deadlines and latency (never jumps);
 *   - wall time only for what a person or another host reads (mtimes,
 *     proposal timestamps, log lines).
 * The Raft core takes no clock at all: the host passes ticks in.
 */
#ifndef EF_CLOCK_H
#define EF_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds and milliseconds. */
int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);
/* CLOCK_REALTIME in nanoseconds since the epoch. */
int64_t clock_wall_ns(void);

/* The absolute timespec `ms` milliseconds from now on clock `id`, for
 * pthread_cond_timedwait (which uses CLOCK_REALTIME unless the condvar was
 * made with pthread_condattr_setclock) and sem_timedwait. */
struct timespec clock_after_ms(clockid_t id, int64_t ms);

#endif
