#!/usr/bin/env bash
# run.sh [PATTERN...]: estrad's integration tests.
#
# Starts $ESTRAD (default build/estrad) on a free port of 127.0.0.1 with a
# fresh dev PKI and a copy of conf/estrad.json in a temporary directory, runs
# every t_* function (or those whose name contains one of the PATTERNs), prints
# "ok - NAME" / "not ok - NAME: REASON" with excerpts, and ends with the line
# "N passed, M failed".  Exit status 1 if anything failed.
#
# Environment: ESTRAD (binary), KEEP_WORK=1 (keep the temporary directory and
# print its path), TEST_TIMEOUT (seconds per test, default 60).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/integration/lib.sh
. "$HERE/lib.sh"

EST_PATH=/.well-known/est

# Authentication, policy, re-enrollment and PoP tests (t_auth_*), with the
# labels and fixtures they add to the test configuration (auth_config).
# shellcheck source=tests/integration/t_auth.sh
. "$HERE/t_auth.sh"

# The certmonger CA-helper backend (t_helper_*), with its labels
# (helper_config).
# shellcheck source=tests/integration/t_helper.sh
. "$HERE/t_helper.sh"

# The certsrv backend against tests/fakes/fake_certsrv.py (t_certsrv_*).
# shellcheck source=tests/integration/t_certsrv.sh
. "$HERE/t_certsrv.sh"

# What a CSR may ask for: name syntax, curve encoding, extensions on labels
# whose CA receives the CSR as sent (t_policy_*), with its labels
# (policy_config).
# shellcheck source=tests/integration/t_policy.sh
. "$HERE/t_policy.sh"

# Pending requests through the certsrv fake (t_pending_*).
# shellcheck source=tests/integration/t_pending.sh
. "$HERE/t_pending.sh"

# Abuse, CA faults, crash durability, auth bypass matrix (t_abuse_*,
# t_faults_*; issue 10).
# shellcheck source=tests/integration/t_abuse.sh
. "$HERE/t_abuse.sh"
# shellcheck source=tests/integration/t_faults.sh
. "$HERE/t_faults.sh"

# What the TLS handshake may cost a client without credentials: hostile
# client-certificate lists (t_tls_*), on the ab_* helpers of t_abuse.sh.
# shellcheck source=tests/integration/t_tls.sh
. "$HERE/t_tls.sh"

# estrad --doctor against each failure mode, privileges, make install
# (t_doctor_*).
# shellcheck source=tests/integration/t_doctor.sh
. "$HERE/t_doctor.sh"

# The dogtag backend against tests/fakes/fake_dogtag.py (t_dogtag_*).
# shellcheck source=tests/integration/t_dogtag.sh
. "$HERE/t_dogtag.sh"

# SIGHUP reload and the metrics listener, each on an estrad of its own
# (t_reload_*).
# shellcheck source=tests/integration/t_reload.sh
. "$HERE/t_reload.sh"

# Hostile client-supplied fields and the logs parsed back (t_logs_*).
# shellcheck source=tests/integration/t_logs.sh
. "$HERE/t_logs.sh"

# === tests ==================================================================
# Each t_* function is one test.  Globals: see lib.sh.

# --- request ids and logs ---

t_request_id_and_access_log() {
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
	local rid1=$RID
	log_has_rid "$rid1" \
	    "\"GET $EST_PATH/cacerts HTTP/1\\.1\" 200( |$)" access >/dev/null ||
	    fail "no access-log line with rid=$rid1 and the request" \
	    "$T/.log_tail"
	local n
	n=$(grep -cF "rid=$rid1" "$LOGS/access.log")
	assert_eq 1 "$n" "access-log lines with rid=$rid1"
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
	[[ $RID != "$rid1" ]] || fail "two requests got the same X-Request-ID"
}

# --- cacerts ---

t_cacerts() {
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
	assert_header Content-Type application/pkcs7-mime
	assert_header Content-Transfer-Encoding base64
	# curl sends a User-Agent: wrapped at 64 columns (b64_wrap auto).
	assert_b64_wrapped 64
	decode_pkcs7 "$T/cacerts.pem"
	assert_eq 2 "$NCERTS" "certificates in cacerts" "$T/cacerts.pem.names"
	split_certs "$T/cacerts.pem" "$T/ca"
	local got want
	got=$(for f in "$T"/ca-*.pem; do fingerprint "$f"; done | sort)
	want=$(for f in issuing-ca root-ca; do fingerprint "$CERTS/$f.pem"; done |
	    sort)
	assert_eq "$want" "$got" "cacerts = issuing CA + root (SHA-256)"
}

t_cacerts_without_user_agent() {
	http_req GET "$EST_PATH/cacerts" -H 'User-Agent:'
	assert_status 200
	assert_header Content-Type application/pkcs7-mime
	assert_b64_single_line
	decode_pkcs7 "$T/cacerts.pem"
	assert_eq 2 "$NCERTS" "certificates in cacerts" "$T/cacerts.pem.names"
}

t_cacerts_query_string_ignored() {
	http_req GET "$EST_PATH/cacerts?x=1&y"
	assert_status 200
	assert_header Content-Type application/pkcs7-mime
}

t_cacerts_chain_verifies_issued_cert() {
	mk_csr req "/CN=chain-check.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
	decode_pkcs7 "$T/cacerts.pem"
	split_certs "$T/cacerts.pem" "$T/ca"
	local f root="" inter=""
	for f in "$T"/ca-*.pem; do
		if [[ $(openssl x509 -in "$f" -noout -subject) == \
		    "$(openssl x509 -in "$f" -noout -issuer | sed 's/^issuer=/subject=/')" ]]; then
			root=$f
		else
			inter=$f
		fi
	done
	[[ -n $root && -n $inter ]] ||
	    fail "cacerts lacks a self-signed root or an intermediate" \
	    "$T/cacerts.pem"
	openssl verify -CAfile "$root" -untrusted "$inter" "$T/leaf.pem" \
	    >"$T/verify.out" 2>&1 ||
	    fail "issued certificate does not verify against cacerts" \
	    "$T/verify.out"
}

# --- simpleenroll ---

t_enroll_basic_rsa() {
	mk_csr req "/O=estrad test/CN=rsa.example.com" rsa:2048 \
	    -addext "subjectAltName=DNS:rsa.example.com,DNS:www.rsa.example.com"
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	assert_b64_single_line
}

t_enroll_basic_ec() {
	mk_csr req "/CN=ec.example.com" ec \
	    -addext "subjectAltName=DNS:ec.example.com,IP:192.0.2.7"
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	assert_b64_single_line
}

t_enroll_unique_serials() {
	mk_csr a "/CN=serial-a.example" ec
	mk_csr b "/CN=serial-b.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/a.b64" -u "$CRED"
	assert_issued a
	local s1 s2
	s1=$(openssl x509 -in "$T/leaf.pem" -noout -serial)
	post_csr "$EST_PATH/simpleenroll" "$T/b.b64" -u "$CRED"
	assert_issued b
	s2=$(openssl x509 -in "$T/leaf.pem" -noout -serial)
	[[ $s1 != "$s2" ]] || fail "two enrollments got the same $s1"
}

t_enroll_pem_armour() {
	mk_csr req "/CN=pem.example.com" ec \
	    -addext "subjectAltName=DNS:pem.example.com"
	post_csr "$EST_PATH/simpleenroll" "$T/req.pem" -u "$CRED"
	assert_issued req
}

t_enroll_crlf_wrapped() {
	mk_csr req "/CN=crlf.example.com" ec
	sed 's/$/\r/' "$T/req.b64" >"$T/req.crlf"
	post_csr "$EST_PATH/simpleenroll" "$T/req.crlf" -u "$CRED"
	assert_issued req
}

t_enroll_one_line_body() {
	# strongSwan's form: one line, no newline at all.
	mk_csr req "/CN=oneline.example.com" ec
	base64 -w0 "$T/req.der" >"$T/req.one"
	post_csr "$EST_PATH/simpleenroll" "$T/req.one" -u "$CRED"
	assert_issued req
}

t_enroll_content_type_parameter() {
	mk_csr req "/CN=charset.example.com" ec
	http_req POST "$EST_PATH/simpleenroll" -u "$CRED" \
	    -H 'Content-Type: application/pkcs10; charset=x' \
	    --data-binary "@$T/req.b64"
	assert_issued req
}

t_enroll_content_type_case() {
	mk_csr req "/CN=case.example.com" ec
	http_req POST "$EST_PATH/simpleenroll" -u "$CRED" \
	    -H 'Content-Type: Application/PKCS10' --data-binary "@$T/req.b64"
	assert_issued req
}

t_enroll_client_cert() {
	mk_csr req "/CN=by-client-cert.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" \
	    --cert "$CERTS/client.pem" --key "$CERTS/client.key"
	assert_issued req
}

t_enroll_device_cert_implicit() {
	mk_csr req "/CN=device-0001" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" \
	    --cert "$CERTS/device.pem" --key "$CERTS/device.key"
	assert_issued req
}

t_label_devices_client_cert() {
	mk_csr req "/CN=labelled.example" ec
	post_csr "$EST_PATH/devices/simpleenroll" "$T/req.b64" \
	    --cert "$CERTS/client.pem" --key "$CERTS/client.key"
	assert_issued req
	# b64_wrap 64 on this label applies to the enroll answer too.
	assert_b64_wrapped 64
}

t_label_devices_basic_only() {
	mk_csr req "/CN=labelled-basic.example" ec
	post_csr "$EST_PATH/devices/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_status 401
}

# --- authentication ---

t_no_credentials() {
	mk_csr req "/CN=anonymous.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64"
	assert_status 401
	assert_header WWW-Authenticate 'Basic realm="estrad"'
	header_names "$T/headers" | grep -qx 'WWW-Authenticate' ||
	    fail "WWW-Authenticate not in canonical case" "$T/headers"
}

t_wrong_password() {
	local bad="wrong-pw-$RANDOM$RANDOM"
	mk_csr req "/CN=wrongpw.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "estuser:$bad"
	assert_status 401
	assert_header WWW-Authenticate 'Basic realm="estrad"'
	local line
	line=$(log_has_rid "$RID" '\[notice\]' error) ||
	    fail "no [notice] error-log line with rid=$RID" "$T/.log_tail"
	[[ $line != *"$bad"* ]] || fail "the error log shows the password: $line"
	local f
	for f in "$LOGS"/*.log; do
		if grep -qF -- "$bad" "$f"; then
			fail "$(basename "$f") contains the password"
		fi
	done
	grep -qF -- "$bad" "$T/body" && fail "the 401 body echoes the password"
	true
}

t_no_secrets_in_logs() {
	mk_csr req "/CN=secret-check.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	log_has_rid "$RID" '' access >/dev/null ||
	    fail "no access-log line for rid=$RID" "$T/.log_tail"
	local f b64
	b64=$(printf '%s' "$CRED" | base64 -w0)
	for f in "$LOGS"/*.log; do
		if grep -qF -e "$PASSWORD" -e "$b64" -- "$f"; then
			fail "$(basename "$f") contains the password or the" \
			    "Authorization value"
		fi
	done
}

# --- simplereenroll ---

t_reenroll_client_cert() {
	# client.pem: subject CN=demo-client, no SAN; the CSR must equal it.
	mk_csr req "/CN=demo-client" ec
	post_csr "$EST_PATH/simplereenroll" "$T/req.b64" \
	    --cert "$CERTS/client.pem" --key "$CERTS/client.key"
	assert_issued req
}

t_reenroll_without_client_cert() {
	mk_csr req "/CN=demo-client" ec
	post_csr "$EST_PATH/simplereenroll" "$T/req.b64" -u "$CRED"
	assert_error 403
}

t_reenroll_subject_mismatch() {
	mk_csr req "/CN=not-demo-client" ec
	post_csr "$EST_PATH/simplereenroll" "$T/req.b64" \
	    --cert "$CERTS/client.pem" --key "$CERTS/client.key"
	assert_error 403
}

t_reenroll_implicit_cert_refused() {
	# Implicit-anchored (manufacturer) certificates may only simpleenroll.
	mk_csr req "/O=Example Manufacturer/serialNumber=0001/CN=device-0001" ec
	post_csr "$EST_PATH/simplereenroll" "$T/req.b64" \
	    --cert "$CERTS/device.pem" --key "$CERTS/device.key"
	assert_error 403
}

# --- errors ---

t_err_bad_base64() {
	printf 'this is *not* base64!\n' >"$T/bad.b64"
	post_csr "$EST_PATH/simpleenroll" "$T/bad.b64" -u "$CRED"
	assert_error 400
}

t_err_base64_of_garbage() {
	head -c 300 /dev/urandom | base64 -w64 >"$T/garbage.b64"
	post_csr "$EST_PATH/simpleenroll" "$T/garbage.b64" -u "$CRED"
	assert_error 400
}

t_err_sha1_csr() {
	mk_csr req "/CN=sha1.example" rsa:2048 -sha1
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_error 400
}

t_err_rsa1024_csr() {
	mk_csr req "/CN=rsa1024.example" rsa:1024
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_error 400
}

t_err_bad_csr_signature() {
	# Flip a bit in the signature (the last byte of the DER).
	mk_csr req "/CN=badsig.example" rsa:2048
	python3 -c 'import sys
d = bytearray(open(sys.argv[1], "rb").read()); d[-1] ^= 1
open(sys.argv[2], "wb").write(d)' "$T/req.der" "$T/bad.der"
	base64 -w64 "$T/bad.der" >"$T/bad.b64"
	post_csr "$EST_PATH/simpleenroll" "$T/bad.b64" -u "$CRED"
	assert_error 400
}

t_err_wrong_content_type() {
	mk_csr req "/CN=ctype.example" ec
	http_req POST "$EST_PATH/simpleenroll" -u "$CRED" \
	    -H 'Content-Type: text/plain' --data-binary "@$T/req.b64"
	assert_error 415
}

t_err_body_too_large() {
	head -c 70000 /dev/zero | tr '\0' 'A' >"$T/big.b64"
	post_csr "$EST_PATH/simpleenroll" "$T/big.b64" -u "$CRED" -H 'Expect:'
	assert_error 413
}

t_err_unknown_label() {
	http_req GET "$EST_PATH/nosuch/cacerts"
	assert_error 404
}

t_err_unknown_operation() {
	http_req GET "$EST_PATH/foo"
	assert_error 404
}

t_err_get_simpleenroll() {
	http_req GET "$EST_PATH/simpleenroll" -u "$CRED"
	assert_error 405
	assert_header Allow POST
}

t_err_post_cacerts() {
	printf 'AAAA' >"$T/x.b64"
	post_csr "$EST_PATH/cacerts" "$T/x.b64" -u "$CRED"
	assert_error 405
	assert_header Allow GET
}

t_err_fullcmc() {
	head -c 200 /dev/urandom | base64 -w64 >"$T/cmc.b64"
	http_req POST "$EST_PATH/fullcmc" -u "$CRED" \
	    -H 'Content-Type: application/pkcs7-mime; smime-type=CMC-request' \
	    --data-binary "@$T/cmc.b64"
	assert_error 501
}

# --- csrattrs ---

t_csrattrs() {
	http_req GET "$EST_PATH/csrattrs"
	assert_status 200
	assert_header Content-Type application/csrattrs
	assert_header Content-Transfer-Encoding base64
	tr -d ' \t\r\n' <"$T/body" | base64 -d >"$T/attrs.der" 2>"$T/b64.err" ||
	    fail "csrattrs body is not base64" "$T/body"
	openssl asn1parse -inform DER -in "$T/attrs.der" >"$T/attrs.txt" \
	    2>&1 || fail "csrattrs is not DER" "$T/attrs.txt"
	head -n1 "$T/attrs.txt" | grep -q 'cons: SEQUENCE' ||
	    fail "csrattrs is not a SEQUENCE" "$T/attrs.txt"
	assert_file_has "$T/attrs.txt" challengePassword "csrattrs"
	assert_file_has "$T/attrs.txt" ecdsa-with-SHA256 "csrattrs"
}

# --- TLS ---

t_tls11_refused() {
	# SECLEVEL=0 lets OpenSSL 3's client offer TLS 1.1 at all; the
	# refusal must come from estrad.
	s_client "$T/s.out" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
	grep -q 'no protocols available' "$T/s.out" &&
	    fail "test setup: this openssl client cannot offer TLS 1.1" \
	    "$T/s.out.sum"
	local p
	p=$(tls_negotiated "$T/s.out")
	[[ -z $p ]] || fail "$p negotiated with -tls1_1" "$T/s.out.sum"
}

t_tls12() {
	s_client "$T/s.out" -tls1_2 ||
	    fail "TLS 1.2 handshake failed" "$T/s.out.sum"
	assert_eq TLSv1.2 "$(tls_negotiated "$T/s.out")" "protocol" \
	    "$T/s.out.sum"
	grep -q 'Verify return code: 0 (ok)' "$T/s.out" ||
	    fail "server certificate not verified" "$T/s.out.sum"
}

t_tls12_cbc_suite() {
	# strongSwan 5.9.8 without its openssl plugin offers only CBC suites.
	s_client "$T/s.out" -tls1_2 -cipher 'ECDHE-RSA-AES256-SHA384' ||
	    fail "TLS 1.2 with ECDHE-RSA-AES256-SHA384 failed" "$T/s.out.sum"
	assert_eq TLSv1.2 "$(tls_negotiated "$T/s.out")" "protocol" \
	    "$T/s.out.sum"
}

t_tls13() {
	s_client "$T/s.out" -tls1_3 ||
	    fail "TLS 1.3 handshake failed" "$T/s.out.sum"
	assert_eq TLSv1.3 "$(tls_negotiated "$T/s.out")" "protocol" \
	    "$T/s.out.sum"
}

t_tls12_session_resumption() {
	s_client "$T/s1.out" -tls1_2 -sess_out "$T/sess.pem" ||
	    fail "first TLS 1.2 handshake failed" "$T/s1.out.sum"
	[[ -s $T/sess.pem ]] || fail "s_client saved no session" "$T/s1.out.sum"
	s_client "$T/s2.out" -tls1_2 -sess_in "$T/sess.pem" ||
	    fail "second TLS 1.2 handshake failed" "$T/s2.out.sum"
	grep -q '^Reused, TLSv1' "$T/s2.out" ||
	    fail "session not reused" "$T/s2.out.sum"
	assert_eq TLSv1.2 "$(tls_negotiated "$T/s2.out")" "protocol" \
	    "$T/s2.out.sum"
}

# --- audit log ---

t_audit_issued() {
	mk_csr req "/CN=audit.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	local lines
	lines=$(log_has_rid "$RID" '"event" *: *"issued"' audit) ||
	    fail "no audit line with $RID and \"event\":\"issued\"" \
	    "$T/.log_tail"
	printf '%s\n' "$lines" >"$T/audit.lines"
	python3 - "$T/audit.lines" "$RID" >"$T/audit.check" 2>&1 <<'EOF' ||
import json, sys
rid = sys.argv[2]
ok = False
for line in open(sys.argv[1]):
    obj = json.loads(line)
    if not isinstance(obj, dict):
        sys.exit("not a JSON object: " + line)
    if obj.get("event") == "issued" and rid in json.dumps(obj):
        ok = True
if not ok:
    sys.exit("no JSON object with event issued and the rid")
EOF
	    fail "audit line is not the JSON expected" "$T/audit.check" \
	    "$T/audit.lines"
	# Its digests and serial are the issued certificate's and the CSR
	# key's, as openssl computes them.
	local cert_sha spki_sha serial
	cert_sha=$(openssl x509 -in "$T/leaf.pem" -outform DER | sha256sum)
	spki_sha=$(openssl req -in "$T/req.pem" -noout -pubkey |
	    openssl pkey -pubin -outform DER | sha256sum)
	serial=$(openssl x509 -in "$T/leaf.pem" -noout -serial)
	python3 - "$T/audit.lines" "${cert_sha%% *}" "${spki_sha%% *}" \
	    "${serial#serial=}" >"$T/audit.digests" 2>&1 <<'EOF' ||
import json, sys
obj = [json.loads(l) for l in open(sys.argv[1])
       if json.loads(l).get("event") == "issued"][0]
cert, csr = obj["cert"], obj["csr"]
assert cert["sha256"] == sys.argv[2], (cert["sha256"], sys.argv[2])
assert csr["spki_sha256"] == sys.argv[3], (csr["spki_sha256"], sys.argv[3])
assert int(cert["serial"], 16) == int(sys.argv[4], 16), (cert, sys.argv[4])
EOF
	    fail "audit digests are not the certificate's and the key's" \
	    "$T/audit.digests" "$T/audit.lines"
	# Every audit line so far must be JSON.
	python3 -c 'import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        json.loads(line)
    except ValueError as e:
        sys.exit("audit.log line %d: %s" % (n, e))' "$LOGS/audit.log" \
	    >"$T/audit.all" 2>&1 ||
	    fail "audit.log has a line that is not JSON" "$T/audit.all"
}

# --- HTTP framing ---

t_http_framing() {
	# assert_status already checks HTTP/1.1, Content-Length, no chunking
	# on every answer; here the raw form and canonical header names.
	http_req GET "$EST_PATH/cacerts" --include
	assert_eq 200 "$STATUS" "status"
	head -n1 "$T/body" | grep -q $'^HTTP/1\\.1 200 .*\r$' ||
	    fail "raw status line is not 'HTTP/1.1 200 ...CRLF'" "$T/body"
	local n
	for n in Content-Type Content-Length Content-Transfer-Encoding \
	    X-Request-ID; do
		header_names "$T/headers" | grep -qx -- "$n" ||
		    fail "no '$n' header in canonical case" "$T/headers"
	done
	mk_csr req "/CN=framing.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_status 200
	for n in Content-Type Content-Length Content-Transfer-Encoding; do
		header_names "$T/headers" | grep -qx -- "$n" ||
		    fail "no '$n' header in canonical case" "$T/headers"
	done
	http_req GET "$EST_PATH/foo"
	assert_status 404
	header_names "$T/headers" | grep -qx Content-Length ||
	    fail "no 'Content-Length' header in canonical case" "$T/headers"
}

# Every answer tells browsers not to guess its type: a text/plain error
# body that echoes what a client sent is never run as HTML.
t_http_nosniff() {
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
	assert_header X-Content-Type-Options nosniff
	http_req GET "$EST_PATH/foo"
	assert_error 404
	assert_header X-Content-Type-Options nosniff
}

# Request heads that an HTTP proxy in front of estrad and evhttp could
# frame differently (request smuggling) are refused with 400 through the
# normal error path (text/plain, request id, one error-log line naming the
# cause, one access-log line), and the connection is closed after the
# answer.  Each case: a name, the words the answer must name, the request.
t_http_smuggling_refused() {
	local auth name want req n
	auth=$(printf '%s' "$CRED" | base64 -w0)
	local P="POST $EST_PATH/simpleenroll HTTP/1.1"
	local H="Host: 127.0.0.1\r\nAuthorization: Basic $auth\r\nContent-Type: application/pkcs10"
	local -a cases=(
	    "two-lengths|Content-Length|$P\r\n$H\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nMIIBx"
	    "same-length-twice|Content-Length|$P\r\n$H\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nMIIBx"
	    "plus-length|Content-Length|$P\r\n$H\r\nContent-Length: +5\r\n\r\nMIIBx"
	    "minus-length|Content-Length|$P\r\n$H\r\nContent-Length: -1\r\n\r\nMIIBx"
	    "junk-length|Content-Length|$P\r\n$H\r\nContent-Length:  5x\r\n\r\nMIIBx"
	    "te-and-length|Transfer-Encoding|$P\r\n$H\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
	    "te-not-chunked|Transfer-Encoding|$P\r\n$H\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
	    "space-before-colon|space before the colon|$P\r\n$H\r\nContent-Length : 5\r\n\r\nMIIBx"
	    "bare-lf|bare LF|GET $EST_PATH/cacerts HTTP/1.1\nHost: 127.0.0.1\n\n"
	    "bare-lf-one-line|bare LF|GET $EST_PATH/cacerts HTTP/1.1\r\nHost: 127.0.0.1\nX-Other: 1\r\n\r\n"
	    "bare-cr|bare CR|GET $EST_PATH/cacerts HTTP/1.1\r\nX-A: 1\rX-B: 2\r\nHost: 127.0.0.1\r\n\r\n"
	    "nul|NUL|GET $EST_PATH/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Note: a\0b\r\n\r\n"
	    "folded|line folding|GET $EST_PATH/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Note: a\r\n b\r\n\r\n"
	    "get-with-body|a body on a GET request|GET $EST_PATH/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 39\r\n\r\nGET $EST_PATH/csrattrs HTTP/1.1\r\n\r\n"
	)
	: >"$T/mismatch"
	for req in "${cases[@]}"; do
		IFS='|' read -r name want req <<<"$req"
		printf '%b' "$req" >"$T/$name.req"
		# Each case in a subshell, so that every one is tried and the
		# report lists all that differ.
		(
			raw_req "$T/$name.req"
			cp "$T/response" "$T/$name.response"
			[[ $STATUS == 400 ]] ||
			    fail "expected 400, got $STATUS"
			assert_error 400
			assert_file_has "$T/body" "$want" "body"
			assert_header Connection close
			assert_header X-Content-Type-Options nosniff
			n=$(grep -cF "rid=$RID" "$LOGS/error.log")
			assert_eq 1 "$n" "error-log lines with rid=$RID"
			log_has_rid "$RID" \
			    "\[notice\] .*request refused: .*$want" \
			    error >/dev/null ||
			    fail "the error-log line does not name '$want'"
			# One answer, then the connection is closed.
			n=$(grep -ao 'HTTP/1\.1 [0-9][0-9][0-9] ' \
			    "$T/response" | wc -l)
			assert_eq 1 "$n" "answers on the connection"
		) || echo "$name: $(head -n1 "$T/.reason")" >>"$T/mismatch"
	done
	[[ ! -s $T/mismatch ]] ||
	    fail "$(wc -l <"$T/mismatch") of ${#cases[@]} framing cases not refused as they should" \
	    "$T/mismatch"
}

# Bodies may hold bare LFs (base64 wrapping) and chunked framing: a well
# framed enrollment followed by a pipelined request on the same
# connection is answered twice, with the Content-Length and chunked.
t_http_pipelined_bodies_accepted() {
	local auth body len n
	auth=$(printf '%s' "$CRED" | base64 -w0)
	mk_csr pipe /CN=pipelined.example ec
	body=$(cat "$T/pipe.b64")
	len=$(wc -c <"$T/pipe.b64")
	{
		printf 'POST %s/simpleenroll HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\nContent-Type: application/pkcs10\r\nContent-Length: %d\r\n\r\n' \
		    "$EST_PATH" "$auth" "$len"
		cat "$T/pipe.b64"
		printf 'GET %s/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
		    "$EST_PATH"
	} >"$T/length.req"
	raw_req "$T/length.req"
	n=$(grep -ao 'HTTP/1\.1 200 ' "$T/response" | wc -l)
	assert_eq 2 "$n" "200 answers on the Content-Length connection" \
	    "$T/response"
	{
		printf 'POST %s/simpleenroll HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\nContent-Type: application/pkcs10\r\nTransfer-Encoding: chunked\r\n\r\n' \
		    "$EST_PATH" "$auth"
		printf '%x\r\n%s\n\r\n0\r\n\r\n' $((${#body} + 1)) "$body"
		printf 'GET %s/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
		    "$EST_PATH"
	} >"$T/chunked.req"
	raw_req "$T/chunked.req"
	n=$(grep -ao 'HTTP/1\.1 200 ' "$T/response" | wc -l)
	assert_eq 2 "$n" "200 answers on the chunked connection" \
	    "$T/response"
}

# --- strongSwan pki 5.9.8 ---
# strongSwan reads one certificate per --cacert file and must reach a
# self-signed root: it gets the TLS CA, the root of estrad's own TLS
# certificate.

t_strongswan_estca() {
	mkdir -p "$T/out"
	strongswan_pki "$T/pki.out" "$T/pki.err" --estca \
	    --url "https://$HOSTPORT" --cacert "$CERTS/tls-ca.pem" \
	    --caout "$T/out/ca.pem" --outform pem ||
	    fail "pki --estca failed" "$T/pki.err" "$T/pki.out"
	local got want
	got=$(for f in "$T"/out/*; do fingerprint "$f"; done | sort)
	want=$(for f in issuing-ca root-ca; do fingerprint "$CERTS/$f.pem"; done |
	    sort)
	assert_eq "$want" "$got" "CA certificates written by pki --estca" \
	    "$T/pki.err"
}

t_strongswan_est() {
	strongswan_pki "$T/k.der" "$T/gen.err" --gen --type rsa --size 2048 ||
	    fail "pki --gen failed (test setup)" "$T/gen.err"
	strongswan_pki "$T/req.der" "$T/req.err" --req --in "$T/k.der" \
	    --dn "CN=ss-client" --san ss.example.com ||
	    fail "pki --req failed (test setup)" "$T/req.err"
	strongswan_pki "$T/cert.der" "$T/est.err" --est \
	    --url "https://$HOSTPORT" --cacert "$CERTS/tls-ca.pem" \
	    --in "$T/req.der" --userpass "$CRED" --interval 2 \
	    --maxpolltime 10 ||
	    fail "pki --est failed" "$T/est.err"
	openssl x509 -inform DER -in "$T/cert.der" -out "$T/cert.pem" \
	    2>"$T/x509.err" || fail "pki --est wrote no DER certificate" \
	    "$T/x509.err" "$T/est.err"
	openssl verify -CAfile "$CERTS/root-ca.pem" \
	    -untrusted "$CERTS/issuing-ca.pem" "$T/cert.pem" \
	    >"$T/verify.out" 2>&1 ||
	    fail "certificate from pki --est does not verify" "$T/verify.out"
	local s
	s=$(openssl x509 -in "$T/cert.pem" -noout -subject -nameopt RFC2253)
	assert_eq "subject=CN=ss-client" "$s" "subject"
	assert_eq "DNS:ss.example.com" "$(cert_san "$T/cert.pem")" "SAN"
}

# --- configuration check (estrad -t) ---

t_config_test_ok() {
	run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/estrad.json" ||
	    fail "estrad -t refused the running configuration" "$T/t.out"
	assert_file_matches "$T/t.out" 'configuration .* OK'
}

# config_variant NAME PYTHON: $WORK/conf/NAME.json, the test configuration
# changed by one python statement on the dict c.
config_variant() {
	python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
with open(sys.argv[2], "w") as f:
    json.dump(c, f, indent=2)
    f.write("\n")' "$WORK/conf/estrad.json" "$WORK/conf/$1.json" "$2"
}

t_config_test_unknown_key_named_with_position() {
	config_variant typo 'c["labels"]["default"]["b64wrap"] = 64'
	local line
	line=$(grep -n '"b64wrap"' "$WORK/conf/typo.json" | cut -d: -f1)
	if run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/typo.json"; then
		fail "estrad -t accepted an unknown key" "$T/t.out"
	fi
	assert_file_matches "$T/t.out" \
	    "typo\\.json:$line:[0-9]+: labels\\.default: unknown key \"b64wrap\""
}

t_config_test_missing_file_named() {
	config_variant nofile 'c["tls"]["cert"] = "../certs/nosuch.pem"'
	if run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/nofile.json"; then
		fail "estrad -t accepted a missing certificate file" "$T/t.out"
	fi
	assert_file_matches "$T/t.out" \
	    'nofile\.json:[0-9]+:[0-9]+: tls\.cert: .*nosuch\.pem.*No such file'
}

t_config_test_tls10_refused() {
	config_variant tls10 'c["tls"]["min_version"] = "1.0"'
	if run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/tls10.json"; then
		fail "estrad -t accepted min_version 1.0" "$T/t.out"
	fi
	assert_file_matches "$T/t.out" 'tls10\.json:[0-9]+:[0-9]+: tls\.min_version'
}

# --- log formats ---

t_error_log_house_format() {
	printf 'not base64 at all!' >"$T/bad.b64"
	post_csr "$EST_PATH/simpleenroll" "$T/bad.b64" -u "$CRED"
	assert_error 400
	local re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
	re+=' \[notice\] [0-9]+#[0-9]+: rid=[0-9a-f]{16} est\.conn: '
	re+='simpleenroll refused: invalid base64: [^,]+, client: 127\.0\.0\.1:[0-9]+, '
	re+='identity: estuser, label: default, op: simpleenroll, backend: local, '
	re+='answer: 400, hint: "[^"]+"$'
	log_has_rid "$RID" "$re" error >/dev/null ||
	    fail "error-log line is not in the house format" "$T/.log_tail"
}

t_access_log_format() {
	mk_csr req "/CN=access-format.example" ec
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_status 200
	local re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z 127\.0\.0\.1:[0-9]+ '
	re+="rid=$RID \"POST $EST_PATH/simpleenroll HTTP/1\\.1\" 200 [0-9]+ "
	re+='tls=TLSv1\.[23] auth=basic id="estuser" label=default op=simpleenroll '
	re+='backend=local outcome=ISSUED ca_ms=[0-9]+ ms=[0-9]+ retry_after=0 '
	re+='ua="curl/[^"]+"$'
	log_has_rid "$RID" "$re" access >/dev/null ||
	    fail "access-log line is not in the documented format" \
	    "$T/.log_tail"
}

t_audit_refused() {
	mk_csr req "/CN=audit-refused.example" rsa:1024
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_error 400
	log_has_rid "$RID" '"event":"refused"' audit >"$T/line" ||
	    fail "no refused audit record for rid $RID" "$T/.log_tail"
	python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).readline())
assert r["http_status"] == 400, r
assert "1024" in r["reason"], r
assert r["auth"]["identity"] == "estuser", r' "$T/line" 2>"$T/py.err" ||
	    fail "refused audit record lacks status, reason or identity" \
	    "$T/line" "$T/py.err"
}

t_log_reopen_on_sigusr1_and_sighup() {
	local sig i
	for sig in USR1 HUP; do
		mv "$LOGS/access.log" "$LOGS/access.log.$sig"
		mv "$LOGS/error.log" "$LOGS/error.log.$sig"
		kill -"$sig" "$DAEMON_PID"
		for ((i = 0; i < 30; i++)); do
			[[ -f $LOGS/error.log ]] && break
			sleep 0.1
		done
		http_req GET "$EST_PATH/cacerts"
		assert_status 200
		log_has_rid "$RID" '" 200 ' access >/dev/null ||
		    fail "after SIG$sig the access log was not reopened" \
		    "$T/.log_tail"
		if grep -qF "rid=$RID" "$LOGS/access.log.$sig"; then
			fail "after SIG$sig estrad still writes the old access log"
		fi
		assert_file_matches "$LOGS/error.log" \
		    "signal [0-9]+: log files reopened"
	done
}

# --- more wire format ---

t_err_length_required() {
	local auth rid
	auth=$(printf '%s' "$CRED" | base64 -w0)
	printf 'POST %s/simpleenroll HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\nContent-Type: application/pkcs10\r\nConnection: close\r\n\r\n' \
	    "$EST_PATH" "$auth" >"$T/request"
	timeout -k 2 10 openssl s_client -quiet -connect "$HOSTPORT" \
	    -CAfile "$CERTS/tls-ca.pem" <"$T/request" >"$T/response" \
	    2>"$T/s_client.err" || true
	assert_file_matches "$T/response" '^HTTP/1\.1 411 '
	assert_file_matches "$T/response" '^Content-Type: text/plain'
	rid=$(tr -d '\r' <"$T/response" |
	    awk -F': ' '$1 == "X-Request-ID" { print $2 }')
	log_has_rid "$rid" 'no Content-Length.*answer: 411' error >/dev/null ||
	    fail "no error-log line for the 411" "$T/.log_tail"
}

t_include_chain_and_wrap76() {
	mk_csr req "/CN=chained.example" ec
	post_csr "$EST_PATH/chained/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_status 200
	assert_header Content-Type "application/pkcs7-mime; smime-type=certs-only"
	assert_b64_wrapped 76
	decode_pkcs7 "$T/certs.pem"
	assert_eq 3 "$NCERTS" "certificates with include_chain" \
	    "$T/certs.pem.names"
	head -n1 "$T/certs.pem.names" | grep -q 'CN *= *chained.example' ||
	    fail "the issued certificate is not first" "$T/certs.pem.names"
}

t_csrattrs_empty_is_204() {
	http_req GET "$EST_PATH/chained/csrattrs"
	# A 204 carries neither body nor Content-Length (RFC 9110 §8.6).
	assert_eq 204 "$STATUS" "status" "$T/headers"
	[[ ! -s $T/body ]] || fail "204 with a body" "$T/body"
	[[ $RID =~ ^[0-9a-f]{16}$ ]] || fail "no X-Request-ID" "$T/headers"
	log_has_rid "$RID" '" 204 ' access >/dev/null ||
	    fail "no access-log line for the 204" "$T/.log_tail"
}

t_err_bad_label_bytes() {
	http_req GET "$EST_PATH/bad%20label/cacerts"
	assert_error 404
}

t_head_is_405() {
	http_req HEAD "$EST_PATH/cacerts" --head
	[[ $STATUS == 405 ]] ||
	    fail "HEAD cacerts: expected 405, got $STATUS" "$T/headers"
	assert_eq GET "$(get_header Allow)" "Allow"
}


# === runner =================================================================

TEST_TIMEOUT=${TEST_TIMEOUT:-60}
DAEMON_PID=""
WORK=""

say() { printf '%s\n' "$*"; }

# The t_* functions in the order they are defined.
list_tests() {
	local name line file
	shopt -s extdebug
	while read -r _ _ name; do
		[[ $name == t_* ]] || continue
		read -r _ line file < <(declare -F "$name")
		printf '%s %s\n' "$line" "$name"
	done < <(declare -F) | sort -n | cut -d' ' -f2
	shopt -u extdebug
}

stop_daemon() {
	[[ -n $DAEMON_PID ]] || return 0
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$DAEMON_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$DAEMON_PID" 2>/dev/null; then
			say "# estrad did not exit within 5 s of SIGTERM; killing it"
			kill -KILL "$DAEMON_PID" 2>/dev/null
		fi
	fi
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_RC=$?
	DAEMON_PID=""
}

cleanup() {
	stop_daemon
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ ${KEEP_WORK:-0} == 1 ]]; then
			say "# work directory kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# write_config PORT: $WORK/conf/estrad.json from conf/estrad.json; the
# layout conf/ certs/ logs/ under $WORK keeps its relative paths valid.
write_config() {
	python3 - "$ROOT/conf/estrad.json" "$WORK/conf/estrad.json" "$1" <<'EOF'
import json, sys
src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = json.load(open(src))
cfg["listen"] = ["127.0.0.1:" + port]
cfg["workers"] = 2
cfg["limits"]["max_body"] = 65536
# The shipped labels bind every client to its own name and every
# certificate to the label that issued it, and estrad drops to "nobody";
# t_auth_shipped_* test that on conf/estrad.json as shipped.  The tests
# here enroll any name with the demo login and present client.pem and
# device.pem on any label, and reload files under $WORK (root's, mode 0700
# when run as root): their copy stays as the user who started it, its
# three labels trust tls.* (the default label's CA and the manufacturer
# CA), bind no name and have no RA clients.
cfg.pop("user", None)
cfg.pop("group", None)
cfg["tls"]["implicit_ca"] = "../certs/manufacturer-ca.pem"
for name in ("default", "phones", "devices"):
    lab = cfg["labels"][name]
    lab.pop("trust", None)
    lab.pop("ra_clients", None)
    lab.get("policy", {}).pop("cn_equals", None)
cfg["labels"]["default"]["policy"] = {
    "san": {"max": 20},
    "extensions": {"allow": ["subjectAltName"], "unlisted": "drop"}}
cfg["labels"]["devices"].get("policy", {}).pop("san", None)
# A label for the options the shipped config leaves at their defaults:
# include_chain, 76-column wrapping, nothing to ask in csrattrs.
chained = json.loads(json.dumps(cfg["labels"]["default"]))
chained.update({"include_chain": True, "b64_wrap": 76, "csrattrs": []})
cfg["labels"]["chained"] = chained
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
EOF
	auth_config "$WORK/conf/estrad.json" &&
	    helper_config "$WORK/conf/estrad.json" &&
	    policy_config "$WORK/conf/estrad.json"
}

# start_daemon: starts estrad and waits (<= 10 s) until it answers over TLS.
# Returns 1 with SETUP_ERROR and SETUP_FILES set when it does not.
start_daemon() {
	local attempt deadline rc
	for attempt in 1 2 3; do
		PORT=$(free_port) || {
			SETUP_ERROR="cannot pick a free port (python3)"
			return 1
		}
		HOSTPORT=127.0.0.1:$PORT
		write_config "$PORT" || {
			SETUP_ERROR="cannot write the test configuration"
			return 1
		}
		: >"$WORK/estrad.stderr"
		(cd "$WORK" && exec "$ESTRAD" -c "$WORK/conf/estrad.json" \
		    >"$WORK/estrad.stdout" 2>"$WORK/estrad.stderr" </dev/null) &
		DAEMON_PID=$!
		deadline=$((SECONDS + 10))
		while ((SECONDS < deadline)); do
			if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
				wait "$DAEMON_PID"
				rc=$?
				DAEMON_PID=""
				if grep -qi 'address already in use' \
				    "$WORK/estrad.stderr" "$LOGS"/error.log \
				    2>/dev/null && ((attempt < 3)); then
					continue 2
				fi
				SETUP_ERROR="estrad exited during startup (status $rc)"
				SETUP_FILES=("$WORK/estrad.stderr" "$LOGS/error.log")
				return 1
			fi
			if curl --silent --output /dev/null --max-time 1 \
			    --cacert "$CERTS/tls-ca.pem" \
			    "https://$HOSTPORT$EST_PATH/cacerts" \
			    2>"$WORK/ready.err"; then
				return 0
			fi
			sleep 0.1
		done
		curl --silent --show-error --output /dev/null --max-time 2 \
		    --cacert "$CERTS/tls-ca.pem" \
		    "https://$HOSTPORT$EST_PATH/cacerts" 2>"$WORK/ready.err"
		SETUP_ERROR="estrad does not answer TLS on $HOSTPORT after 10 s"
		SETUP_FILES=("$WORK/ready.err" "$WORK/estrad.stderr"
		    "$LOGS/error.log")
		return 1
	done
	SETUP_ERROR="no free port after 3 attempts"
	return 1
}

# setup: work directory, dev PKI, configuration, daemon.
setup() {
	SETUP_FILES=()
	if [[ $ESTRAD != /* ]]; then
		if [[ -e $ESTRAD ]]; then
			ESTRAD=$(pwd)/$ESTRAD
		else
			ESTRAD=$ROOT/$ESTRAD
		fi
	fi
	if [[ ! -x $ESTRAD || -d $ESTRAD ]]; then
		SETUP_ERROR="estrad binary $ESTRAD not found or not executable (build it with make, or set ESTRAD)"
		return 1
	fi
	local tool
	for tool in openssl curl python3 base64 timeout; do
		command -v "$tool" >/dev/null 2>&1 || {
			SETUP_ERROR="$tool is not installed"
			return 1
		}
	done
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/estrad-it.XXXXXX") || {
		SETUP_ERROR="mktemp failed"
		return 1
	}
	CERTS=$WORK/certs
	LOGS=$WORK/logs
	mkdir -p "$WORK/conf" "$LOGS" "$WORK/t"
	"$ROOT/scripts/mkcerts.sh" "$CERTS" >"$WORK/mkcerts.out" 2>&1 || {
		SETUP_ERROR="scripts/mkcerts.sh failed"
		SETUP_FILES=("$WORK/mkcerts.out")
		return 1
	}
	CRED=$(head -n1 "$CERTS/demo.credentials")
	PASSWORD=${CRED#*:}
	# CSRs: subjects as UTF8String like client.pem (string_mask utf8only),
	# whatever the system openssl.cnf says.
	printf '[ req ]\ndistinguished_name = dn\nstring_mask = utf8only\n[ dn ]\n' \
	    >"$WORK/req.cnf"
	start_daemon
}

# run_one NAME: runs t_NAME in a subshell under a watchdog; 0 if it passed.
run_one() {
	local name=$1 rc
	T=$WORK/t/${name#t_}
	mkdir -p "$T"
	(
		trap - EXIT
		set +e
		"$name"
	) >"$T/.out" 2>&1 &
	local pid=$!
	(
		trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
		sleep "$TEST_TIMEOUT" &
		sleeper=$!
		wait "$sleeper"
		echo "timed out after $TEST_TIMEOUT s" >"$T/.reason"
		kill -TERM "$pid" 2>/dev/null
	) >/dev/null 2>&1 &
	local watchdog=$!
	wait "$pid"
	rc=$?
	kill -TERM "$watchdog" 2>/dev/null
	wait "$watchdog" 2>/dev/null
	if [[ $rc -ne 0 && ! -s $T/.reason ]]; then
		{
			echo "exited with status $rc"
			excerpt "$T/.out"
		} >"$T/.reason"
	fi
	if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		wait "$DAEMON_PID" 2>/dev/null
		local drc=$?
		{
			[[ -s $T/.reason ]] && cat "$T/.reason"
			echo "estrad died during this test (exit status $drc)"
			excerpt_tail "$WORK/estrad.stderr" 30
			excerpt_tail "$LOGS/error.log"
		} >"$T/.reason.new"
		mv "$T/.reason.new" "$T/.reason"
		DAEMON_PID=""
		DAEMON_DEAD=1
		return 1
	fi
	return "$rc"
}

# report NAME: "not ok - NAME: first line", the rest as "# " lines.
report_failure() {
	local name=$1 file=$2
	say "not ok - $name: $(head -n1 "$file")"
	tail -n +2 "$file" | sed 's/^/#   /'
}

main() {
	ESTRAD=${ESTRAD:-build/estrad}
	local -a tests selected=()
	mapfile -t tests < <(list_tests)
	local t p
	for t in "${tests[@]}"; do
		if [[ $# -eq 0 ]]; then
			selected+=("$t")
			continue
		fi
		for p in "$@"; do
			if [[ $t == *"$p"* ]]; then
				selected+=("$t")
				break
			fi
		done
	done
	if [[ ${#selected[@]} -eq 0 ]]; then
		say "no test matches: $*"
		say "0 passed, 0 failed"
		exit 1
	fi

	trap cleanup EXIT
	trap 'exit 130' INT TERM
	say "# estrad integration tests (${#selected[@]})"
	if ! setup; then
		say "not ok - setup: $SETUP_ERROR"
		local f
		for f in "${SETUP_FILES[@]}"; do
			excerpt_tail "$f" 20 | sed 's/^/#   /'
		done
		say "# ${#selected[@]} tests not run"
		say "0 passed, ${#selected[@]} failed"
		exit 1
	fi
	say "# $ESTRAD on $HOSTPORT, work directory $WORK"

	local passed=0 failed=0
	DAEMON_DEAD=0
	for t in "${selected[@]}"; do
		local name=${t#t_}
		if ((DAEMON_DEAD)); then
			say "not ok - $name: estrad is not running"
			failed=$((failed + 1))
			continue
		fi
		if run_one "$t"; then
			say "ok - $name"
			passed=$((passed + 1))
		else
			report_failure "$name" "$T/.reason"
			failed=$((failed + 1))
		fi
	done

	# Shutdown: SIGTERM must end estrad within 5 s; sanitizer reports
	# anywhere in its stderr count as a failure.
	if ((!DAEMON_DEAD)); then
		stop_daemon
		say "# estrad exited with status $DAEMON_RC after SIGTERM"
	fi
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' \
	    "$WORK/estrad.stderr" 2>/dev/null; then
		say "not ok - sanitizer: estrad's stderr has sanitizer reports"
		grep -m5 -E 'ERROR: |runtime error:' "$WORK/estrad.stderr" |
		    sed 's/^/#   /'
		failed=$((failed + 1))
	fi

	say "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
