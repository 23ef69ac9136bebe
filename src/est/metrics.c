/*
 * metrics.c: counters kept in small tables under one mutex and rendered in
 * the Prometheus text exposition format (version 0.0.4).  The tables are
 * bounded: a series beyond EST_METRICS_MAX_SERIES is folded into the
 * estrad_metrics_series_dropped_total counter instead of growing memory,
 * since label values such as a CA label name come from the request path.
 */
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/time.h"
#include "est/metrics.h"
#include "ra/auth_throttle.h"
#include "ra/backends.h"

/* Upper bound of series of every labelled counter family together. */
#define EST_METRICS_MAX_SERIES 2048
/* Upper bound of backends with a latency histogram or a readiness entry. */
#define EST_METRICS_MAX_BACKENDS 128
/* Bytes of one label value; longer values are cut. */
#define EST_METRICS_VALUE_MAX 96

/* The labelled counter families. */
enum est_metrics_family {
	EST_M_REQUESTS,    /* op, label, status */
	EST_M_ENROLLMENTS, /* backend, outcome */
	EST_M_BACKEND_ERR, /* backend, cause */
	EST_M_TLS_FAIL,    /* reason */
	EST_M_RELOADS,     /* result */
	EST_M__MAX
};

static const struct {
	const char *name;
	const char *help;
	int nlabels;
	const char *labels[3];
} est_metrics_families[EST_M__MAX] = {
    {"estrad_requests_total",
     "EST requests answered, by operation, CA label and HTTP status.",
     3,
     {"op", "label", "status"}},
    {"estrad_enrollments_total",
     "Enrollments (simpleenroll, simplereenroll) by backend and outcome.",
     2,
     {"backend", "outcome"}},
    {"estrad_backend_errors_total",
     "CA calls that neither issued nor pended, by backend and cause.",
     2,
     {"backend", "cause"}},
    {"estrad_tls_handshake_failures_total",
     "TLS handshakes that failed, by the alert sent or received.",
     1,
     {"reason"}},
    {"estrad_config_reloads_total",
     "SIGHUP configuration reloads, by result.",
     1,
     {"result"}},
};

struct est_metrics_series {
	enum est_metrics_family family;
	char values[3][EST_METRICS_VALUE_MAX];
	unsigned long long count;
};

/* Upper bounds, in seconds, of the backend latency histogram. */
static const double est_metrics_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
#define EST_METRICS_NBUCKETS                                                   \
	(sizeof(est_metrics_buckets) / sizeof(est_metrics_buckets[0]))

struct est_metrics_histogram {
	char backend[EST_METRICS_VALUE_MAX];
	unsigned long long buckets[EST_METRICS_NBUCKETS];
	unsigned long long count;
	double sum;
};

/* What /readyz knows of one label's backend. */
struct est_metrics_reach {
	char label[EST_METRICS_VALUE_MAX];
	int unreachable;
	char cause[256];
};

static pthread_mutex_t est_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct est_metrics_series est_metrics_series[EST_METRICS_MAX_SERIES];
static size_t est_metrics_nseries;
static unsigned long long est_metrics_dropped;
static struct est_metrics_histogram
    est_metrics_histograms[EST_METRICS_MAX_BACKENDS];
static size_t est_metrics_nhistograms;
static struct est_metrics_reach est_metrics_reach[EST_METRICS_MAX_BACKENDS];
static size_t est_metrics_nreach;
static unsigned long long est_metrics_handshakes;
static long est_metrics_open;
static unsigned long est_metrics_generation = 1;
static time_t est_metrics_reload_time;

/* Adds one to the series of family with values; lock held. */
static void
est_metrics_inc_locked(enum est_metrics_family family, const char *v0,
                       const char *v1, const char *v2)
{
	const char *v[3] = {v0 != NULL ? v0 : "", v1 != NULL ? v1 : "",
	                    v2 != NULL ? v2 : ""};
	struct est_metrics_series *s;
	size_t i;
	int j, n = est_metrics_families[family].nlabels;

	for (i = 0; i < est_metrics_nseries; i++) {
		s = &est_metrics_series[i];
		if (s->family != family)
			continue;
		for (j = 0; j < n; j++)
			if (strncmp(s->values[j], v[j],
			            EST_METRICS_VALUE_MAX - 1) != 0)
				break;
		if (j == n) {
			s->count++;
			return;
		}
	}
	if (est_metrics_nseries == EST_METRICS_MAX_SERIES) {
		est_metrics_dropped++;
		return;
	}
	s = &est_metrics_series[est_metrics_nseries++];
	s->family = family;
	for (j = 0; j < n; j++)
		snprintf(s->values[j], sizeof(s->values[j]), "%s", v[j]);
	s->count = 1;
}

/*
 * Classifies a cause in the house shape for the backend
 * error counter: the curl code, the HTTP status or the helper's exit
 * status when the text names one, else the outcome.
 */
static void
est_metrics_cause_class(const char *cause, const char *outcome, char *buf,
                        size_t len)
{
	static const struct {
		const char *needle;
		const char *prefix;
	} kinds[] = {
	    {"curl ", "curl_"},
	    {"HTTP ", "http_"},
	    {"helper exit ", "helper_exit_"},
	};
	const char *p, *d;
	char *w;
	size_t i, n;

	for (i = 0; cause != NULL && i < sizeof(kinds) / sizeof(kinds[0]);
	     i++) {
		if ((p = strstr(cause, kinds[i].needle)) == NULL)
			continue;
		d = p + strlen(kinds[i].needle);
		for (n = 0; n < 4 && isdigit((unsigned char)d[n]); n++)
			;
		if (n == 0 || isdigit((unsigned char)d[n]))
			continue;
		snprintf(buf, len, "%s%.*s", kinds[i].prefix, (int)n, d);
		return;
	}
	snprintf(buf, len, "%s", outcome != NULL ? outcome : "unknown");
	for (w = buf; *w != '\0'; w++)
		*w = (char)tolower((unsigned char)*w);
}

/* Records whether label's backend answered; lock held. */
static void
est_metrics_reach_locked(const char *label, int unreachable, const char *cause)
{
	struct est_metrics_reach *r = NULL;
	size_t i;

	for (i = 0; i < est_metrics_nreach; i++)
		if (strcmp(est_metrics_reach[i].label, label) == 0) {
			r = &est_metrics_reach[i];
			break;
		}
	if (r == NULL) {
		if (!unreachable ||
		    est_metrics_nreach == EST_METRICS_MAX_BACKENDS)
			return;
		r = &est_metrics_reach[est_metrics_nreach++];
		snprintf(r->label, sizeof(r->label), "%s", label);
	}
	r->unreachable = unreachable;
	snprintf(r->cause, sizeof(r->cause), "%s",
	         cause != NULL && unreachable ? cause : "");
}

/* Adds one CA call's duration to backend's histogram; lock held. */
static void
est_metrics_observe_locked(const char *backend, long ms)
{
	struct est_metrics_histogram *h = NULL;
	double seconds = (double)ms / 1000.0;
	size_t i;

	for (i = 0; i < est_metrics_nhistograms; i++)
		if (strcmp(est_metrics_histograms[i].backend, backend) == 0) {
			h = &est_metrics_histograms[i];
			break;
		}
	if (h == NULL) {
		if (est_metrics_nhistograms == EST_METRICS_MAX_BACKENDS) {
			est_metrics_dropped++;
			return;
		}
		h = &est_metrics_histograms[est_metrics_nhistograms++];
		snprintf(h->backend, sizeof(h->backend), "%s", backend);
	}
	/* Buckets are stored cumulative, as they are exposed. */
	for (i = 0; i < EST_METRICS_NBUCKETS; i++)
		if (seconds <= est_metrics_buckets[i])
			h->buckets[i]++;
	h->count++;
	h->sum += seconds;
}

void
est_metrics_answer(const char *op, const char *label, int status,
                   const char *backend, const char *outcome, long ca_ms,
                   const char *cause)
{
	char code[16], klass[EST_METRICS_VALUE_MAX];
	int enroll = op != NULL && (strcmp(op, "simpleenroll") == 0 ||
	                            strcmp(op, "simplereenroll") == 0);
	int failed = outcome != NULL && strcmp(outcome, "ISSUED") != 0 &&
	             strcmp(outcome, "PENDING") != 0;

	snprintf(code, sizeof(code), "%d", status);
	if (backend == NULL)
		backend = "";
	pthread_mutex_lock(&est_metrics_lock);
	est_metrics_inc_locked(EST_M_REQUESTS, op, label, code);
	if (enroll && outcome != NULL) {
		char lower[32];
		size_t i;

		for (i = 0; outcome[i] != '\0' && i < sizeof(lower) - 1; i++)
			lower[i] = (char)tolower((unsigned char)outcome[i]);
		lower[i] = '\0';
		est_metrics_inc_locked(EST_M_ENROLLMENTS, backend, lower, NULL);
	}
	if (ca_ms >= 0) {
		est_metrics_observe_locked(backend, ca_ms);
		if (failed) {
			est_metrics_cause_class(cause, outcome, klass,
			                        sizeof(klass));
			est_metrics_inc_locked(EST_M_BACKEND_ERR, backend,
			                       klass, NULL);
		}
		if (label != NULL)
			est_metrics_reach_locked(
			    label,
			    outcome != NULL &&
			        strcmp(outcome, "UNREACHABLE") == 0,
			    cause);
	}
	pthread_mutex_unlock(&est_metrics_lock);
}

void
est_metrics_tls_handshake(void)
{
	__atomic_add_fetch(&est_metrics_handshakes, 1, __ATOMIC_RELAXED);
}

void
est_metrics_tls_failure(const char *reason)
{
	pthread_mutex_lock(&est_metrics_lock);
	est_metrics_inc_locked(EST_M_TLS_FAIL, reason, NULL, NULL);
	pthread_mutex_unlock(&est_metrics_lock);
}

void
est_metrics_connections(int delta)
{
	__atomic_add_fetch(&est_metrics_open, (long)delta, __ATOMIC_RELAXED);
}

void
est_metrics_reload(int ok, unsigned long generation)
{
	pthread_mutex_lock(&est_metrics_lock);
	/* Generation 1 is the start, not a reload: it only sets the time. */
	if (generation != 1)
		est_metrics_inc_locked(EST_M_RELOADS,
		                       ok ? "applied" : "refused", NULL, NULL);
	if (ok) {
		/* The new generation has new CA instances: what the old
		 * ones last saw says nothing about them. */
		est_metrics_nreach = 0;
		est_metrics_generation = generation;
		est_metrics_reload_time = time(NULL);
	}
	pthread_mutex_unlock(&est_metrics_lock);
}

int
est_metrics_ready(char *why, size_t whylen)
{
	size_t i;
	int rc = 1;

	pthread_mutex_lock(&est_metrics_lock);
	for (i = 0; i < est_metrics_nreach; i++)
		if (est_metrics_reach[i].unreachable) {
			snprintf(why, whylen,
			         "label %s: backend unreachable at its last "
			         "call: %s",
			         est_metrics_reach[i].label,
			         est_metrics_reach[i].cause);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&est_metrics_lock);
	return rc;
}

/*
 * Appends value as a label value: backslash, double quote and newline
 * escaped as the exposition format wants, control bytes replaced.
 */
static void
est_metrics_value(struct evbuffer *out, const char *value)
{
	const char *p;

	for (p = value; *p != '\0'; p++) {
		if (*p == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*p == '"')
			evbuffer_add(out, "\\\"", 2);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			evbuffer_add(out, "?", 1);
		else
			evbuffer_add(out, p, 1);
	}
}

/* Writes `estrad_backend_request_seconds_PART{backend="BACKEND`; the
 * caller ends the series. */
static void
est_metrics_histogram_series(struct evbuffer *out, const char *part,
                             const char *backend)
{
	evbuffer_add_printf(out, "estrad_backend_request_seconds_%s{backend=\"",
	                    part);
	est_metrics_value(out, backend);
}

static void
est_metrics_head(struct evbuffer *out, const char *name, const char *type,
                 const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	                    name, type);
}

/*
 * One estrad_certificate_not_after_seconds sample for cert: which says
 * what it is, subject is its subject; label and backend (NULL: left out)
 * name the CA label whose backend presents it, so that labels sharing
 * one agent certificate still make distinct series.
 */
static void
est_metrics_cert(struct evbuffer *out, const char *which, const X509 *cert,
                 const char *label, const char *backend)
{
	char subject[256];
	long long t;

	if (cert == NULL ||
	    (t = core_time_asn1_seconds(X509_get0_notAfter(cert))) < 0)
		return;
	X509_NAME_oneline(X509_get_subject_name(cert), subject,
	                  sizeof(subject));
	evbuffer_add(out, "estrad_certificate_not_after_seconds{which=\"",
	             sizeof("estrad_certificate_not_after_seconds{which=\"") -
	                 1);
	est_metrics_value(out, which);
	evbuffer_add(out, "\",subject=\"", sizeof("\",subject=\"") - 1);
	est_metrics_value(out, subject);
	if (label != NULL) {
		evbuffer_add(out, "\",label=\"", sizeof("\",label=\"") - 1);
		est_metrics_value(out, label);
	}
	if (backend != NULL) {
		evbuffer_add(out, "\",backend=\"", sizeof("\",backend=\"") - 1);
		est_metrics_value(out, backend);
	}
	evbuffer_add_printf(out, "\"} %lld\n", t);
}

/* ra_own_cert_fn: a certificate a label's backend presents to its CA
 * (the Dogtag agent certificate), one sample with the role as which. */
static void
est_metrics_own_cert(const struct ra_label *label, const char *backend,
                     const char *role, const X509 *cert, void *arg)
{
	est_metrics_cert(arg, role, cert, label->name, backend);
}

/* The certificates of a PEM file, each as one not_after sample. */
static void
est_metrics_cert_file(struct evbuffer *out, const char *which, const char *path)
{
	FILE *fp;
	X509 *cert;

	if (path == NULL || (fp = fopen(path, "r")) == NULL)
		return;
	while ((cert = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
		est_metrics_cert(out, which, cert, NULL, NULL);
		X509_free(cert);
	}
	fclose(fp);
	/* The end of the file leaves a "no start line" error queued. */
	ERR_clear_error();
}

/* Counts the records of the default pending store; -1 when unreadable. */
static long
est_metrics_pending(const char *dir)
{
	struct dirent *entry;
	DIR *d;
	long n = 0;
	size_t len;

	if (dir == NULL || (d = opendir(dir)) == NULL)
		return -1;
	while ((entry = readdir(d)) != NULL) {
		len = strlen(entry->d_name);
		if (len > 5 && strcmp(entry->d_name + len - 5, ".json") == 0)
			n++;
	}
	closedir(d);
	return n;
}

void
est_metrics_render(struct evbuffer *out, const struct ra_config *config,
                   SSL_CTX *ctx)
{
	STACK_OF(X509) *chain = NULL;
	size_t i, b;
	int f, j;
	long pending;

	pthread_mutex_lock(&est_metrics_lock);
	for (f = 0; f < EST_M__MAX; f++) {
		est_metrics_head(out, est_metrics_families[f].name, "counter",
		                 est_metrics_families[f].help);
		for (i = 0; i < est_metrics_nseries; i++) {
			const struct est_metrics_series *s =
			    &est_metrics_series[i];

			if ((int)s->family != f)
				continue;
			evbuffer_add_printf(out, "%s{",
			                    est_metrics_families[f].name);
			for (j = 0; j < est_metrics_families[f].nlabels; j++) {
				evbuffer_add_printf(
				    out, "%s%s=\"", j > 0 ? "," : "",
				    est_metrics_families[f].labels[j]);
				est_metrics_value(out, s->values[j]);
				evbuffer_add(out, "\"", 1);
			}
			evbuffer_add_printf(out, "} %llu\n", s->count);
		}
	}
	est_metrics_head(out, "estrad_backend_request_seconds", "histogram",
	                 "Duration of CA calls by backend, in seconds.");
	for (i = 0; i < est_metrics_nhistograms; i++) {
		const struct est_metrics_histogram *h =
		    &est_metrics_histograms[i];

		for (b = 0; b < EST_METRICS_NBUCKETS; b++) {
			est_metrics_histogram_series(out, "bucket", h->backend);
			evbuffer_add_printf(out, "\",le=\"%g\"} %llu\n",
			                    est_metrics_buckets[b],
			                    h->buckets[b]);
		}
		est_metrics_histogram_series(out, "bucket", h->backend);
		evbuffer_add_printf(out, "\",le=\"+Inf\"} %llu\n", h->count);
		est_metrics_histogram_series(out, "sum", h->backend);
		evbuffer_add_printf(out, "\"} %.6f\n", h->sum);
		est_metrics_histogram_series(out, "count", h->backend);
		evbuffer_add_printf(out, "\"} %llu\n", h->count);
	}
	est_metrics_head(out, "estrad_metrics_series_dropped_total", "counter",
	                 "Observations not kept because a table was full.");
	evbuffer_add_printf(out, "estrad_metrics_series_dropped_total %llu\n",
	                    est_metrics_dropped);
	est_metrics_head(out, "estrad_config_generation", "gauge",
	                 "Configuration generation in force (1 at start, one "
	                 "more per applied reload).");
	evbuffer_add_printf(out, "estrad_config_generation %lu\n",
	                    est_metrics_generation);
	est_metrics_head(out, "estrad_config_last_reload_seconds", "gauge",
	                 "When the configuration in force was applied.");
	evbuffer_add_printf(out, "estrad_config_last_reload_seconds %lld\n",
	                    (long long)est_metrics_reload_time);
	pthread_mutex_unlock(&est_metrics_lock);

	est_metrics_head(out, "estrad_tls_handshakes_total", "counter",
	                 "TLS handshakes completed.");
	evbuffer_add_printf(
	    out, "estrad_tls_handshakes_total %llu\n",
	    __atomic_load_n(&est_metrics_handshakes, __ATOMIC_RELAXED));
	est_metrics_head(out, "estrad_auth_throttled_total", "counter",
	                 "Basic credentials answered without a password check: "
	                 "the client address or the user name failed too "
	                 "often lately (429), or the password checks waiting "
	                 "were too many (busy, 503).");
	for (f = RA_THROTTLE_NONE + 1; f < RA_THROTTLE__MAX; f++)
		evbuffer_add_printf(
		    out, "estrad_auth_throttled_total{reason=\"%s\"} %llu\n",
		    ra_auth_throttle_reason_name(
		        (enum ra_auth_throttle_reason)f),
		    ra_auth_throttle_refusals((enum ra_auth_throttle_reason)f));
	est_metrics_head(out, "estrad_connections_open", "gauge",
	                 "Client connections open now.");
	evbuffer_add_printf(
	    out, "estrad_connections_open %ld\n",
	    __atomic_load_n(&est_metrics_open, __ATOMIC_RELAXED));
	est_metrics_head(out, "estrad_pending_records", "gauge",
	                 "Records in the pending-request store.");
	if ((pending = est_metrics_pending(config->pending_dir)) >= 0)
		evbuffer_add_printf(out, "estrad_pending_records %ld\n",
		                    pending);
	est_metrics_head(out, "estrad_certificate_not_after_seconds", "gauge",
	                 "notAfter of the certificates estrad serves, trusts "
	                 "and presents to its CAs, in seconds since the "
	                 "epoch.");
	if (ctx != NULL) {
		est_metrics_cert(out, "server", SSL_CTX_get0_certificate(ctx),
		                 NULL, NULL);
		if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1)
			for (j = 0; chain != NULL && j < sk_X509_num(chain);
			     j++)
				est_metrics_cert(out, "server_chain",
				                 sk_X509_value(chain, j), NULL,
				                 NULL);
	}
	est_metrics_cert_file(out, "explicit_ca", config->tls.explicit_ca);
	est_metrics_cert_file(out, "implicit_ca", config->tls.implicit_ca);
	/* The backends' own certificates: read from what each configured,
	 * so a renewed agent certificate shows after the SIGHUP that loads
	 * it, as the server certificate does. */
	ra_backends_own_certs(config, est_metrics_own_cert, out);
}
