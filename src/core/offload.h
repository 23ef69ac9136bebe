/*
 * offload.h: work that must not run on a worker's loop runs on a small pool
 * of helper threads, and its completion runs back on the loop that asked.
 * A worker's loop serves every connection it holds; a few milliseconds of
 * CPU there (crypt(3) of a Basic password: 3 ms with sha512-crypt) delays
 * all of them, and a burst of such checks stalls the worker.
 */
#ifndef ESTRAD_CORE_OFFLOAD_H
#define ESTRAD_CORE_OFFLOAD_H

#include <event2/event.h>

/* Helper threads in the pool, started at the first job. */
#define CORE_OFFLOAD_THREADS 2

/*
 * Queues work(arg) for a helper thread; done(arg) then runs on base's loop
 * (the caller's worker loop, which must be running or be drained with
 * core_offload_drain()).  work must touch only what arg owns or what is
 * immutable; arg stays the caller's.  Returns 0 when done will be called,
 * -1 when the job was not queued (no memory, no thread, stopping): the
 * caller then does the work itself.  Thread-safe; base must have been made
 * after evthread_use_pthreads().
 */
int core_offload_run(struct event_base *base, void (*work)(void *arg),
                     void (*done)(void *arg), void *arg);

/*
 * Bookkeeping for any completion another thread will make run on base's
 * loop (the jobs above, the audit writer's answers): core_offload_expect()
 * when it is promised, core_offload_delivered() when it has run on the loop.
 * Thread-safe.
 */
void core_offload_expect(struct event_base *base);
void core_offload_delivered(struct event_base *base);

/*
 * Waits until every completion expected on base's loop has run (on this
 * thread, through non-blocking passes of base's loop).  Called by a worker
 * after its loop has stopped, before base is freed.
 */
void core_offload_drain(struct event_base *base);

/* Stops the helper threads once the queue is empty; at exit. */
void core_offload_stop(void);

#endif
