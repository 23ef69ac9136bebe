/*
 * backends.c: the front end's and the programs' way to the CA backends of
 * a configuration, so that nothing above ra touches a backend instance.
 */
#include "ra/backends.h"
#include "core/log.h"
#include "ra/log.h"

void
ra_backends_start(const struct ra_config *config, struct event_base *base)
{
	size_t i;

	for (i = 0; i < config->nlabels; i++)
		ca_instance_loop_start(config->labels[i]->ca, base);
}

void
ra_backends_stop(const struct ra_config *config)
{
	size_t i;

	for (i = 0; i < config->nlabels; i++)
		ca_instance_loop_stop(config->labels[i]->ca);
}

/* What ra_backends_own_certs hands each certificate on with. */
struct ra_backends_own {
	const struct ra_label *label;
	ra_own_cert_fn fn;
	void *arg;
};

/* ca_own_cert_fn: adds the label and backend name. */
static void
ra_backends_own_cert(const char *role, const X509 *cert, void *arg)
{
	const struct ra_backends_own *own = arg;

	own->fn(own->label, ca_instance_backend_name(own->label->ca), role,
	        cert, own->arg);
}

void
ra_backends_own_certs(const struct ra_config *config, ra_own_cert_fn fn,
                      void *arg)
{
	size_t i;

	for (i = 0; i < config->nlabels; i++) {
		struct ra_backends_own own = {config->labels[i], fn, arg};

		if (config->labels[i]->ca != NULL)
			ca_instance_own_certs(config->labels[i]->ca,
			                      ra_backends_own_cert, &own);
	}
}

/* ca_log_fn: a backend's line, with its request's context. */
static void
ra_backends_log(const struct ca_call *call, enum core_log_level level,
                const char *component, const char *hint, const char *message)
{
	const struct ra_log_context *ctx =
	    call != NULL ? call->log_context : NULL;

	ra_log(level, component, ctx, hint, "%s", message);
}

void
ra_backends_log_to_error_log(void)
{
	ca_set_log_hook(ra_backends_log);
}

const char *
ra_label_backend_name(const struct ra_label *label)
{
	return ca_instance_backend_name(label->ca);
}

void
ra_backends_loop_shutdown(struct event_base *base)
{
	ca_loop_shutdown(base);
}
