/*
 * time.c: ISO-8601 UTC formatting of certificate and clock times.
 */
#include <stdio.h>

#include <openssl/err.h>

#include "core/time.h"

/* Formats a broken-down UTC time, or the fallback text when it fails. */
static const char *
core_time_tm(const struct tm *tm, char *buf, size_t len)
{
	if (tm == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", tm) == 0)
		snprintf(buf, len, "(unreadable time)");
	return buf;
}

const char *
core_time_asn1(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;
	int ok = t != NULL && ASN1_TIME_to_tm(t, &tm) == 1;

	/* A malformed time leaves an error on the queue; it is explained by
	 * the text, not by a later failure's report. */
	if (!ok)
		ERR_clear_error();
	return core_time_tm(ok ? &tm : NULL, buf, len);
}

const char *
core_time_epoch(time_t t, char *buf, size_t len)
{
	struct tm tm;

	return core_time_tm(gmtime_r(&t, &tm), buf, len);
}

long long
core_time_asn1_seconds(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return -1;
	}
	return (long long)timegm(&tm);
}
