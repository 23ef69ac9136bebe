# shellcheck shell=bash
# t_pending.sh: pending requests (202 + Retry-After) end to end, through
# the certsrv backend and tests/fakes/fake_certsrv.py (sourced by run.sh
# after t_certsrv.sh, whose cs_* helpers it uses).  The client resends the
# same CSR (RFC 7030 §4.2.3); estrad finds the record in pending.dir and
# answers from the CA's current state.

# pd_reqid: the ReqID of the fake's newest request.
pd_reqid() {
	curl -s --max-time 5 --cacert "$CERTS/tls-ca.pem" \
	    "$CS_FAKE/_fake/state" >"$T/state.json"
	python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
r = s["requests"]
r = list(r.values()) if isinstance(r, dict) else r
print(max(x["id"] for x in r))' "$T/state.json"
}

# pd_fake NAME POST-PATH [JSON]: a control call of the fake.
pd_fake() {
	curl -s --fail --max-time 5 --cacert "$CERTS/tls-ca.pem" \
	    -H 'Content-Type: application/json' --data "${3:-{\}}" \
	    "$CS_FAKE/_fake/$2" >"$T/$1.out" 2>&1 ||
	    fail "POST /_fake/$2 failed" "$T/$1.out"
}

# pd_resend LABEL NAME: the same CSR again (a retry after 202).
pd_resend() {
	http_req POST "https://$CS_HOST$EST_PATH/$1/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/$2.b64" \
	    -u "$CRED" --max-time 30
}

# pd_records: how many pending records the store holds.
pd_records() {
	find "$WORK/var/pending" -maxdepth 1 -name '*.json' 2>/dev/null |
	    wc -l
}

# assert_pending: a 202 with Retry-After, text/plain, an audit record.
assert_pending() {
	assert_status 202
	assert_header Content-Type text/plain
	assert_header Retry-After "${1:-7}"
	log_has_rid "$RID" '"event":"pending"' audit >/dev/null ||
	    fail "no pending audit record for rid $RID" "$T/.log_tail"
}

t_pending_manual_approval_then_issued() {
	cs_start --approval manual
	local before first
	before=$(pd_records)
	cs_enroll cs p1
	assert_pending 7
	first=$RID
	assert_eq $((before + 1)) "$(pd_records)" "pending records"
	# Still pending at the CA: 202 again, and the retry names the first
	# request in its log lines.
	pd_resend cs p1
	assert_pending 7
	cs_log_has "$RID" "first_rid: $first"
	pd_fake issue "requests/$(pd_reqid)/issue"
	pd_resend cs p1
	assert_status 200
	decode_pkcs7 "$T/leaf.pem"
	assert_eq "$(openssl req -in "$T/p1.pem" -noout -pubkey)" \
	    "$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)" "public key"
	assert_eq "$before" "$(pd_records)" "pending records after issue"
	log_has_rid "$RID" '"event":"issued"' audit >/dev/null ||
	    fail "no issued audit record for the retry" "$T/.log_tail"
	# One submission only: the retries polled, they did not resubmit.
	python3 -c 'import json, sys
assert json.load(open(sys.argv[1]))["submissions"] == 1' "$T/state.json" ||
	    fail "the CA saw more than one submission" "$T/state.json"
	cs_stop_and_check
}

t_pending_then_denied_by_manager() {
	cs_start --approval manual
	cs_enroll cs p2
	assert_pending 7
	pd_fake deny "requests/$(pd_reqid)/deny" '{"code": "0x80094014"}'
	pd_resend cs p2
	assert_error 403
	assert_match '0x80094014|denied' "$(cat "$T/body")" "body"
	# One line for the refusal (fl_one_refusal_line of t_faults.sh).
	fl_one_refusal_line "$RID"
	log_has_rid "$RID" '"event":"rejected"' audit >/dev/null ||
	    fail "no rejected audit record" "$T/.log_tail"
	# The record is gone: a new try is a new submission.
	cs_stop_and_check
}

t_pending_survives_restart() {
	cs_start --approval manual
	cs_enroll cs p3
	assert_pending 7
	# Restart only estrad; the record on disk must carry the request.
	kill -TERM "$CS_PID"
	wait "$CS_PID" 2>/dev/null
	CS_PID=""
	local port=${CS_HOST##*:} i
	(cd "$T" && exec "$ESTRAD" -c "$CS_CONF" \
	    >"$T/estrad2.stdout" 2>"$T/estrad2.stderr" </dev/null) &
	CS_PID=$!
	for ((i = 0; i < 100; i++)); do
		curl -s -o /dev/null --max-time 1 --cacert "$CERTS/tls-ca.pem" \
		    "https://127.0.0.1:$port$EST_PATH/cacerts" && break
		sleep 0.1
	done
	pd_fake issue "requests/$(pd_reqid)/issue"
	pd_resend cs p3
	assert_status 200
	decode_pkcs7 "$T/leaf.pem"
	assert_eq 1 "$NCERTS" "certificates"
	cs_stop_and_check
}

t_pending_ca_slower_than_ca_wait() {
	cs_start
	cs_fake_config '{"delay_ms": {"certfnsh.asp": 3000}}'
	local start=$SECONDS
	cs_enroll csslow p4
	# The CA said nothing yet: the label's retry_after, not the CA's.
	assert_pending 30
	((SECONDS - start <= 3)) ||
	    fail "the 202 took $((SECONDS - start)) s (ca_wait is 1 s)"
	cs_log_has "$RID" 'not answered within ca_wait 1 s'
	# The call goes on; once the CA answered, the retry gets the
	# certificate kept for it, without a second submission.
	sleep 4
	pd_resend csslow p4
	assert_status 200
	decode_pkcs7 "$T/leaf.pem"
	assert_eq "$(openssl req -in "$T/p4.pem" -noout -pubkey)" \
	    "$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)" "public key"
	curl -s --cacert "$CERTS/tls-ca.pem" "$CS_FAKE/_fake/state" \
	    >"$T/state.json"
	python3 -c 'import json, sys
assert json.load(open(sys.argv[1]))["submissions"] == 1' "$T/state.json" ||
	    fail "the CA saw more than one submission" "$T/state.json"
	cs_stop_and_check
}
