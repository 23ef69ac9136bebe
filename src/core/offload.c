/*
 * offload.c: a pool of helper threads for work that must not run on a
 * worker's loop (see offload.h).  Jobs are taken first come, first served;
 * each completion is an event made by the submitter on its own loop, which
 * a helper thread makes active (libevent's pthread locking makes that
 * safe), so no allocation happens on the helper side.
 */
#include <sys/resource.h>
#include <sys/syscall.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/offload.h"

/* How much nicer than the workers the helper threads run (Linux sets
 * the nice value per thread): the loops, which serve every connection,
 * get the cores first; a burst of helper work waits for idle time. */
#define CORE_OFFLOAD_NICE 5

/* Loops with jobs not yet delivered, for core_offload_drain(). */
#define CORE_OFFLOAD_BASES 64

struct core_offload_job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct event_base *base;
	struct event *ev; /* on base; made active when work has run */
	struct core_offload_job *next;
};

static pthread_mutex_t core_offload_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t core_offload_work_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t core_offload_progress_cond = PTHREAD_COND_INITIALIZER;
static struct core_offload_job *core_offload_head;
static struct core_offload_job **core_offload_tail = &core_offload_head;
static pthread_t core_offload_threads[CORE_OFFLOAD_THREADS];
static int core_offload_nthreads;
static int core_offload_stopping;
static struct {
	struct event_base *base;
	unsigned long count;
} core_offload_pending[CORE_OFFLOAD_BASES];

/* Adds delta to base's count of undelivered jobs; core_offload_lock held.
 * A loop beyond the table is not counted (its drain cannot wait). */
static void
core_offload_pending_add(struct event_base *base, int delta)
{
	int i, free_slot = -1;

	for (i = 0; i < CORE_OFFLOAD_BASES; i++) {
		if (core_offload_pending[i].base == base)
			break;
		if (core_offload_pending[i].base == NULL && free_slot < 0)
			free_slot = i;
	}
	if (i == CORE_OFFLOAD_BASES) {
		if (free_slot < 0 || delta < 0)
			return;
		i = free_slot;
		core_offload_pending[i].base = base;
	}
	if (delta < 0 && core_offload_pending[i].count > 0)
		core_offload_pending[i].count--;
	else if (delta > 0)
		core_offload_pending[i].count++;
	if (core_offload_pending[i].count == 0)
		core_offload_pending[i].base = NULL;
}

void
core_offload_expect(struct event_base *base)
{
	pthread_mutex_lock(&core_offload_lock);
	core_offload_pending_add(base, 1);
	pthread_mutex_unlock(&core_offload_lock);
}

void
core_offload_delivered(struct event_base *base)
{
	pthread_mutex_lock(&core_offload_lock);
	core_offload_pending_add(base, -1);
	pthread_cond_broadcast(&core_offload_progress_cond);
	pthread_mutex_unlock(&core_offload_lock);
}

/* Runs on the submitter's loop. */
static void
core_offload_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct core_offload_job *job = arg;
	void (*done)(void *) = job->done;
	void *done_arg = job->arg;

	(void)fd;
	(void)what;
	core_offload_delivered(job->base);
	event_free(job->ev);
	free(job);
	done(done_arg);
}

static void *
core_offload_main(void *unused)
{
	struct core_offload_job *job;

	(void)unused;
	/* Best effort: a thread that cannot be made nicer still works. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	                  getpriority(PRIO_PROCESS, 0) + CORE_OFFLOAD_NICE);
	for (;;) {
		pthread_mutex_lock(&core_offload_lock);
		while (core_offload_head == NULL && !core_offload_stopping)
			pthread_cond_wait(&core_offload_work_cond,
			                  &core_offload_lock);
		if ((job = core_offload_head) != NULL &&
		    (core_offload_head = job->next) == NULL)
			core_offload_tail = &core_offload_head;
		pthread_mutex_unlock(&core_offload_lock);
		if (job == NULL)
			break;
		job->work(job->arg);
		/* The submitter frees the job as soon as it is active. */
		event_active(job->ev, EV_TIMEOUT, 1);
	}
	return NULL;
}

/* Starts the threads at the first job; core_offload_lock held.  Returns the
 * number running. */
static int
core_offload_start(void)
{
	while (core_offload_nthreads < CORE_OFFLOAD_THREADS &&
	       !core_offload_stopping &&
	       pthread_create(&core_offload_threads[core_offload_nthreads],
	                      NULL, core_offload_main, NULL) == 0)
		core_offload_nthreads++;
	return core_offload_stopping ? 0 : core_offload_nthreads;
}

int
core_offload_run(struct event_base *base, void (*work)(void *arg),
                 void (*done)(void *arg), void *arg)
{
	struct core_offload_job *job;

	if (base == NULL || (job = calloc(1, sizeof(*job))) == NULL)
		return -1;
	if ((job->ev = event_new(base, -1, 0, core_offload_deliver, job)) ==
	    NULL) {
		free(job);
		return -1;
	}
	/* The job belongs to a request already accepted (core/loop.h). */
	(void)event_priority_set(job->ev, CORE_LOOP_PRIORITY_ONGOING);
	job->work = work;
	job->done = done;
	job->arg = arg;
	job->base = base;
	pthread_mutex_lock(&core_offload_lock);
	if (core_offload_start() == 0) {
		pthread_mutex_unlock(&core_offload_lock);
		event_free(job->ev);
		free(job);
		return -1;
	}
	*core_offload_tail = job;
	core_offload_tail = &job->next;
	core_offload_pending_add(base, 1);
	pthread_cond_signal(&core_offload_work_cond);
	pthread_mutex_unlock(&core_offload_lock);
	return 0;
}

void
core_offload_drain(struct event_base *base)
{
	struct timespec until;
	unsigned long left;
	int i;

	for (;;) {
		left = 0;
		pthread_mutex_lock(&core_offload_lock);
		for (i = 0; i < CORE_OFFLOAD_BASES; i++)
			if (core_offload_pending[i].base == base)
				left = core_offload_pending[i].count;
		if (left > 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 50 * 1000 * 1000;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(
			    &core_offload_progress_cond, &core_offload_lock,
			    &until);
		}
		pthread_mutex_unlock(&core_offload_lock);
		if (left == 0)
			break;
		/* Runs the completions that became active meanwhile. */
		(void)event_base_loop(base, EVLOOP_NONBLOCK);
	}
}

void
core_offload_stop(void)
{
	int i, n;

	pthread_mutex_lock(&core_offload_lock);
	core_offload_stopping = 1;
	n = core_offload_nthreads;
	pthread_cond_broadcast(&core_offload_work_cond);
	pthread_mutex_unlock(&core_offload_lock);
	for (i = 0; i < n; i++)
		pthread_join(core_offload_threads[i], NULL);
	pthread_mutex_lock(&core_offload_lock);
	core_offload_nthreads = 0;
	core_offload_stopping = 0;
	pthread_mutex_unlock(&core_offload_lock);
}
