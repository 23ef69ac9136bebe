# shellcheck shell=bash
# t_logs.sh: integrity of the error, access and audit logs against hostile
# client-supplied fields.  Sourced by run.sh; every t_logs_* function is
# one test.

# Every client-supplied field with hostile bytes through a daemon of its
# own (so that every line of its logs is this test's), then every log line
# parsed back by tests/integration/log_integrity.py.
t_logs_hostile_fields_parse_back() {
	ab_start ''
	python3 "$HERE/log_integrity.py" "$AB_HOST" "$CERTS/tls-ca.pem" \
	    "$CRED" "$T/logs" >"$T/integrity.out" 2>&1 ||
	    fail "the logs do not parse back" "$T/integrity.out" \
	    "$T/logs/access.log" "$T/logs/audit.log"
	ab_cleanup
	ab_sanitizer_check
}
