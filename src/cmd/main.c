/*
 * main.c: estrad's command line.
 *
 *   estrad -c FILE      serve in the foreground
 *   estrad -t -c FILE   check the configuration and exit 0 or 1
 *   estrad --doctor [--json] -c FILE
 *                       check what the first enrollment of every label
 *                       needs, one line per check; exit 0 or 1
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "cmd/doctor.h"
#include "core/log.h"
#include "core/offload.h"
#include "est/limits.h"
#include "est/listener.h"
#include "est/privilege.h"
#include "ra/auth_cert.h"
#include "ra/backends.h"
#include "ra/config.h"
#include "ra/log.h"
#include "ra/safedir.h"

#define ESTRAD_VERSION "0.1.0"

static void
estrad_usage(FILE *out)
{
	fprintf(out,
	        "usage: estrad [-t | --doctor [--json]] -c FILE\n"
	        "  -c, --config FILE  configuration file (JSON)\n"
	        "  -t, --test         check the configuration and exit\n"
	        "      --doctor       check files, certificates, clock and\n"
	        "                     every label's CA; ok/warn/FAIL lines\n"
	        "      --json         --doctor prints one JSON array\n"
	        "  -V, --version      print the version\n"
	        "  -h, --help         this text\n");
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"test", no_argument, NULL, 't'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {"doctor", no_argument, NULL, 'D'},
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	struct ra_config *config = NULL;
	struct ra_trust *trust = NULL;
	struct est_server *server = NULL;
	const char *path = NULL;
	char err[1024] = "";
	int opt, test = 0, doctor = 0, json = 0, rc = 1;
	SSL_CTX *ctx;

	while ((opt = getopt_long(argc, argv, "c:tVh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'D':
			doctor = 1;
			break;
		case 'J':
			json = 1;
			break;
		case 'V':
			printf("estrad %s\n", ESTRAD_VERSION);
			return 0;
		case 'h':
			estrad_usage(stdout);
			return 0;
		default:
			estrad_usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc || (json && !doctor) ||
	    (doctor && test)) {
		estrad_usage(stderr);
		return 2;
	}
	if (doctor)
		return est_doctor_run(path, json, stdout);
	ra_backends_log_to_error_log();
	if ((config = ra_config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "estrad: %s\n", err);
		goto out;
	}
	if ((trust = ra_trust_new(config->tls.explicit_ca,
	                          config->tls.implicit_ca, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "estrad: %s: tls: %s\n", path, err);
		goto out;
	}
	if (test) {
		if ((ctx = est_listener_tls_context(config, err,
		                                    sizeof(err))) == NULL) {
			fprintf(stderr, "estrad: %s: tls: %s\n", path, err);
			goto out;
		}
		SSL_CTX_free(ctx);
		printf("estrad: configuration %s OK (%zu labels, default "
		       "\"%s\")\n",
		       path, config->nlabels, config->default_label->name);
		rc = 0;
		goto out;
	}
	ra_log_set_dir_owner(ra_safedir_uid(config->user));
	if (ra_log_open(config->logs.error, config->logs.access,
	                config->logs.audit, config->logs.level, err,
	                sizeof(err)) != 0) {
		fprintf(stderr, "estrad: %s\n", err);
		goto out;
	}
	ra_log_capture_libevent();
	if (est_privilege_check(config, err, sizeof(err)) != 0) {
		ra_log(CORE_LOG_EMERG, "est.privilege", NULL, NULL,
		       "refusing to start: %s", err);
		fprintf(stderr, "estrad: refusing to start: %s\n", err);
		goto out;
	}
	/* Before privileges are dropped: root may raise the hard limit. */
	if (est_limits_nofile(config, config->workers, err, sizeof(err)) != 0) {
		ra_log(CORE_LOG_EMERG, "est.limits", NULL, NULL,
		       "refusing to start: %s", err);
		fprintf(stderr, "estrad: refusing to start: %s\n", err);
		goto out;
	}
	ra_config_log_warnings(config);
	if ((server = est_server_new(config, trust, err, sizeof(err))) ==
	    NULL) {
		ra_log(CORE_LOG_EMERG, "est.main", NULL, NULL,
		       "cannot start: %s", err);
		fprintf(stderr, "estrad: cannot start: %s\n", err);
		goto out;
	}
	/* Bound and logging: nothing more needs root. */
	if (est_privilege_drop(config, err, sizeof(err)) != 0) {
		ra_log(CORE_LOG_EMERG, "est.privilege", NULL, NULL,
		       "cannot start: %s", err);
		fprintf(stderr, "estrad: cannot start: %s\n", err);
		goto out;
	}
	ra_log(CORE_LOG_INFO, "est.main", NULL, NULL,
	       "estrad %s starting with %s", ESTRAD_VERSION, config->path);
	fprintf(stderr, "estrad: serving on %s (config %s, error log %s)\n",
	        config->listen[0], config->path, config->logs.error);
	if (est_server_run(server) == 0)
		rc = 0;
	ra_log(CORE_LOG_INFO, "est.main", NULL, NULL, "estrad stopped");
out:
	est_server_free(server);
	/* Helper threads (crypt(3)) are idle once the workers are gone. */
	core_offload_stop();
	ra_trust_free(trust);
	ra_config_free(config);
	ra_log_close();
	return rc;
}
