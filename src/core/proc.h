/*
 * proc.h: asynchronous child processes on a worker's event_base, for the
 * external authorizer (ra/authorizer.c) and the certmonger-helper backend.
 * The child gets an explicit environment, its stdin written from the loop,
 * stdout and stderr read through pipes up to a cap, and a timeout after
 * which it is SIGKILLed.  It is reaped through a pidfd event, never by a
 * blocking wait, so no zombie outlives it.  The child leads its own process
 * group, so a timeout also kills what a shell-script child started, and so
 * does its exit: what it left running in its group is killed when it is
 * reaped.  A loop that ends kills and reaps its children
 * (core_proc_shutdown).  It depends on nothing of estrad, so every layer
 * may use it: the helper backend and the external authorizer do.
 */
#ifndef ESTRAD_CORE_PROC_H
#define ESTRAD_CORE_PROC_H

#include <stddef.h>

#include <event2/event.h>

/* What to run.  Everything is borrowed for the core_proc_start call only. */
struct core_proc_spec {
	char *const *argv; /* argv[0] is an absolute path */
	char *const *envp; /* the whole environment, NULL-terminated */
	const void *input; /* stdin bytes (copied), may be NULL */
	size_t input_len;
	unsigned int timeout_ms; /* then SIGKILL; 0 means 30 s */
	size_t max_output;       /* bytes kept of stdout and of stderr each */
};

/* How a child ended. */
struct core_proc_result {
	int exited;     /* it called exit: status is the exit code */
	int status;     /* exit code, or the signal that ended it */
	int timed_out;  /* estrad killed it at the timeout */
	int exec_errno; /* it could not be started: errno of exec */
	long ms;        /* run time */
	/* What it wrote, NUL-terminated, at most max_output bytes each;
	 * borrowed until the done callback returns. */
	const char *out;
	size_t out_len;
	const char *err;
	size_t err_len;
	int truncated; /* more was written than max_output */
};

struct core_proc;

/*
 * Called once from the loop when the child has been reaped.  proc is
 * freed after it returns.
 */
typedef void (*core_proc_done_fn)(struct core_proc *proc,
                                  const struct core_proc_result *res,
                                  void *arg);

/*
 * Starts spec->argv on base.  Returns the running process (owned by the
 * loop until done_fn has run, or until core_proc_cancel), or NULL with
 * "WHAT: (errno: text)" in err (size errlen); done_fn is then never
 * called.  done_fn always runs from the loop, never inside this call, even
 * when exec fails.
 */
struct core_proc *core_proc_start(struct event_base *base,
                                  const struct core_proc_spec *spec,
                                  core_proc_done_fn done_fn, void *arg,
                                  char *err, size_t errlen);

/*
 * Kills the child and its process group (SIGKILL) and makes sure done_fn
 * is never called; the child is still reaped from the loop and proc freed
 * then.  Loop thread only.
 */
void core_proc_cancel(struct core_proc *proc);

/*
 * Kills the child and its process group (SIGKILL), reaps it with a
 * blocking wait and frees proc; done_fn is never called.  The wait is
 * short: nothing outlives SIGKILL for long.  For shutdown paths (a
 * backend's stop hook), where the loop will not run again to reap the
 * child through its pidfd.  Loop thread only.
 */
void core_proc_kill(struct core_proc *proc);

/*
 * Kills (with their process groups) and reaps every child started on base
 * and not yet reaped, and frees them; their done_fn is never called.  For
 * the end of a loop (ca_loop_shutdown), on its thread, once it no longer
 * runs: no helper outlives the worker that started it.
 */
void core_proc_shutdown(struct event_base *base);

/* Returns the child's pid, for logs. */
long core_proc_pid(const struct core_proc *proc);

#endif
