#!/usr/bin/env bash
# test_fake_dogtag.sh: self-test of fake_dogtag.py with real curl.
#
# Starts the fake on a free port with the dev PKI from scripts/mkcerts.sh
# (client.pem, CN=demo-client, is the agent certificate) and drives it the
# way estrad's dogtag backend does: v2/v1 discovery, login by client
# certificate and by Basic with JSESSIONID, template → submit → certs/{id},
# pending → review (nonce) → approve in one session, nonce errors, reject,
# unknown/disabled profiles, bad CSR, issuer-id, chain Accept negotiation,
# v1 switched off, v2 absent, the control API and its switches.  The last
# line says "N passed, M failed"; the exit status is non-zero on failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
fake=$here/fake_dogtag.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fake_dogtag_test.XXXXXX")
pid=""
passed=0
failed=0

cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

ok() {
	passed=$((passed + 1))
	printf 'ok   %s\n' "$1"
}

ko() {
	failed=$((failed + 1))
	printf 'FAIL %s%s\n' "$1" "${2:+: $2}"
}

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else ko "$name"; fi
}

# has FILE STRING: FILE contains the fixed STRING.
has() {
	grep -aqF -- "$2" "$1"
}

# hasnt FILE STRING
hasnt() {
	! grep -aqF -- "$2" "$1"
}

# hdr FILE NAME VALUE: FILE (curl -D) has the header line "NAME: VALUE".
hdr() {
	grep -qix -- "$2: $3"$'\r' "$1"
}

# quiet COMMAND...: COMMAND without its output.
quiet() {
	"$@" >/dev/null 2>&1
}

# not COMMAND...: inverts COMMAND's status.
not() {
	! "$@"
}

# jq_ FILE PYTHON-EXPR: EXPR evaluated with the JSON in FILE as `s`.
jq_() {
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# jis FILE PYTHON-EXPR VALUE: jq_ prints VALUE.
jis() {
	[[ "$(jq_ "$1" "$2")" == "$3" ]]
}

# --- setup -----------------------------------------------------------------

if ! "$repo/scripts/mkcerts.sh" "$tmp/certs" >/dev/null; then
	echo "mkcerts.sh failed"
	echo "0 passed, 1 failed"
	exit 1
fi
certs=$tmp/certs
cacert=$certs/ca-chain.pem
tlsca=$certs/tls-ca.pem
: >"$tmp/fake.out"
python3 "$fake" --listen 127.0.0.1:0 --cert "$certs/server.pem" \
    --key "$certs/server.key" --client-ca "$cacert" --state-dir "$tmp/state" \
    --agents 'demo-client,caadmin:Secret.123' --users 'viewer:viewpw' \
    >"$tmp/fake.out" 2>"$tmp/fake.err" &
pid=$!
port=""
for _ in $(seq 1 150); do
	port=$(sed -n 's/^fake_dogtag: ready on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
	    "$tmp/fake.out")
	[[ -n $port ]] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [[ -z $port ]]; then
	echo "fake_dogtag did not start:"
	cat "$tmp/fake.err"
	echo "0 passed, 1 failed"
	exit 1
fi
ok "fake starts and prints its ready line"
srv=https://127.0.0.1:$port
v2=$srv/ca/v2
v1=$srv/ca/rest

# c ARGS...: curl trusting the dev PKI, no client certificate.
c() {
	curl -sS --cacert "$tlsca" "$@"
}

# a ARGS...: curl with the agent certificate (CN=demo-client).
a() {
	c --cert "$certs/client.pem" --key "$certs/client.key" "$@"
}

# code ARGS...: only the HTTP status of a plain curl call.
code() {
	c -o /dev/null -w '%{http_code}' "$@"
}

# ctl METHOD PATH [JSON]: the control API.
ctl() {
	if [[ $# -ge 3 ]]; then
		c -X "$1" -H 'Content-Type: application/json' --data "$3" "$srv/_fake/$2"
	else
		c -X "$1" "$srv/_fake/$2"
	fi
}

# mkreq TEMPLATE-JSON CSR-FILE OUT [PROFILE]: fills the template the way
# estrad does (cert_request_type, one-line base64 DER CSR).
mkreq() {
	python3 - "$1" "$2" "$3" "${4:-}" <<'EOF'
import base64, json, subprocess, sys
t = json.load(open(sys.argv[1]))
der = subprocess.run(["openssl", "req", "-in", sys.argv[2], "-outform", "DER"],
                     capture_output=True, check=True).stdout
vals = {"cert_request_type": "pkcs10",
        "cert_request": base64.b64encode(der).decode()}
for inp in t["Input"]:
    for attr in inp["Attribute"]:
        if attr["name"] in vals:
            attr["Value"] = vals[attr["name"]]
if sys.argv[4]:
    t["ProfileID"] = sys.argv[4]
json.dump(t, open(sys.argv[3], "w"))
EOF
}

# submit OUT REQ-JSON [URL-BASE] [curl args...]: POST certrequests.
submit() {
	local out=$1 req=$2 base=${3:-$v2}
	shift 3 2>/dev/null || shift $#
	c "$@" -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
	    -H 'Accept: application/json' --data "@$req" "$base/certrequests"
}

openssl req -new -newkey rsa:2048 -noenc -keyout "$tmp/dev.key" \
    -out "$tmp/dev.csr" -subj "/CN=dev1.example.com" \
    -addext "subjectAltName=DNS:dev1.example.com" 2>/dev/null

# --- discovery ---------------------------------------------------------------

c -D "$tmp/h" -o "$tmp/b" "$srv/pki/v2/info"
check "v2 info: 200" has "$tmp/h" "HTTP/1.1 200"
check "v2 info: Version 11.7.0" jis "$tmp/b" 's["Version"]' 11.7.0
check "v2 info: Name" jis "$tmp/b" '"Name" in s' True
check "v2 info: no Deprecation header" not grep -qi '^Deprecation:' "$tmp/h"
c -D "$tmp/h" -o "$tmp/b" "$srv/pki/rest/info"
check "v1 info: 200 with Version" jis "$tmp/b" 's["Version"]' 11.7.0
check "v1 info: Deprecation: true" hdr "$tmp/h" Deprecation true
check "v1 info: Link to REST-API-v2" hdr "$tmp/h" Link '<https://github.com/dogtagpki/pki/wiki/REST-API-v2>; rel="alternate"'
c -D "$tmp/h" -o "$tmp/b" "$srv/ca/v2/nothing/here"
check "unknown path: Tomcat HTML 404" has "$tmp/h" "HTTP/1.1 404"
check "unknown path: HTML body" has "$tmp/b" "<title>HTTP Status 404 – Not Found</title>"
check "unknown path: text/html" grep -qi '^Content-Type: text/html' "$tmp/h"

# --- login -------------------------------------------------------------------

a -c "$tmp/jar" -D "$tmp/h" -o "$tmp/b" "$v2/account/login"
check "login by client certificate: 200" has "$tmp/h" "HTTP/1.1 200"
check "login: JSESSIONID cookie" grep -qiE '^Set-Cookie: JSESSIONID=[0-9A-F]{32}; Path=/ca; Secure; HttpOnly' "$tmp/h"
check "login: Account id is the certificate CN" jis "$tmp/b" 's["id"]' demo-client
check "login: Account has FullName, Email, Roles" jis "$tmp/b" 'sorted(s)' "['Email', 'FullName', 'Roles', 'id']"
check "login: agent role" jis "$tmp/b" '"Certificate Manager Agents" in s["Roles"]' True
c -D "$tmp/h" -o "$tmp/b" "$v2/account/login"
check "login without credentials: 401" has "$tmp/h" "HTTP/1.1 401"
check "401: WWW-Authenticate Basic realm" hdr "$tmp/h" WWW-Authenticate 'Basic realm="Certificate Authority"'
check "401: Tomcat HTML page" has "$tmp/b" "<title>HTTP Status 401 – Unauthorized</title>"
c --basic -u caadmin:Secret.123 -c "$tmp/jarb" -D "$tmp/h" -o "$tmp/b" "$v2/account/login"
check "login by Basic (pre-emptive): 200" has "$tmp/h" "HTTP/1.1 200"
check "Basic login: JSESSIONID" grep -qi '^Set-Cookie: JSESSIONID=' "$tmp/h"
check "Basic login: Account id" jis "$tmp/b" 's["id"]' caadmin
check "Basic after the 401 challenge (Java style): 200" test \
    "$(code --anyauth -u caadmin:Secret.123 "$v2/account/login")" = 200
check "Basic with a wrong password: 401" test \
    "$(code -u caadmin:nope "$v2/account/login")" = 401
check "v1 login: 200" test "$(code --cert "$certs/client.pem" --key "$certs/client.key" "$v1/account/login")" = 200
curl -sS --cacert "$tlsca" --cert "$certs/device.pem" --key "$certs/device.key" \
    -o /dev/null "$v2/account/login" 2>/dev/null
check "client certificate from an untrusted CA fails the TLS handshake" test $? -ne 0

# --- auto enrollment -----------------------------------------------------------

c -o "$tmp/tpl.json" "$v2/certrequests/profiles/caServerCert"
check "template: ProfileID" jis "$tmp/tpl.json" 's["ProfileID"]' caServerCert
check "template: certReqInputImpl with cert_request" jis "$tmp/tpl.json" \
    '[a["name"] for i in s["Input"] if i["ClassID"] == "certReqInputImpl" for a in i["Attribute"]]' \
    "['cert_request_type', 'cert_request']"
check "template: Descriptor objects" jis "$tmp/tpl.json" '"Descriptor" in s["Input"][0]["Attribute"][0]' True
c -o "$tmp/tpl-est.json" "$v2/certrequests/profiles/estServiceCert"
check "agentcert profile template has raClientAuthInfoInputImpl" jis "$tmp/tpl-est.json" \
    '[i["ClassID"] for i in s["Input"]][1]' raClientAuthInfoInputImpl
mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req.json"
st=$(submit "$tmp/r.json" "$tmp/req.json")
check "POST certrequests: 200" test "$st" = 200
check "CertRequestInfos total 1" jis "$tmp/r.json" 's["total"]' 1
check "auto profile: complete" jis "$tmp/r.json" 's["entries"][0]["requestStatus"]' complete
check "operationResult success" jis "$tmp/r.json" 's["entries"][0]["operationResult"]' success
check "requestID is a 0x hex string" jis "$tmp/r.json" 'bool(__import__("re").fullmatch("0x[0-9a-f]+", s["entries"][0]["requestID"]))' True
check "certId is a 0x hex string" jis "$tmp/r.json" 'bool(__import__("re").fullmatch("0x[0-9a-f]+", s["entries"][0]["certId"]))' True
check "epoch-ms creationTime" jis "$tmp/r.json" 's["entries"][0]["creationTime"] > 10**12' True
check "v2 has no requestURL" jis "$tmp/r.json" '"requestURL" in s["entries"][0]' False
rid=$(jq_ "$tmp/r.json" 's["entries"][0]["requestID"]')
cid=$(jq_ "$tmp/r.json" 's["entries"][0]["certId"]')
c -o "$tmp/b" "$v2/certrequests/$rid"
check "GET certrequests/0x…: complete with certId" jis "$tmp/b" 's["certId"]' "$cid"
c -o "$tmp/b" "$v2/certrequests/$((rid))"
check "GET certrequests/<decimal>: same request" jis "$tmp/b" 's["requestID"]' "$rid"
c -o "$tmp/cert.json" "$v2/certs/$cid"
check "CertData id" jis "$tmp/cert.json" 's["id"]' "$cid"
check "CertData IssuerDN" jis "$tmp/cert.json" 's["IssuerDN"]' "CN=CA Signing Certificate,O=EXAMPLE"
check "CertData SubjectDN" jis "$tmp/cert.json" 's["SubjectDN"]' "CN=dev1.example.com"
check "CertData Status VALID" jis "$tmp/cert.json" 's["Status"]' VALID
check "CertData NotBefore, NotAfter" jis "$tmp/cert.json" '"NotBefore" in s and "NotAfter" in s' True
check "v2 CertData has no PrettyPrint" jis "$tmp/cert.json" '"PrettyPrint" in s' False
jq_ "$tmp/cert.json" 's["Encoded"]' >"$tmp/leaf.pem"
check "Encoded is PEM" has "$tmp/leaf.pem" "-----BEGIN CERTIFICATE-----"
openssl x509 -in "$tmp/leaf.pem" -noout -pubkey >"$tmp/k1" 2>/dev/null
openssl req -in "$tmp/dev.csr" -noout -pubkey >"$tmp/k2" 2>/dev/null
check "leaf carries the CSR's public key" cmp -s "$tmp/k1" "$tmp/k2"
openssl x509 -in "$tmp/leaf.pem" -noout -ext subjectAltName >"$tmp/san" 2>/dev/null
check "leaf copies the CSR's SAN" has "$tmp/san" "DNS:dev1.example.com"
serial=$(openssl x509 -in "$tmp/leaf.pem" -noout -serial | cut -d= -f2)
check "certId is the certificate's serial" test "0x$(tr 'A-F' 'a-f' <<<"$serial" | sed 's/^0*//')" = "$cid"
jq_ "$tmp/cert.json" 's["PKCS7CertChain"]' | base64 -d >"$tmp/p7.der" 2>/dev/null
check "PKCS7CertChain: base64 without armour" not has "$tmp/cert.json" "BEGIN PKCS7"
openssl pkcs7 -inform DER -in "$tmp/p7.der" -print_certs -out "$tmp/p7.pem" 2>/dev/null
check "PKCS7CertChain: leaf + signing + root" test "$(grep -c 'BEGIN CERTIFICATE' "$tmp/p7.pem")" = 3
openssl x509 -in "$tmp/p7.pem" -noout -pubkey >"$tmp/k3" 2>/dev/null
check "PKCS7CertChain: first certificate is the leaf" cmp -s "$tmp/k1" "$tmp/k3"
c -o "$tmp/chain.der" -D "$tmp/h" -H 'Accept: application/pkcs7-mime' "$v2/authorities/host-authority/chain"
check "chain (pkcs7-mime): application/pkcs7-mime" hdr "$tmp/h" Content-Type application/pkcs7-mime
openssl pkcs7 -inform DER -in "$tmp/chain.der" -print_certs -out "$tmp/chain.pem" 2>/dev/null
check "chain (pkcs7-mime): DER PKCS#7 with 2 certificates" test "$(grep -c 'BEGIN CERTIFICATE' "$tmp/chain.pem" 2>/dev/null)" = 2
check "leaf verifies against the fake's chain endpoint" \
    quiet openssl verify -CAfile "$tmp/chain.pem" "$tmp/leaf.pem"
check "leaf verifies against DIR/ca-chain.pem" \
    quiet openssl verify -CAfile "$tmp/state/ca-chain.pem" "$tmp/leaf.pem"
c -o "$tmp/chain.p7" -D "$tmp/h" -H 'Accept: application/x-pem-file' "$v2/authorities/host-authority/chain"
check "chain (x-pem-file): application/x-pem-file" hdr "$tmp/h" Content-Type application/x-pem-file
check "chain (x-pem-file): BEGIN PKCS7" has "$tmp/chain.p7" "-----BEGIN PKCS7-----"
check "chain (x-pem-file): same certificates" cmp -s "$tmp/chain.der" \
    <(openssl pkcs7 -in "$tmp/chain.p7" -outform DER 2>/dev/null)
c -o /dev/null -D "$tmp/h" "$v2/authorities/host-authority/chain"
check "chain without Accept: DER" hdr "$tmp/h" Content-Type application/pkcs7-mime
c -o /dev/null -D "$tmp/h" -H 'Accept: */*' "$v2/authorities/host-authority/chain"
check "chain with */*: DER" hdr "$tmp/h" Content-Type application/pkcs7-mime
check "chain with another Accept: 406" test \
    "$(code -H 'Accept: application/json' "$v2/authorities/host-authority/chain")" = 406
aid=$(cat "$tmp/state/authority-id")
check "chain by authority id: 200" test "$(code "$v2/authorities/$aid/chain")" = 200
c -o "$tmp/b" -w '%{http_code}' "$v2/authorities/00000000-0000-0000-0000-000000000001/chain" >"$tmp/st"
check "chain of an unknown authority: 404 PKIException" test "$(cat "$tmp/st")" = 404
check "chain of an unknown authority: Code 404" jis "$tmp/b" 's["Code"]' 404
c -D "$tmp/h" -o "$tmp/b" "$v2/config/cert/signing"
check "config/cert/signing: ETag" grep -qi '^ETag: "' "$tmp/h"
check "config/cert/signing: the signing certificate" jis "$tmp/b" 's["SubjectDN"]' "CN=CA Signing Certificate,O=EXAMPLE"
check "config/cert/signing: chain only (2 certs)" test "$(jq_ "$tmp/b" 's["PKCS7CertChain"]' | base64 -d |
    openssl pkcs7 -inform DER -print_certs 2>/dev/null | grep -c 'BEGIN CERTIFICATE')" = 2
c -o "$tmp/b" "$srv/ca/ee/ca/getCertChain"
check "getCertChain: Status 0" jis "$tmp/b" 's["Response"]["Status"]' 0
check "getCertChain: ChainBase64 is the chain" test "$(jq_ "$tmp/b" 's["Response"]["ChainBase64"]' | base64 -d | cmp -s - "$tmp/chain.der" && echo y)" = y

# issuer-id / issuer-dn
st=$(c -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/req.json" "$v2/certrequests?issuer-id=$aid")
check "issuer-id of the host authority: complete" test "$st:$(jq_ "$tmp/b" 's["entries"][0]["requestStatus"]')" = 200:complete
st=$(c -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/req.json" "$v2/certrequests?issuer-id=00000000-0000-0000-0000-0000000000ff")
check "unknown issuer-id: 404" test "$st" = 404
st=$(c -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/req.json" "$v2/certrequests?issuer-id=garbage")
check "malformed issuer-id: 400" test "$st" = 400
st=$(c -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/req.json" "$v2/certrequests?issuer-id=$aid&issuer-dn=CN=x")
check "issuer-id and issuer-dn together: 400" test "$st" = 400

# v1 enrollment
st=$(submit "$tmp/r1.json" "$tmp/req.json" "$v1" -D "$tmp/h")
check "v1 POST certrequests: 200 complete" jis "$tmp/r1.json" 's["entries"][0]["requestStatus"]' complete
check "v1 answer: Deprecation header" hdr "$tmp/h" Deprecation true
r1=$(jq_ "$tmp/r1.json" 's["entries"][0]["requestID"]')
c1=$(jq_ "$tmp/r1.json" 's["entries"][0]["certId"]')
check "v1 requestURL ends in the decimal id" jis "$tmp/r1.json" 's["entries"][0]["requestURL"]' "$srv/ca/rest/certrequests/$((r1))"
check "v1 certURL ends in the decimal serial" jis "$tmp/r1.json" 's["entries"][0]["certURL"]' "$srv/ca/rest/certs/$((c1))"
c -o "$tmp/b" "$v1/certs/$((c1))"
check "v1 certs/<decimal>: CertData with PrettyPrint" jis "$tmp/b" '"PrettyPrint" in s and s["id"]' "$c1"

# --- profile authenticators ----------------------------------------------------

mkreq "$tmp/tpl-est.json" "$tmp/dev.csr" "$tmp/req-est.json"
st=$(submit "$tmp/b" "$tmp/req-est.json")
check "AgentCertAuth profile without a client certificate: 401" test "$st" = 401
check "AgentCertAuth: UnauthorizedException" jis "$tmp/b" 's["ClassName"]' com.netscape.certsrv.base.UnauthorizedException
check "AgentCertAuth: message" jis "$tmp/b" 's["Message"]' "Authentication failed: Invalid Credential."
st=$(submit "$tmp/b" "$tmp/req-est.json" "$v2" --cert "$certs/client.pem" --key "$certs/client.key")
check "AgentCertAuth profile with the agent certificate: complete" jis "$tmp/b" 's["entries"][0]["requestStatus"]' complete

# --- pending, review, nonce, approve ----------------------------------------------

mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req-man.json" caManual
submit "$tmp/p.json" "$tmp/req-man.json" >/dev/null
check "pending profile: pending" jis "$tmp/p.json" 's["entries"][0]["requestStatus"]' pending
check "pending: no errorMessage, no certId" jis "$tmp/p.json" '"errorMessage" in s["entries"][0] or "certId" in s["entries"][0]' False
pid1=$(jq_ "$tmp/p.json" 's["entries"][0]["requestID"]')
check "review without credentials: 401 HTML" test "$(code "$v2/agent/certrequests/$pid1")" = 401
check "review by a non-agent: 403" test "$(code -u viewer:viewpw "$v2/agent/certrequests/$pid1")" = 403
c -u viewer:viewpw -o "$tmp/b" "$v2/agent/certrequests/$pid1"
check "non-agent: ForbiddenException" jis "$tmp/b" 's["ClassName"]' com.netscape.certsrv.base.ForbiddenException
# The session: login, then review and approve on the same JSESSIONID.
a -c "$tmp/sj" -b "$tmp/sj" -o /dev/null "$v2/account/login"
c -b "$tmp/sj" -c "$tmp/sj" -o "$tmp/rev.json" "$v2/agent/certrequests/$pid1"
check "review on the session cookie alone: nonce" jis "$tmp/rev.json" 'bool(s["nonce"])' True
check "review: requestStatus pending" jis "$tmp/rev.json" 's["requestStatus"]' pending
check "review: echoes the enrollment request" jis "$tmp/rev.json" 's["ProfileID"]' caManual
check "review: ProfilePolicySet" jis "$tmp/rev.json" 'len(s["ProfilePolicySet"]) > 0' True
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); s["nonce"]=str(int(s["nonce"])+1); json.dump(s,open(sys.argv[2],"w"))' \
    "$tmp/rev.json" "$tmp/rev-bad.json"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); del s["nonce"]; json.dump(s,open(sys.argv[2],"w"))' \
    "$tmp/rev.json" "$tmp/rev-none.json"
st=$(c -b "$tmp/sj" -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/rev-bad.json" "$v2/agent/certrequests/$pid1/approve")
check "approve with a wrong nonce: 403" test "$st" = 403
check "wrong nonce: Invalid nonce" jis "$tmp/b" 's["Message"].startswith("Invalid nonce: ")' True
st=$(c -b "$tmp/sj" -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/rev-none.json" "$v2/agent/certrequests/$pid1/approve")
check "approve without a nonce: 400 Missing nonce." test "$st:$(jq_ "$tmp/b" 's["Message"]')" = "400:Missing nonce."
st=$(a -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/rev.json" "$v2/agent/certrequests/$pid1/approve")
check "approve on another session: 400 nonce does not exist" test "$st:$(jq_ "$tmp/b" 's["Message"]')" = "400:Nonce for cert-request $((pid1)) does not exist"
c -b "$tmp/sj" -D "$tmp/h" -o "$tmp/b" -H 'Content-Type: application/json' --data "@$tmp/rev.json" "$v2/agent/certrequests/$pid1/approve"
check "approve with the review body on the same session: 204" has "$tmp/h" "HTTP/1.1 204"
c -o "$tmp/b" "$v2/certrequests/$pid1"
check "after approve: complete" jis "$tmp/b" 's["requestStatus"]' complete
cid2=$(jq_ "$tmp/b" 's["certId"]')
check "after approve: certs/{certId} answers" test "$(code "$v2/certs/$cid2")" = 200
c -b "$tmp/sj" -o "$tmp/rev2.json" "$v2/agent/certrequests/$pid1"
st=$(c -b "$tmp/sj" -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/rev2.json" "$v2/agent/certrequests/$pid1/approve")
check "approve a completed request: 400 Not In Pending State" test "$st:$(jq_ "$tmp/b" 's["Message"]')" = "400:Bad request data: Request Not In Pending State"

# Self-approval by client certificate only (no login): the review creates the
# session (alwaysUseSession).
submit "$tmp/p.json" "$tmp/req-man.json" >/dev/null
pid2=$(jq_ "$tmp/p.json" 's["entries"][0]["requestID"]')
a -c "$tmp/sk" -D "$tmp/h" -o "$tmp/rev.json" "$v2/agent/certrequests/$pid2"
check "review by certificate without login sets JSESSIONID" grep -qi '^Set-Cookie: JSESSIONID=' "$tmp/h"
a -b "$tmp/sk" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/rev.json" "$v2/agent/certrequests/$pid2/reject" >"$tmp/st"
check "agent reject: 204" test "$(cat "$tmp/st")" = 204
check "agent reject: rejected" jis <(c "$v2/certrequests/$pid2") 's["requestStatus"]' rejected
submit "$tmp/p.json" "$tmp/req-man.json" >/dev/null
pid3=$(jq_ "$tmp/p.json" 's["entries"][0]["requestID"]')
c -u caadmin:Secret.123 -c "$tmp/sb" -o "$tmp/rev.json" "$v1/agent/certrequests/$pid3"
st=$(c -b "$tmp/sb" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/rev.json" "$v1/agent/certrequests/$pid3/cancel")
check "v1 agent cancel by a Basic session: 204" test "$st" = 204
check "cancel: canceled" jis <(c "$v2/certrequests/$pid3") 's["requestStatus"]' canceled
st=$(a -o "$tmp/b" -w '%{http_code}' "$v2/agent/certrequests/0xfffff")
check "v2 review of an unknown id: 500 (catch-all)" test "$st" = 500
st=$(c -o "$tmp/b" -w '%{http_code}' "$v2/certrequests/0xfffff")
check "unknown request: 404" test "$st" = 404
check "unknown request: RequestNotFoundException" jis "$tmp/b" 's["ClassName"]' com.netscape.certsrv.request.RequestNotFoundException
check "unknown request: message with the hex id" jis "$tmp/b" 's["Message"]' "Request ID 0xfffff not found"
st=$(c -o "$tmp/b" -w '%{http_code}' "$v2/certs/0x1")
check "unknown certificate: 404 CertNotFoundException" test "$st:$(jq_ "$tmp/b" 's["ClassName"]')" = "404:com.netscape.certsrv.cert.CertNotFoundException"

# Control API approve/reject.
submit "$tmp/p.json" "$tmp/req-man.json" >/dev/null
pid4=$(jq_ "$tmp/p.json" 's["entries"][0]["requestID"]')
ctl POST "requests/$pid4/approve" >"$tmp/b"
check "control approve: complete" jis "$tmp/b" 's["state"]' complete
check "control approve: GET shows certId" jis <(c "$v2/certrequests/$((pid4))") 'bool(s["certId"])' True
submit "$tmp/p.json" "$tmp/req-man.json" >/dev/null
pid5=$(jq_ "$tmp/p.json" 's["entries"][0]["requestID"]')
ctl POST "requests/$((pid5))/reject" '{"message": "no way"}' >/dev/null
c -o "$tmp/b" "$v2/certrequests/$pid5"
check "control reject (decimal id): rejected with errorMessage" test \
    "$(jq_ "$tmp/b" 's["requestStatus"] + "/" + s["errorMessage"]')" = "rejected/no way"

# --- reject, unknown, disabled, bad CSR ----------------------------------------

mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req-rej.json" caReject
st=$(submit "$tmp/b" "$tmp/req-rej.json")
check "reject profile: 200" test "$st" = 200
check "reject profile: rejected" jis "$tmp/b" 's["entries"][0]["requestStatus"]' rejected
check "reject profile: errorMessage" jis "$tmp/b" 'bool(s["entries"][0]["errorMessage"])' True
check "reject profile: operationResult still success" jis "$tmp/b" 's["entries"][0]["operationResult"]' success
mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req-unk.json" caNoSuch
st=$(submit "$tmp/b" "$tmp/req-unk.json")
check "unknown profile: 400" test "$st" = 400
check "unknown profile: BadRequestException" jis "$tmp/b" 's["ClassName"]' com.netscape.certsrv.base.BadRequestException
check "unknown profile: message" jis "$tmp/b" 's["Message"]' "Bad request data: Profile caNoSuch Not Found"
check "unknown profile: Code 400" jis "$tmp/b" 's["Code"]' 400
c -o "$tmp/b" "$v2/certrequests/profiles/caNoSuch"
check "unknown profile template: 400 message" jis "$tmp/b" 's["Message"]' "Unable to get enrollment template for caNoSuch: Profile not found"
mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req-off.json" caOff
st=$(submit "$tmp/b" "$tmp/req-off.json")
check "disabled profile: 400 not enabled" test "$st:$(jq_ "$tmp/b" 's["Message"]')" = "400:Bad request data: Profile caOff not enabled"
# The template is served for a disabled profile; its state is an agent's
# read (profiles/{id}), in a session from a certificate login.
check "disabled profile: template still served" test "$(code "$v2/certrequests/profiles/caOff")" = 200
a -c "$tmp/pj" -b "$tmp/pj" -o /dev/null "$v2/account/login"
a -b "$tmp/pj" -o "$tmp/b" "$v2/profiles/caOff"
check "profiles/{id} of a disabled profile: enabled false" jis "$tmp/b" 's["enabled"], "enabledBy" in s' "(False, False)"
a -b "$tmp/pj" -o "$tmp/b" "$v1/profiles/caServerCert"
check "v1 profiles/{id}: enabled by an agent" jis "$tmp/b" 's["id"], s["enabled"], s["enabledBy"]' "('caServerCert', True, 'caadmin')"
a -b "$tmp/pj" -o "$tmp/b" -w '%{http_code}' "$v2/profiles/caNoSuch" >"$tmp/st"
check "profiles/{id} of an unknown profile: 404" test "$(cat "$tmp/st")" = 404
c -o "$tmp/b" "$v2/profiles/caServerCert"
check "profiles/{id} without a session: 403 anonymous" jis "$tmp/b" 's["Code"], s["Message"]' "(403, 'Anonymous access not allowed.')"
c --basic -u caadmin:Secret.123 -c "$tmp/pjb" -b "$tmp/pjb" -o /dev/null "$v2/account/login"
c -b "$tmp/pjb" -o "$tmp/b" "$v2/profiles/caServerCert"
check "profiles/{id} after a Basic login: 403 auth method" jis "$tmp/b" 's["Message"]' "Authentication method not allowed."
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); s["Input"][0]["Attribute"][1]["Value"]="bm90IGEgQ1NS"; json.dump(s,open(sys.argv[2],"w"))' \
    "$tmp/req.json" "$tmp/req-bad.json"
st=$(submit "$tmp/b" "$tmp/req-bad.json")
check "unparsable CSR: 500 PKIException" test "$st:$(jq_ "$tmp/b" 's["ClassName"]')" = "500:com.netscape.certsrv.base.PKIException"
check "unparsable CSR: message" jis "$tmp/b" 's["Message"]' "Unable to create enrollment request: Invalid Request"

# --- switches -------------------------------------------------------------------

ctl POST config '{"v1": false}' >/dev/null
c -D "$tmp/h" -o "$tmp/b" "$v1/account/login"
check "v1 off: 404" has "$tmp/h" "HTTP/1.1 404"
check "v1 off: the disabled JSON" jis "$tmp/b" 's["error"]' "REST API v1 have been disabled"
check "v1 off: message and documentation" jis "$tmp/b" 'sorted(s)' "['documentation', 'error', 'message']"
check "v1 off: /pki/rest/info too" test "$(code "$srv/pki/rest/info")" = 404
check "v1 off: v2 still works" test "$(code "$srv/pki/v2/info")" = 200
ctl POST config '{"v1": true, "v2": false}' >/dev/null
c -D "$tmp/h" -o "$tmp/b" "$srv/pki/v2/info"
check "v2 absent: /pki/v2/info is an HTML 404" test "$(head -c 15 "$tmp/b"):$(grep -c '^HTTP/1.1 404' "$tmp/h")" = "<!doctype html>:1"
check "v2 absent: /pki/rest/info answers" test "$(code "$srv/pki/rest/info")" = 200
ctl POST config '{"v2": true}' >/dev/null

ctl POST config '{"agent_expired": true}' >/dev/null
a -D "$tmp/h" -o "$tmp/b" "$v2/account/login"
check "agent_expired: login by certificate gets the Tomcat 401" test \
    "$(grep -c '^HTTP/1.1 401' "$tmp/h"):$(grep -c 'HTTP Status 401' "$tmp/b")" = "1:1"
st=$(submit "$tmp/b" "$tmp/req-est.json" "$v2" --cert "$certs/client.pem" --key "$certs/client.key")
check "agent_expired: AgentCertAuth profile 401" test "$st" = 401
ctl POST config '{"agent_expired": false, "basic": false}' >/dev/null
check "basic=false: Basic login refused" test "$(code -u caadmin:Secret.123 "$v2/account/login")" = 401
check "basic=false: certificate login works" test "$(code --cert "$certs/client.pem" --key "$certs/client.key" "$v2/account/login")" = 200
ctl POST config '{"basic": true, "ca_disabled": true}' >/dev/null
st=$(submit "$tmp/b" "$tmp/req.json")
check "ca_disabled: 409 ConflictingOperationException" test "$st:$(jq_ "$tmp/b" 's["ClassName"]')" = "409:com.netscape.certsrv.base.ConflictingOperationException"
check "ca_disabled: CA not enabled" jis "$tmp/b" 's["Message"]' "CA not enabled"
ctl POST config '{"ca_disabled": false, "random_ids": true, "profiles": {"caLate": "pending"}}' >/dev/null
submit "$tmp/b" "$tmp/req.json" >/dev/null
rr=$(jq_ "$tmp/b" 's["entries"][0]["requestID"]')
check "random_ids: 128-bit request id" test "${#rr}" -eq 34
check "random_ids: found by hex" test "$(code "$v2/certrequests/$rr")" = 200
dec=$(python3 -c 'import sys; print(int(sys.argv[1], 16))' "$rr")
check "random_ids: found by decimal" test "$(code "$v2/certrequests/$dec")" = 200
check "random_ids: big certId fetchable" test "$(code "$v2/certs/$(jq_ "$tmp/b" 's["entries"][0]["certId"]')")" = 200
mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req-late.json" caLate
submit "$tmp/b" "$tmp/req-late.json" >/dev/null
check "profiles added at run time" jis "$tmp/b" 's["entries"][0]["requestStatus"]' pending
ctl POST config '{"random_ids": false}' >/dev/null

# SessionAuthentication profile: needs the login's JSESSIONID.
ctl POST config '{"profiles": {"estSession": "auto+session", "caErr": "error"}}' >/dev/null
mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req-ses.json" estSession
check "session profile without a session: 401" test "$(submit /dev/null "$tmp/req-ses.json")" = 401
a -c "$tmp/js" -o /dev/null "$v2/account/login"
submit "$tmp/b" "$tmp/req-ses.json" "$v2" -b "$tmp/js" >/dev/null
check "session profile with the login's JSESSIONID: complete" jis "$tmp/b" 's["entries"][0]["requestStatus"]' complete
c -u viewer:viewpw -c "$tmp/jv" -o /dev/null "$v2/account/login"
check "session profile, non-agent session: 401" test "$(submit /dev/null "$tmp/req-ses.json" "$v2" -b "$tmp/jv")" = 401
mkreq "$tmp/tpl.json" "$tmp/dev.csr" "$tmp/req-err.json" caErr
submit "$tmp/b" "$tmp/req-err.json" >/dev/null
check "error profile: Server Internal Error message" jis "$tmp/b" 's["entries"][0]["errorMessage"].endswith(" - Server Internal Error")' True

# Lightweight CAs.
lw=11111111-2222-3333-4444-555555555555
ctl POST config "{\"authorities\": {\"$lw\": \"enabled\"}, \"profiles\": {\"caManual\": \"pending\"}}" >/dev/null
check "enabled lightweight CA: chain 200" test "$(code "$v2/authorities/$lw/chain")" = 200
st=$(c -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/req-man.json" "$v2/certrequests?issuer-id=$lw")
check "lightweight CA: pending request" test "$st:$(jq_ "$tmp/b" 's["entries"][0]["requestStatus"]')" = 200:pending
lwid=$(jq_ "$tmp/b" 's["entries"][0]["requestID"]')
ctl POST config "{\"authorities\": {\"$lw\": \"disabled\"}}" >/dev/null
st=$(c -o "$tmp/b" -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/req.json" "$v2/certrequests?issuer-id=$lw")
check "disabled lightweight CA: POST 409" test "$st" = 409
ctl POST config "{\"authorities\": {\"$lw\": null}}" >/dev/null
a -c "$tmp/jw" -o "$tmp/rev.json" "$v2/agent/certrequests/$lwid"
st=$(a -b "$tmp/jw" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "@$tmp/rev.json" "$v2/agent/certrequests/$lwid/approve")
check "approve after the lightweight CA was deleted: 410" test "$st" = 410

ctl POST config '{"delay_ms": {"/ca/v2/certs": 700}}' >/dev/null
t0=$(date +%s%N)
c -o /dev/null "$v2/certs/$cid"
t1=$(date +%s%N)
check "delay_ms by path prefix" test $(((t1 - t0) / 1000000)) -ge 650
ctl POST config '{"delay_ms": {"submit": 1200}}' >/dev/null
t0=$(date +%s%N)
submit /dev/null "$tmp/req.json" >/dev/null
t1=$(date +%s%N)
check "delay_ms slows the submission by 1.2 s" test $(((t1 - t0) / 1000000)) -ge 1100
check "delay_ms leaves other endpoints alone" test "$(c -o /dev/null -w '%{time_total}' "$srv/pki/v2/info" | cut -d. -f1)" = 0
ctl POST config '{"delay_ms": 0, "drop": {"cert": 1}}' >/dev/null
c -o /dev/null "$v2/certs/$cid" 2>/dev/null
check "drop cuts the certs answer (curl 18)" test $? = 18
check "drop with a count fires once" test "$(code "$v2/certs/$cid")" = 200
ctl POST config '{"down": "503"}' >/dev/null
check "down=503: 503" test "$(code "$srv/pki/v2/info")" = 503
ctl POST config '{"down": "close"}' >/dev/null
c -o /dev/null "$srv/pki/v2/info" 2>/dev/null
check "down=close: empty reply (curl 52)" test $? = 52
ctl POST config '{"down": true, "down_ms": 1500}' >/dev/null
sleep 0.3
c -o /dev/null "$srv/pki/v2/info" 2>/dev/null
check "down=true: connection refused (curl 7)" test $? = 7
sleep 1.6
check "down=true: back after down_ms" test "$(code "$srv/pki/v2/info")" = 200
check "control API refuses unknown switches" test "$(code -H 'Content-Type: application/json' --data '{"bogus": 1}' "$srv/_fake/config")" = 400
ctl POST reset >/dev/null

# --- keep-alive and state ---------------------------------------------------------

c -o /dev/null -o /dev/null -w '%{num_connects}\n' "$srv/pki/v2/info" "$v2/certs/$cid" >"$tmp/nc"
check "keep-alive: second request reuses the connection" test "$(sed -n 2p "$tmp/nc")" = 0
a -c "$tmp/jl" -o /dev/null "$v2/account/logout"
check "logout: 204" test "$(a -b "$tmp/jar" -o /dev/null -w '%{http_code}' "$v2/account/logout")" = 204
ctl GET state >"$tmp/s"
check "state: requests with hex ids" jis "$tmp/s" 'any(r["id"] == "'"$rid"'" for r in s["requests"])' True
check "state: who submitted (agent certificate)" jis "$tmp/s" 'any(r["submitted_by"] == "demo-client" and r["auth"] == "agentcert" for r in s["requests"])' True
check "state: logins by cert and Basic" jis "$tmp/s" 'sorted({l["method"] for l in s["logins"]})' "['basic', 'cert']"
check "state: counters per API version" jis "$tmp/s" 's["counters"]["v2"]["submit"] > 5 and s["counters"]["v1"]["submit"] >= 1' True
check "state: approve counter" jis "$tmp/s" 's["counters"]["v2"]["approve"] >= 4' True

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
check "SIGTERM: clean exit" test "$rc" = 0

if [[ $failed -ne 0 ]]; then
	echo "--- fake_dogtag stderr (last 20 lines):"
	tail -n 20 "$tmp/fake.err"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
