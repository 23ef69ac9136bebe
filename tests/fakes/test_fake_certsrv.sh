#!/usr/bin/env bash
# test_fake_certsrv.sh: self-test of fake_certsrv.py with real curl.
#
# Starts the fake on a free port with the dev PKI from scripts/mkcerts.sh and
# drives it the way certsrv clients do: NTLM and Basic logins, the anonymous
# 401, submit → issued page → certnew.cer, manual approval, deny codes,
# certcarc.asp and renewals, p7b chains, query-name case, 301, User-Agent
# sensitivity, delays, dropped answers, locales, the control API.  The last
# line says "N passed, M failed"; the exit status is non-zero on failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
fake=$here/fake_certsrv.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fake_certsrv_test.XXXXXX")
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

# matches FILE PCRE: the whole FILE (CRLFs included) matches PCRE; ^ and $
# anchor at line ends.
matches() {
	grep -aqPz -- "(?m)$2" "$1"
}

# quiet COMMAND...: COMMAND without its output.
quiet() {
	"$@" >/dev/null 2>&1
}

# not COMMAND...: inverts COMMAND's status.
not() {
	! "$@"
}

# --- setup -----------------------------------------------------------------

if ! "$repo/scripts/mkcerts.sh" "$tmp/certs" >/dev/null; then
	echo "mkcerts.sh failed"
	echo "0 passed, 1 failed"
	exit 1
fi
cacert=$tmp/certs/tls-ca.pem
: >"$tmp/fake.out"
python3 "$fake" --listen 127.0.0.1:0 --cert "$tmp/certs/server.pem" \
    --key "$tmp/certs/server.key" --state-dir "$tmp/state" \
    --users 'certuser:certpass,DOM\other:otherpw' --basic-enabled \
    --templates WebServer,User,Machine,'Cisco Phone' \
    >"$tmp/fake.out" 2>"$tmp/fake.err" &
pid=$!
port=""
for _ in $(seq 1 100); do
	port=$(sed -n 's/^fake_certsrv: ready on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
	    "$tmp/fake.out")
	[[ -n $port ]] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [[ -z $port ]]; then
	echo "fake_certsrv did not start:"
	cat "$tmp/fake.err"
	echo "0 passed, 1 failed"
	exit 1
fi
ok "fake starts and prints its ready line"
base=https://127.0.0.1:$port/certsrv
ctlbase=https://127.0.0.1:$port/_fake
ua='Mozilla/5.0 (fake_certsrv self-test)'

# c ARGS...: curl as an RA client: TLS pinned, NTLM login, browser-like UA.
c() {
	curl -sS --cacert "$cacert" -A "$ua" --ntlm -u 'FAKE\certuser:certpass' "$@"
}

# ctl METHOD PATH [JSON]: the control API.
ctl() {
	if [[ $# -ge 3 ]]; then
		curl -sS --cacert "$cacert" -X "$1" -H 'Content-Type: application/json' \
		    --data "$3" "$ctlbase/$2"
	else
		curl -sS --cacert "$cacert" -X "$1" "$ctlbase/$2"
	fi
}

# jget JSON-FILE PYTHON-EXPR: evaluates EXPR with the JSON as `s`.
jget() {
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# submit OUT CSR-VALUE-FILE [TEMPLATE] [curl args...]: POST certfnsh.asp the
# way estrad does (form-encoded, CRLF-joined CertAttrib).
submit() {
	local out=$1 csr=$2 tpl=${3:-WebServer}
	shift 3 2>/dev/null || shift $#
	c "$@" -o "$out" "$base/certfnsh.asp" --data-urlencode Mode=newreq \
	    --data-urlencode "CertRequest@$csr" \
	    --data-urlencode "CertAttrib=CertificateTemplate:$tpl"$'\r\n'"UserAgent:$ua" \
	    --data-urlencode TargetStoreFlags=0 --data-urlencode SaveCert=yes
}

# reqid FILE: the ReqID of an issued page.
reqid() {
	grep -aoP 'certnew\.cer\?ReqID=\K\d+(?=&)' "$1" | head -n 1
}

openssl req -new -newkey rsa:2048 -noenc -keyout "$tmp/dev.key" \
    -out "$tmp/dev.csr" -subj "/CN=dev1.example.test" \
    -addext "subjectAltName=DNS:dev1.example.test" 2>/dev/null

# --- framing and authentication --------------------------------------------

curl -sS --cacert "$cacert" -D "$tmp/h" -o "$tmp/b" "$base/"
check "anonymous GET /certsrv/ is 401" has "$tmp/h" "HTTP/1.1 401"
check "401 offers Negotiate" grep -qix $'WWW-Authenticate: Negotiate\r' "$tmp/h"
check "401 offers NTLM" grep -qix $'WWW-Authenticate: NTLM\r' "$tmp/h"
check "401 offers Basic when enabled" grep -qi '^WWW-Authenticate: Basic realm="' "$tmp/h"
check "401 body is the IIS page" has "$tmp/b" "<title>401 - Unauthorized"
check "IIS Server header" grep -qix $'Server: Microsoft-IIS/10.0\r' "$tmp/h"
check "X-Powered-By header" grep -qix $'X-Powered-By: ASP.NET\r' "$tmp/h"

curl -sS --cacert "$cacert" -D "$tmp/h" -o /dev/null "https://127.0.0.1:$port/certsrv"
check "GET /certsrv is 301 to /certsrv/" matches "$tmp/h" '^HTTP/1.1 301.*\r$'
check "301 Location" grep -qix $'Location: /certsrv/\r' "$tmp/h"

c -D "$tmp/h" -o "$tmp/b" "$base/"
check "NTLM login gives 200" has "$tmp/h" "HTTP/1.1 200"
check "home page has the common head" has "$tmp/b" "<Title>Microsoft Active Directory Certificate Services</Title>"
check "home page has the CA banner" has "$tmp/b" "Certificate Services &nbsp;--&nbsp; fake-CERTSRV-CA"
check "ASPSESSIONID cookie" grep -qiP '^Set-Cookie: ASPSESSIONID[A-Z]{8}=[A-Z]+; secure; path=/\r$' "$tmp/h"
check "pages are bare text/html" grep -qix $'Content-Type: text/html\r' "$tmp/h"
check "pages have CRLF line ends" matches "$tmp/b" '</Title>\r$'

code=$(curl -sS --cacert "$cacert" --ntlm -u 'FAKE\certuser:wrong' -o "$tmp/b" -w '%{http_code}' "$base/")
check "NTLM with a wrong password is 401" test "$code" = 401
check "wrong credentials get the 401.1 page" has "$tmp/b" "<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>"
code=$(curl -sS --cacert "$cacert" --ntlm -u 'FAKE\nobody:certpass' -o /dev/null -w '%{http_code}' "$base/")
check "NTLM with an unknown user is 401" test "$code" = 401
code=$(curl -sS --cacert "$cacert" --ntlm -u 'other@dom:otherpw' -o /dev/null -w '%{http_code}' "$base/")
check "NTLM with user@domain form" test "$code" = 200
code=$(curl -sS --cacert "$cacert" --basic -u 'certuser:certpass' -o /dev/null -w '%{http_code}' "$base/")
check "Basic login gives 200" test "$code" = 200
code=$(curl -sS --cacert "$cacert" --basic -u 'DOM\certuser:certpass' -o /dev/null -w '%{http_code}' "$base/")
check "Basic login as DOMAIN\\user" test "$code" = 200
code=$(curl -sS --cacert "$cacert" --basic -u 'certuser:nope' -o /dev/null -w '%{http_code}' "$base/")
check "Basic with a wrong password is 401" test "$code" = 401

# Two URLs, one connection: NTLM authenticates the connection once.
ctl GET state >"$tmp/s0"
c -o /dev/null -o /dev/null -w '%{num_connects}\n' "$base/" "$base/certcarc.asp" >"$tmp/nc"
ctl GET state >"$tmp/s1"
check "keep-alive: second request reuses the connection" test "$(sed -n 2p "$tmp/nc")" = 0
check "NTLM is connection-bound (one handshake for two pages)" test \
    "$(( $(jget "$tmp/s1" 's["ntlm"]["handshakes"]') - $(jget "$tmp/s0" 's["ntlm"]["handshakes"]') ))" = 1

# NTLM by hand: the Type 1 POST with an empty body, and a Type 3 that arrives
# on a connection other than the challenged one.
cat >"$tmp/ntlm.py" <<'EOF'
import base64, hashlib, hmac, http.client, os, ssl, struct, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import fake_certsrv as f
port, cafile = int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
def conn():
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
def req(c, method, auth, body=b""):
    c.request(method, "/certsrv/certfnsh.asp", body=body, headers={
        "Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    return r
def type3(chal, user="certuser", dom="FAKE", pw="certpass"):
    blob = b"\x01\x01" + b"\0" * 6 + struct.pack("<Q", 0) + os.urandom(8) + b"\0" * 4
    owf = hmac.new(f._md4(pw.encode("utf-16-le")),
                   (user.upper() + dom).encode("utf-16-le"), hashlib.md5).digest()
    nt = hmac.new(owf, chal + blob, hashlib.md5).digest() + blob
    d, u = dom.encode("utf-16-le"), user.encode("utf-16-le")
    off, bufs, payload = 64, b"", b""
    for v in (b"", nt, d, u, b"", b""):
        bufs += struct.pack("<HHI", len(v), len(v), off + len(payload))
        payload += v
    msg = f.NTLMSSP + struct.pack("<I", 3) + bufs + struct.pack("<I", 0x88201) + payload
    return "NTLM " + base64.b64encode(msg).decode()
t1 = "NTLM " + base64.b64encode(f.NTLMSSP + struct.pack("<II", 1, 0x88207)
                                + b"\0" * 16).decode()
a = conn()
r = req(a, "POST", t1)
hdr = r.getheader("WWW-Authenticate", "")
t2 = base64.b64decode(hdr.split()[1]) if hdr.startswith("NTLM ") else b""
print("type1", r.status, "type2" if t2[8:12] == b"\x02\0\0\0" else "none")
chal = t2[24:32]
b = conn()
r = req(b, "POST", type3(chal), b"Mode=newreq")
print("other-connection", r.status)
r = req(a, "GET", type3(chal))
print("same-connection", r.status)
EOF
python3 "$tmp/ntlm.py" "$here" "$port" "$cacert" >"$tmp/ntlm.out" 2>&1
check "empty NTLM Type 1 POST gets a Type 2 challenge" has "$tmp/ntlm.out" "type1 401 type2"
check "Type 3 on another connection is refused" has "$tmp/ntlm.out" "other-connection 401"
check "Type 3 on the challenged connection is accepted" has "$tmp/ntlm.out" "same-connection 200"

# --- template list ---------------------------------------------------------

c -o "$tmp/b" "$base/certrqxt.asp"
check "certrqxt.asp has the lbCertTemplate select" has "$tmp/b" '<Select Name="lbCertTemplate" ID="lbCertTemplateID">'
grep -aoP '<Option Value="\K[^"]+' "$tmp/b" >"$tmp/opts"
# shellcheck disable=SC2016
check "template option has >= 14 fields, internal name at index 1" \
    awk -F';' 'NR == 1 && NF >= 14 && $2 == "WebServer" { f = 1 } END { exit !f }' "$tmp/opts"
check "every published template is listed" test "$(wc -l <"$tmp/opts")" = 4

# --- submit and collect ----------------------------------------------------

ctl GET state >"$tmp/s0"
submit "$tmp/issued.html" "$tmp/dev.csr" WebServer
id=$(reqid "$tmp/issued.html")
check "NTLM POST certfnsh.asp gives the issued page" has "$tmp/issued.html" "ID=locInfo"
check "issued page: ReqID starts at 61108" test "$id" = 61108
check "issued page: downlevel DER link" has "$tmp/issued.html" "<A Href=\"certnew.cer?ReqID=$id&amp;Enc=bin\">"
check "issued page: locDownloadCert1" has "$tmp/issued.html" "ID=locDownloadCert1"
check "issued page: p7b link" has "$tmp/issued.html" "certnew.p7b?ReqID=$id&amp;Enc=b64"
check "issued page: scripted handleGetCert" matches "$tmp/issued.html" \
    "function handleGetCert\(\) \{\r\n\t\tlocation=\"certnew\.cer\?ReqID=$id&\"\+getEncoding\(\);"
ctl GET state >"$tmp/s1"
check "empty NTLM Type 1 POST is no submission" test \
    "$(( $(jget "$tmp/s1" 's["submissions"]') - $(jget "$tmp/s0" 's["submissions"]') ))" = 1
check "one request recorded" test "$(jget "$tmp/s1" 'len(s["requests"])')" = 1
check "state names the template" test "$(jget "$tmp/s1" 's["requests"][0]["template"]')" = WebServer

c -D "$tmp/h" -o "$tmp/cert.der" "$base/certnew.cer?ReqID=$id&Enc=bin"
check "certnew.cer is application/pkix-cert" grep -qix $'Content-Type: application/pkix-cert\r' "$tmp/h"
check "certnew.cer Enc=bin is DER" openssl x509 -inform DER -in "$tmp/cert.der" -noout
openssl x509 -inform DER -in "$tmp/cert.der" -noout -pubkey >"$tmp/k1" 2>/dev/null
openssl req -in "$tmp/dev.csr" -noout -pubkey >"$tmp/k2" 2>/dev/null
check "issued certificate carries the CSR's public key" cmp -s "$tmp/k1" "$tmp/k2"
openssl x509 -inform DER -in "$tmp/cert.der" -noout -ext subjectAltName >"$tmp/san" 2>/dev/null
check "issued certificate copies the CSR's SAN" has "$tmp/san" "DNS:dev1.example.test"
openssl x509 -inform DER -in "$tmp/cert.der" -out "$tmp/cert.pem"
check "issued certificate verifies against the fake's chain" \
    quiet openssl verify -CAfile "$tmp/state/ca-chain-0.pem" "$tmp/cert.pem"

c -o "$tmp/cert.b64" "$base/certnew.cer?ReqID=$id"
check "Enc omitted means base64 (PEM)" has "$tmp/cert.b64" "-----BEGIN CERTIFICATE-----"
check "PEM has CRLF line ends" matches "$tmp/cert.b64" '^-----BEGIN CERTIFICATE-----\r$'
c -o "$tmp/cert2.der" "$base/CertNew.cer?reqid=$id&ENC=bin"
check "query names and page names are case-insensitive" cmp -s "$tmp/cert.der" "$tmp/cert2.der"

c -D "$tmp/h" -o "$tmp/leaf.p7b" "$base/certnew.p7b?ReqID=$id&Enc=bin"
check "certnew.p7b is application/x-pkcs7-certificates" grep -qix $'Content-Type: application/x-pkcs7-certificates\r' "$tmp/h"
n=$(openssl pkcs7 -inform DER -in "$tmp/leaf.p7b" -print_certs 2>/dev/null | grep -c '^subject=')
check "leaf p7b holds leaf + issuing + root" test "$n" = 3

# Other CSR encodings: PEM without newlines, bare base64.
tr -d '\n' <"$tmp/dev.csr" >"$tmp/flat.csr"
submit "$tmp/b" "$tmp/flat.csr" WebServer
check "PEM without newlines is accepted" test -n "$(reqid "$tmp/b")"
grep -v -- ----- "$tmp/dev.csr" >"$tmp/bare.csr"
submit "$tmp/b" "$tmp/bare.csr" webserver
check "bare base64 and template case are accepted" test -n "$(reqid "$tmp/b")"
c -o "$tmp/b" "$base/certfnsh.asp" --data-urlencode Mode=newreq \
    --data-urlencode "CertRequest@$tmp/dev.csr" \
    --data-urlencode "CertAttrib=UserAgent:x"$'\n'"CertificateTemplate:Cisco Phone"
check "LF-separated CertAttrib, template with a space" test -n "$(reqid "$tmp/b")"
c -o "$tmp/b" "$base/certfnsh.asp" --data-urlencode Mode=newreq \
    --data-urlencode "CertRequest@$tmp/dev.csr"
check "missing CertAttrib gives the error page" has "$tmp/b" "ID=locContactAdmin"

# --- status pages ----------------------------------------------------------

c -o "$tmp/b" "$base/certnew.cer?ReqID=-1&Enc=bin"
check "unknown ReqID: property empty page" has "$tmp/b" "The requested property value is empty"
check "unknown ReqID: 0x80094004" has "$tmp/b" "0x80094004 (-2146877436 CERTSRV_E_PROPERTY_EMPTY)"

submit "$tmp/b" "$tmp/dev.csr" NoSuchTemplate
check "unknown template is denied (locDenied)" has "$tmp/b" "<P ID=locDenied>"
check "unknown template: 0x80094800 text" has "$tmp/b" 'The disposition message is "Denied by Policy Module  0x80094800, The request was for a certificate template that is not supported'
check "denied page gives the Request Id" matches "$tmp/b" 'Your Request Id is \d+\.'

for code in 0x80094012 0x80094014; do
	ctl POST config "{\"deny\": \"$code\"}" >/dev/null
	submit "$tmp/b" "$tmp/dev.csr" WebServer
	check "deny=$code gives the denied page" matches "$tmp/b" "ID=locDenied.*\r\n(.|\r\n)*Denied by Policy Module  $code, "
	did=$(grep -aoP 'Your Request Id is \K\d+' "$tmp/b")
	c -o "$tmp/b2" "$base/certnew.cer?ReqID=$did&Enc=bin"
	check "deny=$code: certnew.cer LastStatus" matches "$tmp/b2" "LastStatus:[^\t]+\t\t[^\r\n]+$code \(-\d+ CERTSRV_E_"
	check "deny=$code: Disposition 2" matches "$tmp/b2" "\t\t2 <LocID ID=locDispSpacer>"
done
ctl POST config '{"deny": "parse"}' >/dev/null
submit "$tmp/b" "$tmp/dev.csr" WebServer
check "deny=parse: Error Parsing Request" has "$tmp/b" 'The disposition message is "Error Parsing Request'
ctl POST config '{"deny": null}' >/dev/null
printf 'NotACsr' >"$tmp/bad.csr"
submit "$tmp/b" "$tmp/bad.csr" WebServer
check "garbage CSR: Error Parsing Request" has "$tmp/b" "Error Parsing Request"

# Manual approval: pending, then issued or denied through the control API.
ctl POST config '{"approval": "manual"}' >/dev/null
submit "$tmp/b" "$tmp/dev.csr" WebServer
pid_req=$(grep -aoP 'Your Request Id is \K\d+(?=\.)' "$tmp/b")
check "manual approval: pending page" has "$tmp/b" "Certificate Pending"
check "pending page: wait for an administrator" has "$tmp/b" "you must wait for an administrator to issue the certificate you requested"
check "pending page: no certnew link" hasnt "$tmp/b" "certnew.cer?ReqID="
c -D "$tmp/h" -o "$tmp/b" "$base/certnew.cer?ReqID=$pid_req&Enc=bin"
check "pending certnew.cer is text/html" grep -qix $'Content-Type: text/html\r' "$tmp/h"
check "pending: two-TAB Disposition message" matches "$tmp/b" "Disposition message:[^\t]+\t\tTaken Under Submission\r$"
check "pending: Disposition 5" matches "$tmp/b" "^\t\t5 <LocID ID=locDispSpacer>-</LocID>"
check "pending: LastStatus success" matches "$tmp/b" "LastStatus:[^\t]+\t\tThe operation completed successfully\. 0x0 \(WIN32: 0\)\r$"
check "status page names the fetch mode" has "$tmp/b" "certificate/crl fetch"
ctl POST "requests/$pid_req/issue" >/dev/null
c -o "$tmp/b" "$base/certnew.cer?ReqID=$pid_req&Enc=bin"
check "issued through the control API, then downloaded" openssl x509 -inform DER -in "$tmp/b" -noout
submit "$tmp/b" "$tmp/dev.csr" WebServer
did=$(grep -aoP 'Your Request Id is \K\d+(?=\.)' "$tmp/b")
ctl POST "requests/$did/deny" '{"code": "0x80094014"}' >/dev/null
c -o "$tmp/b" "$base/certnew.cer?ReqID=$did&Enc=bin"
check "denied through the control API" matches "$tmp/b" "LastStatus:[^\t]+\t\t[^\r\n]+0x80094014 \(-2146877420 CERTSRV_E_ADMIN_DENIED_REQUEST\)"
ctl POST config '{"approval": "auto"}' >/dev/null

# --- CA certificates and renewals -----------------------------------------

c -o "$tmp/b" "$base/certcarc.asp"
check "certcarc.asp: var nRenewals=0;" has "$tmp/b" "var nRenewals=0;"
check "certcarc.asp: lbCaInstance select" has "$tmp/b" "<Select Size=4 Name=lbCaInstance ID=lbCaID>"
c -o "$tmp/ca0.der" "$base/certnew.cer?ReqID=CACert&Renewal=0&Enc=bin"
ctl POST renew >"$tmp/r"
check "control renew answers nrenewals 1" test "$(jget "$tmp/r" 's["nrenewals"]')" = 1
c -o "$tmp/b" "$base/certcarc.asp"
check "certcarc.asp after renew: var nRenewals=1;" has "$tmp/b" "var nRenewals=1;"
c -o "$tmp/ca1.der" "$base/certnew.cer?ReqID=CACert&Renewal=1&Enc=bin"
openssl x509 -inform DER -in "$tmp/ca0.der" -noout -pubkey >"$tmp/k0" 2>/dev/null
openssl x509 -inform DER -in "$tmp/ca1.der" -noout -pubkey >"$tmp/k1" 2>/dev/null
check "Renewal=1 is a re-keyed CA certificate" test -s "$tmp/k1" -a -s "$tmp/k0"
check "Renewal=0 and Renewal=1 differ in key" not cmp -s "$tmp/k0" "$tmp/k1"
c -D "$tmp/h" -o "$tmp/ca.p7b" "$base/certnew.p7b?ReqID=CACert&Renewal=1&Enc=bin"
check "CA p7b bin: x-pkcs7-certificates" grep -qix $'Content-Type: application/x-pkcs7-certificates\r' "$tmp/h"
n=$(openssl pkcs7 -inform DER -in "$tmp/ca.p7b" -print_certs 2>/dev/null | grep -c '^subject=')
check "CA p7b bin: issuing + root" test "$n" = 2
c -D "$tmp/h" -o "$tmp/ca.p7b.b64" "$base/certnew.p7b?ReqID=CACert&Renewal=1&Enc=b64"
check "CA p7b b64: x-pkcs7-certificates" grep -qix $'Content-Type: application/x-pkcs7-certificates\r' "$tmp/h"
check "CA p7b b64: CERTIFICATE armour" has "$tmp/ca.p7b.b64" "-----BEGIN CERTIFICATE-----"
check "CA p7b b64: no PKCS7 armour" hasnt "$tmp/ca.p7b.b64" "BEGIN PKCS7"
sed 's/CERTIFICATE-----/PKCS7-----/' "$tmp/ca.p7b.b64" >"$tmp/ca.p7b.pem"
n=$(openssl pkcs7 -in "$tmp/ca.p7b.pem" -print_certs 2>/dev/null | grep -c '^subject=')
check "CA p7b b64 decodes to issuing + root" test "$n" = 2
submit "$tmp/b" "$tmp/dev.csr" WebServer
c -o "$tmp/b2" "$base/certnew.cer?ReqID=$(reqid "$tmp/b")"
check "after renew, new certificates chain to generation 1" \
    quiet openssl verify -CAfile "$tmp/state/ca-chain-1.pem" "$tmp/b2"
check "the issued page's install link names the current renewal" has "$tmp/b" "ReqID=CACert&amp;Renewal=1&amp;"

# --- switches -------------------------------------------------------------

curl -sS --cacert "$cacert" -A 'certsrv-client/1.0' --ntlm -u 'FAKE\certuser:certpass' \
    -D "$tmp/h" -o "$tmp/b" "$base/certnew.cer?ReqID=$id&Enc=bin"
check "non-browser UA: certnew.cer comes as text/html" grep -qix $'Content-Type: text/html\r' "$tmp/h"
check "non-browser UA: the body is still the DER certificate" cmp -s "$tmp/b" "$tmp/cert.der"
ctl POST config '{"ua_sensitive": false}' >/dev/null
curl -sS --cacert "$cacert" -A 'certsrv-client/1.0' --ntlm -u 'FAKE\certuser:certpass' \
    -D "$tmp/h" -o /dev/null "$base/certnew.cer?ReqID=$id&Enc=bin"
check "ua_sensitive=false: application/pkix-cert for any UA" grep -qix $'Content-Type: application/pkix-cert\r' "$tmp/h"
ctl POST config '{"ua_sensitive": true}' >/dev/null

ctl POST config '{"delay_ms": {"certcarc.asp": 1500}}' >/dev/null
t0=$(date +%s%N)
c -o /dev/null "$base/certcarc.asp"
t1=$(date +%s%N)
check "delay_ms slows certcarc.asp by 1.5 s" test $(((t1 - t0) / 1000000)) -ge 1400
c --max-time 0.5 -o /dev/null "$base/certcarc.asp" 2>/dev/null
check "a delayed page times a client out (curl 28)" test $? = 28
ctl POST config '{"delay_ms": 0}' >/dev/null

ctl GET state >"$tmp/s0"
ctl POST config '{"drop": {"certfnsh.asp": 1}}' >/dev/null
submit "$tmp/b" "$tmp/dev.csr" WebServer 2>/dev/null
rc=$?
check "drop cuts the certfnsh.asp answer (curl 18)" test "$rc" = 18
ctl GET state >"$tmp/s1"
check "the dropped submission was still processed" test \
    "$(( $(jget "$tmp/s1" 'len(s["requests"])') - $(jget "$tmp/s0" 'len(s["requests"])') ))" = 1
submit "$tmp/b" "$tmp/dev.csr" WebServer
check "drop with a count fires once" test -n "$(reqid "$tmp/b")"

ctl POST config '{"locale": "de"}' >/dev/null
submit "$tmp/b" "$tmp/dev.csr" WebServer
check "locale de: issued page keeps locInfo" has "$tmp/b" "ID=locInfo"
check "locale de: issued page keeps locDownloadCert1 and the link" \
    matches "$tmp/b" 'ID=locDownloadCert1>.*certnew\.cer\?ReqID=\d+&amp;Enc=bin'
check "locale de: no English title" hasnt "$tmp/b" "Certificate Issued"
check "locale de: German title" has "$tmp/b" "Zertifikat wurde ausgestellt"
submit "$tmp/b" "$tmp/dev.csr" NoSuchTemplate
check "locale de: denied page keeps locDenied and the code" matches "$tmp/b" 'ID=locDenied(.|\r\n)*0x80094800'
check "locale de: no English denial text" hasnt "$tmp/b" "Your certificate request was denied"
c -o "$tmp/b" "$base/certcarc.asp"
check "locale de: certcarc.asp keeps nRenewals" has "$tmp/b" "var nRenewals=1;"
ctl POST config '{"locale": "zh"}' >/dev/null
c -o "$tmp/b" "$base/certnew.cer?ReqID=-1"
check "locale zh: error page keeps ids and code" matches "$tmp/b" 'ID=locDispMsgLabel(.|\r\n)*0x80094004'
check "locale zh: translated labels" has "$tmp/b" "处理消息:"
ctl POST config '{"locale": "en"}' >/dev/null

ctl POST config '{"ca_down": true}' >/dev/null
submit "$tmp/b" "$tmp/dev.csr" WebServer
check "ca_down: certfnsh.asp error page" has "$tmp/b" "The Certification Authority Service has not been started."
check "ca_down: locContactAdmin" has "$tmp/b" "ID=locContactAdmin"
c -o "$tmp/b" "$base/certcarc.asp"
check "ca_down: certcarc.asp has no nRenewals" hasnt "$tmp/b" "var nRenewals="
ctl POST config '{"ca_down": false}' >/dev/null

ctl POST config '{"auth": "anonymous"}' >/dev/null
code=$(curl -sS --cacert "$cacert" -o /dev/null -w '%{http_code}' "$base/")
check "auth=anonymous: no 401" test "$code" = 200
ctl POST config '{"auth": "basic", "basic_enabled": false}' >/dev/null
curl -sS --cacert "$cacert" -D "$tmp/h" -o /dev/null "$base/"
check "auth=basic: 401 offers Basic only" test "$(grep -ci '^WWW-Authenticate:' "$tmp/h")" = 1
code=$(c -o /dev/null -w '%{http_code}' "$base/")
check "auth=basic: NTLM is refused" test "$code" = 401
ctl POST config '{"auth": "ntlm", "basic_enabled": false}' >/dev/null
curl -sS --cacert "$cacert" -D "$tmp/h" -o /dev/null "$base/"
check "basic_enabled=false: no Basic challenge" not grep -qi '^WWW-Authenticate: Basic' "$tmp/h"
code=$(curl -sS --cacert "$cacert" --basic -u certuser:certpass -o /dev/null -w '%{http_code}' "$base/")
check "basic_enabled=false: Basic is refused" test "$code" = 401
code=$(curl -sS --cacert "$cacert" -o /dev/null -w '%{http_code}' \
    --data '{"bogus": 1}' "$ctlbase/config")
check "control API refuses unknown switches" test "$code" = 400
ctl POST reset >/dev/null

ctl GET state >"$tmp/s"
check "state counts pages" test "$(jget "$tmp/s" 's["pages"]["certfnsh.asp"] > 10')" = True
check "state counts NTLM handshakes" test "$(jget "$tmp/s" 's["ntlm"]["handshakes"] > 10')" = True

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
check "SIGTERM: clean exit" test "$rc" = 0

if [[ $failed -ne 0 ]]; then
	echo "--- fake_certsrv stderr (last 20 lines):"
	tail -n 20 "$tmp/fake.err"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
