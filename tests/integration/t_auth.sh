# shellcheck shell=bash
# t_auth.sh: client authentication, per-label authorization policy,
# re-enrollment and proof-of-possession (issue 4), against the real daemon.
# Sourced by run.sh; every t_auth_* function is one test.
#
# auth_config (called by run.sh's write_config) adds test labels and makes
# the fixtures they name under $WORK/authfix: authorizer scripts, an RA
# client certificate, a client certificate without EKU, a revoked one and
# the CRL that lists it.  Certificates with odd validity periods are made
# in the tests with `openssl ca -startdate/-enddate`.  Requests with real
# channel bindings go through $TOOLS/est_client (tests/tools/est_client.c).

# --- fixtures ---------------------------------------------------------------

# auth_ca_init DIR: an `openssl ca` database in DIR for the dev issuing CA.
auth_ca_init() {
	local d=$1
	mkdir -p "$d/new"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
	cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = dev
[ dev ]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $CERTS/issuing-ca.pem
private_key = $CERTS/issuing-ca.key
default_md = sha256
default_crl_days = 30
policy = anything
unique_subject = no
copy_extensions = none
preserve = yes
string_mask = utf8only
[ anything ]
commonName = supplied
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[ ra ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth, 1.3.6.1.5.5.7.3.28
[ noeku ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
[ catrue ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
extendedKeyUsage = clientAuth
EOF
}

# auth_date OFFSET: UTCTime for openssl ca, e.g. auth_date '-5 days'.
auth_date() {
	date -u -d "$1" +%y%m%d%H%M%SZ
}

# auth_issue DIR NAME CN EXT START END: DIR/NAME.key and DIR/NAME.pem, a
# certificate of the dev issuing CA for CN with extensions EXT, valid from
# START to END (openssl ca dates).  Returns non-zero when openssl fails.
auth_issue() {
	local d=$1 name=$2 cn=$3 ext=$4 start=$5 end=$6
	openssl req -new -config "$WORK/req.cnf" -newkey ec \
	    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$name.key" \
	    -subj "/CN=$cn" -out "$d/$name.csr" >>"$d/openssl.log" 2>&1 &&
	    openssl ca -batch -config "$d/ca.cnf" -extensions "$ext" \
		-startdate "$start" -enddate "$end" -notext \
		-in "$d/$name.csr" -out "$d/$name.pem" >>"$d/openssl.log" 2>&1
}

# auth_config FILE: adds the test labels to the configuration FILE and
# makes their fixtures (once: write_config may run several times).
auth_config() {
	local cfg=$1 fix=$WORK/authfix
	if [[ ! -e $fix/.done ]]; then
		mkdir -p "$fix"
		auth_ca_init "$fix/ca"
		auth_issue "$fix/ca" ra ra-client ra \
		    "$(auth_date '-1 day')" "$(auth_date '+30 days')" &&
		    auth_issue "$fix/ca" noeku noeku-client noeku \
			"$(auth_date '-1 day')" "$(auth_date '+30 days')" &&
		    auth_issue "$fix/ca" good good-client client \
			"$(auth_date '-1 day')" "$(auth_date '+30 days')" &&
		    auth_issue "$fix/ca" revoked revoked-client client \
			"$(auth_date '-1 day')" "$(auth_date '+30 days')" &&
		    openssl ca -config "$fix/ca/ca.cnf" \
			-revoke "$fix/ca/revoked.pem" >>"$fix/ca/openssl.log" 2>&1 &&
		    openssl ca -config "$fix/ca/ca.cnf" -gencrl \
			-out "$fix/crl.pem" >>"$fix/ca/openssl.log" 2>&1 &&
		    openssl ca -config "$fix/ca/ca.cnf" -gencrl \
			-crl_lastupdate "$(auth_date '-40 days')" \
			-crl_nextupdate "$(auth_date '-10 days')" \
			-out "$fix/crl-stale.pem" >>"$fix/ca/openssl.log" 2>&1 ||
		    return 1
		# The authorizers: one records its input and allows, one
		# denies with a reason, one never answers in time.
		cat >"$fix/allow.sh" <<EOF
#!/bin/sh
cat >"$fix/authz-input.\$ESTRAD_RID.json"
env >"$fix/authz-env.\$ESTRAD_RID"
exit 0
EOF
		cat >"$fix/deny.sh" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "device not in inventory"
exit 3
EOF
		cat >"$fix/slow.sh" <<'EOF'
#!/bin/sh
exec sleep 30
EOF
		chmod 755 "$fix"/*.sh
		touch "$fix/.done"
	fi
	python3 - "$cfg" "$fix" <<'PYEOF'
import copy, json, sys
path, fix = sys.argv[1], sys.argv[2]
cfg = json.load(open(path))
base = cfg["labels"]["default"]

def label(**kw):
    l = {"ca": copy.deepcopy(base["ca"]), "csrattrs": []}
    l.update(kw)
    return l

L = cfg["labels"]
L["t-pop"] = label(auth=["cert", "basic"], pop="required",
                   tls_exporter=True)
L["t-strict"] = label(auth=["cert+basic"], policy={
    "cn_equals": "user",
    "san": {"dns": ["[a-z0-9-]+\\.strict\\.example"], "max": 2},
    "keys": {"ec": ["P-384"]},
    "signature": ["sha384"],
    "extensions": {"allow": ["subjectAltName"], "unlisted": "refuse"}})
L["t-ra"] = label(auth=["cert"], ra_clients={"enabled": True},
                  policy={"cn_equals": "cert_cn"})
L["t-grace"] = label(reenroll={"grace_days": 30})
L["t-renewonly"] = label(reenroll={"rekey": False})
L["t-crl"] = label(auth=["cert"], crl=fix + "/crl.pem")
L["t-implicit-off"] = label(auth=["cert"], trust={"enroll": ["explicit"]})
L["t-eku"] = label(auth=["cert"], require_client_auth_eku=True)
L["t-eku-off"] = label(auth=["cert"], require_client_auth_eku=False)
L["t-crl-stale"] = label(auth=["cert"], crl=fix + "/crl-stale.pem")
L["t-own"] = label(auth=["cert"], trust={
    "explicit_ca": "../certs/issuing-ca.pem"})
L["t-own-inherit"] = label(auth=["cert"], trust={
    "explicit_ca": "../certs/issuing-ca.pem", "inherit": True})
L["t-private"] = label(anonymous=[])
L["t-authz-allow"] = label(authorizer={"command": [fix + "/allow.sh"]})
L["t-authz-deny"] = label(authorizer={"command": [fix + "/deny.sh"]})
L["t-authz-slow"] = label(authorizer={"command": [fix + "/slow.sh"],
                                      "timeout": 1})
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
PYEOF
}

# --- helpers ------------------------------------------------------------------

# est_req PATH [EST_CLIENT-ARGS...]: one enrollment through est_client,
# leaving $T/headers, $T/body, $T/info, $T/client.err; sets STATUS (000
# when no answer came) and RID.
est_req() {
	local path=$1 tools=${TOOLS:-build/tools}
	shift
	[[ $tools == /* ]] || tools=$ROOT/$tools
	rm -f "$T/headers" "$T/body" "$T/info"
	STATUS=$("$tools/est_client" --url "https://$HOSTPORT$path" \
	    --cacert "$CERTS/tls-ca.pem" --headers "$T/headers" \
	    --body "$T/body" --info "$T/info" "$@" 2>"$T/client.err") ||
	    STATUS=000
	[[ -n $STATUS ]] || STATUS=000
	touch "$T/headers" "$T/body"
	RID=$(get_header X-Request-ID)
	[[ $STATUS != 000 ]] || fail "est_client got no answer" "$T/client.err"
}

# auth_refused CODE ERE: an estrad refusal (see assert_error) whose reason
# matches ERE in the text/plain body, the error-log line and the audit
# record of the request.
auth_refused() {
	local code=$1 re=$2
	assert_error "$code"
	assert_file_matches "$T/body" "$re" "error body"
	log_has_rid "$RID" "$re" error >/dev/null ||
	    fail "no error-log line with rid=$RID matching /$re/" "$T/.log_tail"
	log_has_rid "$RID" \
	    "\"event\":\"(refused|failed)\".*\"reason\":\"([^\"\\\\]|\\\\.)*$re" \
	    audit >/dev/null ||
	    fail "no refusal audit record with rid=$RID matching /$re/" \
	    "$T/.log_tail"
}

# auth_issued: the last answer is an enroll answer with a certificate that
# chains to the dev root; leaves it in $T/leaf.pem.
auth_issued() {
	assert_status 200
	assert_header Content-Type 'application/pkcs7-mime; smime-type=certs-only'
	decode_pkcs7 "$T/leaf.pem"
	assert_eq 1 "$NCERTS" "certificates in the enroll answer"
	openssl verify -CAfile "$CERTS/root-ca.pem" \
	    -untrusted "$(dev_issuing_cas)" "$T/leaf.pem" \
	    >"$T/verify.out" 2>&1 ||
	    fail "issued certificate does not verify" "$T/verify.out"
}

# auth_subject PEM: the certificate's subject, RFC 2253.
auth_subject() {
	local s
	s=$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253)
	echo "${s#subject=}"
}

# auth_audit_has ERE: the audit record of $RID matches ERE.
auth_audit_has() {
	log_has_rid "$RID" "$1" audit >/dev/null ||
	    fail "audit record of rid=$RID does not match /$1/" "$T/.log_tail"
}

# auth_ca DIR: a fresh `openssl ca` database for certificates of one test.
auth_ca() {
	auth_ca_init "$1"
}

# --- authentication -------------------------------------------------------

t_auth_enroll_manufacturer_cert() {
	est_req "$EST_PATH/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=device-0001
	auth_issued
	auth_audit_has '"method":"cert".*"store":"implicit"'
	# A label that accepts the explicit store only for enrollment.
	est_req "$EST_PATH/t-implicit-off/simpleenroll" \
	    --cert "$CERTS/device.pem" --key "$CERTS/device.key" \
	    --subject /CN=device-0001
	auth_refused 403 'anchored in the implicit store'
}

t_auth_enroll_basic_preemptive_and_challenged() {
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
	    --subject /CN=basic-pre.example
	auth_issued
	auth_audit_has '"method":"basic","identity":"estuser"'
	# libest's way: nothing until a 401 with WWW-Authenticate.
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --challenge \
	    --subject /CN=basic-challenged.example
	auth_issued
	grep -q '^HTTP/1.1 401' "$T/headers" ||
	    fail "no 401 before the credentials" "$T/headers"
	grep -qi '^WWW-Authenticate: Basic realm="estrad"' "$T/headers" ||
	    fail "the 401 has no WWW-Authenticate" "$T/headers"
}

# auth_basic_refused DETAIL: a 401 for Basic credentials whose body and
# audit reason say only that the user name or password was not accepted,
# while the error-log line names DETAIL ("unknown user", "wrong password").
auth_basic_refused() {
	local generic='authentication failed: user name or password not accepted'
	assert_error 401
	assert_header WWW-Authenticate 'Basic realm="estrad"'
	assert_file_matches "$T/body" "^$generic \\(request $RID\\)$" \
	    "error body"
	log_has_rid "$RID" "\"event\":\"refused\".*\"reason\":\"$generic\"" \
	    audit >/dev/null ||
	    fail "the audit reason is not '$generic'" "$T/.log_tail"
	log_has_rid "$RID" "authentication failed: $1, " error >/dev/null ||
	    fail "the error-log line does not say '$1'" "$T/.log_tail"
}

t_auth_wrong_password() {
	local bad="bad-$RANDOM$RANDOM"
	est_req "$EST_PATH/simpleenroll" --basic "estuser:$bad" --challenge \
	    --subject /CN=wrong.example
	auth_basic_refused 'wrong password'
	local f
	for f in "$LOGS"/*.log; do
		! grep -qF -- "$bad" "$f" ||
		    fail "$(basename "$f") contains the password"
	done
}

t_auth_unknown_user() {
	est_req "$EST_PATH/simpleenroll" --basic "nobody-$RANDOM:x" \
	    --subject /CN=unknown.example
	auth_basic_refused 'unknown user'
}

# Whether a user exists must not show in the answer: the 401 of an unknown
# user and of a known user's wrong password are the same but for the rid.
t_auth_401_same_for_unknown_user_and_wrong_password() {
	est_req "$EST_PATH/simpleenroll" --basic "estuser:bad-$RANDOM" \
	    --subject /CN=same.example
	assert_error 401
	sed "s/$RID/RID/" "$T/body" >"$T/wrong.body"
	grep -v -i -e '^X-Request-ID:' -e '^Date:' "$T/headers" \
	    >"$T/wrong.headers"
	est_req "$EST_PATH/simpleenroll" --basic "nobody-$RANDOM:bad" \
	    --subject /CN=same.example
	assert_error 401
	sed "s/$RID/RID/" "$T/body" >"$T/unknown.body"
	grep -v -i -e '^X-Request-ID:' -e '^Date:' "$T/headers" \
	    >"$T/unknown.headers"
	cmp -s "$T/wrong.body" "$T/unknown.body" ||
	    fail "the 401 bodies differ" "$T/wrong.body" "$T/unknown.body"
	cmp -s "$T/wrong.headers" "$T/unknown.headers" ||
	    fail "the 401 headers differ" "$T/wrong.headers" \
	    "$T/unknown.headers"
}

t_auth_missing_auth() {
	est_req "$EST_PATH/simpleenroll" --subject /CN=anon.example
	auth_refused 401 'authentication required'
	assert_header WWW-Authenticate 'Basic realm="estrad"'
}

t_auth_client_auth_eku() {
	local fix=$WORK/authfix/ca
	# Without an EKU the certificate passes the clientAuth purpose, but
	# a label wants the EKU listed unless require_client_auth_eku is
	# false.
	est_req "$EST_PATH/t-eku-off/simpleenroll" --cert "$fix/noeku.pem" \
	    --key "$fix/noeku.key" --subject /CN=noeku-client
	auth_issued
	local label
	for label in t-eku t-crl; do
		est_req "$EST_PATH/$label/simpleenroll" --cert "$fix/noeku.pem" \
		    --key "$fix/noeku.key" --subject /CN=noeku-client
		auth_refused 403 'lacks the clientAuth extended key usage'
		log_has_rid "$RID" 'subject: \\?"?CN=noeku-client' error \
		    >/dev/null ||
		    fail "the refusal does not name the subject" "$T/.log_tail"
	done
	# Nor on the default label.
	est_req "$EST_PATH/simpleenroll" --cert "$fix/noeku.pem" \
	    --key "$fix/noeku.key" --subject /CN=noeku-client
	auth_refused 403 'lacks the clientAuth extended key usage'
	est_req "$EST_PATH/t-eku/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=eku-ok
	auth_issued
}

t_auth_ca_certificate_refused() {
	local d=$T/ca
	auth_ca "$d"
	auth_issue "$d" ca ca-as-client catrue "$(auth_date '-1 day')" \
	    "$(auth_date '+30 days')" ||
	    fail "openssl ca failed (test setup)" "$d/openssl.log"
	# A CA certificate (basicConstraints CA:TRUE) with clientAuth is no
	# client certificate, whatever the label allows otherwise.
	local label
	for label in t-eku-off t-crl; do
		est_req "$EST_PATH/$label/simpleenroll" --cert "$d/ca.pem" \
		    --key "$d/ca.key" --subject /CN=ca-as-client
		auth_refused 403 'is a CA certificate'
	done
	est_req "$EST_PATH/t-eku-off/simplereenroll" --cert "$d/ca.pem" \
	    --key "$d/ca.key" --subject-from "$d/ca.pem"
	auth_refused 403 'is a CA certificate'
}

t_auth_crl_past_next_update() {
	local fix=$WORK/authfix/ca re n
	# The label's CRL is past its nextUpdate: the operator was told when
	# the configuration was loaded, once (not once per request) ...
	re='\[error\] .*CRL .*crl-stale\.pem is past its nextUpdate'
	n=$(grep -cE -- "$re" "$LOGS/error.log")
	((n >= 1)) || fail "no error line about the stale CRL" "$LOGS/error.log"
	# ... and certificates it would judge are refused: revocations since
	# then are unknown.
	est_req "$EST_PATH/t-crl-stale/simpleenroll" --cert "$fix/good.pem" \
	    --key "$fix/good.key" --subject /CN=good-client
	auth_refused 403 'CRL is past its nextUpdate'
	est_req "$EST_PATH/t-crl-stale/simplereenroll" --cert "$fix/good.pem" \
	    --key "$fix/good.key" --subject-from "$fix/good.pem"
	auth_refused 403 'CRL is past its nextUpdate'
	assert_eq "$n" "$(grep -cE -- "$re" "$LOGS/error.log")" \
	    "error lines about the stale CRL after two requests" \
	    "$LOGS/error.log"
	# The fresh CRL of t-crl still lets the same certificate in.
	est_req "$EST_PATH/t-crl/simpleenroll" --cert "$fix/good.pem" \
	    --key "$fix/good.key" --subject /CN=good-client
	auth_issued
}

t_auth_label_stores_not_inherited() {
	# t-own names an explicit store of its own: the manufacturer store of
	# tls.implicit_ca no longer applies to it ...
	est_req "$EST_PATH/t-own/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=device-0001
	auth_refused 403 'client certificate not accepted'
	est_req "$EST_PATH/t-own/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=demo-client
	auth_issued
	# ... unless it asks for tls.* with trust.inherit.
	est_req "$EST_PATH/t-own-inherit/simpleenroll" \
	    --cert "$CERTS/device.pem" --key "$CERTS/device.key" \
	    --subject /CN=device-0001
	auth_issued
	auth_audit_has '"method":"cert".*"store":"implicit"'
}

t_auth_cert_basic_together() {
	# cert+basic: either alone is not enough.
	est_req "$EST_PATH/t-strict/simpleenroll" --basic "$CRED" \
	    --subject /CN=estuser --newkey ec:P-384 --md sha384
	auth_refused 401 'authentication required'
	est_req "$EST_PATH/t-strict/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=estuser --newkey ec:P-384 \
	    --md sha384
	auth_refused 401 'needs Basic credentials with the client certificate'
	est_req "$EST_PATH/t-strict/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --basic "$CRED" --subject /CN=estuser \
	    --san DNS:a.strict.example --newkey ec:P-384 --md sha384
	auth_issued
	auth_audit_has '"method":"cert\+basic"'
}

t_auth_cacerts_private() {
	http_req GET "$EST_PATH/t-private/cacerts"
	assert_error 401
	assert_header WWW-Authenticate 'Basic realm="estrad"'
	http_req GET "$EST_PATH/t-private/cacerts" -u "$CRED"
	assert_status 200
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
}

t_auth_users_reload_on_sighup() {
	local users=$CERTS/users.htpasswd hash
	cp "$users" "$T/users.orig"
	hash=$(openssl passwd -6 "new-secret")
	printf 'newuser:%s\n' "$hash" >>"$users"
	kill -HUP "$DAEMON_PID"
	local i
	for ((i = 0; i < 30; i++)); do
		grep -q 'users file .* reloaded: 2 users' "$LOGS/error.log" &&
		    break
		sleep 0.1
	done
	est_req "$EST_PATH/simpleenroll" --basic "newuser:new-secret" \
	    --subject /CN=newuser.example
	if [[ $STATUS != 200 ]]; then
		cp "$T/users.orig" "$users"
		kill -HUP "$DAEMON_PID"
		fail "new user refused after SIGHUP: $STATUS" "$T/body"
	fi
	# A broken file is refused; the users loaded before stay.
	printf 'broken line without colon\n' >"$users"
	kill -HUP "$DAEMON_PID"
	for ((i = 0; i < 30; i++)); do
		grep -q 'users file reload refused' "$LOGS/error.log" && break
		sleep 0.1
	done
	cp "$T/users.orig" "$users"
	grep -q '\[error\].*users file reload refused: .*users.htpasswd:1' \
	    "$LOGS/error.log" ||
	    fail "no error line for the broken users file" "$LOGS/error.log"
	est_req "$EST_PATH/simpleenroll" --basic "newuser:new-secret" \
	    --subject /CN=newuser2.example
	assert_status 200
	# Back to the original file.
	kill -HUP "$DAEMON_PID"
	for ((i = 0; i < 30; i++)); do
		[[ $(grep -c 'reloaded: 1 users' "$LOGS/error.log") -ge 1 ]] &&
		    break
		sleep 0.1
	done
	est_req "$EST_PATH/simpleenroll" --basic "newuser:new-secret" \
	    --subject /CN=newuser3.example
	auth_basic_refused 'unknown user'
}

# auth_guess CRED: one enrollment with Basic CRED through curl (quicker
# than est_client, so that guesses come faster than the waits they earn),
# with the CSR $T/g.b64 (made by the caller with mk_csr g ...).
auth_guess() {
	post_csr "$EST_PATH/simpleenroll" "$T/g.b64" -u "$1"
}

# auth_guess_until_throttled CRED-PREFIX N: Basic guesses "PREFIX$i"
# (i = 1..N, the prefix ending in ':' for one user, or naming a new user
# each time) until one is answered 429; fails when none is.  Leaves the
# 429 in $T/headers and $T/body.
auth_guess_until_throttled() {
	local prefix=$1 n=$2 i
	for ((i = 1; i <= n; i++)); do
		auth_guess "$prefix$i"
		[[ $STATUS == 429 ]] && return 0
		[[ $STATUS == 401 ]] ||
		    fail "guess $i: expected 401 or 429, got $STATUS" "$T/body"
	done
	fail "$n failed guesses ($prefix...) and no 429"
}

# auth_throttled SCOPE: the last answer is a throttling 429: Retry-After,
# a text/plain body, and an error-log line naming SCOPE (client or user).
auth_throttled() {
	local retry
	assert_error 429
	retry=$(get_header Retry-After)
	[[ $retry =~ ^[1-9][0-9]*$ ]] ||
	    fail "Retry-After is '$retry', not a number of seconds" "$T/headers"
	assert_file_matches "$T/body" 'too many failed attempts'
	log_has_rid "$RID" "throttled: .*for this $1" error >/dev/null ||
	    fail "no error-log line says the $1 is throttled" "$T/.log_tail"
}

# A burst of wrong passwords for one user, then of guessed user names, from
# one client: failed checks are answered 429 with Retry-After once the
# user, then the client, has used up its free failures, without running
# crypt(3) (so a right password is refused too while the wait lasts), and
# /metrics counts them.  No timing is assumed but that a guess may come
# faster than a wait of several seconds.
t_auth_throttle_failed_guesses() {
	local mport t0 retry i
	mport=$(free_port)
	ab_start "cfg['metrics'] = {'listen': '127.0.0.1:$mport'}"
	HOSTPORT=$AB_HOST
	mk_csr g /CN=guess.example ec
	auth_guess_until_throttled "estuser:wrong-" 30
	auth_throttled user
	# A failure once the wait is over doubles the wait; guesses while
	# it lasts are not checked.  Until the wait is long enough to tell
	# a checked password from one that is not:
	retry=$(get_header Retry-After)
	for ((i = 0; i < 6 && retry < 4; i++)); do
		sleep "$retry"
		auth_guess "estuser:late-$i"
		assert_error 401
		auth_guess "estuser:x"
		auth_throttled user
		retry=$(get_header Retry-After)
	done
	((retry >= 4)) || fail "the wait never grew to 4 s" "$T/headers"
	t0=$(date +%s%N)
	auth_guess "$CRED"
	# Only a machine so loaded that the wait ran out meanwhile may
	# check the right password.
	if [[ $STATUS != 429 ]] &&
	    (($(date +%s%N) - t0 < (retry - 1) * 1000000000)); then
		fail "the right password was checked during the wait: $STATUS" \
		    "$T/body"
	fi
	auth_guess_until_throttled "guess-$RANDOM-" 40
	auth_throttled client
	curl -s --max-time 10 "http://127.0.0.1:$mport/metrics" \
	    >"$T/metrics.txt" || fail "cannot scrape /metrics"
	assert_file_matches "$T/metrics.txt" \
	    '^estrad_auth_throttled_total\{reason="user"\} [1-9][0-9]*$'
	assert_file_matches "$T/metrics.txt" \
	    '^estrad_auth_throttled_total\{reason="client"\} [1-9][0-9]*$'
	ab_cleanup
	ab_sanitizer_check
}

# Many connections from one address at once with one new credential, of a
# costly hash: more checks than one address may queue, yet every request
# is served (those past the address's share wait for room, then pass from
# the cache), none is answered 503.
t_auth_burst_of_one_credential_served() {
	local i pids=() code
	python3 -W ignore -c 'import crypt
print("burst:" + crypt.crypt("burst-secret",
      crypt.mksalt(crypt.METHOD_SHA512, rounds=300000)))' \
	    >"$T/users.htpasswd" || fail "cannot hash the test password"
	chmod 600 "$T/users.htpasswd"
	ab_start "cfg['users'] = '$T/users.htpasswd'"
	mk_csr b /CN=burst.example ec
	for ((i = 0; i < 40; i++)); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 \
		    --cacert "$CERTS/tls-ca.pem" -u burst:burst-secret \
		    -H 'Content-Type: application/pkcs10' \
		    --data-binary "@$T/b.b64" \
		    "https://$AB_HOST$EST_PATH/simpleenroll" >"$T/code.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for ((i = 0; i < 40; i++)); do
		code=$(cat "$T/code.$i")
		[[ $code == 200 ]] ||
		    fail "request $i of the burst: $code" "$T/logs/error.log"
	done
	ab_cleanup
	ab_sanitizer_check
}

# --- re-enrollment ----------------------------------------------------------

# auth_enrolled NAME CN SAN: enrolls with Basic on the default label and
# leaves $T/NAME.pem and $T/NAME.key.
auth_enrolled() {
	local name=$1 cn=$2 san=$3
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --subject "/CN=$cn" \
	    --san "$san" --key-out "$T/$name.key"
	auth_issued
	cp "$T/leaf.pem" "$T/$name.pem"
}

t_auth_reenroll_renew_and_rekey() {
	auth_enrolled mine renew-me "DNS:renew-me.example"
	# Renew: same key, same subject and SAN, authenticated by the
	# certificate being renewed.
	est_req "$EST_PATH/simplereenroll" --cert "$T/mine.pem" \
	    --key "$T/mine.key" --key-in "$T/mine.key" \
	    --subject-from "$T/mine.pem"
	auth_issued
	assert_eq "$(auth_subject "$T/mine.pem")" "$(auth_subject "$T/leaf.pem")" \
	    "renewed subject"
	assert_eq "$(openssl x509 -in "$T/mine.pem" -noout -pubkey)" \
	    "$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)" "renewed key"
	# Rekey: a new key.
	est_req "$EST_PATH/simplereenroll" --cert "$T/mine.pem" \
	    --key "$T/mine.key" --subject-from "$T/mine.pem"
	auth_issued
	[[ $(openssl x509 -in "$T/mine.pem" -noout -pubkey) != \
	    "$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)" ]] ||
	    fail "rekey kept the old key"
}

t_auth_reenroll_changed_subject_or_san() {
	auth_enrolled mine keep-me "DNS:keep-me.example"
	est_req "$EST_PATH/simplereenroll" --cert "$T/mine.pem" \
	    --key "$T/mine.key" --subject /CN=other-name \
	    --san DNS:keep-me.example
	auth_refused 403 'CSR subject differs'
	est_req "$EST_PATH/simplereenroll" --cert "$T/mine.pem" \
	    --key "$T/mine.key" --subject /CN=keep-me \
	    --san DNS:other.example
	auth_refused 403 'CSR subjectAltName differs'
	est_req "$EST_PATH/simplereenroll" --cert "$T/mine.pem" \
	    --key "$T/mine.key" --subject /CN=keep-me \
	    --san DNS:keep-me.example
	auth_issued
}

t_auth_reenroll_rekey_forbidden() {
	auth_enrolled mine renew-only "DNS:renew-only.example"
	est_req "$EST_PATH/t-renewonly/simplereenroll" --cert "$T/mine.pem" \
	    --key "$T/mine.key" --subject-from "$T/mine.pem"
	auth_refused 403 'rule reenroll.rekey'
	est_req "$EST_PATH/t-renewonly/simplereenroll" --cert "$T/mine.pem" \
	    --key "$T/mine.key" --key-in "$T/mine.key" \
	    --subject-from "$T/mine.pem"
	auth_issued
}

t_auth_reenroll_expired_grace() {
	local d=$T/ca
	auth_ca "$d"
	auth_issue "$d" exp5 expired-5d client "$(auth_date '-400 days')" \
	    "$(auth_date '-5 days')" ||
	    fail "openssl ca failed (test setup)" "$d/openssl.log"
	auth_issue "$d" exp60 expired-60d client "$(auth_date '-400 days')" \
	    "$(auth_date '-60 days')" ||
	    fail "openssl ca failed (test setup)" "$d/openssl.log"
	# Inside the 30-day window of t-grace.
	est_req "$EST_PATH/t-grace/simplereenroll" --cert "$d/exp5.pem" \
	    --key "$d/exp5.key" --subject-from "$d/exp5.pem"
	auth_issued
	auth_audit_has '"expired_days":5'
	# The default label has no grace window.
	est_req "$EST_PATH/simplereenroll" --cert "$d/exp5.pem" \
	    --key "$d/exp5.key" --subject-from "$d/exp5.pem"
	auth_refused 403 'certificate has expired'
	# Outside the window.
	est_req "$EST_PATH/t-grace/simplereenroll" --cert "$d/exp60.pem" \
	    --key "$d/exp60.key" --subject-from "$d/exp60.pem"
	auth_refused 403 'expired 60 days ago'
	# An expired certificate never authenticates an enrollment.
	est_req "$EST_PATH/t-grace/simpleenroll" --cert "$d/exp5.pem" \
	    --key "$d/exp5.key" --subject-from "$d/exp5.pem"
	auth_refused 401 'authentication required'
}

t_auth_reenroll_revoked() {
	local fix=$WORK/authfix/ca
	est_req "$EST_PATH/t-crl/simplereenroll" --cert "$fix/revoked.pem" \
	    --key "$fix/revoked.key" --subject-from "$fix/revoked.pem"
	auth_refused 403 'certificate is revoked'
	est_req "$EST_PATH/t-crl/simplereenroll" --cert "$fix/good.pem" \
	    --key "$fix/good.key" --subject-from "$fix/good.pem"
	auth_issued
}

# --- proof of possession ------------------------------------------------------

t_auth_pop_tls_unique() {
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --tls 1.2 \
	    --pop unique --subject /CN=pop-ok.example
	auth_issued
	auth_audit_has '"pop":"tls-unique"'
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --tls 1.2 \
	    --pop wrong --subject /CN=pop-wrong.example
	auth_refused 403 'popFailed: challengePassword does not match the tls-unique'
	# A challenged client rebuilds its CSR for the connection it
	# retries on.
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --challenge --tls 1.2 \
	    --pop unique --subject /CN=pop-challenged.example
	auth_issued
}

t_auth_pop_required() {
	est_req "$EST_PATH/t-pop/simpleenroll" --basic "$CRED" --tls 1.2 \
	    --subject /CN=pop-missing.example
	auth_refused 403 'popFailed: the label requires challengePassword'
	est_req "$EST_PATH/t-pop/simpleenroll" --basic "$CRED" --tls 1.2 \
	    --pop unique --subject /CN=pop-req.example
	auth_issued
	# TLS 1.3 with the RFC 9266 binding, which the label enables.
	est_req "$EST_PATH/t-pop/simpleenroll" --basic "$CRED" --tls 1.3 \
	    --pop exporter --subject /CN=pop-exporter.example
	auth_issued
	grep -q '^tls=TLSv1.3' "$T/info" || fail "not TLS 1.3" "$T/info"
	auth_audit_has '"pop":"tls-exporter"'
	# A tls-unique-sized value on TLS 1.3 does not match the exporter.
	est_req "$EST_PATH/t-pop/simpleenroll" --basic "$CRED" --tls 1.3 \
	    --pop unique --subject /CN=pop-unique13.example
	auth_refused 403 'popFailed: challengePassword does not match the tls-exporter'
	# Without tls_exporter a TLS 1.3 challengePassword cannot be checked.
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --tls 1.3 \
	    --pop exporter --subject /CN=pop-13.example
	auth_refused 403 'popFailed: .*connect with TLS 1.2'
}

t_auth_pop_csrattrs_lists_challenge_password() {
	# t-pop's csrattrs list is empty in the configuration; pop required
	# adds challengePassword (RFC 8951 §4).
	http_req GET "$EST_PATH/t-pop/csrattrs"
	assert_status 200
	tr -d ' \t\r\n' <"$T/body" | base64 -d >"$T/attrs.der"
	openssl asn1parse -inform DER -in "$T/attrs.der" >"$T/attrs.txt" 2>&1 ||
	    fail "csrattrs is not DER" "$T/attrs.txt"
	assert_file_has "$T/attrs.txt" challengePassword
	http_req GET "$EST_PATH/t-strict/csrattrs"
	assert_eq 204 "$STATUS" "csrattrs of a label without pop required"
}

t_auth_tls12_cap_when_pop_required_without_exporter() {
	# A second daemon whose label requires linking without tls_exporter:
	# the listener offers TLS 1.2 at most, and says so.
	local port cfg=$WORK/conf/capped.json pid
	port=$(free_port)
	python3 - "$WORK/conf/estrad.json" "$cfg" "$port" "$T" <<'PYEOF'
import json, sys
src, dst, port, t = sys.argv[1:]
c = json.load(open(src))
c["listen"] = ["127.0.0.1:" + port]
c["workers"] = 1
c["logs"] = {"error": t + "/error.log", "access": t + "/access.log",
             "audit": t + "/audit.log", "level": "info"}
c["labels"]["t-pop"]["tls_exporter"] = False
json.dump(c, open(dst, "w"), indent=2)
PYEOF
	(cd "$WORK/conf" && exec "$ESTRAD" -c "$cfg" >"$T/estrad2.out" 2>&1 \
	    </dev/null) &
	pid=$!
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q 'listening on' "$T/error.log" 2>/dev/null && break
		sleep 0.1
	done
	local saved=$HOSTPORT rc=0
	HOSTPORT=127.0.0.1:$port
	s_client "$T/s13.out" -tls1_3 || rc=$?
	s_client "$T/s12.out" -tls1_2 </dev/null || true
	est_req "$EST_PATH/t-pop/simpleenroll" --basic "$CRED" --pop unique \
	    --subject /CN=capped.example
	HOSTPORT=$saved
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	grep -q '\[info\].*TLS capped at 1.2: label t-pop' "$T/error.log" ||
	    fail "no info line about the TLS 1.2 cap" "$T/error.log"
	[[ $rc -ne 0 && -z $(tls_negotiated "$T/s13.out") ]] ||
	    fail "TLS 1.3 handshake succeeded on a capped listener" \
	    "$T/s13.out.sum"
	assert_eq TLSv1.2 "$(tls_negotiated "$T/s12.out")" "TLS 1.2 handshake"
	assert_eq 200 "$STATUS" "PoP enrollment on the capped listener"
	grep -q '^tls=TLSv1.2' "$T/info" || fail "not TLS 1.2" "$T/info"
}

# --- RA clients -------------------------------------------------------------

t_auth_ra_client_enrolls_for_others() {
	local fix=$WORK/authfix/ca
	# id-kp-cmcRA: another subject, and linking waived.
	est_req "$EST_PATH/t-ra/simpleenroll" --cert "$fix/ra.pem" \
	    --key "$fix/ra.key" --subject /CN=someone-else --tls 1.2 \
	    --pop wrong
	auth_issued
	assert_eq "CN=someone-else" "$(auth_subject "$T/leaf.pem")" "subject"
	auth_audit_has '"ra":true'
	auth_audit_has '"pop":"waived"'
	# An ordinary client certificate may enroll for itself only.
	est_req "$EST_PATH/t-ra/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=someone-else
	auth_refused 403 'rule cn_equals'
	est_req "$EST_PATH/t-ra/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=demo-client
	auth_issued
	# And its linking is not waived.
	est_req "$EST_PATH/t-ra/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=demo-client --tls 1.2 \
	    --pop wrong
	auth_refused 403 popFailed
}

# --- policy -------------------------------------------------------------------

t_auth_extension_smuggling() {
	# Default label: unlisted extensions are dropped, the profile rules
	# (a CA:TRUE request is refused: t_policy_ca_request_refused_*).
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
	    --subject /CN=smuggler.example \
	    --ext "basicConstraints=critical,CA:FALSE" \
	    --ext "extendedKeyUsage=codeSigning" \
	    --ext "certificatePolicies=1.2.3.4"
	auth_issued
	local ext
	ext=$(openssl x509 -in "$T/leaf.pem" -noout -ext basicConstraints)
	assert_match 'CA:FALSE' "$ext" "basicConstraints"
	ext=$(openssl x509 -in "$T/leaf.pem" -noout -text)
	[[ $ext != *"Code Signing"* && $ext != *"1.2.3.4"* ]] ||
	    fail "a smuggled extension reached the certificate" "$T/leaf.pem"
	auth_audit_has '"dropped_extensions":"[^"]*basicConstraints'
	log_has_rid "$RID" 'dropped by rule extensions' error >/dev/null ||
	    fail "no log line naming the dropped extensions" "$T/.log_tail"
	# A label that refuses them.
	est_req "$EST_PATH/phones/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=SEP0011223344AA \
	    --ext "basicConstraints=critical,CA:FALSE"
	auth_refused 403 'extension basicConstraints not allowed by rule extensions'
}

t_auth_phones_label() {
	est_req "$EST_PATH/phones/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=SEP0011223344AA
	auth_issued
	est_req "$EST_PATH/phones/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=SEP00112233
	auth_refused 403 'subject CN .*SEP00112233.* not allowed by rule cn'
	est_req "$EST_PATH/phones/simpleenroll" --basic "$CRED" \
	    --subject /CN=SEP0011223344AA
	auth_refused 401 'authentication required'
}

t_auth_policy_rules() {
	local -a ok=(--cert "$CERTS/client.pem" --key "$CERTS/client.key"
	    --basic "$CRED")
	est_req "$EST_PATH/t-strict/simpleenroll" "${ok[@]}" \
	    --subject /CN=estuser --san DNS:bad.other.example \
	    --newkey ec:P-384 --md sha384
	auth_refused 403 'dNSName .*bad.other.example.* not allowed by rule san.dns'
	est_req "$EST_PATH/t-strict/simpleenroll" "${ok[@]}" \
	    --subject /CN=estuser \
	    --san DNS:a.strict.example,DNS:b.strict.example,DNS:c.strict.example \
	    --newkey ec:P-384 --md sha384
	auth_refused 403 'exceed rule san.max 2'
	est_req "$EST_PATH/t-strict/simpleenroll" "${ok[@]}" \
	    --subject /CN=estuser --newkey ec --md sha384
	auth_refused 403 'EC curve prime256v1 not allowed by rule keys.ec'
	est_req "$EST_PATH/t-strict/simpleenroll" "${ok[@]}" \
	    --subject /CN=estuser --newkey ec:P-384 --md sha256
	auth_refused 403 'not allowed by rule signature'
	est_req "$EST_PATH/t-strict/simpleenroll" "${ok[@]}" \
	    --subject /CN=somebody --newkey ec:P-384 --md sha384
	auth_refused 403 'CN must equal the HTTP Basic user name .*rule cn_equals'
	est_req "$EST_PATH/t-strict/simpleenroll" "${ok[@]}" \
	    --subject /CN=estuser --newkey ec:P-384 --md sha384 \
	    --san DNS:ok.strict.example
	auth_issued
}

# --- external authorizer ----------------------------------------------------

t_auth_authorizer_allow() {
	est_req "$EST_PATH/t-authz-allow/simpleenroll" --basic "$CRED" \
	    --subject /CN=authz-ok.example
	auth_issued
	local in=$WORK/authfix/authz-input.$RID.json
	[[ -s $in ]] || fail "the authorizer got no input"
	python3 - "$in" <<'PYEOF' >"$T/authz.check" 2>&1 || fail "authorizer input" "$T/authz.check" "$in"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["operation"] == "simpleenroll", d["operation"]
assert d["label"] == "t-authz-allow"
assert d["identity"]["method"] == "basic" and d["identity"]["name"] == "estuser"
assert d["csr"]["subject"] == "CN=authz-ok.example", d["csr"]
assert "BEGIN CERTIFICATE REQUEST" in d["csr"]["pem"]
assert d["peer"]["client"].startswith("127.0.0.1:")
assert isinstance(d["client_chain"], list)
PYEOF
	local env=$WORK/authfix/authz-env.$RID
	assert_file_has "$env" "ESTRAD_LABEL=t-authz-allow"
	! grep -q -e '^HOME=' -e '^USER=' "$env" ||
	    fail "the authorizer inherited estrad's environment" "$env"
	log_has_rid "$RID" 'authorizer allowed' error >/dev/null ||
	    fail "no log line for the allowed request" "$T/.log_tail"
}

t_auth_authorizer_deny() {
	est_req "$EST_PATH/t-authz-deny/simpleenroll" --basic "$CRED" \
	    --subject /CN=authz-no.example
	auth_refused 403 'device not in inventory \(rule authorizer\)'
	log_has_rid "$RID" 'hint: .*exited 3' error >/dev/null ||
	    fail "the log does not give the exit status" "$T/.log_tail"
}

t_auth_authorizer_timeout() {
	local start=$SECONDS
	est_req "$EST_PATH/t-authz-slow/simpleenroll" --basic "$CRED" \
	    --subject /CN=authz-slow.example
	auth_refused 503 'authorizer timed out after 1 s'
	((SECONDS - start < 10)) || fail "the timeout did not cut it short"
	[[ -n $(get_header Retry-After) ]] || fail "503 without Retry-After" \
	    "$T/headers"
	log_has_rid "$RID" '\[error\] .*ra.authorizer' error >/dev/null ||
	    fail "the timeout is not logged at error" "$T/.log_tail"
	# The killed child is reaped: no zombie of estrad's.
	sleep 0.5
	! ps -o stat= --ppid "$DAEMON_PID" 2>/dev/null | grep -q Z ||
	    fail "estrad left a zombie"
}

# --- configuration --------------------------------------------------------------

t_auth_config_errors_named() {
	local v
	config_variant bad_key \
	    'c["labels"]["default"]["policy"]["san"]["dnss"] = []'
	run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/bad_key.json" &&
	    fail "estrad -t accepted an unknown policy key" "$T/t.out"
	assert_file_matches "$T/t.out" \
	    'bad_key\.json:[0-9]+:[0-9]+: labels\.default\.policy\.san: unknown key "dnss"'
	config_variant bad_re \
	    'c["labels"]["phones"]["policy"]["cn"] = ["SEP[0-9"]'
	run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/bad_re.json" &&
	    fail "estrad -t accepted a bad pattern" "$T/t.out"
	assert_file_matches "$T/t.out" \
	    'bad_re\.json:[0-9]+:[0-9]+: labels\.phones\.policy\.cn\.0: not a POSIX extended regular expression'
	config_variant bad_trust \
	    'c["labels"]["default"]["trust"] = {"reenroll": ["implicit"]}'
	run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/bad_trust.json" &&
	    fail "estrad -t accepted implicit reenroll" "$T/t.out"
	assert_file_matches "$T/t.out" \
	    'labels\.default\.trust\.reenroll\.0: simplereenroll renews certificates the EST CA issued'
	config_variant bad_pop \
	    'c["tls"]["min_version"] = "1.3"; c["labels"]["default"]["pop"] = "required"'
	run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/bad_pop.json" &&
	    fail "estrad -t accepted pop required on TLS 1.3 only" "$T/t.out"
	assert_file_matches "$T/t.out" 'labels\.default\.pop: "required" needs TLS 1\.2'
	config_variant bad_authz \
	    'c["labels"]["t-authz-deny"]["authorizer"]["command"] = ["/nonexistent/authz"]'
	run_bounded 20 "$T/t.out" "$ESTRAD" -t -c "$WORK/conf/bad_authz.json" &&
	    fail "estrad -t accepted a missing authorizer" "$T/t.out"
	assert_file_matches "$T/t.out" \
	    'labels\.t-authz-deny\.authorizer\.command\.0: /nonexistent/authz: No such file'
}

# --- the shipped configuration ------------------------------------------------
# An estrad of the test's own runs conf/estrad.json exactly as shipped (only
# "listen" moved to a free port) on a copy of the dev PKI, and the tests
# replay what a low-privilege credential could get from it: the demo Basic
# login, the demo client certificate, the manufacturer's device
# certificate.

# shipped_cleanup: stops the test's estrad.
shipped_cleanup() {
	if [[ -n ${SH_PID:-} ]]; then
		kill "$SH_PID" 2>/dev/null
		wait "$SH_PID" 2>/dev/null
		SH_PID=""
	fi
}

# shipped_stop: stops it; it exited by itself on SIGTERM and printed no
# sanitizer report.
shipped_stop() {
	local rc
	kill -TERM "$SH_PID"
	wait "$SH_PID"
	rc=$?
	SH_PID=""
	assert_eq 0 "$rc" "exit status of the shipped estrad after SIGTERM" \
	    "$T/shipped/estrad.stderr"
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' \
	    "$T/shipped/estrad.stderr"; then
		fail "the shipped estrad's stderr has sanitizer reports" \
		    "$T/shipped/estrad.stderr"
	fi
}

# shipped_start: starts it in $T/shipped, laid out as the repository
# (conf/, certs/, logs/), and points HOSTPORT, CERTS and LOGS at it.
shipped_start() {
	local dir=$T/shipped i j
	trap 'shipped_cleanup' EXIT
	mkdir -p "$dir/conf" "$dir/logs"
	cp -a "$CERTS" "$dir/certs"
	CERTS=$dir/certs
	LOGS=$dir/logs
	for ((i = 0; i < 3; i++)); do
		SH_PORT=$(free_port)
		HOSTPORT=127.0.0.1:$SH_PORT
		python3 - "$ROOT/conf/estrad.json" "$dir/conf/estrad.json" \
		    "$SH_PORT" <<'PYEOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["listen"] = ["127.0.0.1:" + sys.argv[3]]
with open(sys.argv[2], "w") as f:
    json.dump(cfg, f, indent=2)
PYEOF
		(cd "$dir" && exec "$ESTRAD" -c "$dir/conf/estrad.json" \
		    >"$dir/estrad.stdout" 2>"$dir/estrad.stderr" </dev/null) &
		SH_PID=$!
		for ((j = 0; j < 100; j++)); do
			kill -0 "$SH_PID" 2>/dev/null || break
			curl -s -o /dev/null --max-time 1 \
			    --cacert "$CERTS/tls-ca.pem" \
			    "https://$HOSTPORT$EST_PATH/cacerts" && return 0
			sleep 0.1
		done
		kill -0 "$SH_PID" 2>/dev/null && break
		wait "$SH_PID"
		SH_PID=""
		grep -qi 'address already in use' "$dir/estrad.stderr" \
		    "$LOGS/error.log" 2>/dev/null || break
	done
	fail "estrad does not serve the shipped configuration" \
	    "$dir/estrad.stderr" "$LOGS/error.log"
}

# shipped_issued CA-NAME: the last answer is a certificate of the dev CA
# CA-NAME (issuing-ca, phones-ca, devices-ca) with clientAuth and without
# serverAuth; leaves it in $T/leaf.pem.
shipped_issued() {
	local ext
	assert_status 200
	decode_pkcs7 "$T/leaf.pem"
	openssl verify -CAfile "$CERTS/root-ca.pem" -partial_chain \
	    -CAfile "$CERTS/$1.pem" "$T/leaf.pem" >"$T/verify.out" 2>&1 ||
	    fail "the certificate is not one of $1" "$T/verify.out"
	ext=$(openssl x509 -in "$T/leaf.pem" -noout -ext extendedKeyUsage 2>&1)
	assert_eq "TLS Web Client Authentication" \
	    "$(echo "$ext" | sed -n '2s/^ *//p')" "extendedKeyUsage"
}

t_auth_shipped_no_server_names() {
	local sport user=${CRED%%:*}
	shipped_start
	# The demo login asks for estrad's own names, with serverAuth ...
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
	    --subject /CN=localhost --san 'DNS:localhost,IP:127.0.0.1,DNS:*' \
	    --ext extendedKeyUsage=serverAuth
	auth_refused 403 'CN must equal the HTTP Basic user name .*rule cn_equals'
	# ... and so does the manufacturer's device certificate, on the
	# default label and on its own.
	est_req "$EST_PATH/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=localhost --san DNS:localhost
	auth_refused 401 'client certificate not accepted'
	est_req "$EST_PATH/devices/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=localhost --san DNS:localhost
	auth_refused 403 'CN must equal the client certificate.s CN'
	est_req "$EST_PATH/devices/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=device-0001 \
	    --san DNS:localhost
	auth_refused 403 'rule san\.max 0'
	# What the login may have: its own name, for client authentication.
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --subject "/CN=$user" \
	    --ext extendedKeyUsage=serverAuth --key-out "$T/mine.key"
	shipped_issued issuing-ca
	# A server presenting it is trusted neither by the file EST clients
	# are told to trust for TLS, nor for its own name by the EST CA chain
	# (no serverAuth).
	sport=$(free_port)
	openssl s_server -quiet -accept "127.0.0.1:$sport" -www \
	    -cert "$T/leaf.pem" -key "$T/mine.key" >"$T/s_server.out" 2>&1 &
	local spid=$!
	local i
	for ((i = 0; i < 50; i++)); do
		python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
		    "$sport" 2>/dev/null && break
		sleep 0.1
	done
	curl -s -o /dev/null --max-time 5 --cacert "$CERTS/tls-ca.pem" \
	    --resolve "$user:$sport:127.0.0.1" "https://$user:$sport/" \
	    2>"$T/curl1.err"
	local rc1=$?
	curl -s -o /dev/null --max-time 5 --cacert "$CERTS/ca-chain.pem" \
	    --resolve "$user:$sport:127.0.0.1" "https://$user:$sport/" \
	    2>"$T/curl2.err"
	local rc2=$?
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	assert_eq 60 "$rc1" "curl --cacert tls-ca.pem to a server with it"
	assert_eq 60 "$rc2" "curl --cacert ca-chain.pem to a server with it"
	# And estrad's own certificate is not the EST CA's.
	if openssl verify -CAfile "$CERTS/ca-chain.pem" "$CERTS/server.pem" \
	    >/dev/null 2>&1; then
		fail "server.pem chains to the EST CA"
	fi
	shipped_stop
}

t_auth_shipped_labels_bound() {
	local user=${CRED%%:*} d=$T/ca
	shipped_start
	# The demo login may not take a phone's name, nor the demo client's.
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
	    --subject /CN=SEP0011223344AA
	auth_refused 403 'rule cn_equals'
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --subject /CN=demo-client
	auth_refused 403 'rule cn_equals'
	# A certificate of the default label's CA with a phone's name (what
	# a looser default label could issue) does not count on phones; the
	# demo client certificate counts on neither phones nor devices.
	auth_ca "$d"
	auth_issue "$d" sep SEP0011223344AA client "$(auth_date '-1 day')" \
	    "$(auth_date '+30 days')" ||
	    fail "openssl ca failed (test setup)" "$d/openssl.log"
	est_req "$EST_PATH/phones/simpleenroll" --cert "$d/sep.pem" \
	    --key "$d/sep.key" --subject /CN=SEP0011223344BB
	auth_refused 403 'client certificate not accepted'
	est_req "$EST_PATH/phones/simplereenroll" --cert "$d/sep.pem" \
	    --key "$d/sep.key" --subject-from "$d/sep.pem"
	auth_refused 403 'client certificate not accepted'
	est_req "$EST_PATH/phones/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=SEP0011223344AA
	auth_refused 403 'client certificate not accepted'
	est_req "$EST_PATH/devices/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=demo-client
	auth_refused 403 'client certificate not accepted'
	# The manufacturer certificate counts on devices only ...
	est_req "$EST_PATH/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=device-0001
	auth_refused 401 'client certificate not accepted'
	est_req "$EST_PATH/phones/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=device-0001
	auth_refused 403 'client certificate not accepted'
	# ... where it gets its own name; that certificate then renews on
	# devices and authenticates nowhere else.
	est_req "$EST_PATH/devices/simpleenroll" --cert "$CERTS/device.pem" \
	    --key "$CERTS/device.key" --subject /CN=device-0001 \
	    --key-out "$T/ldev.key"
	shipped_issued devices-ca
	cp "$T/leaf.pem" "$T/ldev.pem"
	est_req "$EST_PATH/devices/simplereenroll" --cert "$T/ldev.pem" \
	    --key "$T/ldev.key" --subject-from "$T/ldev.pem"
	shipped_issued devices-ca
	est_req "$EST_PATH/simplereenroll" --cert "$T/ldev.pem" \
	    --key "$T/ldev.key" --subject-from "$T/ldev.pem"
	auth_refused 403 'client certificate not accepted'
	est_req "$EST_PATH/simpleenroll" --cert "$T/ldev.pem" \
	    --key "$T/ldev.key" --subject /CN=device-0001
	auth_refused 401 'client certificate not accepted'
	est_req "$EST_PATH/phones/simpleenroll" --cert "$T/ldev.pem" \
	    --key "$T/ldev.key" --subject /CN=SEP0011223344AA
	auth_refused 403 'client certificate not accepted'
	# The demo client and the demo login each get their own name.
	est_req "$EST_PATH/simpleenroll" --cert "$CERTS/client.pem" \
	    --key "$CERTS/client.key" --subject /CN=demo-client
	shipped_issued issuing-ca
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" --subject "/CN=$user"
	shipped_issued issuing-ca
	shipped_stop
}

t_auth_shipped_runs_unprivileged() {
	[[ $(id -u) == 0 ]] || return 0
	local uid owner f
	shipped_start
	uid=$(awk '/^Uid:/ { print $2 "/" $3 }' "/proc/$SH_PID/status")
	assert_eq "$(id -u nobody)/$(id -u nobody)" "$uid" \
	    "real/effective uid of estrad started as root"
	assert_file_matches "$LOGS/error.log" \
	    'dropped privileges to user nobody'
	# What it writes after the drop is the user's.
	for f in "$T/shipped/var/pending" "$LOGS/error.log" "$LOGS/audit.log" \
	    "$LOGS/access.log"; do
		owner=$(stat -c %U "$f")
		assert_eq nobody "$owner" "owner of $f"
	done
	# And it still enrolls (the audit record is written as nobody).
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
	    --subject "/CN=${CRED%%:*}"
	shipped_issued issuing-ca
	auth_audit_has '"event":"issued"'
	# Its logs reopen after a SIGHUP (logrotate) once the user can reach
	# them: mktemp made the directories above root's alone.
	chmod 0711 "$WORK" "$WORK/t" "$T"
	kill -HUP "$SH_PID"
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q 'log files reopened' "$LOGS/error.log" && break
		sleep 0.1
	done
	assert_file_matches "$LOGS/error.log" 'signal 1: log files reopened'
	! grep -q 'cannot reopen log' "$LOGS/error.log" ||
	    fail "a log was not reopened" "$LOGS/error.log"
	shipped_stop
}
