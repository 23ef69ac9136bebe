# shellcheck shell=bash
# t_certsrv.sh: the certsrv (AD CS web enrollment) backend end to end
# (sourced by run.sh).  Each test starts the fake AD CS of
# tests/fakes/fake_certsrv.py and a second estrad whose labels point at it,
# enrolls with curl, and checks the answer, the error log and the fake's
# own record.  Both are stopped when the test's subshell exits; estrad's
# stderr is then checked for sanitizer reports.
#
# Labels of the second estrad (all auth ntlm as certuser unless noted):
#   cs        the fake, template WebServer
#   csdeny    template NotPublished (the fake denies it with 0x80094800)
#   csfail    a dead URL first, then the fake (failover)
#   csdown    only the dead URL
#   csdns     an unresolvable host
#   csbadpw   the wrong password
#   csbasic   Basic authentication (the fake runs with --basic-enabled)

CS_FAKE_PID="" CS_PID="" CS_FAKE="" CS_HOST="" CS_CONF=""
CS_PASSWORD=certpass

# cs_cleanup: stops the fake and the second estrad (EXIT trap of a test).
cs_cleanup() {
	local pid
	for pid in "$CS_PID" "$CS_FAKE_PID"; do
		[[ -n $pid ]] || continue
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "$CS_PID" "$CS_FAKE_PID"; do
		[[ -n $pid ]] || continue
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	CS_PID="" CS_FAKE_PID=""
}

# cs_sanitizer_check: fails when the second estrad's stderr has a sanitizer
# report (it must have been stopped first).
cs_sanitizer_check() {
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' \
	    "$T/estrad.stderr" 2>/dev/null; then
		fail "the certsrv estrad's stderr has sanitizer reports" \
		    "$T/estrad.stderr"
	fi
}

# cs_start [FAKE-ARGS...]: starts the fake (CA material shared by every
# test in $WORK/certsrv-ca) and an estrad with the labels above; sets
# CS_FAKE (https://127.0.0.1:PORT) and CS_HOST (estrad's host:port).
cs_start() {
	local line i port dead
	trap 'cs_cleanup' EXIT
	mkdir -p "$WORK/certsrv-ca"
	# A stale "ready on" line of an earlier fake must not be read.
	rm -f "$T/fake.out"
	python3 "$ROOT/tests/fakes/fake_certsrv.py" --listen 127.0.0.1:0 \
	    --cert "$CERTS/server.pem" --key "$CERTS/server.key" \
	    --state-dir "$WORK/certsrv-ca" --users 'certuser:certpass' \
	    --auth ntlm --basic-enabled "$@" \
	    >"$T/fake.out" 2>"$T/fake.err" </dev/null &
	CS_FAKE_PID=$!
	CS_FAKE=$(fake_ready_url "$CS_FAKE_PID" fake_certsrv) || exit 1
	CS_CONF=$WORK/conf/certsrv-${T##*/}.json
	# assert_error and log_has_rid read the logs of this estrad.
	LOGS=$T/logs
	dead=$(free_port)
	printf '%s\n' "$CS_PASSWORD" >"$T/ca.pass"
	printf 'wrong-password\n' >"$T/bad.pass"
	mkdir -p "$T/logs"
	for ((i = 0; i < 3; i++)); do
		port=$(free_port)
		CS_HOST=127.0.0.1:$port
		cs_write_config "$port" "$dead" ||
		    fail "cannot write the certsrv test configuration"
		(cd "$T" && exec "$ESTRAD" -c "$CS_CONF" \
		    >"$T/estrad.stdout" 2>"$T/estrad.stderr" </dev/null) &
		CS_PID=$!
		local j
		for ((j = 0; j < 100; j++)); do
			kill -0 "$CS_PID" 2>/dev/null || break
			if curl -s -o /dev/null --max-time 1 \
			    --cacert "$CERTS/tls-ca.pem" \
			    "https://$CS_HOST$EST_PATH/cacerts"; then
				return 0
			fi
			sleep 0.1
		done
		kill -0 "$CS_PID" 2>/dev/null && break
		wait "$CS_PID"
		CS_PID=""
		grep -qi 'address already in use' "$T/estrad.stderr" \
		    "$T/logs/error.log" 2>/dev/null || break
	done
	fail "the certsrv estrad did not start" "$T/estrad.stderr" \
	    "$T/logs/error.log"
}

# cs_write_config PORT DEAD-PORT: $CS_CONF, the test configuration plus
# the certsrv labels, beside it so that its relative paths stay valid.
cs_write_config() {
	python3 - "$WORK/conf/estrad.json" "$CS_CONF" "$1" "$CS_FAKE" \
	    "127.0.0.1:$2" "$CERTS" "$T" <<'EOF'
import json, sys
src, dst, port, fake, dead, certs, t = sys.argv[1:]
cfg = json.load(open(src))
cfg["listen"] = ["127.0.0.1:" + port]
cfg["workers"] = 2
for k in ("error", "access", "audit"):
    cfg["logs"][k] = "%s/logs/%s.log" % (t, k)
base = cfg["labels"]["default"]
def label(urls, **ca):
    lab = {k: v for k, v in base.items() if k != "ca"}
    lab["include_chain"] = False
    c = {"backend": "certsrv", "urls": urls, "user": "FAKE\\certuser",
         "password_file": t + "/ca.pass", "auth": "ntlm",
         "ca_bundle": certs + "/tls-ca.pem", "template": "WebServer",
         "connect_timeout": 3, "timeout": 10, "retry_after": 7}
    c.update(ca)
    lab["ca"] = c
    return lab
u = fake + "/certsrv"
cfg["labels"]["cs"] = label([u])
cfg["labels"]["csdeny"] = label([u], template="NotPublished")
cfg["labels"]["csfail"] = label(["https://" + dead + "/certsrv", u])
cfg["labels"]["csdown"] = label(["https://" + dead + "/certsrv"])
cfg["labels"]["csdns"] = label(["https://nonexistent.invalid/certsrv"])
cfg["labels"]["csbadpw"] = label([u], password_file=t + "/bad.pass")
cfg["labels"]["csbasic"] = label([u], auth="basic")
# Failure modes: a CA slower than the backend's timeout, a CA certificate
# the bundle does not vouch for, a URL that is no certsrv (estrad itself).
cfg["labels"]["cstimeout"] = label([u], timeout=2)
cfg["labels"]["csuntrusted"] = label([u], ca_bundle=certs + "/manufacturer-ca.pem")
cfg["labels"]["csweird"] = label(["https://127.0.0.1:" + port + "/certsrv"])
# For the pending tests (t_pending.sh): a CA slower than ca_wait.
cfg["labels"]["csslow"] = label([u])
cfg["labels"]["csslow"]["ca_wait"] = 1
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
}

# cs_fake_config JSON: switches of the fake (POST /_fake/config).
cs_fake_config() {
	curl -s --fail --max-time 5 --cacert "$CERTS/tls-ca.pem" \
	    -H 'Content-Type: application/json' --data "$1" \
	    "$CS_FAKE/_fake/config" >"$T/fake-config.out" 2>&1 ||
	    fail "POST /_fake/config $1 failed" "$T/fake-config.out"
}

# cs_enroll LABEL NAME: a fresh CSR NAME and a simpleenroll on LABEL of the
# certsrv estrad (Basic as the demo user).
cs_enroll() {
	mk_csr "$2" "/CN=$2.phones.example" ec
	http_req POST "https://$CS_HOST$EST_PATH/$1/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/$2.b64" \
	    -u "$CRED" --max-time 30
}

# cs_log_has RID ERE: a line of the certsrv estrad's error log with
# rid=RID matches ERE (waits up to 2 s).
cs_log_has() {
	local i
	for ((i = 0; i < 20; i++)); do
		grep -F -- "rid=$1" "$T/logs/error.log" 2>/dev/null |
		    grep -qE -- "$2" && return 0
		sleep 0.1
	done
	fail "no error-log line with rid=$1 matching /$2/" "$T/logs/error.log"
}

# cs_stop_and_check: stops both servers, then checks for sanitizer reports.
cs_stop_and_check() {
	cs_cleanup
	cs_sanitizer_check
}

t_certsrv_enroll_issued() {
	cs_start
	cs_enroll cs leaf1
	assert_status 200
	assert_header Content-Type 'application/pkcs7-mime; smime-type=certs-only'
	decode_pkcs7 "$T/leaf.pem"
	assert_eq 1 "$NCERTS" "certificates in the enroll answer"
	openssl verify -CAfile "$WORK/certsrv-ca/ca-chain-0.pem" "$T/leaf.pem" \
	    >"$T/verify.out" 2>&1 ||
	    fail "the certificate does not chain to the fake CA" "$T/verify.out"
	assert_eq "$(openssl req -in "$T/leaf1.pem" -noout -pubkey)" \
	    "$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)" "public key"
	# The fake saw one submission, as certuser, for WebServer.
	curl -s --cacert "$CERTS/tls-ca.pem" "$CS_FAKE/_fake/state" \
	    >"$T/state.json"
	python3 - "$T/state.json" >"$T/state.check" 2>&1 <<'EOF' ||
import json, sys
s = json.load(open(sys.argv[1]))
reqs = s["requests"]
reqs = list(reqs.values()) if isinstance(reqs, dict) else reqs
assert s["submissions"] == 1, s["submissions"]
assert len(reqs) == 1 and reqs[0]["template"] == "WebServer", reqs
assert reqs[0]["state"] == "issued", reqs[0]
EOF
	    fail "the fake's record is not one issued WebServer request" \
	    "$T/state.check"
	cs_stop_and_check
}

t_certsrv_cacerts_chain() {
	cs_start
	http_req GET "https://$CS_HOST$EST_PATH/cs/cacerts" --max-time 20
	assert_status 200
	decode_pkcs7 "$T/cacerts.pem"
	assert_eq 2 "$NCERTS" "certificates in cacerts" "$T/cacerts.pem.names"
	split_certs "$T/cacerts.pem" "$T/ca"
	split_certs "$WORK/certsrv-ca/ca-chain-0.pem" "$T/want"
	local got want
	got=$(for f in "$T"/ca-*.pem; do fingerprint "$f"; done | sort)
	want=$(for f in "$T"/want-*.pem; do fingerprint "$f"; done | sort)
	assert_eq "$want" "$got" "cacerts = the fake's issuing CA + root"
	cs_stop_and_check
}

t_certsrv_cacerts_renewed_ca() {
	cs_start
	curl -s --fail --cacert "$CERTS/tls-ca.pem" -X POST \
	    "$CS_FAKE/_fake/renew" >"$T/renew.out" ||
	    fail "POST /_fake/renew failed" "$T/renew.out"
	# The background fetch ran before the renewal; a fresh estrad reads
	# nRenewals and takes generation 1, never 0.
	cs_cleanup
	cs_start
	http_req GET "https://$CS_HOST$EST_PATH/cs/cacerts" --max-time 20
	assert_status 200
	decode_pkcs7 "$T/cacerts.pem"
	split_certs "$T/cacerts.pem" "$T/ca"
	local f found=0 want
	want=$(openssl x509 -in "$WORK/certsrv-ca/issuing-ca-1.pem" -noout \
	    -fingerprint -sha256)
	for f in "$T"/ca-*.pem; do
		[[ $(fingerprint "$f") == "$want" ]] && found=1
	done
	assert_eq 1 "$found" "cacerts holds the renewed CA (generation 1)"
	cs_stop_and_check
}

t_certsrv_template_not_supported() {
	cs_start
	cs_enroll csdeny leaf2
	assert_error 500
	cs_log_has "$RID" 'ca\.certsrv: .*disposition 0x80094800 CERTSRV_E_UNSUPPORTED_CERT_TYPE "Denied by Policy Module'
	cs_log_has "$RID" 'hint: "publish NotPublished on this CA or pick a template certrqxt\.asp lists"'
	cs_stop_and_check
}

t_certsrv_template_denied() {
	cs_start
	cs_fake_config '{"deny": "0x80094012"}'
	cs_enroll cs leaf3
	assert_error 500
	cs_log_has "$RID" 'no Enroll permission: disposition 0x80094012 CERTSRV_E_TEMPLATE_DENIED'
	cs_stop_and_check
}

t_certsrv_denied_by_manager() {
	cs_start
	cs_fake_config '{"deny": "0x80094014"}'
	cs_enroll cs leaf4
	assert_error 403
	cs_log_has "$RID" 'enroll refused by CA: disposition 0x80094014 CERTSRV_E_ADMIN_DENIED_REQUEST'
	cs_stop_and_check
}

t_certsrv_parse_error_is_400() {
	cs_start
	cs_fake_config '{"deny": "parse"}'
	cs_enroll cs leaf5
	assert_error 400
	cs_log_has "$RID" 'CSR unreadable: disposition 0x8009310b CRYPT_E_ASN1_BADTAG'
	cs_stop_and_check
}

t_certsrv_localized_pages() {
	cs_start --locale zh
	cs_enroll cs leaf6
	assert_status 200
	cs_fake_config '{"locale": "de", "deny": "0x80094014"}'
	cs_enroll cs leaf7
	assert_error 403
	cs_log_has "$RID" 'disposition 0x80094014 CERTSRV_E_ADMIN_DENIED_REQUEST'
	cs_stop_and_check
}

t_certsrv_ca_service_down() {
	cs_start
	cs_fake_config '{"ca_down": true}'
	cs_enroll cs leaf8
	assert_error 503
	assert_header Retry-After 7
	cs_log_has "$RID" 'CA service not running: "The Certification Authority Service has not been started\."'
	cs_stop_and_check
}

t_certsrv_connection_refused() {
	cs_start
	cs_enroll csdown leaf9
	assert_error 503
	cs_log_has "$RID" 'enroll failed: curl 7 "Couldn.t connect to server" \(.*\) while submitting request, .*url: https://127\.0\.0\.1:[0-9]+/certsrv/certfnsh\.asp'
	cs_stop_and_check
}

t_certsrv_dns_fail() {
	cs_start
	cs_enroll csdns leaf10
	assert_error 503
	cs_log_has "$RID" 'curl 6 "Couldn.t resolve host name" \(.*nonexistent\.invalid.*\) while submitting request'
	cs_log_has "$RID" 'hint: "check DNS for the CA host or the urls of label csdns"'
	cs_stop_and_check
}

t_certsrv_failover() {
	cs_start
	cs_enroll csfail leaf11
	assert_status 200
	# The first to reach the dead URL (the background chain fetch or this
	# enrollment) fails over and says so; the URL that answered is then
	# remembered.
	grep -qE '\[warn\] .*ca\.certsrv: CA failover: curl 7 "Couldn.t connect to server" .* trying https://127\.0\.0\.1:[0-9]+/certsrv' \
	    "$T/logs/error.log" ||
	    fail "no failover line in the error log" "$T/logs/error.log"
	cs_enroll csfail leaf12
	assert_status 200
	if grep -F "rid=$RID" "$T/logs/error.log" | grep -q 'CA failover'; then
		fail "failed over again instead of using the URL that answered" \
		    "$T/logs/error.log"
	fi
	cs_stop_and_check
}

t_certsrv_bad_credentials() {
	cs_start
	cs_enroll csbadpw leaf13
	assert_error 500
	cs_log_has "$RID" 'HTTP 401 "Unauthorized": bad credentials \(auth ntlm, user FAKE\\certuser\)'
	cs_stop_and_check
}

t_certsrv_basic_auth() {
	cs_start
	cs_enroll csbasic leaf14
	assert_status 200
	cs_stop_and_check
}

t_certsrv_no_secrets_in_logs() {
	cs_start
	cs_enroll cs leaf15
	cs_enroll csbadpw leaf16
	cs_stop_and_check
	if grep -rqF -e "$CS_PASSWORD" -e wrong-password "$T/logs" \
	    "$T/estrad.stderr"; then
		fail "a CA password appears in estrad's logs" "$T/logs/error.log"
	fi
}

t_certsrv_config_errors_named() {
	cs_start
	cs_cleanup
	python3 - "$CS_CONF" "$WORK/conf/certsrv-bad.json" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["labels"]["cs"]["ca"]["tmeplate"] = "x"
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
EOF
	run_bounded 10 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/certsrv-bad.json" &&
	    fail "estrad -t accepted an unknown certsrv key" "$T/t.out"
	assert_file_matches "$T/t.out" 'labels\.cs\.ca\.tmeplate.*unknown key "tmeplate"'
}

t_certsrv_timeout_names_the_limit() {
	cs_start
	cs_fake_config '{"delay_ms": {"certfnsh.asp": 4000}}'
	cs_enroll cstimeout leaf20
	assert_error 503
	cs_log_has "$RID" 'curl 28 "Timeout was reached" .*timeout 2 s'
	log_has_rid "$RID" '"event":"failed"' audit >/dev/null ||
	    fail "no audit record for the timeout" "$T/.log_tail"
	cs_stop_and_check
}

t_certsrv_untrusted_ca_certificate() {
	cs_start
	cs_enroll csuntrusted leaf21
	# A CA certificate the bundle does not vouch for is the operator's to
	# fix (500), and the hint says where.
	assert_error 500
	cs_log_has "$RID" \
	    'curl 60 .*(unable to get local issuer|self-signed certificate in certificate chain)'
	cs_log_has "$RID" 'hint: "[^"]*ca_bundle of label csuntrusted'
	cs_stop_and_check
}

t_certsrv_unexpected_page() {
	cs_start
	cs_enroll csweird leaf22
	[[ $STATUS == 500 || $STATUS == 503 ]] ||
	    fail "a URL that is no certsrv: expected 500 or 503, got $STATUS" \
	    "$T/headers" "$T/body"
	cs_log_has "$RID" '(unexpected answer|HTTP 404)'
	cs_stop_and_check
}

# A CA that answers every submission after 2 s: many enrollments at once
# must take about 2 s in all, not one after another, and /cacerts must
# keep answering meanwhile (compared with the delay, not a tight bound).
# Basic authentication: with NTLM every leg of the handshake to
# certfnsh.asp would wait the 2 s again.
t_certsrv_slow_ca_does_not_serialise() {
	cs_start
	local n=24 i start elapsed pids=()
	for ((i = 0; i < n; i++)); do
		mk_csr "s$i" "/CN=slow$i.phones.example" ec
	done
	python3 -c 'import base64, json, sys
print(json.dumps({"csrs": [base64.b64encode(open(f, "rb").read()).decode()
                           for f in sys.argv[1:]]}))' "$T"/s*.der \
	    >"$T/presign.json"
	curl -s --fail --max-time 120 --cacert "$CERTS/tls-ca.pem" \
	    -H 'Content-Type: application/json' --data-binary "@$T/presign.json" \
	    "$CS_FAKE/_fake/presign" >"$T/presign.out" ||
	    fail "presign failed" "$T/presign.out"
	cs_fake_config '{"delay_ms": {"certfnsh.asp": 2000}}'
	start=$(date +%s%N)
	for ((i = 0; i < n; i++)); do
		curl -s -o "$T/s$i.out" -w '%{http_code}' --max-time 30 \
		    --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
		    -H 'Content-Type: application/pkcs10' \
		    --data-binary "@$T/s$i.b64" \
		    "https://$CS_HOST$EST_PATH/csbasic/simpleenroll" \
		    >"$T/s$i.code" &
		pids+=($!)
	done
	# /cacerts while the CA is busy with every one of them.
	sleep 0.5
	curl -s -o /dev/null -w '%{time_total}' --max-time 10 \
	    --cacert "$CERTS/tls-ca.pem" \
	    "https://$CS_HOST$EST_PATH/cacerts" >"$T/cacerts.time"
	wait "${pids[@]}"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	for ((i = 0; i < n; i++)); do
		assert_eq 200 "$(cat "$T/s$i.code")" "enrollment $i" "$T/s$i.out"
	done
	# Serialised, 24 enrollments would take 48 s; concurrent, about 2 s.
	((elapsed < 2000 * 3)) ||
	    fail "$n enrollments against a 2 s CA took $elapsed ms (> 3 x delay)"
	python3 -c 'import sys; sys.exit(0 if float(open(sys.argv[1]).read()) < 1.0 else 1)' \
	    "$T/cacerts.time" ||
	    fail "/cacerts took $(cat "$T/cacerts.time") s while the CA was slow"
	cs_stop_and_check
}
