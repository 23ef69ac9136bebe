# shellcheck shell=bash
# t_reload.sh: SIGHUP reload of configuration, certificates and users, and
# the plain-HTTP metrics listener (/metrics, /healthz, /readyz).  Sourced by
# run.sh.  Each test starts its own estrad (rl_start), so the shared
# daemon's configuration and certificates stay untouched.

# rl_cleanup: stops this test's estrad.
rl_cleanup() {
	if [[ -n ${RL_PID:-} ]]; then
		kill "$RL_PID" 2>/dev/null
		wait "$RL_PID" 2>/dev/null
		RL_PID=""
	fi
}

# rl_sanitizer_check: the estrad of this test printed no sanitizer report.
rl_sanitizer_check() {
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' \
	    "$T/estrad.stderr" 2>/dev/null; then
		fail "the reload estrad's stderr has sanitizer reports" \
		    "$T/estrad.stderr"
	fi
}

# rl_write_config [PYTHON]: $RL_CONF from the test configuration, with this
# test's port, metrics port, logs, server certificate and users file; the
# PYTHON snippet may change cfg further.
rl_write_config() {
	python3 - "$WORK/conf/estrad.json" "$RL_CONF" "$RL_PORT" \
	    "$RL_METRICS_PORT" "$T" "$CERTS" "${1:-}" <<'EOF'
import json, sys
src, dst, port, mport, t, certs, extra = sys.argv[1:]
cfg = json.load(open(src))
cfg["listen"] = ["127.0.0.1:" + port]
cfg["workers"] = 2
cfg["metrics"] = {"listen": "127.0.0.1:" + mport}
for k in ("error", "access", "audit"):
    cfg["logs"][k] = "%s/logs/%s.log" % (t, k)
cfg["tls"]["cert"] = t + "/server.pem"
cfg["tls"]["key"] = t + "/server.key"
cfg["users"] = t + "/users.htpasswd"
cfg["pending"]["dir"] = t + "/pending"
# A certsrv label whose only CA URL refuses connections, for /readyz: a
# port just bound and closed again.
import socket
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
dead = sock.getsockname()[1]
sock.close()
down = {k: v for k, v in cfg["labels"]["default"].items() if k != "ca"}
down["ca"] = {"backend": "certsrv",
              "urls": ["https://127.0.0.1:%d/certsrv" % dead],
              "user": "FAKE\\certuser", "password_file": t + "/ca.pass",
              "auth": "basic", "ca_bundle": certs + "/tls-ca.pem",
              "template": "WebServer", "connect_timeout": 2, "timeout": 5}
cfg["labels"]["down"] = down
exec(extra)
with open(dst + ".tmp", "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
EOF
	mv "$RL_CONF.tmp" "$RL_CONF"
}

# rl_server_cert NAME: a new TLS certificate for 127.0.0.1 and localhost
# from the dev TLS CA in $T/NAME.pem and $T/NAME.key.
rl_server_cert() {
	local name=$1
	printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	    "extendedKeyUsage=serverAuth" "keyUsage=digitalSignature" \
	    >"$T/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T/$name.key" -subj "/CN=estrad-$name" \
	    -out "$T/$name.csr" >"$T/openssl.err" 2>&1 &&
	    openssl x509 -req -in "$T/$name.csr" -CA "$CERTS/tls-ca.pem" \
	        -CAkey "$CERTS/tls-ca.key" -set_serial "0x$(openssl rand \
	        -hex 8)" -days 30 -extfile "$T/$name.ext" \
	        -out "$T/$name.body.pem" >>"$T/openssl.err" 2>&1 ||
	    fail "cannot make the server certificate $name (test setup)" \
	    "$T/openssl.err"
	cat "$T/$name.body.pem" "$CERTS/tls-ca.pem" >"$T/$name.pem"
}

# rl_install_cert NAME: replaces the served certificate and key on disk
# the way certmonger does (new file renamed over the old).
rl_install_cert() {
	cp "$T/$1.key" "$T/server.key.new" && mv "$T/server.key.new" \
	    "$T/server.key"
	cp "$T/$1.pem" "$T/server.pem.new" && mv "$T/server.pem.new" \
	    "$T/server.pem"
}

# rl_start [PYTHON]: starts an estrad of its own (PYTHON as for
# rl_write_config); sets RL_PID, RL_HOST (host:port) and RL_METRICS
# (http://host:port).
rl_start() {
	local i j
	trap 'rl_cleanup' EXIT
	mkdir -p "$T/logs" "$T/pending"
	RL_CONF=$WORK/conf/reload-${T##*/}.json
	cp "$CERTS/server.pem" "$T/server.pem"
	cp "$CERTS/server.key" "$T/server.key"
	cp "$CERTS/users.htpasswd" "$T/users.htpasswd"
	printf 'certpass\n' >"$T/ca.pass"
	chmod 600 "$T/ca.pass"
	LOGS=$T/logs
	for ((i = 0; i < 3; i++)); do
		RL_PORT=$(free_port)
		RL_METRICS_PORT=$(free_port)
		RL_HOST=127.0.0.1:$RL_PORT
		RL_METRICS=http://127.0.0.1:$RL_METRICS_PORT
		rl_write_config "${1:-}"
		(cd "$T" && exec "$ESTRAD" -c "$RL_CONF" \
		    >"$T/estrad.stdout" 2>"$T/estrad.stderr" </dev/null) &
		RL_PID=$!
		for ((j = 0; j < 100; j++)); do
			kill -0 "$RL_PID" 2>/dev/null || break
			if curl -s -o /dev/null --max-time 1 \
			    --cacert "$CERTS/tls-ca.pem" \
			    "https://$RL_HOST$EST_PATH/cacerts"; then
				return 0
			fi
			sleep 0.1
		done
		kill -0 "$RL_PID" 2>/dev/null && break
		wait "$RL_PID"
		RL_PID=""
		grep -qi 'address already in use' "$T/estrad.stderr" \
		    "$T/logs/error.log" 2>/dev/null || break
	done
	fail "the reload estrad did not start" "$T/estrad.stderr" \
	    "$T/logs/error.log"
}

# rl_hup_and_wait ERE: sends SIGHUP and waits up to 5 s for one more
# error-log line matching ERE than there was before.
rl_hup_and_wait() {
	local re=$1 before i
	before=$(grep -cE -- "$re" "$T/logs/error.log")
	kill -HUP "$RL_PID"
	for ((i = 0; i < 50; i++)); do
		[[ $(grep -cE -- "$re" "$T/logs/error.log") -gt $before ]] &&
		    return 0
		sleep 0.1
	done
	fail "no new error-log line matching /$re/ after SIGHUP" \
	    "$T/logs/error.log"
}

# rl_http URL: a plain-HTTP GET of the metrics listener; sets STATUS and
# leaves $T/headers and $T/body.
rl_http() {
	rm -f "$T/headers" "$T/body"
	STATUS=$(curl -s --max-time 10 --dump-header "$T/headers" \
	    --output "$T/body" --write-out '%{http_code}' "$1") || STATUS=000
	touch "$T/headers" "$T/body"
	echo "$STATUS" >"$T/status"
	RID=""
}

# rl_status CODE: the last rl_http answer had status CODE.
rl_status() {
	[[ $STATUS == "$1" ]] ||
	    fail "HTTP status $STATUS, want $1" "$T/headers" "$T/body"
}

# rl_serial: the serial number of the certificate estrad serves now.
rl_serial() {
	openssl s_client -connect "$RL_HOST" -CAfile "$CERTS/tls-ca.pem" \
	    </dev/null 2>/dev/null | openssl x509 -noout -serial
}

# rl_enroll_loop OUT SECONDS: simpleenroll in a loop, one status a line.
rl_enroll_loop() {
	local out=$1 end=$((SECONDS + $2))
	while ((SECONDS < end)); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
		    --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
		    -H 'Content-Type: application/pkcs10' \
		    --data-binary "@$T/load.b64" \
		    "https://$RL_HOST$EST_PATH/simpleenroll" >>"$out"
	done
}

t_reload_under_load() {
	rl_start
	mk_csr load /CN=load.example ec
	rl_server_cert new1
	rl_server_cert new2
	rl_server_cert new3
	rl_enroll_loop "$T/loop1" 6 &
	local l1=$!
	rl_enroll_loop "$T/loop2" 6 &
	local l2=$! n
	for n in 1 2 3; do
		sleep 1
		rl_install_cert "new$n"
		# A change a request sees: the default label's Retry-After.
		rl_write_config "cfg['labels']['default']['retry_after'] = $((40 + n))"
		rl_hup_and_wait "reloaded: generation $((n + 1)),"
	done
	wait "$l1" "$l2"
	cat "$T/loop1" "$T/loop2" >"$T/statuses"
	local total bad
	total=$(wc -l <"$T/statuses")
	bad=$(grep -vc '^200$' "$T/statuses")
	((total >= 20)) || fail "only $total enrollments in 6 s" "$T/statuses"
	assert_eq 0 "$bad" "failed enrollments out of $total during reloads"
	assert_eq "$(openssl x509 -in "$T/new3.pem" -noout -serial)" \
	    "$(rl_serial)" "serial of the certificate served after the reloads"
	# The retired generations were released once their requests ended.
	local i
	for ((i = 0; i < 30; i++)); do
		[[ $(grep -c 'configuration generation [0-9]* released' \
		    "$T/logs/error.log") -ge 3 ]] && break
		sleep 0.1
	done
	[[ $i -lt 30 ]] || fail "the old generations were not all released" \
	    "$T/logs/error.log"
	rl_cleanup
	rl_sanitizer_check
}

t_reload_broken_config_refused() {
	rl_start
	# An unknown key: refused with file, line and column.
	python3 - "$RL_CONF" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read().replace('"b64_wrap"', '"b64wrap"', 1)
open(p, "w").write(s)
EOF
	local line
	line=$(grep -n '"b64wrap"' "$RL_CONF" | head -1 | cut -d: -f1)
	rl_hup_and_wait 'configuration reload refused'
	grep -qE "\[error\] .*configuration reload refused: .*reload-[^:]*\.json:$line:[0-9]+: .*b64wrap" \
	    "$T/logs/error.log" ||
	    fail "the refusal does not name file:$line:col and the key" \
	    "$T/logs/error.log"
	http_req GET "https://$RL_HOST$EST_PATH/cacerts"
	assert_status 200
	# A key that does not match the certificate: refused too, and the
	# old certificate is still served.
	local before
	before=$(rl_serial)
	rl_write_config
	rl_server_cert other
	cp "$T/other.key" "$T/server.key"
	rl_hup_and_wait 'configuration reload refused: .*:[0-9]+:[0-9]+: tls.key: .* does not match'
	assert_eq "$before" "$(rl_serial)" "serial served after a refused reload"
	http_req GET "https://$RL_HOST$EST_PATH/cacerts"
	assert_status 200
	# Fixed: the next SIGHUP applies, and a restart-only key is named.
	cp "$T/other.pem" "$T/server.pem"
	rl_write_config "cfg['workers'] = 3"
	rl_hup_and_wait 'reloaded: generation 2,'
	assert_file_matches "$T/logs/error.log" \
	    '\[warn\] .*configuration reload: workers changed but cannot be applied live'
	assert_eq "$(openssl x509 -in "$T/other.pem" -noout -serial)" \
	    "$(rl_serial)" "serial served after the fixed reload"
	rl_http "$RL_METRICS/metrics"
	cp "$T/body" "$T/metrics.txt"
	assert_file_matches "$T/metrics.txt" \
	    '^estrad_config_reloads_total\{result="refused"\} 2$'
	assert_file_matches "$T/metrics.txt" \
	    '^estrad_config_reloads_total\{result="applied"\} 1$'
	rl_cleanup
	rl_sanitizer_check
}

t_reload_users_file() {
	rl_start
	printf 'reloaduser:%s\n' "$(openssl passwd -6 reload-secret)" \
	    >>"$T/users.htpasswd"
	mk_csr u1 /CN=reloaduser.example ec
	http_req POST "https://$RL_HOST$EST_PATH/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/u1.b64" \
	    -u reloaduser:reload-secret
	assert_status 401
	rl_hup_and_wait 'users file .* reloaded: 2 users'
	http_req POST "https://$RL_HOST$EST_PATH/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/u1.b64" \
	    -u reloaduser:reload-secret
	assert_status 200
	rl_cleanup
	rl_sanitizer_check
}

# rl_prom_python: a python3 with Debian's prometheus_client (the parser
# Prometheus itself ships for Python), or fails.
rl_prom_python() {
	local py
	for py in python3 /usr/bin/python3; do
		if "$py" -c 'import prometheus_client.parser' 2>/dev/null; then
			RL_PY=$py
			return 0
		fi
	done
	fail "python3-prometheus-client is not installed (make deps)"
}

# rl_agent_cert: $T/agent.pem and $T/agent.key, a client certificate of the
# dev issuing CA valid for 45 days (unlike every other test certificate),
# as a Dogtag label's agent certificate; RL_AGENT_NOT_AFTER is its notAfter
# in seconds since the epoch, as openssl reads it.
rl_agent_cert() {
	local end
	printf '%s\n' "extendedKeyUsage=clientAuth" \
	    "keyUsage=digitalSignature" >"$T/agent.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T/agent.key" -subj "/CN=estrad-agent" \
	    -out "$T/agent.csr" >"$T/openssl.err" 2>&1 &&
	    openssl x509 -req -in "$T/agent.csr" -CA "$CERTS/issuing-ca.pem" \
	        -CAkey "$CERTS/issuing-ca.key" -set_serial "0x$(openssl rand \
	        -hex 8)" -days 45 -extfile "$T/agent.ext" \
	        -out "$T/agent.pem" >>"$T/openssl.err" 2>&1 ||
	    fail "cannot make the agent certificate (test setup)" \
	    "$T/openssl.err"
	chmod 600 "$T/agent.key"
	end=$(openssl x509 -in "$T/agent.pem" -noout -enddate) ||
	    fail "openssl cannot read the agent certificate's notAfter"
	RL_AGENT_NOT_AFTER=$(date -u -d "${end#notAfter=}" +%s) ||
	    fail "cannot convert the notAfter \"$end\" to epoch seconds"
}

t_reload_metrics_and_health() {
	rl_agent_cert
	# Two Dogtag labels presenting the same agent certificate (to a CA
	# that is not there: only the configuration matters for the gauge).
	rl_start "
for name in ('dgm1', 'dgm2'):
    lab = {k: v for k, v in cfg['labels']['default'].items() if k != 'ca'}
    lab['ca'] = {'backend': 'dogtag', 'urls': [down['ca']['urls'][0]],
                 'ca_bundle': certs + '/tls-ca.pem',
                 'agent_cert': t + '/agent.pem',
                 'agent_key': t + '/agent.key', 'profile': 'caServerCert',
                 'connect_timeout': 2, 'timeout': 5}
    cfg['labels'][name] = lab
"
	rl_prom_python
	local i
	# Counters are compared with what this test adds to them: the probe
	# of rl_start counted too.
	rl_http "$RL_METRICS/metrics"
	rl_status 200
	cp "$T/body" "$T/before.txt"
	for ((i = 0; i < 3; i++)); do
		http_req GET "https://$RL_HOST$EST_PATH/cacerts"
		assert_status 200
	done
	mk_csr m1 /CN=metrics.example ec
	for ((i = 0; i < 2; i++)); do
		http_req POST "https://$RL_HOST$EST_PATH/simpleenroll" \
		    -H 'Content-Type: application/pkcs10' \
		    --data-binary "@$T/m1.b64" -u "$CRED"
		assert_status 200
	done
	http_req POST "https://$RL_HOST$EST_PATH/simpleenroll" \
	    -H 'Content-Type: text/plain' --data-binary "@$T/m1.b64" -u "$CRED"
	assert_status 415
	http_req GET "https://$RL_HOST$EST_PATH/nosuchlabel/cacerts"
	assert_status 404
	# A handshake that fails: the client does not trust estrad.
	curl -s -o /dev/null --max-time 5 --cacert "$CERTS/manufacturer-ca.pem" \
	    "https://$RL_HOST$EST_PATH/cacerts"
	rl_http "$RL_METRICS/healthz"
	rl_status 200
	assert_file_matches "$T/body" '^ok$'
	rl_http "$RL_METRICS/readyz"
	rl_status 200
	rl_http "$RL_METRICS/metrics"
	rl_status 200
	assert_header Content-Type 'text/plain; version=0.0.4'
	"$RL_PY" - "$T/before.txt" "$T/body" "$RL_AGENT_NOT_AFTER" \
	    >"$T/check.out" 2>&1 <<'EOF' ||
import sys
from prometheus_client.parser import text_string_to_metric_families
def parse(path):
    samples = {}
    for fam in text_string_to_metric_families(open(path).read()):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples
before = parse(sys.argv[1])
samples = parse(sys.argv[2])
def get(name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))
def want(value, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    got = samples.get(key, 0) - before.get(key, 0)
    assert got == value, (name, labels, "want +", value, "got +", got)
want(3, "estrad_requests_total", op="cacerts", label="default", status="200")
want(2, "estrad_requests_total", op="simpleenroll", label="default",
     status="200")
want(1, "estrad_requests_total", op="simpleenroll", label="default",
     status="415")
want(1, "estrad_requests_total", op="cacerts", label="", status="404")
want(2, "estrad_enrollments_total", backend="local", outcome="issued")
want(1, "estrad_enrollments_total", backend="local", outcome="refused")
want(5, "estrad_backend_request_seconds_count", backend="local")
want(5, "estrad_backend_request_seconds_bucket", backend="local", le="+Inf")
assert get("estrad_tls_handshakes_total") >= 7, get("estrad_tls_handshakes_total")
fails = sum(v for (n, l), v in samples.items()
            if n == "estrad_tls_handshake_failures_total")
assert fails >= 1, "no handshake failure counted"
assert get("estrad_connections_open") is not None
assert get("estrad_pending_records") == 0, get("estrad_pending_records")
assert any(n == "estrad_certificate_not_after_seconds"
           and dict(l).get("which") == "server" for (n, l) in samples), \
    "no server certificate expiry"
# The Dogtag agent certificate, once per label that presents it, at the
# notAfter openssl read.
for name in ("dgm1", "dgm2"):
    got = get("estrad_certificate_not_after_seconds", which="agent",
              subject="/CN=estrad-agent", label=name, backend="dogtag")
    assert got == float(sys.argv[3]), (name, "agent notAfter", got,
                                       "want", sys.argv[3])
assert get("estrad_config_generation") == 1, get("estrad_config_generation")
print("ok", len(samples), "samples")
EOF
	    fail "metrics do not parse or do not match the requests made" \
	    "$T/check.out" "$T/body"
	if command -v promtool >/dev/null 2>&1; then
		promtool check metrics <"$T/body" >"$T/promtool.out" 2>&1 ||
		    fail "promtool check metrics failed" "$T/promtool.out"
	fi
	# A backend that cannot be reached makes estrad not ready ...
	http_req POST "https://$RL_HOST$EST_PATH/down/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/m1.b64" \
	    -u "$CRED" --max-time 20
	assert_status 503
	rl_http "$RL_METRICS/readyz"
	rl_status 503
	assert_file_matches "$T/body" 'label down: backend unreachable'
	rl_http "$RL_METRICS/metrics"
	assert_file_matches "$T/body" \
	    '^estrad_backend_errors_total\{backend="certsrv",cause="curl_7"\} 1$'
	# ... until a reload brings fresh CA instances.
	rl_hup_and_wait 'reloaded: generation 2,'
	rl_http "$RL_METRICS/readyz"
	rl_status 200
	rl_http "$RL_METRICS/nothing"
	rl_status 404
	rl_cleanup
	rl_sanitizer_check
}

# rl_users_dir: the reload estrad's users file moved to $T/users/, a
# directory of its own, by a reload that must apply.
rl_users_dir() {
	mkdir -p "$T/users"
	cp "$T/users.htpasswd" "$T/users/users.htpasswd"
	rl_write_config "cfg['users'] = t + '/users/users.htpasswd'"
	rl_hup_and_wait 'reloaded: generation 2,'
}

# rl_refused_keeps_old ERE: a SIGHUP is refused with an error line matching
# ERE, and the users loaded before stay: estuser enrolls, reloaduser (added
# to the file meanwhile) does not.
rl_refused_keeps_old() {
	rl_hup_and_wait "\\[error\\] .*configuration reload refused: $1"
	http_req POST "https://$RL_HOST$EST_PATH/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/u1.b64" \
	    -u reloaduser:reload-secret
	assert_status 401
	http_req POST "https://$RL_HOST$EST_PATH/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/u1.b64" \
	    -u "$CRED"
	assert_status 200
}

t_reload_checks_files_as_start_does() {
	rl_start
	rl_users_dir
	mk_csr u1 /CN=reloaduser.example ec
	printf 'reloaduser:%s\n' "$(openssl passwd -6 reload-secret)" \
	    >>"$T/users/users.htpasswd"
	# A world-writable users file: anyone could add themselves.
	chmod 666 "$T/users/users.htpasswd"
	rl_refused_keeps_old "users .*/users/users\\.htpasswd is world-writable"
	chmod 600 "$T/users/users.htpasswd"
	# A world-writable directory above it: anyone could swap the file.
	chmod 777 "$T/users"
	rl_refused_keeps_old "users .*/users/users\\.htpasswd is in directory .*/users, world-writable"
	chmod 755 "$T/users"
	# A file that belongs to another user, who could rewrite it at will.
	if [[ $(id -u) == 0 ]]; then
		chown nobody "$T/users/users.htpasswd"
		rl_refused_keeps_old "users .*/users/users\\.htpasswd is owned by nobody"
		chown root "$T/users/users.htpasswd"
	fi
	# Fixed: the next SIGHUP applies.
	rl_hup_and_wait 'users file .* reloaded: 2 users'
	http_req POST "https://$RL_HOST$EST_PATH/simpleenroll" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/u1.b64" \
	    -u reloaduser:reload-secret
	assert_status 200
	rl_cleanup
	rl_sanitizer_check
}
