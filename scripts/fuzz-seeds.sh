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
    "$out/fuzz_certsrv_page"

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
done

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
