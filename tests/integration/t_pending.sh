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

# --- the store's directory and its bounds --------------------------------------
# These run an estrad of their own (ab_start of t_abuse.sh) whose pending.dir
# is $T/pending, and enroll on the helper label t-h-wait, whose CA always
# answers "wait", so every new CSR leaves a record.

# pd_key LABEL IDENTITY CSR-PEM: the record key estrad computes for a CSR
# (SHA-256 over label, NUL, identity, NUL, the DER SubjectPublicKeyInfo).
pd_key() {
	openssl req -in "$3" -noout -pubkey |
	    openssl pkey -pubin -outform DER >"$T/spki.der" ||
	    fail "cannot extract the CSR's public key (test setup)"
	python3 -c 'import hashlib, sys
label, ident, spki = sys.argv[1:4]
h = hashlib.sha256(label.encode() + b"\0" + ident.encode() + b"\0")
h.update(open(spki, "rb").read())
print(h.hexdigest())' "$1" "$2" "$T/spki.der"
}

# pd_write_conf FILE PYTHON: the test configuration changed by PYTHON (on
# the dict cfg, t the test directory), logging to $T/logs.
pd_write_conf() {
	mkdir -p "$T/logs"
	python3 - "$WORK/conf/estrad.json" "$1" "$(free_port)" "$T" "$2" \
	    <<'PYEOF' || fail "cannot write the configuration (test setup)"
import json, sys
src, dst, port, t, code = sys.argv[1:]
cfg = json.load(open(src))
cfg["listen"] = ["127.0.0.1:" + port]
cfg["workers"] = 2
for k in ("error", "access", "audit"):
    cfg["logs"][k] = "%s/logs/%s.log" % (t, k)
exec(code)
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
PYEOF
}

# pd_refused WHAT CONF ERE: estrad -c CONF must exit at once, non-zero, with
# one stderr line matching ERE.
pd_refused() {
	local rc=0
	run_bounded 20 "$T/refused.out" "$ESTRAD" -c "$2" || rc=$?
	((rc != 0 && rc != 124)) ||
	    fail "$1: estrad did not refuse to start (status $rc)" \
	    "$T/refused.out"
	assert_eq 1 "$(grep -cE -- "$3" "$T/refused.out")" \
	    "$1: stderr lines matching /$3/" "$T/refused.out"
}

# pd_hup_refused ERE: SIGHUP to the second estrad must be refused with one
# more error-log line matching ERE, and estrad must go on serving.
pd_hup_refused() {
	local re=$1 before i
	before=$(grep -cE -- "$re" "$T/logs/error.log")
	kill -HUP "$AB_PID"
	for ((i = 0; i < 50; i++)); do
		[[ $(grep -cE -- "$re" "$T/logs/error.log") -gt $before ]] &&
		    break
		sleep 0.1
	done
	assert_eq $((before + 1)) "$(grep -cE -- "$re" "$T/logs/error.log")" \
	    "error-log lines matching /$re/ after SIGHUP" "$T/logs/error.log"
	HOSTPORT=$AB_HOST http_req GET "$EST_PATH/cacerts"
	assert_status 200
}

t_pending_planted_link_not_followed() {
	local key victim=$T/victim user=${CRED%%:*}
	mkdir -m 700 "$T/pending"
	ab_start "cfg['pending']['dir'] = t + '/pending'"
	HOSTPORT=$AB_HOST
	# A file the attacker wants overwritten, and a link to it on the
	# temporary name estrad used to write a record under: the record
	# key and estrad's pid, both known to anyone who can enroll.
	printf 'precious\n' >"$victim"
	mk_csr pl "/CN=planted.example" ec
	key=$(pd_key t-h-wait "$user" "$T/pl.pem")
	ln -s "$victim" "$T/pending/.$key.$AB_PID.tmp"
	post_csr "$EST_PATH/t-h-wait/simpleenroll" "$T/pl.b64" -u "$CRED"
	assert_status 202
	assert_eq 'precious' "$(cat "$victim")" "the file behind the link"
	[[ -f $T/pending/$key.json && ! -L $T/pending/$key.json ]] ||
	    fail "the record $key.json is not a regular file" \
	    <(ls -la "$T/pending")
	ab_cleanup
	ab_sanitizer_check
}

t_pending_unsafe_dirs_refused() {
	local conf=$WORK/conf/pending-${T##*/}.json
	# World-writable pending.dir: refused at start (estrad -c and -t)...
	mkdir -m 777 "$T/pending"
	chmod 777 "$T/pending"
	pd_write_conf "$conf" "cfg['pending']['dir'] = t + '/pending'"
	pd_refused "world-writable pending.dir" "$conf" \
	    "pending\\.dir: $T/pending is group- or world-writable"
	run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$conf" &&
	    fail "estrad -t accepted a world-writable pending.dir" "$T/t.out"
	# ... and so is a log directory anyone may write.
	chmod 700 "$T/pending"
	mkdir -m 777 "$T/wlogs"
	chmod 777 "$T/wlogs"
	pd_write_conf "$conf" "cfg['pending']['dir'] = t + '/pending'
cfg['logs']['access'] = t + '/wlogs/access.log'"
	pd_refused "world-writable log directory" "$conf" \
	    "$T/wlogs is group- or world-writable"
	[[ ! -e $T/wlogs/access.log ]] ||
	    fail "estrad created a log in a world-writable directory"
	# At reload: the same checks, and the configuration in force stays.
	ab_start "cfg['pending']['dir'] = t + '/pending'"
	chmod 777 "$T/pending"
	pd_hup_refused "\\[error\\] .*configuration reload refused: .*pending\\.dir: $T/pending is group- or world-writable"
	chmod 700 "$T/pending"
	chown 65534:65534 "$T/pending"
	pd_hup_refused "\\[error\\] .*configuration reload refused: .*pending\\.dir: $T/pending is owned by uid 65534"
	chown 0:0 "$T/pending"
	ab_cleanup
	ab_sanitizer_check
}

t_pending_store_full_503() {
	local n=0
	mkdir -m 700 "$T/pending"
	ab_start "cfg['pending']['dir'] = t + '/pending'
cfg['pending']['max_per_identity'] = 2
cfg['pending']['max_records'] = 10"
	HOSTPORT=$AB_HOST
	for n in 1 2; do
		mk_csr "f$n" "/CN=full$n.example" ec
		post_csr "$EST_PATH/t-h-wait/simpleenroll" "$T/f$n.b64" \
		    -u "$CRED"
		assert_status 202
	done
	# A third request of the same identity would be a third record.
	mk_csr f3 "/CN=full3.example" ec
	post_csr "$EST_PATH/t-h-wait/simpleenroll" "$T/f3.b64" -u "$CRED"
	assert_error 503
	[[ $(get_header Retry-After) =~ ^[1-9][0-9]*$ ]] ||
	    fail "503 without Retry-After" "$T/headers"
	assert_file_matches "$T/body" 'too many pending requests'
	log_has_rid "$RID" 'max_per_identity' error >/dev/null ||
	    fail "the error line does not name the bound" "$T/.log_tail"
	assert_eq 1 "$(grep -F "rid=$RID" "$T/logs/error.log" |
	    grep -cF '[error]')" \
	    "[error] lines of the refused request" "$T/logs/error.log"
	# The retry of a request already recorded is no new record.
	post_csr "$EST_PATH/t-h-wait/simpleenroll" "$T/f1.b64" -u "$CRED"
	assert_status 202
	assert_eq 2 "$(find "$T/pending" -name '*.json' | wc -l)" \
	    "pending records"
	ab_cleanup
	ab_sanitizer_check
}
