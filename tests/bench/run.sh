#!/usr/bin/env bash
# run.sh: estrad's benchmark (make bench).  Figures, not tests: it never
# fails on a missed target, it says MISS.
#
# Makes a bench PKI per key set (RSA-2048 and ECDSA P-256: TLS key, CA key,
# CSR keys) in a temporary directory on disk, starts $ESTRAD on a free port
# of 127.0.0.1 with a bench configuration (local CA, Basic auth, workers =
# cores, error/access/audit logs on), and runs $TOOLS/estbench:
#   - enroll: modes full / resume / keepalive x concurrency 1, 8, 64 x key
#     sets, with audit on; then audit off, and a label without Basic auth,
#     to show what the audit log's fdatasync and crypt(3) cost;
#   - idle: 1,000 and 5,000 held keep-alive TLS connections, RSS per
#     connection and /cacerts latency meanwhile;
#   - reference: full handshakes c64 against tests/tools/tls_reference, a
#     server that only does TLS and answers a fixed 200 (the yardstick);
#   - slow CA: 256 concurrent enrollments against a certsrv fake answering
#     after 2 s, when tests/fakes/fake_certsrv.py and estrad's certsrv
#     backend exist;
#   - hostile handshakes: estrad's CPU per connection that presents a
#     client-certificate list of RSA keys whose public exponents are as
#     long as their moduli (made by $TOOLS/hostile_chain: the report's
#     72 certificates and the longest list the default limits let through
#     to the key checks), and a list of the smallest certificates filling
#     tls.max_cert_list, which OpenSSL parses whole before estrad can
#     count it; each next to a connection with a normal client
#     certificate, each asking GET /cacerts once.
# Prints a table and the target verdicts, writes bench/results.json.
#
# Environment: ESTRAD, TOOLS, BENCH_DURATION (seconds per load run, 6),
# BENCH_COUNT (most enrollments per run, 100000), BENCH_KEYS ("rsa2048
# p256"), BENCH_CONC ("1 8 64"), BENCH_MODES ("full resume keepalive"),
# BENCH_IDLE ("1000 5000"), BENCH_SLOW (1: run the slow-CA scenarios),
# BENCH_HOSTILE (1: run the hostile-handshake scenarios),
# BENCH_OUT (bench/results.json), KEEP_WORK=1.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ESTRAD=${ESTRAD:-build/estrad}
TOOLS=${TOOLS:-build/tools}
DURATION=${BENCH_DURATION:-6}
COUNT=${BENCH_COUNT:-100000}
KEYSETS=${BENCH_KEYS-rsa2048 p256}
CONCS=${BENCH_CONC-1 8 64}
MODES=${BENCH_MODES-full resume keepalive}
IDLE_NS=${BENCH_IDLE-1000 5000}
OUT=${BENCH_OUT:-$ROOT/bench/results.json}
NCSRS=2048
SLOW_DELAY_MS=2000
SLOW_N=256

case $ESTRAD in /*) ;; *) ESTRAD=$ROOT/$ESTRAD ;; esac
case $TOOLS in /*) ;; *) TOOLS=$ROOT/$TOOLS ;; esac
BENCH=$TOOLS/estbench

say() { printf '%s\n' "$*"; }
die() {
	say "bench: $*" >&2
	exit 1
}

[[ -x $ESTRAD ]] || die "$ESTRAD not built (make)"
[[ -x $BENCH ]] || die "$BENCH not built (make tools)"
command -v python3 >/dev/null || die "python3 is needed for the report"

# The work directory is on disk, not tmpfs: the audit log's fdatasync must
# cost what it costs in production.
WORK=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/estbench.XXXXXX") ||
    die "cannot make a work directory"
JSONL=$WORK/results.jsonl
: >"$JSONL"
DAEMON_PID=""
FAKE_PID=""

cleanup() {
	stop_estrad
	if [[ -n $FAKE_PID ]]; then
		kill "$FAKE_PID" 2>/dev/null
		wait "$FAKE_PID" 2>/dev/null
	fi
	if [[ ${KEEP_WORK:-0} == 1 ]]; then
		say "# work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PKI ----------------------------------------------------------------

# ossl ARGS...: openssl, quiet unless it fails.
ossl() {
	openssl "$@" >"$WORK/openssl.log" 2>&1 || {
		say "bench: openssl $1 failed:" >&2
		sed 's/^/  /' "$WORK/openssl.log" >&2
		exit 1
	}
}

# genkey FILE TYPE: TYPE rsa2048 or p256.
genkey() {
	case $2 in
	rsa2048) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
	    -out "$1" ;;
	p256) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1" ;;
	esac
}

# mkpki DIR TYPE: root CA, issuing CA, server certificate (leaf + issuing
# CA) for 127.0.0.1, every key of TYPE.  scripts/mkcerts.sh makes RSA-3072
# CAs; the key sets of the benchmark want every key of one type and size.
mkpki() {
	local d=$1 t=$2
	mkdir -p "$d"
	cat >"$d/x.cnf" <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, 1.3.6.1.5.5.7.3.28
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
	genkey "$d/root.key" "$t"
	ossl req -new -x509 -config "$d/x.cnf" -key "$d/root.key" -days 365 \
	    -subj "/O=estbench/CN=estbench $t root" -extensions v3_ca \
	    -out "$d/root.pem"
	genkey "$d/issuing.key" "$t"
	ossl req -new -config "$d/x.cnf" -key "$d/issuing.key" \
	    -subj "/O=estbench/CN=estbench $t issuing CA" -out "$d/issuing.csr"
	ossl x509 -req -in "$d/issuing.csr" -CA "$d/root.pem" \
	    -CAkey "$d/root.key" -CAcreateserial -days 365 -sha256 \
	    -extfile "$d/x.cnf" -extensions v3_ca -out "$d/issuing.pem"
	genkey "$d/server.key" "$t"
	ossl req -new -config "$d/x.cnf" -key "$d/server.key" \
	    -subj "/O=estbench/CN=localhost" -out "$d/server.csr"
	ossl x509 -req -in "$d/server.csr" -CA "$d/issuing.pem" \
	    -CAkey "$d/issuing.key" -CAcreateserial -days 365 -sha256 \
	    -extfile "$d/x.cnf" -extensions v3_server -out "$d/server.pem"
	cat "$d/issuing.pem" >>"$d/server.pem"
	cat "$d/issuing.pem" "$d/root.pem" >"$d/chain.pem"
}

# --- estrad -------------------------------------------------------------

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# write_config FILE KEYDIR LOGDIR AUDIT(0|1) [EXTRA-LABEL-JSON]
write_config() {
	python3 - "$1" "$2" "$3" "$4" "${5:-}" "$PORT" "$(nproc)" \
	    "$WORK/dev/users.htpasswd" <<'EOF'
import json, sys
out, keys, logs, audit, extra, port, workers, users = sys.argv[1:9]
ca = {"backend": "local", "cert": keys + "/issuing.pem",
      "key": keys + "/issuing.key", "chain": keys + "/chain.pem"}
cfg = {
    "listen": ["127.0.0.1:" + port],
    "workers": int(workers),
    "tls": {"cert": keys + "/server.pem", "key": keys + "/server.key",
            "explicit_ca": keys + "/chain.pem"},
    # Every bench client comes from 127.0.0.1: no per-client limit.
    "limits": {"timeout": 120, "max_conns_per_client": 0},
    "logs": {"error": logs + "/error.log", "access": logs + "/access.log",
             "level": "info"},
    "users": users,
    "default_label": "default",
    "labels": {
        # Basic keeps authentication off the client-certificate path.
        "default": {"auth": ["basic"], "ca": ca},
        # No authentication: the same run without crypt(3).
        "open": {"auth": "none", "ca": ca},
    },
}
if audit == "1":
    cfg["logs"]["audit"] = logs + "/audit.log"
if extra:
    cfg["labels"].update(json.loads(extra))
with open(out, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
}

# start_estrad CONFIG: starts estrad, waits until /cacerts answers.
start_estrad() {
	local conf=$1 cafile=$2
	(cd "$WORK" && exec "$ESTRAD" -c "$conf" 2>>"$WORK/estrad.stderr") &
	DAEMON_PID=$!
	for _ in $(seq 1 100); do
		if curl -s -o /dev/null --max-time 2 --cacert "$cafile" \
		    "https://127.0.0.1:$PORT/.well-known/est/cacerts"; then
			return 0
		fi
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	say "bench: estrad did not start:" >&2
	tail -n 20 "$WORK/estrad.stderr" >&2
	exit 1
}

stop_estrad() {
	if [[ -n $DAEMON_PID ]]; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		DAEMON_PID=""
	fi
}

# --- runs ---------------------------------------------------------------

# enroll NAME KEYS MODE CONC [ESTBENCH-ARGS...]
enroll() {
	local name=$1 keys=$2 mode=$3 conc=$4
	shift 4
	"$BENCH" enroll -p "$PORT" -P "$DAEMON_PID" -a "$K/chain.pem" \
	    -r "$WORK/csrs.$keys" -u "$WORK/dev/demo.credentials" \
	    -U "$WORK/dev/users.htpasswd" -T "$K/server.key" \
	    -K "$K/issuing.key" -m "$mode" -c "$conc" -n "$COUNT" \
	    -d "$DURATION" -N "$name" -S "$keys" -j "$JSONL" "$@" ||
	    say "# $name: estbench failed (exit $?)"
}

# reference KEYS: the same full-handshake c64 run against tls_reference, a
# minimal server with estrad's TLS settings that answers every request with
# a fixed 200 of the size estrad's last answer had (access log) and does
# nothing else.  Its CPU per exchange is what OpenSSL and the kernel cost,
# the part of estrad's figure no server on them can go below.
reference() {
	local keys=$1 bytes rport
	if [[ ! -x $TOOLS/tls_reference ]]; then
		say "reference: skipped ($TOOLS/tls_reference not built)"
		return 0
	fi
	bytes=$(tail -n 1 "$WORK/logs-$keys/access.log" 2>/dev/null |
	    awk '{print $8}')
	[[ $bytes =~ ^[0-9]+$ ]] || bytes=1500
	rport=$(free_port)
	"$TOOLS/tls_reference" -p "$rport" -c "$K/server.pem" \
	    -k "$K/server.key" -b "$bytes" >"$WORK/reference.out" \
	    2>"$WORK/reference.err" &
	local rpid=$! saved_port=$PORT
	for _ in $(seq 1 50); do
		grep -q ready "$WORK/reference.out" 2>/dev/null && break
		sleep 0.1
	done
	PORT=$rport DAEMON_PID=$rpid
	enroll "reference-full-$keys-c64" "$keys" full 64
	PORT=$saved_port
	stop_estrad
}

# The slow CA without a second server on the cores: the local backend holds
# every answer SLOW_DELAY_MS on estrad's loop (delay_ms), and SLOW_N clients
# enroll at once while /cacerts is probed.
slow_ca_local() {
	local ca
	mkdir -p "$WORK/logs-slow-local"
	head -n "$SLOW_N" "$WORK/csrs.rsa2048" >"$WORK/csrs.slow"
	ca="{\"backend\": \"local\", \"cert\": \"$K/issuing.pem\", \"key\": \"$K/issuing.key\", \"chain\": \"$K/chain.pem\", \"delay_ms\": $SLOW_DELAY_MS}"
	write_config "$WORK/conf/slow-local.json" "$K" "$WORK/logs-slow-local" 1 \
	    "{\"slowlocal\": {\"auth\": [\"basic\"], \"ca\": $ca}}"
	start_estrad "$WORK/conf/slow-local.json" "$K/chain.pem"
	enroll slow-ca-local rsa2048 full "$SLOW_N" -l slowlocal -n "$SLOW_N" \
	    -d 60 -b -r "$WORK/csrs.slow"
	stop_estrad
}

# The slow-CA scenario, once tests/fakes/fake_certsrv.py and estrad's
# certsrv backend exist: the fake answers each submission (certfnsh.asp)
# after SLOW_DELAY_MS through its control API; SLOW_N clients enroll at once
# through a Basic-auth label on the certsrv backend while /cacerts is probed.
slow_ca() {
	local fake=$ROOT/tests/fakes/fake_certsrv.py why="" fport=""
	if [[ ! -e $fake ]]; then
		why="no tests/fakes/fake_certsrv.py yet"
	else
		mkdir -p "$WORK/fcs" "$WORK/logs-slow"
		# The fake's ThreadingHTTPServer listens with Python's default
		# backlog of 5: 256 connections at once would mostly wait for
		# SYN retransmits (1 s, 3 s), which is no delay of the CA.  It
		# is started with a deeper backlog (its own code unchanged).
		(cd "$WORK" && exec python3 -c '
import importlib.util, sys
spec = importlib.util.spec_from_file_location("fake_certsrv", sys.argv[1])
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)
fake.Server.request_queue_size = 1024
sys.argv = sys.argv[1:]
sys.exit(fake.main())' "$fake" --listen 127.0.0.1:0 \
		    --cert "$K/server.pem" --key "$K/server.key" \
		    --state-dir "$WORK/fcs" --auth basic \
		    --users estbench:estbench --templates User \
		    >"$WORK/fake.out" 2>"$WORK/fake.err") &
		FAKE_PID=$!
		for _ in $(seq 1 100); do
			fport=$(sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
			    "$WORK/fake.out")
			[[ -n $fport ]] && break
			kill -0 "$FAKE_PID" 2>/dev/null || break
			sleep 0.1
		done
		if [[ -z $fport ]]; then
			why="fake_certsrv.py did not start: $(tail -n1 "$WORK/fake.err")"
		elif ! curl -sf --max-time 5 --cacert "$K/chain.pem" \
		    -H 'Content-Type: application/json' \
		    -d "{\"delay_ms\": {\"certfnsh.asp\": $SLOW_DELAY_MS}}" \
		    "https://127.0.0.1:$fport/_fake/config" >/dev/null; then
			why="fake_certsrv.py refused the delay_ms switch"
		elif ! head -n "$SLOW_N" "$WORK/csrs.rsa2048" >"$WORK/csrs.slow" ||
		    ! python3 -c 'import json, sys
print(json.dumps({"csrs": [l.strip() for l in open(sys.argv[1]) if l.strip()]}))' \
		    "$WORK/csrs.slow" >"$WORK/presign.json" ||
		    ! curl -sf --max-time 600 --cacert "$K/chain.pem" \
		    -H 'Content-Type: application/json' \
		    --data-binary "@$WORK/presign.json" \
		    "https://127.0.0.1:$fport/_fake/presign" >/dev/null; then
			# The fake signs with an openssl process per
			# certificate (about 30 a second here): the CSRs of the
			# run are signed before the clock starts, so the run
			# measures estrad against a CA that takes 2 s, not the
			# fake's own signing.
			why="fake_certsrv.py could not presign the CSRs"
		else
			printf 'estbench\n' >"$WORK/fcs.password"
			write_config "$WORK/conf/slow.json" "$K" "$WORK/logs-slow" 1 \
			    "{\"slow\": {\"auth\": [\"basic\"], \"ca\": {\"backend\": \"certsrv\", \"urls\": [\"https://127.0.0.1:$fport/certsrv\"], \"auth\": \"basic\", \"user\": \"estbench\", \"password_file\": \"$WORK/fcs.password\", \"ca_bundle\": \"$K/chain.pem\", \"template\": \"User\"}}}"
			if ! "$ESTRAD" -t -c "$WORK/conf/slow.json" \
			    >"$WORK/slow-t.out" 2>&1; then
				why="estrad -t refuses a certsrv label: $(grep -m1 -E 'emerg|error|certsrv' "$WORK/slow-t.out" | cut -c1-200)"
			fi
		fi
	fi
	if [[ -n $why ]]; then
		say "slow-CA: skipped (no certsrv backend yet: $why)"
		printf '{"name":"slow-ca","mode":"slow-ca","skipped":"%s"}\n' \
		    "${why//[\"\\]/}" >>"$JSONL"
		return 0
	fi
	start_estrad "$WORK/conf/slow.json" "$K/chain.pem"
	enroll slow-ca rsa2048 full "$SLOW_N" -l slow -n "$SLOW_N" -d 60 -b \
	    -r "$WORK/csrs.slow"
	stop_estrad
}

# The hostile handshakes (rsa2048 key set): a normal client certificate
# (leaf from the bench issuing CA) against lists of RSA keys with public
# exponents as long as their moduli, each connection asking GET /cacerts
# once.
hostile() {
	local d=$WORK/hostile
	if [[ ! -x $TOOLS/hostile_chain ]]; then
		say "hostile handshakes: skipped ($TOOLS/hostile_chain not built)"
		return 0
	fi
	mkdir -p "$d" "$WORK/logs-hostile"
	printf '%s\n' "basicConstraints = critical, CA:FALSE" \
	    "keyUsage = critical, digitalSignature" \
	    "extendedKeyUsage = clientAuth" >"$d/client.ext"
	genkey "$d/client.key" rsa2048
	ossl req -new -key "$d/client.key" -subj "/O=estbench/CN=bench client" \
	    -out "$d/client.csr"
	ossl x509 -req -in "$d/client.csr" -CA "$K/issuing.pem" \
	    -CAkey "$K/issuing.key" -CAcreateserial -days 365 -sha256 \
	    -extfile "$d/client.ext" -out "$d/client.pem"
	cat "$K/issuing.pem" >>"$d/client.pem"
	"$TOOLS/hostile_chain" -n 72 -b 3072 -e 3071 -o "$d/h72.pem" \
	    -k "$d/h72.key" || die "hostile_chain failed"
	"$TOOLS/hostile_chain" -n 6 -b 3072 -e 3071 -o "$d/h6.pem" \
	    -k "$d/h6.key" || die "hostile_chain failed"
	# As many Ed25519 certificates without extensions (about 210 bytes
	# each with their framing) as tls.max_cert_list (16 KiB) holds:
	# OpenSSL parses them all before the count is checked.
	"$TOOLS/hostile_chain" -m -s h -n 75 -o "$d/m75.pem" \
	    -k "$d/m75.key" || die "hostile_chain failed"
	write_config "$WORK/conf/hostile.json" "$K" "$WORK/logs-hostile" 0
	start_estrad "$WORK/conf/hostile.json" "$K/chain.pem"
	local name
	for name in client h72 h6 m75; do
		"$BENCH" handshake -p "$PORT" -P "$DAEMON_PID" -a "$K/chain.pem" \
		    -e "$d/$name.pem" -y "$d/$name.key" -c 8 -d "$DURATION" \
		    -N "handshake-$name" -S rsa2048 -j "$JSONL" ||
		    say "# handshake-$name: estbench failed (exit $?)"
	done
	stop_estrad
}

# --- main ---------------------------------------------------------------

# Thousands of idle connections need as many descriptors, in estrad and in
# estbench: raise the soft limit (and the hard one when allowed).
max_idle=0
for n in $IDLE_NS; do ((n > max_idle)) && max_idle=$n; done
want_fds=$((max_idle + 1024))
if (($(ulimit -Hn) < want_fds)); then
	ulimit -Hn "$want_fds" 2>/dev/null
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
say "# estrad benchmark: $(nproc) cores, $(openssl version | cut -d' ' -f1-2)," \
    "fd limit $(ulimit -Sn), work directory $WORK"

mkdir -p "$WORK/conf"
"$ROOT/scripts/mkcerts.sh" "$WORK/dev" >/dev/null ||
    die "scripts/mkcerts.sh failed"
PORT=$(free_port)

for keys in $KEYSETS; do
	K=$WORK/pki-$keys
	mkpki "$K" "$keys"
	case $keys in rsa2048) kt=rsa ;; *) kt=ec ;; esac
	# CSRs and keys are made here, long before any clock starts.
	"$BENCH" gencsr -k "$kt" -n "$NCSRS" -o "$WORK/csrs.$keys" ||
	    die "estbench gencsr failed"

	# Audit on: the configuration of the targets.
	mkdir -p "$WORK/logs-$keys"
	write_config "$WORK/conf/$keys.json" "$K" "$WORK/logs-$keys" 1
	start_estrad "$WORK/conf/$keys.json" "$K/chain.pem"
	for mode in $MODES; do
		for c in $CONCS; do
			enroll "$mode-$keys-c$c" "$keys" "$mode" "$c"
		done
	done
	if [[ $keys == rsa2048 ]]; then
		for n in $IDLE_NS; do
			"$BENCH" idle -p "$PORT" -P "$DAEMON_PID" \
			    -a "$K/chain.pem" -C "$n" -d 5 -N "idle-$n" \
			    -S "$keys" -j "$JSONL" ||
			    say "# idle-$n: estbench failed (exit $?)"
		done
	fi
	stop_estrad
	reference "$keys"

	# Audit off, and no Basic auth: what fdatasync and crypt(3) cost.
	mkdir -p "$WORK/logs-$keys-noaudit"
	write_config "$WORK/conf/$keys-noaudit.json" "$K" \
	    "$WORK/logs-$keys-noaudit" 0
	start_estrad "$WORK/conf/$keys-noaudit.json" "$K/chain.pem"
	enroll "full-$keys-c64-noaudit" "$keys" full 64
	enroll "keepalive-$keys-c64-noaudit" "$keys" keepalive 64
	enroll "full-$keys-c64-noaudit-noauth" "$keys" full 64 -l open
	enroll "keepalive-$keys-c64-noaudit-noauth" "$keys" keepalive 64 \
	    -l open
	stop_estrad
done

K=$WORK/pki-rsa2048
[[ -d $K ]] || { mkpki "$K" rsa2048; "$BENCH" gencsr -k rsa -n "$NCSRS" \
    -o "$WORK/csrs.rsa2048"; }
if [[ ${BENCH_SLOW:-1} == 1 ]]; then
	slow_ca_local
	slow_ca
fi
if [[ ${BENCH_HOSTILE:-1} == 1 ]]; then
	hostile
fi

mkdir -p "$(dirname "$OUT")"
python3 "$HERE/report.py" "$JSONL" "$OUT" "$ROOT" || die "report failed"
say "# results: $OUT"
