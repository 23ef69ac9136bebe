/*
 * time.h: certificate times and clock times in the one form every log and
 * answer of estrad uses, UTC ISO-8601 to the second ("2026-11-20T00:00:00Z").
 */
#ifndef ESTRAD_CORE_TIME_H
#define ESTRAD_CORE_TIME_H

#include <stddef.h>
#include <time.h>

#include <openssl/asn1.h>

/* Large enough for every string the formatters below write. */
#define CORE_TIME_MAX 32

/*
 * Writes t into buf (size len, at least CORE_TIME_MAX) and returns buf.
 * A NULL or unreadable time is written as "(unreadable time)".
 */
const char *core_time_asn1(const ASN1_TIME *t, char *buf, size_t len);

/* The same for a clock time; one gmtime_r cannot convert reads the same. */
const char *core_time_epoch(time_t t, char *buf, size_t len);

/* Returns t as seconds since the epoch, or -1 when t is NULL or unreadable. */
long long core_time_asn1_seconds(const ASN1_TIME *t);

#endif
