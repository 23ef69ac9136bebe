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

#include "ca_plugins/ca.h"
#include "ra/offload.h"

/* How much nicer than the workers the helper threads run (Linux sets
 * the nice value per thread): the loops, which serve every connection,
 * get the cores first; a burst of helper work waits for idle time. */
#define RA_OFFLOAD_NICE 5

/* Loops with jobs not yet delivered, for ra_offload_drain(). */
#define RA_OFFLOAD_BASES 64

struct ra_offload_job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct event_base *base;
	struct event *ev; /* on base; made active when work has run */
	struct ra_offload_job *next;
};

static pthread_mutex_t ra_offload_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ra_offload_work_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ra_offload_progress_cond = PTHREAD_COND_INITIALIZER;
static struct ra_offload_job *ra_offload_head;
static struct ra_offload_job **ra_offload_tail = &ra_offload_head;
static pthread_t ra_offload_threads[RA_OFFLOAD_THREADS];
static int ra_offload_nthreads;
static int ra_offload_stopping;
static struct {
	struct event_base *base;
	unsigned long count;
} ra_offload_pending[RA_OFFLOAD_BASES];

/* Adds delta to base's count of undelivered jobs; ra_offload_lock held.
 * A loop beyond the table is not counted (its drain cannot wait). */
static void
ra_offload_pending_add(struct event_base *base, int delta)
{
	int i, free_slot = -1;

	for (i = 0; i < RA_OFFLOAD_BASES; i++) {
		if (ra_offload_pending[i].base == base)
			break;
		if (ra_offload_pending[i].base == NULL && free_slot < 0)
			free_slot = i;
	}
	if (i == RA_OFFLOAD_BASES) {
		if (free_slot < 0 || delta < 0)
			return;
		i = free_slot;
		ra_offload_pending[i].base = base;
	}
	if (delta < 0 && ra_offload_pending[i].count > 0)
		ra_offload_pending[i].count--;
	else if (delta > 0)
		ra_offload_pending[i].count++;
	if (ra_offload_pending[i].count == 0)
		ra_offload_pending[i].base = NULL;
}

void
ra_offload_expect(struct event_base *base)
{
	pthread_mutex_lock(&ra_offload_lock);
	ra_offload_pending_add(base, 1);
	pthread_mutex_unlock(&ra_offload_lock);
}

void
ra_offload_delivered(struct event_base *base)
{
	pthread_mutex_lock(&ra_offload_lock);
	ra_offload_pending_add(base, -1);
	pthread_cond_broadcast(&ra_offload_progress_cond);
	pthread_mutex_unlock(&ra_offload_lock);
}

/* Runs on the submitter's loop. */
static void
ra_offload_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct ra_offload_job *job = arg;
	void (*done)(void *) = job->done;
	void *done_arg = job->arg;

	(void)fd;
	(void)what;
	ra_offload_delivered(job->base);
	event_free(job->ev);
	free(job);
	done(done_arg);
}

static void *
ra_offload_main(void *unused)
{
	struct ra_offload_job *job;

	(void)unused;
	/* Best effort: a thread that cannot be made nicer still works. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	                  getpriority(PRIO_PROCESS, 0) + RA_OFFLOAD_NICE);
	for (;;) {
		pthread_mutex_lock(&ra_offload_lock);
		while (ra_offload_head == NULL && !ra_offload_stopping)
			pthread_cond_wait(&ra_offload_work_cond,
			                  &ra_offload_lock);
		if ((job = ra_offload_head) != NULL &&
		    (ra_offload_head = job->next) == NULL)
			ra_offload_tail = &ra_offload_head;
		pthread_mutex_unlock(&ra_offload_lock);
		if (job == NULL)
			break;
		job->work(job->arg);
		/* The submitter frees the job as soon as it is active. */
		event_active(job->ev, EV_TIMEOUT, 1);
	}
	return NULL;
}

/* Starts the threads at the first job; ra_offload_lock held.  Returns the
 * number running. */
static int
ra_offload_start(void)
{
	while (ra_offload_nthreads < RA_OFFLOAD_THREADS &&
	       !ra_offload_stopping &&
	       pthread_create(&ra_offload_threads[ra_offload_nthreads], NULL,
	                      ra_offload_main, NULL) == 0)
		ra_offload_nthreads++;
	return ra_offload_stopping ? 0 : ra_offload_nthreads;
}

int
ra_offload_run(struct event_base *base, void (*work)(void *arg),
               void (*done)(void *arg), void *arg)
{
	struct ra_offload_job *job;

	if (base == NULL || (job = calloc(1, sizeof(*job))) == NULL)
		return -1;
	if ((job->ev = event_new(base, -1, 0, ra_offload_deliver, job)) ==
	    NULL) {
		free(job);
		return -1;
	}
	/* The job belongs to a request already accepted (ca.h). */
	(void)event_priority_set(job->ev, CA_LOOP_PRIORITY_ONGOING);
	job->work = work;
	job->done = done;
	job->arg = arg;
	job->base = base;
	pthread_mutex_lock(&ra_offload_lock);
	if (ra_offload_start() == 0) {
		pthread_mutex_unlock(&ra_offload_lock);
		event_free(job->ev);
		free(job);
		return -1;
	}
	*ra_offload_tail = job;
	ra_offload_tail = &job->next;
	ra_offload_pending_add(base, 1);
	pthread_cond_signal(&ra_offload_work_cond);
	pthread_mutex_unlock(&ra_offload_lock);
	return 0;
}

void
ra_offload_drain(struct event_base *base)
{
	struct timespec until;
	unsigned long left;
	int i;

	for (;;) {
		left = 0;
		pthread_mutex_lock(&ra_offload_lock);
		for (i = 0; i < RA_OFFLOAD_BASES; i++)
			if (ra_offload_pending[i].base == base)
				left = ra_offload_pending[i].count;
		if (left > 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 50 * 1000 * 1000;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(&ra_offload_progress_cond,
			                             &ra_offload_lock, &until);
		}
		pthread_mutex_unlock(&ra_offload_lock);
		if (left == 0)
			break;
		/* Runs the completions that became active meanwhile. */
		(void)event_base_loop(base, EVLOOP_NONBLOCK);
	}
}

void
ra_offload_stop(void)
{
	int i, n;

	pthread_mutex_lock(&ra_offload_lock);
	ra_offload_stopping = 1;
	n = ra_offload_nthreads;
	pthread_cond_broadcast(&ra_offload_work_cond);
	pthread_mutex_unlock(&ra_offload_lock);
	for (i = 0; i < n; i++)
		pthread_join(ra_offload_threads[i], NULL);
	pthread_mutex_lock(&ra_offload_lock);
	ra_offload_nthreads = 0;
	ra_offload_stopping = 0;
	pthread_mutex_unlock(&ra_offload_lock);
}
