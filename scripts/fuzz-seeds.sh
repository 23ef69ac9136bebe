#!/bin/sh
# fuzz-seeds.sh DIR: seed corpora for the fuzz targets, made fresh (no key
# or certificate is ever committed): real CSRs of each key type, real
# request paths, the shipped configuration, users files and pending records.
set -eu
out=${1:?usage: fuzz-seeds.sh DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$out/fuzz_base64" "$out/fuzz_csr" "$out/fuzz_route" \
    "$out/fuzz_config" "$out/fuzz_htpasswd" "$out/fuzz_pending_record" \
    "$out/fuzz_certsrv_page" "$out/fuzz_policy" "$out/fuzz_helper_output" \
    "$out/fuzz_http" "$out/fuzz_tls_hello" "$out/fuzz_dogtag_json"

n=0
for key in rsa:2048 ec:P-256 ec:P-384 ed25519 rsa:1024; do
	n=$((n + 1))
	case $key in
	rsa:*) args="-newkey $key" ;;
	ec:*) args="-newkey ec -pkeyopt ec_paramgen_curve:${key#ec:}" ;;
	*) args="-newkey $key" ;;
	esac
	# shellcheck disable=SC2086
	openssl req -new $args -nodes -keyout "$tmp/k$n" -subj "/CN=seed$n" \
	    -addext "subjectAltName=DNS:seed$n.example,IP:192.0.2.$n" \
	    -outform DER -out "$out/fuzz_csr/csr$n.der" 2>/dev/null
	base64 -w64 "$out/fuzz_csr/csr$n.der" >"$out/fuzz_base64/csr$n.b64"
	base64 -w0 "$out/fuzz_csr/csr$n.der" >"$out/fuzz_base64/csr$n.line"
	openssl req -inform DER -in "$out/fuzz_csr/csr$n.der" \
	    >"$out/fuzz_base64/csr$n.pem"
	cp "$out/fuzz_csr/csr$n.der" "$out/fuzz_policy/csr$n.der"
done

# Requests the policies of fuzz_policy.c look at: a phone's CN, identity
# templates, every SAN kind, asked-for extensions, a CA request.  Their
# keys are RSA-3072, which the strictest policy there accepts, so that each
# gets past the key check; the signature of every mutated request is
# checked, and est_csr_parse() takes about 2 ms for a P-384 request, 0.15 ms
# for an RSA-3072 one.
for spec in "/CN=SEP0011223344AA|subjectAltName=DNS:a.example.com" \
    "/CN=seed1|subjectAltName=email:a@example.com,URI:urn:x,IP:192.0.2.7" \
    "/CN=x|extendedKeyUsage=clientAuth,serverAuth" \
    "/CN=ca|basicConstraints=critical,CA:TRUE" \
    "/CN=ku|keyUsage=digitalSignature,keyCertSign" \
    "/CN=w|subjectAltName=DNS:*.example.com,URI:javascript:x,IP:0.0.0.0" \
    "/CN=np|nameConstraints=permitted;DNS:example.com"; do
	n=$((n + 1))
	openssl req -new -newkey rsa:3072 -nodes \
	    -keyout "$tmp/k$n" -subj "${spec%%|*}" -addext "${spec#*|}" \
	    -outform DER -out "$out/fuzz_policy/csr$n.der" 2>/dev/null
done

# An EC key whose curve is given by explicit parameters, not named.
openssl ecparam -name prime256v1 -param_enc explicit -out "$tmp/explicit"
openssl req -new -newkey "ec:$tmp/explicit" -nodes -keyout "$tmp/kx" \
    -subj /CN=explicit -outform DER -out "$out/fuzz_csr/explicit.der" \
    2>/dev/null

# A certmonger helper's stdout: a certificate and chain as PEM, DER,
# PKCS#7 and JSON; FETCH-ROOTS groups in text and JSON; cookies.
ho=$out/fuzz_helper_output
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tmp/hk" -subj /CN=helper-root -days 30 -out "$tmp/root.pem" \
    2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tmp/hk2" -subj /CN=helper-leaf -days 30 \
    -addext basicConstraints=CA:FALSE -out "$tmp/leaf.pem" 2>/dev/null
cat "$tmp/leaf.pem" "$tmp/root.pem" >"$ho/issued.pem"
openssl x509 -in "$tmp/leaf.pem" -outform DER -out "$ho/issued.der"
openssl crl2pkcs7 -nocrl -certfile "$ho/issued.pem" >"$ho/issued.p7.pem"
openssl crl2pkcs7 -nocrl -certfile "$ho/issued.pem" -outform DER \
    -out "$ho/issued.p7.der"
python3 - "$tmp/leaf.pem" "$tmp/root.pem" "$ho" <<'PY'
import json, sys
leaf, root = (open(p).read() for p in sys.argv[1:3])
out = sys.argv[3]
with open(out + "/issued.json", "w") as f:
    json.dump({"certificate": leaf, "chain": [{"certificate": root}]}, f)
with open(out + "/roots.json", "w") as f:
    json.dump({"roots": [{"nickname": "Root", "certificate": root}],
               "other": [{"nickname": "Sub", "certificate": leaf}]}, f)
with open(out + "/roots.txt", "w") as f:
    f.write("Root CA\n" + root + "\n\nOther root\n" + root +
            "\n\n\nIntermediate\n" + leaf)
PY
printf '3600\n61108\n' >"$ho/delay-cookie"
printf 'line one\r\nline two\r\n' >"$ho/cookie-multi"

# Dogtag REST answers (the shapes tests/fakes/fake_dogtag.py sends): request
# infos, a PKIException, info, account, review and CertData carrying the
# helper certificates above as PEM and PKCS#7.
python3 - "$ho/issued.pem" "$ho/issued.p7.der" "$out/fuzz_dogtag_json" <<'PY'
import base64, json, sys
pem, p7, out = open(sys.argv[1]).read(), open(sys.argv[2], "rb").read(), \
    sys.argv[3]
leaf = pem[:pem.index("-----END CERTIFICATE-----") + 25] + "\n"
docs = {
    "request-info": {"total": 1, "entries": [{
        "requestID": "0x1a", "requestType": "enrollment",
        "requestStatus": "complete", "operationResult": "success",
        "certId": "0x3f1c9e2a",
        "requestURL": "https://h:8443/ca/rest/certrequests/26",
        "certURL": "https://h:8443/ca/rest/certs/0x3f1c9e2a"}]},
    "request-pending": {"total": 1, "entries": [{
        "requestId": "27", "requestType": "enrollment",
        "requestStatus": "pending", "operationResult": "success",
        "requestURL": "https://h:8443/ca/rest/certrequests/27"}]},
    "request-rejected": {"total": 1, "entries": [{
        "requestID": "0x1c", "requestStatus": "rejected",
        "operationResult": "failure",
        "errorMessage": "Request Rejected - not allowed"}]},
    "exception": {"Attributes": {"Attribute": []},
                  "ClassName": "com.netscape.certsrv.base.BadRequestException",
                  "Code": 400, "Message": "Profile not found"},
    "info": {"Name": "Certificate Authority", "Version": "11.5.0"},
    "account": {"id": "agent", "FullName": "agent", "Email": "a@x",
                "Roles": ["Certificate Manager Agents"]},
    "review": {"ProfileID": "caServerCert", "Renewal": False,
               "Input": [], "Output": [], "Attributes": {"Attribute": []},
               "nonce": "-7040571185446451742", "requestId": "0x1d",
               "requestType": "enrollment", "requestStatus": "pending"},
    "certdata": {"id": "0x3f1c9e2a", "Status": "VALID", "Encoded": leaf,
                 "PKCS7CertChain": base64.encodebytes(p7).decode()},
}
for name, doc in docs.items():
    with open("%s/%s.json" % (out, name), "w") as f:
        json.dump(doc, f)
with open(out + "/chain.pem", "w") as f:
    f.write(pem)
with open(out + "/chain.p7", "wb") as f:
    f.write(p7)
with open(out + "/tomcat.html", "w") as f:
    f.write("<!doctype html><html><head><title>HTTP Status 404</title>"
            "</head><body>Not Found</body></html>")
PY

# HTTP requests as fuzz_http.c's labels take them: anonymous GETs, an
# open enrollment, Basic with Content-Length and chunked, pipelining.
b64=$(base64 -w64 "$out/fuzz_csr/csr2.der")
crlf() { printf '%s\r\n' "$@"; }
{
	crlf "GET /.well-known/est/cacerts HTTP/1.1" "Host: x" \
	    "User-Agent: seed" ""
	crlf "GET /.well-known/est/csrattrs HTTP/1.1" "Host: x" ""
} >"$out/fuzz_http/get-pipelined"
{
	crlf "POST /.well-known/est/simpleenroll HTTP/1.1" "Host: x" \
	    "Content-Type: application/pkcs10" \
	    "Content-Length: ${#b64}" ""
	printf '%s' "$b64"
} >"$out/fuzz_http/enroll"
{
	crlf "POST /.well-known/est/b/simplereenroll HTTP/1.1" "Host: x" \
	    "Authorization: Basic ZnV6ejpzZWNyZXQ=" \
	    "Content-Type: application/pkcs10; charset=x" \
	    "Transfer-Encoding: chunked" ""
	printf '%x\r\n%s\r\n0\r\n\r\n' "${#b64}" "$b64"
} >"$out/fuzz_http/chunked-basic"
{
	crlf "POST /.well-known/est/b/simpleenroll HTTP/1.0" \
	    "Authorization: Basic ZnV6ejp3cm9uZw==" "Content-Length: 4" ""
	printf 'abcd'
	crlf "DELETE /.well-known/est/fullcmc HTTP/1.1" "Content-Length: 0" ""
} >"$out/fuzz_http/wrong-and-delete"

for p in /.well-known/est/cacerts /.well-known/est/simpleenroll \
    /.well-known/est/phones/simplereenroll /.well-known/est/a.b-c_d/csrattrs \
    "/.well-known/est/cacerts?x=1" /.well-known/est//cacerts /; do
	n=$((n + 1))
	printf '%s' "$p" >"$out/fuzz_route/path$n"
done

cp "$here/conf/estrad.json" "$out/fuzz_config/estrad.json"
printf '{"labels":{"x":{"ca":{"backend":"local"}}},"tls":{}}' \
    >"$out/fuzz_config/small.json"

hash=$(printf 'secret' | openssl passwd -6 -stdin)
printf 'Basic YWxpY2U6c2VjcmV0\nalice:%s\n# comment\n\nbob:%s\n' \
    "$hash" "$hash" >"$out/fuzz_htpasswd/users1"
printf 'basic Ym9iOnNlY3JldA==\nbob:plain\n' >"$out/fuzz_htpasswd/plain"
# The cheapest sha512-crypt (1,000 rounds) of "secret": crypt(3) is most of
# what an input costs.
# shellcheck disable=SC2016
printf 'Basic YWxpY2U6c2VjcmV0\nalice:%s\n' \
    '$6$rounds=1000$saltsalt$LAV5VE5Y7w1d73x1mFNspYWUpazfmwv2SoepNXNKJ/otop/Zok96Hr8Q13LEv0DRY/x8v0/crpIjl8NJSAqXV/' \
    >"$out/fuzz_htpasswd/cheap"

k=0000000000000000000000000000000000000000000000000000000000000001
printf '{"key":"%s","state":"at_ca","label":"phones","identity":"CN=x","first_rid":"0123456789abcdef","cookie":"61108","reason":"","status":0,"retry_after":60,"pid":1,"created":1,"expires":2}' \
    "$k" >"$out/fuzz_pending_record/at_ca.json"
printf '{"key":"%s","state":"rejected","status":403,"reason":"denied"}' \
    "$k" >"$out/fuzz_pending_record/rejected.json"

# Real pages from the fake AD CS, in every locale it speaks.
python3 - "$here/tests/fakes/fake_certsrv.py" "$out/fuzz_certsrv_page" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("fake", sys.argv[1])
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)
out = sys.argv[2]
n = 0
for locale in ("en", "de", "zh"):
    p = fake.Pages(locale, "fake-CA")
    pages = [p.pending(61108),
             p.denied(61109, "Denied by Policy Module  0x80094800, x"),
             p.issued(61110, 0, "both"), p.issued(61111, 1, "scripted"),
             p.rqxt(["WebServer", "Template With Spaces"]),
             p.carc("fake-CA", 2),
             p.error("newreq", 5, "Taken Under Submission",
                     "The operation completed successfully. 0x0 (WIN32: 0)",
                     "The operation completed successfully. 0x0 (WIN32: 0)")]
    for page in pages:
        n += 1
        with open("%s/%s-%d.html" % (out, locale, n), "wb") as f:
            f.write(page if isinstance(page, bytes) else page.encode())
PY

# ClientHellos of TLS 1.3, 1.2 and 1.0 (Python's ssl, in memory); the first
# byte is fuzz_tls_hello.c's write size (0x40: whole records).
python3 - "$out/fuzz_tls_hello" <<'PY'
import ssl, sys, warnings
warnings.simplefilter("ignore")
for name, ver in (("hello13", None), ("hello12", ssl.TLSVersion.TLSv1_2),
                  ("hello10", ssl.TLSVersion.TLSv1)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        if ver is not None:
            if ver == ssl.TLSVersion.TLSv1:
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ver
            ctx.maximum_version = ver
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
    except (ssl.SSLError, ValueError):
        continue
    with open("%s/%s" % (sys.argv[1], name), "wb") as f:
        f.write(b"\x40" + out.read())
PY
