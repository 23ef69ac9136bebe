#!/bin/sh
# mkcerts.sh [--force] [DIR]
#
# Generates estrad's development PKI into DIR (default: certs) with the
# openssl CLI only.  Never for production: the CA keys are unencrypted.
#
#   root-ca.pem/.key          dev root CA (RSA-3072, 10 y)
#   issuing-ca.pem/.key       issuing CA of label default, signed by the root
#                             (pathlen:0, 5 y)
#   phones-ca.pem/.key        issuing CA of label phones, likewise
#   devices-ca.pem/.key       issuing CA of label devices, likewise
#   ca-chain.pem              issuing CA + root: the EST CA chain of default
#   tls-ca.pem/.key           separate self-signed CA of estrad's own TLS
#                             certificate: what EST clients trust for the
#                             connection, and nothing estrad issues chains to it
#   server.pem/.key           estrad's TLS certificate (serverAuth + id-kp-cmcRA,
#                             localhost/127.0.0.1/::1, 1 y), leaf + TLS CA
#   client.pem/.key           demo client (CN=demo-client, clientAuth), issuing CA
#   manufacturer-ca.pem/.key  separate self-signed "manufacturer" (IDevID) CA:
#                             the implicit trust anchor
#   device.pem/.key           device certificate (CN=device-0001) from it
#   demo.credentials          estuser:<password>   (HTTP Basic, for clients)
#   users.htpasswd            estuser:<sha512-crypt> (for estrad)
#
# Each label has an issuing CA of its own so that a certificate one label
# issued does not authenticate on another: a label's trust store lists its
# issuing CA only.
#
# All keys are RSA (strongSwan's pki on Debian 12 has no ECDSA without the
# openssl plugin, and it must verify estrad's server chain).  Existing material
# is never overwritten: a complete set is left alone, pieces missing from an
# otherwise consistent set are added (e.g. delete the credentials to get a new
# password), anything else is refused.  --force regenerates everything.
set -eu

prog=mkcerts
usage() {
	echo "usage: $0 [--force] [DIR]" >&2
	exit 2
}

force=0
dir=""
while [ $# -gt 0 ]; do
	case $1 in
	-f | --force) force=1 ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "$prog: unknown option $1" >&2; usage ;;
	*) [ -z "$dir" ] || usage; dir=$1 ;;
	esac
	shift
done
if [ $# -gt 0 ]; then
	if [ -n "$dir" ] || [ $# -ne 1 ]; then usage; fi
	dir=$1
fi
[ -n "$dir" ] || dir=certs

command -v openssl >/dev/null 2>&1 || {
	echo "$prog: openssl not found" >&2
	exit 1
}

# Groups of files generated together; a group depends on the groups named
# after the colon (regenerating a parent would orphan an existing child).
groups="root issuing phones devices chain tls server client"
groups="$groups manufacturer device credentials"
files_of() {
	case $1 in
	root) echo "root-ca.pem root-ca.key" ;;
	issuing) echo "issuing-ca.pem issuing-ca.key" ;;
	phones) echo "phones-ca.pem phones-ca.key" ;;
	devices) echo "devices-ca.pem devices-ca.key" ;;
	chain) echo "ca-chain.pem" ;;
	tls) echo "tls-ca.pem tls-ca.key" ;;
	server) echo "server.pem server.key" ;;
	client) echo "client.pem client.key" ;;
	manufacturer) echo "manufacturer-ca.pem manufacturer-ca.key" ;;
	device) echo "device.pem device.key" ;;
	credentials) echo "demo.credentials users.htpasswd" ;;
	esac
}
parents_of() {
	case $1 in
	issuing | phones | devices) echo "root" ;;
	chain) echo "root issuing" ;;
	server) echo "tls" ;;
	client) echo "issuing" ;;
	device) echo "manufacturer" ;;
	*) echo "" ;;
	esac
}

mkdir -p "$dir"

if [ "$force" -eq 1 ]; then
	todo=$groups
else
	# present: every file there; absent: none there; else refuse.
	todo=""
	for g in $groups; do
		have=0
		miss=0
		for f in $(files_of "$g"); do
			if [ -e "$dir/$f" ]; then have=$((have + 1)); else miss=$((miss + 1)); fi
		done
		if [ "$miss" -eq 0 ]; then
			continue
		fi
		if [ "$have" -ne 0 ]; then
			echo "$prog: $dir has only part of: $(files_of "$g");" \
			    "use --force to regenerate the whole dev PKI" >&2
			exit 1
		fi
		todo="$todo $g"
	done
	if [ -z "$todo" ]; then
		echo "$prog: $dir already has the dev PKI"
		exit 0
	fi
	# A group regenerated under an existing child would break its chain.
	for g in $groups; do
		case " $todo " in *" $g "*) continue ;; esac
		for p in $(parents_of "$g"); do
			case " $todo " in
			*" $p "*)
				echo "$prog: $dir lacks $(files_of "$p") but has" \
				    "$(files_of "$g") issued by it; use --force" \
				    "to regenerate the whole dev PKI" >&2
				exit 1
				;;
			esac
		done
	done
fi

want() {
	case " $todo " in *" $1 "*) return 0 ;; esac
	return 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkcerts.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
umask 077
log="$tmp/openssl.log"

# ossl ARGS...: openssl, its chatter kept out of sight unless it fails.
ossl() {
	if ! openssl "$@" >"$log" 2>&1; then
		echo "$prog: openssl $1 failed:" >&2
		sed 's/^/  /' "$log" >&2
		exit 1
	fi
}

serial() {
	echo "0x$(openssl rand -hex 16)"
}

# Configuration shared by every command: extension sections per profile.
# string_mask utf8only matches Debian's default so that a CSR built later with
# -subj "/CN=demo-client" encodes its subject byte-identically to client.pem.
cat >"$tmp/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = req_dn
string_mask = utf8only
prompt = no
[ req_dn ]

[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_issuing ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, 1.3.6.1.5.5.7.3.28
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
cnf="$tmp/openssl.cnf"

# genkey NAME BITS
genkey() {
	ossl genpkey -quiet -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" \
	    -out "$tmp/$1.key"
}

# selfsigned NAME SUBJECT DAYS EXT
selfsigned() {
	genkey "$1" 3072
	ossl req -new -x509 -config "$cnf" -key "$tmp/$1.key" -subj "$2" \
	    -days "$3" -sha256 -set_serial "$(serial)" -extensions "$4" \
	    -out "$tmp/$1.pem"
}

# issue NAME SUBJECT DAYS EXT CA-NAME BITS: key, CSR, certificate from CA.
issue() {
	genkey "$1" "$6"
	ossl req -new -config "$cnf" -key "$tmp/$1.key" -subj "$2" \
	    -out "$tmp/$1.csr"
	if [ -e "$tmp/$5.pem" ]; then ca=$tmp/$5; else ca=$dir/$5; fi
	ossl x509 -req -in "$tmp/$1.csr" -CA "$ca.pem" -CAkey "$ca.key" \
	    -days "$3" -sha256 -set_serial "$(serial)" -extfile "$cnf" \
	    -extensions "$4" -out "$tmp/$1.pem"
	rm -f "$tmp/$1.csr"
}

# pem NAME: the PEM file of a CA, fresh or existing.
pem() {
	if [ -e "$tmp/$1.pem" ]; then echo "$tmp/$1.pem"; else echo "$dir/$1.pem"; fi
}

if want root; then
	selfsigned root-ca "/O=estrad dev/CN=estrad dev root CA" 3650 v3_root
fi
if want issuing; then
	issue issuing-ca "/O=estrad dev/CN=estrad dev issuing CA" 1825 \
	    v3_issuing root-ca 3072
fi
if want phones; then
	issue phones-ca "/O=estrad dev/CN=estrad dev phones CA" 1825 \
	    v3_issuing root-ca 3072
fi
if want devices; then
	issue devices-ca "/O=estrad dev/CN=estrad dev devices CA" 1825 \
	    v3_issuing root-ca 3072
fi
if want chain; then
	cat "$(pem issuing-ca)" "$(pem root-ca)" >"$tmp/ca-chain.pem"
fi
if want tls; then
	selfsigned tls-ca "/O=estrad dev/CN=estrad dev TLS CA" 3650 v3_root
fi
if want server; then
	issue server "/O=estrad dev/CN=localhost" 365 v3_server tls-ca 2048
	cat "$(pem tls-ca)" >>"$tmp/server.pem"
fi
if want client; then
	issue client "/CN=demo-client" 365 v3_client issuing-ca 2048
fi
if want manufacturer; then
	selfsigned manufacturer-ca \
	    "/O=Example Manufacturer/CN=Example Manufacturer IDevID CA" 3650 \
	    v3_root
fi
if want device; then
	issue device "/O=Example Manufacturer/serialNumber=0001/CN=device-0001" \
	    1825 v3_client manufacturer-ca 2048
fi
if want credentials; then
	# base64 of 18 bytes: 24 characters of [A-Za-z0-9+/], never ':'.
	password=$(openssl rand -base64 18)
	hash=$(printf '%s\n' "$password" | openssl passwd -6 -stdin)
	printf 'estuser:%s\n' "$password" >"$tmp/demo.credentials"
	printf 'estuser:%s\n' "$hash" >"$tmp/users.htpasswd"
fi

# Everything was built in $tmp; move it in place only now, so a failure
# leaves DIR as it was (with --force: the old files until this point).
for g in $todo; do
	for f in $(files_of "$g"); do
		case $f in
		*.key | demo.credentials | users.htpasswd) chmod 600 "$tmp/$f" ;;
		*) chmod 644 "$tmp/$f" ;;
		esac
		mv -f "$tmp/$f" "$dir/$f"
	done
done

if [ "$force" -eq 1 ] || [ "$todo" = " $groups" ]; then
	echo "$prog: wrote the dev PKI to $dir (Basic login in $dir/demo.credentials)"
else
	echo "$prog: added to $dir:$todo"
fi
