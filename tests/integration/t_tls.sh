# shellcheck shell=bash
# t_tls.sh: what a client without credentials can make the TLS handshake
# cost, sourced by run.sh after t_abuse.sh (whose ab_* helpers it uses).
#
#   t_tls_chain_*        client-certificate lists that are too large, too
#                        long, or carry RSA keys with absurd public
#                        exponents or moduli are refused during the
#                        handshake, before any signature work, with one
#                        notice line each; the demo client certificate
#                        and an untrusted but sane one still work
#   t_tls_verify_depth_* tls.verify_depth applies, and a SIGHUP applies a
#                        new value to new connections
#
# The lists come from $TOOLS/hostile_chain (tests/tools/hostile_chain.c),
# made at test time.

# tls_hostile OUT-PREFIX ARGS...: $OUT-PREFIX.pem (the list, leaf first) and
# $OUT-PREFIX.key (the leaf's key) from hostile_chain with ARGS.
tls_hostile() {
	local out=$1 tools=${TOOLS:-build/tools}
	shift
	[[ $tools == /* ]] || tools=$ROOT/$tools
	"$tools/hostile_chain" -o "$out.pem" -k "$out.key" "$@" \
	    >"$T/hostile.err" 2>&1 ||
	    fail "hostile_chain $* failed (test setup)" "$T/hostile.err"
}

# tls_refused LIST-PREFIX ERE [HOSTPORT [CURL-ARGS...]]: /cacerts with the
# list as client certificate gets no answer (the handshake is refused), and
# the error log gains exactly one line, a notice of est.listener matching
# ERE and naming the client.
tls_refused() {
	local list=$1 ere=$2 host=${3:-$HOSTPORT} before n
	shift 2
	[[ $# -gt 0 ]] && shift
	before=$(wc -l <"$LOGS/error.log")
	http_req GET "https://$host$EST_PATH/cacerts" \
	    --cert "$list.pem" --key "$list.key" "$@"
	[[ $STATUS == 000 ]] ||
	    fail "/cacerts with $(basename "$list").pem: expected a refused handshake, got HTTP $STATUS" \
	    "$T/curl.err" "$LOGS/error.log"
	# The refusal is logged on estrad's worker as the alert goes out;
	# give the line a moment to land among any others.
	for _ in $(seq 1 50); do
		tail -n +"$((before + 1))" "$LOGS/error.log" >"$T/new-lines.log"
		grep -q 'TLS handshake refused' "$T/new-lines.log" && break
		sleep 0.1
	done
	n=$(grep -cE "\[notice\] [0-9]+#[0-9]+: est\.listener: TLS handshake refused: $ere.*, client: 127\.0\.0\.1:[0-9]+" \
	    "$T/new-lines.log")
	assert_eq 1 "$n" "refusal lines matching /$ere/" "$T/new-lines.log"
	n=$(grep -c 'TLS handshake refused' "$T/new-lines.log")
	assert_eq 1 "$n" "refusal lines in all" "$T/new-lines.log"
}

# tls_cacerts_ok [CURL-ARGS...]: /cacerts answers 200 with those arguments.
tls_cacerts_ok() {
	http_req GET "$EST_PATH/cacerts" "$@"
	[[ $STATUS == 200 ]] ||
	    fail "/cacerts $*: expected 200, got $STATUS" "$T/curl.err" \
	    "$LOGS/error.log"
}

# The attack as reported: 72 certificates whose RSA keys have 3071-bit
# public exponents, 97 KB, sent to /cacerts with the shipped settings.
# estrad verified every link (half a second of CPU each time); the list
# is now refused by its size before a certificate is even parsed.
t_tls_chain_hostile_list_refused() {
	tls_hostile "$T/h72" -n 72 -b 3072 -e 3071
	tls_refused "$T/h72" \
	    "client certificate list larger than tls\.max_cert_list \(16384 bytes\)"
	tls_refused "$T/h72" "client certificate list larger than" \
	    "$HOSTPORT" --tls-max 1.2
	# Nothing else changed: the demo client still gets in.
	tls_cacerts_ok --cert "$CERTS/client.pem" --key "$CERTS/client.key"
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
}

# A short list (within the size and the depth) of certificates whose RSA
# public exponents have 3071 bits: refused before any signature work, the
# leaf's own key included (it would check CertificateVerify).
t_tls_chain_huge_exponent_refused() {
	tls_hostile "$T/h6" -n 6 -b 3072 -e 3071
	tls_refused "$T/h6" \
	    "certificate 0 of the 6 the client sent has an RSA public exponent of 3071 bits \(at most 32 accepted\)"
	# TLS 1.2 reaches the same check by another path of OpenSSL's.
	tls_refused "$T/h6" "certificate 0 of the 6 the client sent" \
	    "$HOSTPORT" --tls-max 1.2
	# Only the leaf's exponent is absurd: the same refusal.
	tls_hostile "$T/h1" -n 1 -b 2048 -e 40
	tls_refused "$T/h1" \
	    "certificate 0 of the 1 the client sent has an RSA public exponent of 40 bits"
	tls_cacerts_ok --cert "$CERTS/client.pem" --key "$CERTS/client.key"
}

# More certificates than tls.verify_depth (4 by default) allows: leaf, 4
# intermediates and a root at most.
t_tls_chain_too_long_refused() {
	tls_hostile "$T/n7" -n 7 -b 2048
	tls_refused "$T/n7" \
	    "the client sent 7 certificates, more than tls\.verify_depth 4 allows \(6\)"
	# Six pass the TLS layer; none chains to a store, and /cacerts,
	# which needs no authentication, answers.
	tls_hostile "$T/n6" -n 6 -b 2048
	tls_cacerts_ok --cert "$T/n6.pem" --key "$T/n6.key"
}

# A CA certificate whose RSA modulus is larger than tls.max_key_bits
# (8192 by default).
t_tls_chain_key_too_large_refused() {
	tls_hostile "$T/big" -n 2 -b 2048 -x 9000
	tls_refused "$T/big" \
	    "certificate 1 of the 2 the client sent has an RSA key of 9000 bits, more than tls\.max_key_bits 8192"
}

# A sane certificate that chains to no store is no identity but no reason
# to refuse the connection either: anonymous operations answer, Basic
# enrolls, and the RA says why the certificate did not count.
t_tls_chain_untrusted_cert_anonymous_ok() {
	tls_hostile "$T/u" -n 2 -b 2048 -s untrusted
	tls_cacerts_ok --cert "$T/u.pem" --key "$T/u.key"
	mk_csr r "/CN=tls-untrusted-basic" rsa:2048
	post_csr "$EST_PATH/simpleenroll" "$T/r.b64" -u "$CRED" \
	    --cert "$T/u.pem" --key "$T/u.key"
	assert_status 200
	log_has_rid "$RID" 'client certificate not accepted: .*subject: "CN=untrusted 0"' \
	    >/dev/null ||
	    fail "no notice why the certificate did not count" "$T/.log_tail"
}

# tls.verify_depth 0: the demo client sending its whole chain (leaf,
# issuing CA, root) is refused; a SIGHUP with 1 lets the same client in.
t_tls_verify_depth_config_and_reload() {
	ab_start 'cfg["tls"]["verify_depth"] = 0'
	cat "$CERTS/client.pem" "$CERTS/issuing-ca.pem" "$CERTS/root-ca.pem" \
	    >"$T/client.pem"
	cp "$CERTS/client.key" "$T/client.key"
	tls_refused "$T/client" \
	    "the client sent 3 certificates, more than tls\.verify_depth 0 allows \(2\)" \
	    "$AB_HOST"
	python3 - "$AB_CONF" <<'EOF' || fail "cannot rewrite the configuration"
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["tls"]["verify_depth"] = 1
with open(sys.argv[1], "w") as f:
    json.dump(cfg, f, indent=2)
EOF
	kill -HUP "$AB_PID"
	for _ in $(seq 1 50); do
		grep -q 'reloaded: generation 2' "$LOGS/error.log" && break
		sleep 0.1
	done
	assert_file_has "$LOGS/error.log" 'reloaded: generation 2'
	http_req GET "https://$AB_HOST$EST_PATH/cacerts" \
	    --cert "$T/client.pem" --key "$T/client.key"
	assert_status 200
	ab_cleanup
	ab_sanitizer_check
}
