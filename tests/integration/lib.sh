# shellcheck shell=bash
# lib.sh: helpers for estrad's integration tests (sourced by run.sh).
#
# Every test runs in its own subshell with its own directory $T; helpers keep
# their files there.  A failed assertion calls fail, which records the reason
# (plus excerpts of the files that explain it) in $T/.reason and exits the
# test's subshell.  Do not call the assert_* helpers inside $(...): exit
# would only leave the command substitution.
#
# Globals set up by run.sh: WORK, CERTS, LOGS, PORT, HOSTPORT, EST (base URL
# of the unlabelled EST path), CRED (user:password from demo.credentials),
# PASSWORD, T (the current test's directory).
WORK=${WORK:-} CERTS=${CERTS:-} LOGS=${LOGS:-} HOSTPORT=${HOSTPORT:-}
CRED=${CRED:-} PASSWORD=${PASSWORD:-} T=${T:-}

# --- failure --------------------------------------------------------------

# fail REASON [FILE...]: ends the current test; FILEs are shown as excerpts.
fail() {
	local reason=$1 f
	shift
	{
		printf '%s\n' "$reason"
		for f in "$@"; do
			excerpt "$f"
		done
	} >"$T/.reason"
	exit 1
}

# excerpt FILE [LINES]: the head of FILE (at most 2000 bytes), for reports.
excerpt() {
	local f=$1 n=${2:-15}
	if [[ ! -e $f ]]; then
		printf -- '--- %s: (missing)\n' "${f#"$WORK"/}"
	elif [[ ! -s $f ]]; then
		printf -- '--- %s: (empty)\n' "${f#"$WORK"/}"
	else
		printf -- '--- %s:\n' "${f#"$WORK"/}"
		head -c 2000 "$f" | head -n "$n" | tr -d '\r' | cut -c1-300
		[[ -z $(tail -c1 "$f") ]] || echo
	fi
}

# excerpt_tail FILE [LINES]: the end of a log file.
excerpt_tail() {
	local f=$1 n=${2:-10}
	if [[ -s $f ]]; then
		printf -- '--- %s (last %d lines):\n' "${f#"$WORK"/}" "$n"
		tail -n "$n" "$f" | cut -c1-300
	else
		printf -- '--- %s: (missing or empty)\n' "${f#"$WORK"/}"
	fi
}

# --- assertions -----------------------------------------------------------

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
	[[ $1 == "$2" ]] ||
	    fail "${3:-value}: expected '$1', got '$2'" "${@:4}"
}

# assert_match ERE ACTUAL [WHAT]
assert_match() {
	[[ $2 =~ $1 ]] ||
	    fail "${3:-value}: '$2' does not match /$1/" "${@:4}"
}

# assert_file_has FILE FIXED-STRING [WHAT]
assert_file_has() {
	grep -qF -- "$2" "$1" ||
	    fail "${3:-$(basename "$1")}: does not contain '$2'" "$1"
}

# assert_file_matches FILE ERE [WHAT]: some line of FILE matches ERE.
assert_file_matches() {
	# grep reads it all (no -q): quitting at the first match would kill
	# tr with SIGPIPE on a large file, and pipefail would call that a
	# mismatch.
	tr -d '\r' <"$1" | grep -E -- "$2" >/dev/null ||
	    fail "${3:-$(basename "$1")}: no line matches /$2/" "$1"
}

# --- HTTP -----------------------------------------------------------------

# http_req METHOD PATH-OR-URL [CURL-ARGS...]
# Runs curl once (no retries, --max-time 10), leaving $T/headers, $T/body,
# $T/curl.err; sets STATUS (000 when there was no response), CURL_RC and RID
# (the X-Request-ID header, may be empty).  Never fails by itself.
http_req() {
	local method=$1 url=$2
	shift 2
	[[ $url == https://* ]] || url="https://$HOSTPORT$url"
	rm -f "$T/headers" "$T/body" "$T/curl.err"
	CURL_RC=0
	STATUS=$(curl --silent --show-error --http1.1 --max-time 10 \
	    --cacert "$CERTS/tls-ca.pem" --request "$method" \
	    --dump-header "$T/headers" --output "$T/body" \
	    --write-out '%{http_code}' "$@" "$url" 2>"$T/curl.err") ||
	    CURL_RC=$?
	[[ -n $STATUS ]] || STATUS=000
	touch "$T/headers" "$T/body"
	echo "$STATUS" >"$T/status"
	RID=$(get_header X-Request-ID)
}

# raw_req FILE: sends the bytes of FILE as they are (bare LF, NUL and all)
# over TLS to $HOSTPORT with openssl s_client, waits at most 5 s for estrad
# to close, and splits the first answer into $T/headers and $T/body (its
# Content-Length bytes); the whole answer stays in $T/response.  Sets
# STATUS (000 when there was none) and RID like http_req.
raw_req() {
	rm -f "$T/headers" "$T/body"
	timeout -k 1 5 openssl s_client -quiet -connect "$HOSTPORT" \
	    -CAfile "$CERTS/root-ca.pem" <"$1" >"$T/response" \
	    2>"$T/s_client.err" || true
	python3 - "$T/response" "$T/headers" "$T/body" <<'PYEOF'
import re, sys
data = open(sys.argv[1], "rb").read()
head, _, rest = data.partition(b"\r\n\r\n")
m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
open(sys.argv[2], "wb").write(head + b"\r\n" if head else b"")
open(sys.argv[3], "wb").write(rest[: int(m.group(1))] if m else rest)
PYEOF
	STATUS=$(head -n1 "$T/headers" | awk '{ print $2 }')
	[[ -n $STATUS ]] || STATUS=000
	echo "$STATUS" >"$T/status"
	RID=$(get_header X-Request-ID)
}

# get_header NAME [FILE]: the value of header NAME (any case) in the last
# response of FILE (default $T/headers), without CR; empty if absent.
get_header() {
	awk -v name="$1" '
		BEGIN { name = tolower(name) }
		{ sub(/\r$/, "") }
		/^HTTP\// { v = ""; next }
		{
			i = index($0, ":")
			if (i && tolower(substr($0, 1, i - 1)) == name) {
				v = substr($0, i + 1)
				sub(/^[ \t]+/, "", v)
				sub(/[ \t]+$/, "", v)
			}
		}
		END { print v }' "${2:-$T/headers}"
}

# header_names FILE: the header names of the last response, as sent.
header_names() {
	awk '{ sub(/\r$/, "") } /^HTTP\// { n = "" ; next }
	     /:/ { n = n substr($0, 1, index($0, ":") - 1) "\n" }
	     END { printf "%s", n }' "$1"
}

# assert_status CODE: the last response has status CODE and is framed as
# every estrad answer must be: status line HTTP/1.1, a Content-Length equal to
# the body size, no Transfer-Encoding, an X-Request-ID of 16 hex digits.
assert_status() {
	local want=$1 line len size
	if [[ $STATUS == 000 ]]; then
		fail "no HTTP response (curl exit $CURL_RC)" "$T/curl.err"
	fi
	[[ $STATUS == "$want" ]] ||
	    fail "status: expected $want, got $STATUS" "$T/headers" "$T/body"
	line=$(grep '^HTTP/' "$T/headers" | tail -n1 | tr -d '\r')
	[[ $line =~ ^HTTP/1\.1\ [0-9]{3}(\ |$) ]] ||
	    fail "status line is '$line', not HTTP/1.1" "$T/headers"
	[[ -z $(get_header Transfer-Encoding) ]] ||
	    fail "Transfer-Encoding present (must send Content-Length)" \
	    "$T/headers"
	len=$(get_header Content-Length)
	[[ -n $len ]] || fail "no Content-Length header" "$T/headers"
	size=$(wc -c <"$T/body")
	[[ $len == "$size" ]] ||
	    fail "Content-Length $len but body has $size bytes" "$T/headers"
	[[ $RID =~ ^[0-9a-fA-F]{16}$ ]] ||
	    fail "X-Request-ID is '$RID', not 16 hex digits" "$T/headers"
}

# assert_header NAME VALUE: header NAME is present with exactly VALUE.
assert_header() {
	local v
	v=$(get_header "$1")
	[[ $v == "$2" ]] || fail "$1: expected '$2', got '$v'" "$T/headers"
}

# assert_error CODE: an estrad error answer: status CODE, text/plain, a
# non-empty body ending in "(request RID)", an error-log line with rid=RID
# and "answer: CODE", an access-log line with rid=RID and the status.
assert_error() {
	local code=$1 body
	assert_status "$code"
	assert_header Content-Type text/plain
	[[ -s $T/body ]] || fail "empty error body" "$T/headers"
	body=$(tr -d '\r' <"$T/body")
	[[ $body == *"(request $RID)" ]] ||
	    fail "error body does not end with '(request $RID)'" "$T/body"
	log_has_rid "$RID" "answer: $code([^0-9]|$)" error >/dev/null ||
	    fail "no error-log line with rid=$RID and 'answer: $code'" \
	    "$T/body" "$T/.log_tail"
	log_has_rid "$RID" "\" $code( |$)" access >/dev/null ||
	    fail "no access-log line with rid=$RID and status $code" \
	    "$T/.log_tail"
}

# --- logs -----------------------------------------------------------------

# log_has_rid RID ERE [error|access|audit]: waits up to 2 s (logs are
# written asynchronously) for a line of the log (default: error) that
# contains rid=RID (the audit log: RID) and matches ERE; prints the matching
# lines.  On failure returns 1 and leaves the log's tail in $T/.log_tail.
log_has_rid() {
	local rid=$1 re=$2 which=${3:-error} file key i
	file=$LOGS/$which.log
	key="rid=$rid"
	[[ $which == audit ]] && key=$rid
	[[ -n $rid ]] || {
		echo "(no request id)" >"$T/.log_tail"
		return 1
	}
	for ((i = 0; i < 20; i++)); do
		if [[ -f $file ]] &&
		    grep -F -- "$key" "$file" | grep -E -- "$re"; then
			return 0
		fi
		sleep 0.1
	done
	{
		echo "wanted: line with '$key' matching /$re/"
		if [[ -f $file ]] && grep -qF -- "$key" "$file"; then
			echo "--- $which.log lines with $key:"
			grep -F -- "$key" "$file" | cut -c1-300
		else
			excerpt_tail "$file"
		fi
	} >"$T/.log_tail"
	return 1
}

# --- CSRs and certificates --------------------------------------------------

# mk_csr NAME SUBJECT KEY [OPENSSL-REQ-ARGS...]: a key and CSR in $T:
# NAME.key, NAME.der, NAME.pem, NAME.b64 (base64 of the DER, 64 columns).
# KEY: rsa:BITS or ec (P-256).
mk_csr() {
	local name=$1 subj=$2 key=$3
	shift 3
	local -a kargs
	case $key in
	ec) kargs=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	*) kargs=(-newkey "$key") ;;
	esac
	openssl req -new -config "$WORK/req.cnf" "${kargs[@]}" -nodes \
	    -keyout "$T/$name.key" -subj "$subj" "$@" -outform DER \
	    -out "$T/$name.der" >"$T/openssl.err" 2>&1 ||
	    fail "openssl req failed for $name (test setup)" "$T/openssl.err"
	openssl req -inform DER -in "$T/$name.der" -out "$T/$name.pem" \
	    2>>"$T/openssl.err" || fail "openssl req -inform DER failed" \
	    "$T/openssl.err"
	base64 -w64 "$T/$name.der" >"$T/$name.b64"
}

# post_csr PATH FILE [CURL-ARGS...]: POST FILE as application/pkcs10.
post_csr() {
	local path=$1 file=$2
	shift 2
	http_req POST "$path" -H 'Content-Type: application/pkcs10' \
	    --data-binary "@$file" "$@"
}

# decode_pkcs7 OUT-PEM: base64-decodes $T/body (any whitespace) as DER
# PKCS#7 and writes its certificates to OUT-PEM; sets NCERTS.
decode_pkcs7() {
	local out=$1
	tr -d ' \t\r\n' <"$T/body" | base64 -d >"$T/body.der" 2>"$T/b64.err" ||
	    fail "body is not valid base64" "$T/body" "$T/b64.err"
	openssl pkcs7 -inform DER -in "$T/body.der" -print_certs \
	    -out "$out" 2>"$T/pkcs7.err" ||
	    fail "body is not a DER PKCS#7" "$T/body" "$T/pkcs7.err"
	NCERTS=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$out" || true)
	grep -E '^(subject|issuer)=' "$out" >"$out.names" || true
}

# fingerprint PEM-FILE
fingerprint() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null
}

# split_certs PEM-FILE PREFIX: PREFIX-0.pem, PREFIX-1.pem, ...
split_certs() {
	awk -v p="$2" '
		/-----BEGIN CERTIFICATE-----/ { f = p "-" n++ ".pem" }
		f { print > f }
		/-----END CERTIFICATE-----/ { close(f); f = "" }' "$1"
}

# csr_san FILE.pem / cert_san FILE.pem: the subjectAltName, one line.
csr_san() {
	openssl req -in "$1" -noout -text 2>/dev/null |
	    awk '/X509v3 Subject Alternative Name/ { getline; gsub(/^ +/, ""); print }'
}
cert_san() {
	openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null |
	    awk 'NR == 2 { gsub(/^ +/, ""); print }'
}

# dev_issuing_cas: the dev issuing CAs (one per shipped label), for
# openssl verify -untrusted.
dev_issuing_cas() {
	cat "$CERTS/issuing-ca.pem" "$CERTS/phones-ca.pem" \
	    "$CERTS/devices-ca.pem" >"$T/issuing-cas.pem"
	echo "$T/issuing-cas.pem"
}

# assert_issued CSR-NAME: the last response is a successful enroll answer
# for $T/CSR-NAME.pem: exact media type, CTE base64, one certificate that
# chains to the dev root through a dev issuing CA, with the CSR's subject,
# SAN and public key, the profile's KU/EKU and a serial of >= 64 bits.
# Leaves the certificate in $T/leaf.pem.
assert_issued() {
	local csr=$T/$1.pem s1 s2 ext serial
	assert_status 200
	assert_header Content-Type 'application/pkcs7-mime; smime-type=certs-only'
	assert_header Content-Transfer-Encoding base64
	decode_pkcs7 "$T/leaf.pem"
	assert_eq 1 "$NCERTS" "certificates in the enroll answer" \
	    "$T/leaf.pem.names"
	openssl verify -CAfile "$CERTS/root-ca.pem" \
	    -untrusted "$(dev_issuing_cas)" "$T/leaf.pem" \
	    >"$T/verify.out" 2>&1 ||
	    fail "issued certificate does not verify" "$T/verify.out"
	s1=$(openssl req -in "$csr" -noout -subject -nameopt RFC2253)
	s2=$(openssl x509 -in "$T/leaf.pem" -noout -subject -nameopt RFC2253)
	assert_eq "${s1#subject=}" "${s2#subject=}" "issued subject"
	assert_eq "$(csr_san "$csr")" "$(cert_san "$T/leaf.pem")" "issued SAN"
	s1=$(openssl req -in "$csr" -noout -pubkey)
	s2=$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)
	assert_eq "$s1" "$s2" "issued public key"
	ext=$(openssl x509 -in "$T/leaf.pem" -noout -ext keyUsage 2>&1)
	assert_match 'Digital Signature, Key Encipherment' "$ext" "keyUsage"
	ext=$(openssl x509 -in "$T/leaf.pem" -noout -ext extendedKeyUsage 2>&1)
	assert_match 'TLS Web Client Authentication' "$ext" "extendedKeyUsage"
	serial=$(openssl x509 -in "$T/leaf.pem" -noout -serial)
	serial=${serial#serial=}
	# openssl prints whole octets: 8 octets or more is 64 bits or more
	# (a value below 2^56 would be a 1-in-256 chance for a random 64-bit
	# serial; estrad uses more than 64 bits).
	((${#serial} >= 16)) || fail "serial $serial is shorter than 64 bits"
}

# assert_b64_single_line: $T/body is one line of base64, no newline at all.
assert_b64_single_line() {
	[[ -s $T/body ]] || fail "empty body" "$T/headers"
	[[ $(tr -d -c '\r\n' <"$T/body" | wc -c) -eq 0 ]] ||
	    fail "body is not one line without newline" "$T/body"
	[[ -z $(tr -d 'A-Za-z0-9+/=' <"$T/body") ]] ||
	    fail "body has bytes outside the base64 alphabet" "$T/body"
}

# assert_b64_wrapped COLS: $T/body is base64 in lines of exactly COLS
# characters (the last one up to COLS), LF only, with a final LF.
assert_b64_wrapped() {
	local cols=$1 bad
	grep -q $'\r' "$T/body" && fail "body has CR" "$T/body"
	[[ -z $(tail -c1 "$T/body") ]] || fail "body has no final LF" "$T/body"
	bad=$(awk -v c="$cols" '
		{ n++; l[n] = length($0) }
		END {
			if (n < 2) { print "only " n " line(s)"; exit }
			for (i = 1; i < n; i++)
				if (l[i] != c) { print "line " i " has " l[i] " chars"; exit }
			if (l[n] < 1 || l[n] > c) print "last line has " l[n] " chars"
		}' "$T/body")
	[[ -z $bad ]] || fail "body not wrapped at $cols columns: $bad" "$T/body"
}

# run_bounded SECONDS OUT-FILE CMD...: CMD with stdin from /dev/null and
# stdout+stderr to OUT-FILE, killed after SECONDS; returns its status.
run_bounded() {
	local secs=$1 out=$2
	shift 2
	timeout -k 2 "$secs" "$@" </dev/null >"$out" 2>&1
}

# s_client OUT-FILE [OPENSSL-S_CLIENT-ARGS...]: one TLS connection to estrad,
# verifying its certificate for 127.0.0.1 against the dev root.  OUT-FILE.sum
# gets the lines worth showing in a report.
s_client() {
	local out=$1 rc=0
	shift
	run_bounded 10 "$out" openssl s_client -connect "$HOSTPORT" \
	    -CAfile "$CERTS/tls-ca.pem" -verify_return_error \
	    -verify_ip 127.0.0.1 "$@" || rc=$?
	{
		echo "openssl s_client $* (exit $rc)"
		grep -E -e '^(CONNECTED|New,|Reused,|Verify return code)' \
		    -e '^ +(Protocol|Cipher) +:' -e 'error|alert|verify error' \
		    "$out"
	} >"$out.sum"
	return "$rc"
}

# tls_negotiated S_CLIENT-OUTPUT: the protocol of a completed handshake
# (TLSv1.2, ...), empty if there was none.  TLS 1.3 prints no session block
# before the ticket arrives, hence the "New, TLSv1.3" fallback; "New,
# TLSv1.0" there would be the cipher's version, not the protocol's.
tls_negotiated() {
	local p
	grep -qE '^(New|Reused), TLSv1' "$1" || return 0
	p=$(awk '/^ +Protocol +: / { p = $3 } END { print p }' "$1")
	if [[ -n $p ]]; then
		echo "$p"
	elif grep -qE '^New, TLSv1\.3, Cipher is TLS_' "$1"; then
		echo TLSv1.3
	fi
}

# strongswan_pki OUT-FILE ERR-FILE ARGS...: pki with its plugin-loading noise
# (TPM, aesni, openssl) dropped from ERR-FILE; bounded to 30 s.
strongswan_pki() {
	local out=$1 err=$2 rc=0
	shift 2
	timeout -k 2 30 pki "$@" </dev/null >"$out" 2>"$err.raw" || rc=$?
	grep -v -e '^TPM 2.0' -e "^plugin '[a-z0-9-]*': failed to load" \
	    "$err.raw" >"$err" || true
	return "$rc"
}

# fake_ready_url PID NAME: waits (30 s at most) until the fake CA NAME
# running as PID has written "ready on HOST:PORT" to $T/fake.out and prints
# https://HOST:PORT; fails the test when it exits or stays silent.
fake_ready_url() {
	local pid=$1 name=$2 line="" i
	for ((i = 0; i < 300; i++)); do
		line=$(grep -m1 'ready on' "$T/fake.out" 2>/dev/null)
		[[ -n $line ]] && break
		kill -0 "$pid" 2>/dev/null ||
		    fail "$name exited during startup" "$T/fake.err"
		sleep 0.1
	done
	[[ -n $line ]] || fail "$name not ready after 30 s" "$T/fake.err"
	printf 'https://%s\n' "${line##*ready on }"
}

# issue_expired_client_cert DIR KEY CERT KEYSPEC [START END]: a clientAuth
# certificate for CN=demo-client (an agent of the fake Dogtag) with a new key
# (KEYSPEC as openssl req -newkey takes it: "rsa:2048", "ec -pkeyopt ..."),
# issued by the dev issuing CA with `openssl ca`, valid only in 2020 or from
# START to END (YYYYMMDDHHMMSSZ).  DIR holds the CA's database; fails the
# test when openssl does.
issue_expired_client_cert() {
	local d=$1 key=$2 cert=$3 keyspec=$4
	local start=${5:-20200101000000Z} end=${6:-20201231000000Z}
	mkdir -p "$d"
	: >"$d/index.txt"
	printf '%s\n' 1001 >"$d/serial"
	cat >"$d/ca.cnf" <<EOF_CNF
[ ca ]
default_ca = past
[ past ]
database = $d/index.txt
serial = $d/serial
new_certs_dir = $d
default_md = sha256
policy = any
x509_extensions = ext
unique_subject = no
[ any ]
commonName = supplied
[ ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
EOF_CNF
	# shellcheck disable=SC2086 # KEYSPEC is several words
	openssl req -new -newkey $keyspec -nodes -keyout "$key" \
	    -subj "/CN=demo-client" -out "$d/past.csr" >"$d/req.out" 2>&1 &&
	    openssl ca -batch -config "$d/ca.cnf" -cert "$CERTS/issuing-ca.pem" \
	        -keyfile "$CERTS/issuing-ca.key" -startdate "$start" \
	        -enddate "$end" -in "$d/past.csr" -out "$cert" \
	        -notext >"$d/ca.out" 2>&1 ||
	    fail "cannot make the expired client certificate" "$d/req.out" \
	    "$d/ca.out"
	chmod 600 "$key"
}
