/*
 * ca.c: the backend registry, backend instances, and the call life cycle
 * shared by every CA backend: deferred completion, logging through ra's
 * hook, and OpenSSL error draining.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/http.h"
#include "core/error.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/proc.h"

/* Every backend estrad is built with, in the order error messages list them. */
static const struct ca_backend *const ca_backends[] = {
    &ca_local_backend,
    &ca_certsrv_backend,
    &ca_dogtag_backend,
    &ca_helper_backend,
};

static ca_log_fn ca_log_hook;

const char *
ca_outcome_name(enum ca_outcome outcome)
{
	static const char *const names[CA_OUTCOME__MAX] = {
	    "ISSUED",        "PENDING",     "REJECTED",  "UNREACHABLE",
	    "MISCONFIGURED", "UNSUPPORTED", "CANCELLED",
	};

	if ((unsigned int)outcome >= CA_OUTCOME__MAX)
		return "UNKNOWN";
	return names[outcome];
}

const char *
ca_operation_name(enum ca_operation op)
{
	static const char *const names[CA_OPERATION__MAX] = {
	    "enroll", "reenroll", "poll", "cacerts", "health",
	};

	if ((unsigned int)op >= CA_OPERATION__MAX)
		return "unknown";
	return names[op];
}

void
ca_set_log_hook(ca_log_fn hook)
{
	ca_log_hook = hook;
}

void
ca_log(const struct ca_call *call, enum core_log_level level,
       const char *component, const char *hint, const char *fmt, ...)
{
	char message[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (ca_log_hook != NULL)
		ca_log_hook(call, level, component, hint, message);
	else
		fprintf(stderr, "%s: %s\n", component, message);
}

struct ca_call *
ca_call_new(void)
{
	return calloc(1, sizeof(struct ca_call));
}

void
ca_call_free(struct ca_call *call)
{
	if (call == NULL)
		return;
	if (call->done_event != NULL)
		event_free(call->done_event);
	sk_X509_pop_free(call->result.chain, X509_free);
	free(call);
}

/*
 * Runs the completion callback from the loop, so that a backend that answers
 * at once (the local CA) still completes after its starting function
 * returned, like every network backend.
 */
static void
ca_call_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct ca_call *call = arg;

	(void)fd;
	(void)what;
	call->done_fn(call, call->done_arg);
}

void
ca_call_done(struct ca_call *call)
{
	ca_call_done_after(call, 0);
}

void
ca_call_done_after(struct ca_call *call, unsigned int delay_ms)
{
	const struct timeval when = {(time_t)(delay_ms / 1000),
	                             (suseconds_t)(delay_ms % 1000) * 1000};

	if (++call->done_count > 1) {
		ca_log(call, CORE_LOG_ALERT, "ca.call", NULL,
		       "call completed twice: backend bug, second completion "
		       "ignored, op: %s",
		       ca_operation_name(call->op));
#ifndef NDEBUG
		abort();
#endif
		return;
	}
	if (call->done_event == NULL &&
	    (call->done_event =
	         evtimer_new(call->base, ca_call_deliver, call)) != NULL)
		(void)event_priority_set(call->done_event,
		                         CORE_LOOP_PRIORITY_ONGOING);
	if (call->done_event == NULL ||
	    evtimer_add(call->done_event, &when) != 0) {
		/* Without an event the loop cannot run the callback later;
		 * running it now is the only way to not lose the request. */
		ca_log(call, CORE_LOG_ALERT, "ca.call", NULL,
		       "cannot schedule completion: out of memory");
		call->done_fn(call, call->done_arg);
	}
}

void
ca_call_fail(struct ca_call *call, enum ca_outcome outcome, const char *hint,
             const char *fmt, ...)
{
	va_list ap;

	call->result.outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(call->result.cause, sizeof(call->result.cause), fmt, ap);
	va_end(ap);
	if (hint != NULL)
		snprintf(call->result.hint, sizeof(call->result.hint), "%s",
		         hint);
	ca_call_done(call);
}

void
ca_loop_shutdown(struct event_base *base)
{
	ca_http_shutdown(base);
	core_proc_shutdown(base);
}

const struct ca_backend *
ca_backend_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ca_backends) / sizeof(ca_backends[0]); i++)
		if (strcmp(ca_backends[i]->name, name) == 0)
			return ca_backends[i];
	return NULL;
}

const char *
ca_backend_names(void)
{
	static char names[256];
	size_t i, used = 0;

	if (names[0] != '\0')
		return names;
	for (i = 0; i < sizeof(ca_backends) / sizeof(ca_backends[0]); i++) {
		int n = snprintf(names + used, sizeof(names) - used, "%s%s",
		                 i > 0 ? ", " : "", ca_backends[i]->name);
		if (n < 0 || (size_t)n >= sizeof(names) - used)
			break;
		used += (size_t)n;
	}
	return names;
}

struct ca_instance {
	const struct ca_backend *backend;
	void *priv; /* backend->priv_size bytes, zeroed; owned */
};

struct ca_instance *
ca_instance_new(const json_t *conf, const char *conf_dir, struct core_err *err)
{
	struct ca_instance *inst = NULL, *rc = NULL;
	const struct ca_backend *backend;
	const char *name;

	name = json_string_value(json_object_get(conf, "backend"));
	if (name == NULL) {
		core_err_set(err, "backend",
		             "missing string \"backend\" (one "
		             "of: %s)",
		             ca_backend_names());
		goto out;
	}
	if ((backend = ca_backend_find(name)) == NULL) {
		core_err_set(err, "backend",
		             "unknown backend \"%s\" (one of: "
		             "%s)",
		             name, ca_backend_names());
		goto out;
	}
	if ((inst = calloc(1, sizeof(*inst))) == NULL ||
	    (inst->priv = calloc(1, backend->priv_size > 0 ? backend->priv_size
	                                                   : 1)) == NULL) {
		core_err_set(err, "backend", "out of memory");
		goto out;
	}
	inst->backend = backend;
	if (backend->configure(inst->priv, conf, conf_dir, err) != 0)
		goto out;
	rc = inst;
	inst = NULL;
out:
	ca_instance_free(inst);
	return rc;
}

void
ca_instance_free(struct ca_instance *inst)
{
	if (inst == NULL)
		return;
	if (inst->priv != NULL && inst->backend != NULL &&
	    inst->backend->unconfigure != NULL)
		inst->backend->unconfigure(inst->priv);
	free(inst->priv);
	free(inst);
}

void
ca_instance_start(struct ca_instance *inst, struct ca_call *call,
                  ca_call_done_fn done_fn, void *arg)
{
	const struct ca_backend *b = inst->backend;
	void (*op)(void *, struct ca_call *) = NULL;

	call->done_fn = done_fn;
	call->done_arg = arg;
	switch (call->op) {
	case CA_OP_ENROLL:
		if (b->caps & CA_CAP_ENROLL)
			op = b->enroll;
		break;
	case CA_OP_REENROLL:
		if (b->caps & CA_CAP_REENROLL)
			op = b->enroll;
		break;
	case CA_OP_POLL:
		if (b->caps & CA_CAP_POLL)
			op = b->poll;
		break;
	case CA_OP_CACERTS:
		if (b->caps & CA_CAP_CACERTS)
			op = b->cacerts;
		break;
	case CA_OP_HEALTH:
		if (b->caps & CA_CAP_HEALTH)
			op = b->health;
		break;
	default:
		break;
	}
	if (op == NULL) {
		ca_call_fail(call, CA_UNSUPPORTED, NULL,
		             "%s not supported by backend %s",
		             ca_operation_name(call->op), b->name);
		return;
	}
	op(inst->priv, call);
}

const char *
ca_instance_backend_name(const struct ca_instance *inst)
{
	return inst->backend->name;
}

unsigned int
ca_instance_caps(const struct ca_instance *inst)
{
	return inst->backend->caps;
}

void
ca_instance_loop_start(struct ca_instance *inst, struct event_base *base)
{
	if (inst->backend->start != NULL)
		inst->backend->start(inst->priv, base);
}

void
ca_instance_loop_stop(struct ca_instance *inst)
{
	if (inst->backend->stop != NULL)
		inst->backend->stop(inst->priv);
}

int
ca_instance_cancel(struct ca_instance *inst, struct ca_call *call)
{
	if (inst->backend->cancel == NULL)
		return -1;
	inst->backend->cancel(inst->priv, call);
	return 0;
}

void
ca_instance_own_certs(const struct ca_instance *inst, ca_own_cert_fn fn,
                      void *arg)
{
	if (inst->backend->own_certs != NULL)
		inst->backend->own_certs(inst->priv, fn, arg);
}
