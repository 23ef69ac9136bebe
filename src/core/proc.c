/*
 * proc.c: asynchronous child processes (see proc.h).  posix_spawn(3)
 * starts the child (glibc reports a failed exec as its return value, so
 * "not found" comes back at once), pidfd_open(2) gives a descriptor that
 * becomes readable when the child exits, and three non-blocking pipes
 * carry stdin, stdout and stderr through libevent events.
 */
#include <sys/pidfd.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/proc.h"

/* Default timeout when the spec gives none. */
#define CORE_PROC_TIMEOUT_MS 30000

/* Hard upper bound on the capture of one stream. */
#define CORE_PROC_OUTPUT_MAX (1024 * 1024)

struct core_proc_stream {
	int fd;
	struct event *ev;
	char *buf; /* max_output + 1 bytes */
	size_t len;
};

struct core_proc {
	struct event_base *base;
	pid_t pid;
	int pidfd;
	struct event *exit_ev;
	struct event *timer;
	struct event *done_ev; /* deferred completion for exec failures */
	int in_fd;
	struct event *in_ev;
	unsigned char *input; /* owned copy */
	size_t input_len, input_off;
	struct core_proc_stream out, err;
	size_t max_output;
	int truncated;
	int timed_out;
	int cancelled;
	int exec_errno;
	int wstatus;
	struct timeval started;
	core_proc_done_fn done_fn;
	void *arg;
	struct core_proc *prev, *next; /* core_proc_all, under core_proc_lock */
	int listed;
};

/*
 * Every process started and not yet freed, of every loop, so that a loop
 * that ends (estrad stops) can kill and reap its own: nothing started for
 * a request outlives estrad.
 */
static pthread_mutex_t core_proc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct core_proc *core_proc_all;

static void
core_proc_list(struct core_proc *proc)
{
	pthread_mutex_lock(&core_proc_lock);
	proc->prev = NULL;
	proc->next = core_proc_all;
	if (core_proc_all != NULL)
		core_proc_all->prev = proc;
	core_proc_all = proc;
	proc->listed = 1;
	pthread_mutex_unlock(&core_proc_lock);
}

/* Takes proc off the list; the caller holds core_proc_lock. */
static void
core_proc_unlist_locked(struct core_proc *proc)
{
	if (!proc->listed)
		return;
	if (proc->prev != NULL)
		proc->prev->next = proc->next;
	else
		core_proc_all = proc->next;
	if (proc->next != NULL)
		proc->next->prev = proc->prev;
	proc->prev = proc->next = NULL;
	proc->listed = 0;
}

long
core_proc_pid(const struct core_proc *proc)
{
	return proc != NULL ? (long)proc->pid : -1;
}

static void
core_proc_close_stream(struct core_proc_stream *s)
{
	if (s->ev != NULL) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

static void
core_proc_close_input(struct core_proc *proc)
{
	if (proc->in_ev != NULL) {
		event_free(proc->in_ev);
		proc->in_ev = NULL;
	}
	if (proc->in_fd >= 0) {
		close(proc->in_fd);
		proc->in_fd = -1;
	}
}

static void
core_proc_free(struct core_proc *proc)
{
	if (proc == NULL)
		return;
	if (proc->listed) {
		pthread_mutex_lock(&core_proc_lock);
		core_proc_unlist_locked(proc);
		pthread_mutex_unlock(&core_proc_lock);
	}
	core_proc_close_input(proc);
	core_proc_close_stream(&proc->out);
	core_proc_close_stream(&proc->err);
	if (proc->exit_ev != NULL)
		event_free(proc->exit_ev);
	if (proc->timer != NULL)
		event_free(proc->timer);
	if (proc->done_ev != NULL)
		event_free(proc->done_ev);
	if (proc->pidfd >= 0)
		close(proc->pidfd);
	free(proc->input);
	free(proc->out.buf);
	free(proc->err.buf);
	free(proc);
}

/* Reads what s has without blocking; past the cap, bytes are discarded. */
static int
core_proc_drain(struct core_proc *proc, struct core_proc_stream *s)
{
	char tmp[4096];
	ssize_t n;
	size_t room, take;

	for (;;) {
		n = read(s->fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1; /* end of file or error: stop watching */
		room = proc->max_output - s->len;
		take = (size_t)n < room ? (size_t)n : room;
		memcpy(s->buf + s->len, tmp, take);
		s->len += take;
		s->buf[s->len] = '\0';
		if (take < (size_t)n)
			proc->truncated = 1;
	}
}

static void
core_proc_on_output(evutil_socket_t fd, short what, void *arg)
{
	struct core_proc *proc = arg;
	struct core_proc_stream *s =
	    fd == proc->out.fd ? &proc->out : &proc->err;

	(void)what;
	if (core_proc_drain(proc, s) != 0)
		core_proc_close_stream(s);
}

static void
core_proc_on_input(evutil_socket_t fd, short what, void *arg)
{
	struct core_proc *proc = arg;
	ssize_t n;

	(void)what;
	while (proc->input_off < proc->input_len) {
		n = write(fd, proc->input + proc->input_off,
		          proc->input_len - proc->input_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
			break; /* EPIPE: the child does not read its input */
		proc->input_off += (size_t)n;
	}
	/* Closing stdin tells the child the input is complete. */
	core_proc_close_input(proc);
}

static void
core_proc_finish(struct core_proc *proc)
{
	struct core_proc_result res;
	struct timeval now;

	memset(&res, 0, sizeof(res));
	gettimeofday(&now, NULL);
	res.ms = (now.tv_sec - proc->started.tv_sec) * 1000L +
	         (now.tv_usec - proc->started.tv_usec) / 1000L;
	res.exec_errno = proc->exec_errno;
	res.timed_out = proc->timed_out;
	if (proc->exec_errno == 0) {
		if (WIFEXITED(proc->wstatus)) {
			res.exited = 1;
			res.status = WEXITSTATUS(proc->wstatus);
		} else if (WIFSIGNALED(proc->wstatus))
			res.status = WTERMSIG(proc->wstatus);
	}
	res.out = proc->out.buf != NULL ? proc->out.buf : "";
	res.out_len = proc->out.len;
	res.err = proc->err.buf != NULL ? proc->err.buf : "";
	res.err_len = proc->err.len;
	res.truncated = proc->truncated;
	if (!proc->cancelled)
		proc->done_fn(proc, &res, proc->arg);
	core_proc_free(proc);
}

/* The pidfd is readable: the child exited; reap it and finish. */
static void
core_proc_on_exit(evutil_socket_t fd, short what, void *arg)
{
	struct core_proc *proc = arg;
	pid_t r;

	(void)fd;
	(void)what;
	/* The child has exited but is not reaped yet, so its pid, and with
	 * it the process group id, cannot have been reused: what it left
	 * running in its group (a script's background job) is killed now,
	 * since estrad ran it for one call only. */
	(void)kill(-proc->pid, SIGKILL);
	do
		r = waitpid(proc->pid, &proc->wstatus, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return; /* not yet: the event fires again */
	/* What the child wrote before it exited is in the pipes; a
	 * grandchild holding them open must not keep us waiting. */
	if (proc->out.fd >= 0)
		(void)core_proc_drain(proc, &proc->out);
	if (proc->err.fd >= 0)
		(void)core_proc_drain(proc, &proc->err);
	core_proc_finish(proc);
}

/*
 * Sends SIGKILL to the child and to its process group.  The child leads
 * the group (POSIX_SPAWN_SETPGROUP), and until it is reaped neither its
 * pid nor that group id can be reused, so the group signal cannot reach a
 * stranger; it ends what a shell script started (a sleep, a curl) instead
 * of leaving it running with our pipes open.
 */
static void
core_proc_kill_child(struct core_proc *proc)
{
	if (proc->pidfd < 0)
		return;
	if (proc->pid > 0)
		(void)kill(-proc->pid, SIGKILL);
	(void)pidfd_send_signal(proc->pidfd, SIGKILL, NULL, 0);
}

static void
core_proc_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct core_proc *proc = arg;

	(void)fd;
	(void)what;
	proc->timed_out = 1;
	core_proc_kill_child(proc);
}

static void
core_proc_on_exec_failed(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	core_proc_finish(arg);
}

void
core_proc_cancel(struct core_proc *proc)
{
	if (proc == NULL)
		return;
	proc->cancelled = 1;
	core_proc_kill_child(proc);
}

void
core_proc_kill(struct core_proc *proc)
{
	if (proc == NULL)
		return;
	if (proc->pidfd >= 0) {
		core_proc_kill_child(proc);
		while (waitpid(proc->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	core_proc_free(proc);
}

void
core_proc_shutdown(struct event_base *base)
{
	struct core_proc *proc;

	for (;;) {
		pthread_mutex_lock(&core_proc_lock);
		for (proc = core_proc_all; proc != NULL; proc = proc->next)
			if (proc->base == base)
				break;
		if (proc != NULL)
			core_proc_unlist_locked(proc);
		pthread_mutex_unlock(&core_proc_lock);
		if (proc == NULL)
			break;
		core_proc_kill(proc);
	}
}

/* Sets O_NONBLOCK on fd. */
static int
core_proc_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ? -1
	                                                                : 0;
}

struct core_proc *
core_proc_start(struct event_base *base, const struct core_proc_spec *spec,
                core_proc_done_fn done_fn, void *arg, char *err, size_t errlen)
{
	static const int defaults[] = {SIGPIPE, SIGHUP,  SIGINT,
	                               SIGTERM, SIGUSR1, SIGCHLD};
	int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct core_proc *proc = NULL, *rc = NULL;
	struct timeval tv;
	sigset_t set;
	int fa_init = 0, attr_init = 0, r;
	size_t i;

	if ((proc = calloc(1, sizeof(*proc))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	proc->base = base;
	proc->pid = -1;
	proc->pidfd = proc->in_fd = proc->out.fd = proc->err.fd = -1;
	proc->done_fn = done_fn;
	proc->arg = arg;
	proc->max_output =
	    spec->max_output > 0 && spec->max_output < CORE_PROC_OUTPUT_MAX
	        ? spec->max_output
	        : CORE_PROC_OUTPUT_MAX;
	gettimeofday(&proc->started, NULL);
	if ((proc->out.buf = calloc(1, proc->max_output + 1)) == NULL ||
	    (proc->err.buf = calloc(1, proc->max_output + 1)) == NULL ||
	    (spec->input_len > 0 &&
	     (proc->input = malloc(spec->input_len)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (spec->input_len > 0)
		memcpy(proc->input, spec->input, spec->input_len);
	proc->input_len = spec->input_len;
	/* Close-on-exec everywhere: only the dup2'd copies reach the
	 * child, and no other thread's spawn inherits these. */
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(errp, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: (%d: %s)", errno, strerror(errno));
		goto out;
	}
	if ((r = posix_spawn_file_actions_init(&fa)) != 0) {
		snprintf(err, errlen, "posix_spawn_file_actions_init: (%d: %s)",
		         r, strerror(r));
		goto out;
	}
	fa_init = 1;
	if ((r = posix_spawnattr_init(&attr)) != 0) {
		snprintf(err, errlen, "posix_spawnattr_init: (%d: %s)", r,
		         strerror(r));
		goto out;
	}
	attr_init = 1;
	/* The workers block the signals the main thread handles, and
	 * SIGPIPE is ignored: the child starts with neither. */
	sigemptyset(&set);
	posix_spawnattr_setsigmask(&attr, &set);
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		sigaddset(&set, defaults[i]);
	posix_spawnattr_setsigdefault(&attr, &set);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	                                    POSIX_SPAWN_SETSIGDEF |
	                                    POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	if (posix_spawn_file_actions_adddup2(&fa, in[0], 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, out[1], 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, errp[1], 2) != 0 ||
	    posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0) {
		snprintf(err, errlen,
		         "posix_spawn_file_actions: out of memory");
		goto out;
	}
	r = posix_spawn(&proc->pid, spec->argv[0], &fa, &attr, spec->argv,
	                spec->envp);
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	in[0] = out[1] = errp[1] = -1;
	proc->in_fd = in[1];
	proc->out.fd = out[0];
	proc->err.fd = errp[0];
	in[1] = out[0] = errp[0] = -1;
	if (r != 0) {
		/* Reported from the loop like any other ending. */
		proc->exec_errno = r;
		if ((proc->done_ev =
		         event_new(base, -1, 0, core_proc_on_exec_failed,
		                   proc)) == NULL) {
			snprintf(err, errlen, "%s: (%d: %s)", spec->argv[0], r,
			         strerror(r));
			goto out;
		}
		event_active(proc->done_ev, EV_TIMEOUT, 0);
		core_proc_list(proc);
		rc = proc;
		proc = NULL;
		goto out;
	}
	if ((proc->pidfd = pidfd_open(proc->pid, 0)) < 0) {
		snprintf(err, errlen, "pidfd_open: (%d: %s)", errno,
		         strerror(errno));
		kill(proc->pid, SIGKILL);
		/* Without a pidfd the child can only be reaped here; it was
		 * just killed, so this wait is short. */
		while (waitpid(proc->pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out;
	}
	if (core_proc_nonblock(proc->in_fd) != 0 ||
	    core_proc_nonblock(proc->out.fd) != 0 ||
	    core_proc_nonblock(proc->err.fd) != 0 ||
	    (proc->exit_ev = event_new(base, proc->pidfd, EV_READ | EV_PERSIST,
	                               core_proc_on_exit, proc)) == NULL ||
	    (proc->out.ev = event_new(base, proc->out.fd, EV_READ | EV_PERSIST,
	                              core_proc_on_output, proc)) == NULL ||
	    (proc->err.ev = event_new(base, proc->err.fd, EV_READ | EV_PERSIST,
	                              core_proc_on_output, proc)) == NULL ||
	    (proc->in_ev = event_new(base, proc->in_fd, EV_WRITE | EV_PERSIST,
	                             core_proc_on_input, proc)) == NULL ||
	    (proc->timer = evtimer_new(base, core_proc_on_timeout, proc)) ==
	        NULL) {
		snprintf(err, errlen, "out of memory");
		/* The events that exist are freed with proc; the child is
		 * killed and left to the pidfd: reap it here instead. */
		(void)pidfd_send_signal(proc->pidfd, SIGKILL, NULL, 0);
		while (waitpid(proc->pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out;
	}
	tv.tv_sec =
	    (spec->timeout_ms != 0 ? spec->timeout_ms : CORE_PROC_TIMEOUT_MS) /
	    1000;
	tv.tv_usec =
	    (spec->timeout_ms != 0 ? spec->timeout_ms : CORE_PROC_TIMEOUT_MS) %
	    1000 * 1000;
	event_add(proc->exit_ev, NULL);
	event_add(proc->out.ev, NULL);
	event_add(proc->err.ev, NULL);
	event_add(proc->timer, &tv);
	if (proc->input_len > 0)
		event_add(proc->in_ev, NULL);
	else
		core_proc_close_input(proc);
	core_proc_list(proc);
	rc = proc;
	proc = NULL;
out:
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
	for (i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	core_proc_free(proc);
	return rc;
}
