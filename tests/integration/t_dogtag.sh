# shellcheck shell=bash
# t_dogtag.sh: the dogtag (Dogtag / RHCS / FreeIPA CA REST) backend end to
# end (sourced by run.sh).  Each test starts the fake Dogtag of
# tests/fakes/fake_dogtag.py and a second estrad whose labels point at it,
# enrolls with curl, and checks the answer, the error log and the fake's
# own record.  Both are stopped when the test's subshell exits; estrad's
# stderr is then checked for sanitizer reports.
#
# Labels of the second estrad (agent certificate client.pem, CN=demo-client,
# an agent of the fake, unless noted):
#   dg         profile caServerCert (the fake issues at once)
#   dgauto     profile caManual (pending), approval auto
#   dgwait     profile caManual, approval wait
#   dgreject   profile caReject (the fake rejects)
#   dgnoprof   profile caNope (unknown to the CA)
#   dgfail     a stopped master (dead port) first, then the fake (a clone)
#   dgexpired  an expired agent certificate (same subject, same issuer)
#   dgbasic    agent caadmin by user + password_file, approval auto

DG_FAKE_PID="" DG_PID="" DG_FAKE="" DG_HOST="" DG_CONF=""
DG_PASSWORD=Secret.123

# dg_cleanup: stops the fake and the second estrad (EXIT trap of a test).
dg_cleanup() {
	local pid i
	for pid in "$DG_PID" "$DG_FAKE_PID"; do
		[[ -n $pid ]] || continue
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "$DG_PID" "$DG_FAKE_PID"; do
		[[ -n $pid ]] || continue
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	DG_PID="" DG_FAKE_PID=""
}

# dg_expired_agent: $WORK/dogtag-agent/expired.pem/.key, CN=demo-client
# issued by the dev issuing CA, valid only in 2020 (made once).
dg_expired_agent() {
	local d=$WORK/dogtag-agent
	[[ -s $d/expired.pem ]] && return 0
	issue_expired_client_cert "$d/db" "$d/expired.key" "$d/expired.pem" \
	    rsa:2048
}

# dg_sanitizer_check: fails when the second estrad's stderr has a sanitizer
# report (it must have been stopped first).
dg_sanitizer_check() {
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' \
	    "$T/estrad.stderr" "$T/estrad2.stderr" 2>/dev/null; then
		fail "the dogtag estrad's stderr has sanitizer reports" \
		    "$T/estrad.stderr"
	fi
}

# dg_start_estrad: starts (or restarts) the second estrad on DG_HOST's port
# when set, else on a free one; waits until it answers.
dg_start_estrad() {
	local i j port
	for ((i = 0; i < 3; i++)); do
		if [[ -n $DG_HOST && ${1:-} == again ]]; then
			port=${DG_HOST##*:}
		else
			port=$(free_port)
			DG_HOST=127.0.0.1:$port
			dg_write_config "$port" ||
			    fail "cannot write the dogtag test configuration"
		fi
		(cd "$T" && exec "$ESTRAD" -c "$DG_CONF" \
		    >"$T/estrad.stdout" 2>>"$T/estrad.stderr" </dev/null) &
		DG_PID=$!
		for ((j = 0; j < 100; j++)); do
			kill -0 "$DG_PID" 2>/dev/null || break
			if curl -s -o /dev/null --max-time 1 \
			    --cacert "$CERTS/tls-ca.pem" \
			    "https://$DG_HOST$EST_PATH/cacerts"; then
				return 0
			fi
			sleep 0.1
		done
		kill -0 "$DG_PID" 2>/dev/null && break
		wait "$DG_PID"
		DG_PID=""
		grep -qi 'address already in use' "$T/estrad.stderr" \
		    "$T/logs/error.log" 2>/dev/null || break
	done
	fail "the dogtag estrad did not start" "$T/estrad.stderr" \
	    "$T/logs/error.log"
}

# dg_start [FAKE-ARGS...]: starts the fake (CA material shared by every
# test in $WORK/dogtag-ca) and an estrad with the labels above; sets
# DG_FAKE (https://127.0.0.1:PORT) and DG_HOST (estrad's host:port).
dg_start() {
	local line i
	trap 'dg_cleanup' EXIT
	dg_expired_agent
	mkdir -p "$WORK/dogtag-ca"
	# A stale "ready on" line of an earlier fake must not be read.
	rm -f "$T/fake.out"
	python3 "$ROOT/tests/fakes/fake_dogtag.py" --listen 127.0.0.1:0 \
	    --cert "$CERTS/server.pem" --key "$CERTS/server.key" \
	    --client-ca "$CERTS/ca-chain.pem" --state-dir "$WORK/dogtag-ca" \
	    "$@" >"$T/fake.out" 2>"$T/fake.err" </dev/null &
	DG_FAKE_PID=$!
	DG_FAKE=$(fake_ready_url "$DG_FAKE_PID" fake_dogtag) || exit 1
	DG_CONF=$WORK/conf/dogtag-${T##*/}.json
	# assert_error and log_has_rid read the logs of this estrad.
	LOGS=$T/logs
	mkdir -p "$T/logs"
	printf '%s\n' "$DG_PASSWORD" >"$T/agent.pass"
	DG_HOST=""
	dg_start_estrad
}

# dg_write_config PORT: $DG_CONF, the test configuration plus the dogtag
# labels, beside it so that its relative paths stay valid.
dg_write_config() {
	python3 - "$WORK/conf/estrad.json" "$DG_CONF" "$1" "$DG_FAKE" \
	    "127.0.0.1:$(free_port)" "$CERTS" "$T" "$WORK" <<'EOF'
import json, sys
src, dst, port, fake, dead, certs, t, work = sys.argv[1:]
cfg = json.load(open(src))
cfg["listen"] = ["127.0.0.1:" + port]
cfg["workers"] = 2
for k in ("error", "access", "audit"):
    cfg["logs"][k] = "%s/logs/%s.log" % (t, k)
base = cfg["labels"]["default"]
def label(urls=None, **ca):
    lab = {k: v for k, v in base.items() if k != "ca"}
    lab["include_chain"] = False
    c = {"backend": "dogtag", "urls": urls or [fake],
         "ca_bundle": certs + "/tls-ca.pem",
         "agent_cert": certs + "/client.pem",
         "agent_key": certs + "/client.key",
         "profile": "caServerCert", "approval": "wait",
         "connect_timeout": 3, "timeout": 10, "retry_after": 7}
    c.update(ca)
    for k in [k for k, v in c.items() if v is None]:
        del c[k]
    lab["ca"] = c
    return lab
agent = work + "/dogtag-agent/expired"
cfg["labels"]["dg"] = label()
cfg["labels"]["dgauto"] = label(profile="caManual", approval="auto")
cfg["labels"]["dgwait"] = label(profile="caManual")
cfg["labels"]["dgreject"] = label(profile="caReject")
cfg["labels"]["dgnoprof"] = label(profile="caNope")
cfg["labels"]["dgfail"] = label(["https://" + dead, fake])
cfg["labels"]["dgexpired"] = label(agent_cert=agent + ".pem",
                                   agent_key=agent + ".key")
cfg["labels"]["dgbasic"] = label(agent_cert=None, agent_key=None,
                                 user="caadmin",
                                 password_file=t + "/agent.pass",
                                 profile="caManual", approval="auto")
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
}

# dg_fake POST-PATH [JSON]: a control call of the fake.
dg_fake() {
	curl -s --fail --max-time 5 --cacert "$CERTS/tls-ca.pem" \
	    -H 'Content-Type: application/json' --data "${2:-{\}}" \
	    "$DG_FAKE/_fake/$1" >"$T/fake-ctl.out" 2>&1 ||
	    fail "POST /_fake/$1 failed" "$T/fake-ctl.out"
}

# dg_state: the fake's state in $T/state.json.
dg_state() {
	curl -s --max-time 5 --cacert "$CERTS/tls-ca.pem" \
	    "$DG_FAKE/_fake/state" >"$T/state.json" ||
	    fail "GET /_fake/state failed"
}

# dg_check PYTHON...: asserts about the fake's state (s = the state JSON).
dg_check() {
	dg_state
	python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
r = s["requests"]
reqs = list(r.values()) if isinstance(r, dict) else r
exec(sys.argv[2])' "$T/state.json" "$1" >"$T/state.check" 2>&1 ||
	    fail "the fake's state: $1" "$T/state.check" "$T/state.json"
}

# dg_newest: the id (hex) of the fake's newest request.
dg_newest() {
	dg_state
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["requests"]
r = list(r.values()) if isinstance(r, dict) else r
print(max(r, key=lambda x: int(x["id"], 16))["id"])' "$T/state.json"
}

# dg_enroll LABEL NAME: a fresh CSR NAME (or the same one again with
# "again") and a simpleenroll on LABEL of the dogtag estrad.
dg_enroll() {
	[[ ${3:-} == again ]] || mk_csr "$2" "/CN=$2.dogtag.example" ec
	http_req POST "https://$DG_HOST$EST_PATH/$1/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/$2.b64" \
	    -u "$CRED" --max-time 30
}

# dg_log_has RID ERE: a line of the dogtag estrad's error log with rid=RID
# matches ERE (waits up to 2 s).
dg_log_has() {
	local i
	for ((i = 0; i < 20; i++)); do
		grep -F -- "rid=$1" "$T/logs/error.log" 2>/dev/null |
		    grep -qE -- "$2" && return 0
		sleep 0.1
	done
	fail "no error-log line with rid=$1 matching /$2/" "$T/logs/error.log"
}

# dg_assert_leaf NAME: the 200 answer holds a certificate for CSR NAME
# (a certs-only SET: any position) that chains to the fake's CA; leaves it
# in $T/leaf.pem.
dg_assert_leaf() {
	local f want
	assert_status 200
	assert_header Content-Type 'application/pkcs7-mime; smime-type=certs-only'
	decode_pkcs7 "$T/answer.pem"
	rm -f "$T"/ans-*.pem "$T/leaf.pem"
	split_certs "$T/answer.pem" "$T/ans"
	want=$(openssl req -in "$T/$1.pem" -noout -pubkey)
	for f in "$T"/ans-*.pem; do
		[[ $(openssl x509 -in "$f" -noout -pubkey) == "$want" ]] &&
		    cp "$f" "$T/leaf.pem"
	done
	[[ -s $T/leaf.pem ]] ||
	    fail "no certificate for the CSR's key in the answer" \
	    "$T/answer.pem.names"
	openssl verify -CAfile "$WORK/dogtag-ca/ca-chain.pem" "$T/leaf.pem" \
	    >"$T/verify.out" 2>&1 ||
	    fail "the certificate does not chain to the fake CA" "$T/verify.out"
}

# dg_stop_and_check: stops both servers, then checks for sanitizer reports.
dg_stop_and_check() {
	dg_cleanup
	dg_sanitizer_check
}

t_dogtag_enroll_v2() {
	dg_start
	dg_enroll dg d1
	dg_assert_leaf d1
	# PKCS7CertChain: the leaf, then the signing CA and the root.
	assert_eq 3 "$NCERTS" "certificates in the answer (leaf + chain)"
	dg_check 'assert len(reqs) == 1, reqs
assert reqs[0]["api"] == "v2", reqs[0]
assert reqs[0]["profile"] == "caServerCert", reqs[0]'
	grep -qE 'ca\.dogtag: REST API v2 at https://127\.0\.0\.1:[0-9]+/pki/v2/info' \
	    "$T/logs/error.log" ||
	    fail "no 'REST API v2' line in the error log" "$T/logs/error.log"
	dg_stop_and_check
}

t_dogtag_enroll_v1_only() {
	dg_start --v2 off
	dg_enroll dg d2
	dg_assert_leaf d2
	dg_check 'assert len(reqs) == 1 and reqs[0]["api"] == "v1", reqs'
	grep -q 'REST API v1 (deprecated) at' "$T/logs/error.log" ||
	    fail "no 'REST API v1' line in the error log" "$T/logs/error.log"
	dg_stop_and_check
}

t_dogtag_v1_removed_by_upgrade() {
	dg_start --v2 off
	dg_enroll dg d3
	dg_assert_leaf d3
	# The upgrade: v2 appears, v1 is switched off.  The remembered v1
	# answers 404; estrad probes again and goes on with v2.
	dg_fake config '{"v1": false, "v2": true}'
	dg_enroll dg d4
	dg_assert_leaf d4
	dg_log_has "$RID" 'REST API not available at .*/ca/rest/.*HTTP 404.*REST API v1 have been disabled'
	dg_check 'assert sorted(x["api"] for x in reqs) == ["v1", "v2"], reqs'
	dg_stop_and_check
}

t_dogtag_auto_approve() {
	dg_start
	dg_enroll dgauto d5
	dg_assert_leaf d5
	dg_log_has "$RID" 'ca\.dogtag: CA request 0x[0-9a-f]+ approved as agent, profile caManual'
	dg_check 'assert len(reqs) == 1, reqs
assert reqs[0]["state"] in ("complete", "issued"), reqs[0]'
	dg_stop_and_check
}

t_dogtag_basic_agent_auto_approve() {
	dg_start
	dg_enroll dgbasic d6
	dg_assert_leaf d6
	dg_check 'assert any(l.get("method") == "basic" for l in s["logins"]), s["logins"]'
	dg_stop_and_check
	if grep -rqF -e "$DG_PASSWORD" "$T/logs" "$T/estrad.stderr"; then
		fail "the agent password appears in estrad's logs" \
		    "$T/logs/error.log"
	fi
}

t_dogtag_pending_wait_then_approved() {
	dg_start
	dg_enroll dgwait d7
	assert_status 202
	assert_header Retry-After 7
	local first=$RID id
	dg_log_has "$RID" 'pending: CA request 0x[0-9a-f]+ awaits approval by a CA agent'
	dg_enroll dgwait d7 again
	assert_status 202
	dg_log_has "$RID" "first_rid: $first"
	id=$(dg_newest)
	dg_fake "requests/$id/approve"
	dg_enroll dgwait d7 again
	dg_assert_leaf d7
	dg_check 'assert len(reqs) == 1, "resubmitted: %r" % reqs'
	dg_stop_and_check
}

t_dogtag_reject_403() {
	dg_start
	dg_enroll dgreject d8
	assert_error 403
	dg_log_has "$RID" 'enroll refused by CA: requestStatus rejected ".+", CA request 0x[0-9a-f]+, profile caReject'
	fl_one_refusal_line "$RID"
	grep -q 'requestStatus rejected' "$T/body" ||
	    fail "the 403 body lacks the CA's message" "$T/body"
	dg_stop_and_check
}

t_dogtag_pending_then_rejected_by_agent() {
	dg_start
	dg_enroll dgwait d9
	assert_status 202
	dg_fake "requests/$(dg_newest)/reject" '{"message": "not on my watch"}'
	dg_enroll dgwait d9 again
	assert_error 403
	dg_stop_and_check
}

t_dogtag_profile_not_found() {
	dg_start
	dg_enroll dgnoprof d10
	assert_error 500
	dg_log_has "$RID" 'profile caNope not found or not enabled: HTTP 400 "Bad Request": BadRequestException 400 "Bad request data: Profile caNope Not Found"'
	dg_log_has "$RID" 'hint: "check profile caNope of label dgnoprof'
	fl_one_error_line "$RID"
	dg_stop_and_check
}

t_dogtag_ca_disabled_503() {
	dg_start
	dg_fake config '{"ca_disabled": true}'
	dg_enroll dg d11
	assert_error 503
	assert_header Retry-After 7
	dg_log_has "$RID" 'ca\.dogtag: enroll failed: CA disabled: HTTP 409 "Conflict": ConflictingOperationException 409 "CA not enabled" while submitting request, .*, url: https://127\.0\.0\.1:[0-9]+/[^,]+, answer: 503, hint: "'
	fl_one_error_line "$RID"
	dg_stop_and_check
}

t_dogtag_failover_to_clone() {
	dg_start
	dg_enroll dgfail d12
	dg_assert_leaf d12
	grep -qE '\[warn\] .*ca\.dogtag: CA failover: curl 7 "Couldn.t connect to server" .* trying https://127\.0\.0\.1:[0-9]+' \
	    "$T/logs/error.log" ||
	    fail "no failover line in the error log" "$T/logs/error.log"
	dg_enroll dgfail d13
	dg_assert_leaf d13
	if grep -F "rid=$RID" "$T/logs/error.log" | grep -q 'CA failover'; then
		fail "failed over again instead of using the URL that answered" \
		    "$T/logs/error.log"
	fi
	dg_stop_and_check
}

t_dogtag_expired_agent_cert() {
	dg_start
	grep -qE '\[error\] .*ca\.dogtag: agent certificate expired: .*agent_cert: "CN=demo-client" expired 2020-12-31T00:00:00Z' \
	    "$T/logs/error.log" ||
	    fail "no start-up line about the expired agent certificate" \
	    "$T/logs/error.log"
	dg_enroll dgexpired d14
	assert_error 500
	# The alert itself (certificate expired) shows when libcurl reads it
	# before the server closed; the agent_cert text always shows, on the
	# request's one error line with URL, answer and hint.
	dg_log_has "$RID" '\[error\] .* ca\.dogtag: agent login failed: curl (35|55|56) ".*" \(.*\) while logging in as agent, agent_cert: "CN=demo-client" expired 2020-12-31T00:00:00Z, .*, url: https://[^,]+/login, answer: 500, hint: "renew the agent certificate, then SIGHUP"'
	fl_one_error_line "$RID"
	dg_stop_and_check
}

t_dogtag_cacerts_chain() {
	dg_start
	http_req GET "https://$DG_HOST$EST_PATH/dg/cacerts" --max-time 20
	assert_status 200
	decode_pkcs7 "$T/cacerts.pem"
	assert_eq 2 "$NCERTS" "certificates in cacerts" "$T/cacerts.pem.names"
	split_certs "$T/cacerts.pem" "$T/ca"
	split_certs "$WORK/dogtag-ca/ca-chain.pem" "$T/want"
	local got want f
	got=$(for f in "$T"/ca-*.pem; do fingerprint "$f"; done | sort)
	want=$(for f in "$T"/want-*.pem; do fingerprint "$f"; done | sort)
	assert_eq "$want" "$got" "cacerts = the fake's signing CA + root"
	dg_stop_and_check
}

t_dogtag_restart_while_pending() {
	dg_start
	dg_enroll dgwait d15
	assert_status 202
	kill -TERM "$DG_PID"
	wait "$DG_PID" 2>/dev/null
	DG_PID=""
	dg_fake "requests/$(dg_newest)/approve"
	dg_start_estrad again
	dg_enroll dgwait d15 again
	dg_assert_leaf d15
	dg_check 'assert len(reqs) == 1, "resubmitted: %r" % reqs'
	dg_stop_and_check
}

t_dogtag_random_128bit_ids() {
	dg_start
	dg_fake config '{"random_ids": true}'
	dg_enroll dgwait d16
	assert_status 202
	local id
	id=$(dg_newest)
	((${#id} > 18)) || fail "the fake's id $id is not longer than 64 bits"
	dg_log_has "$RID" "CA request $id awaits approval"
	dg_fake "requests/$id/approve"
	dg_enroll dgwait d16 again
	dg_assert_leaf d16
	dg_stop_and_check
}

t_dogtag_config_errors_named() {
	dg_start
	dg_cleanup
	python3 - "$DG_CONF" "$WORK/conf/dogtag-bad.json" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["labels"]["dg"]["ca"]["profiel"] = "x"
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
EOF
	run_bounded 10 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/dogtag-bad.json" &&
	    fail "estrad -t accepted an unknown dogtag key" "$T/t.out"
	assert_file_matches "$T/t.out" 'labels\.dg\.ca\.profiel.*unknown key "profiel"'
}
