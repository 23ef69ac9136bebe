# shellcheck shell=bash
# t_abuse.sh: abuse, limits and durability (issue 10), sourced by run.sh
# after t_certsrv.sh (whose cs_* helpers the durability test uses).
#
#   t_abuse_slow_*       connections that stop half-way (partial
#                        ClientHello, head, body, idle keep-alive) do not
#                        stop service and are closed after limits.timeout;
#                        connections that trickle a byte a second are
#                        closed after limits.handshake_timeout and
#                        limits.request_timeout, while a request waiting
#                        for a slow CA is not
#   t_abuse_tls_*        renegotiation refused, compression off, random
#                        bytes as ClientHello
#   t_abuse_auth_matrix  every label x operation x bad credential refused
#   t_abuse_kill9_*      kill -9 during a burst: records and audit intact
#   t_abuse_disk_*       a full or read-only pending.dir answers 503
#
# The slow-client tests run a second estrad (ab_start) with a short
# limits.timeout so they stay quick.  ABUSE_CONNS (default 200) is the
# number of connections of each slow kind; the README's 1,000 comes from
# a run with ABUSE_CONNS=1000.

AB_PID="" AB_HOST="" AB_CONF=""
AB_WRAP=()

# ab_cleanup: stops the second estrad (EXIT trap of a test).
ab_cleanup() {
	local i
	[[ -n $AB_PID ]] || return 0
	kill -TERM "$AB_PID" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$AB_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$AB_PID" 2>/dev/null
	wait "$AB_PID" 2>/dev/null
	AB_PID=""
}

# ab_sanitizer_check: fails when the second estrad's stderr has a
# sanitizer report (it must have been stopped first).
ab_sanitizer_check() {
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' \
	    "$T/estrad.stderr" 2>/dev/null; then
		fail "the second estrad's stderr has sanitizer reports" \
		    "$T/estrad.stderr"
	fi
}

# ab_write_conf PORT PYTHON: writes $AB_CONF, the test configuration
# listening on 127.0.0.1:PORT with 2 workers and logs in $T/logs, changed
# by PYTHON (statements on the dict cfg; t is the test directory).
ab_write_conf() {
	python3 - "$WORK/conf/estrad.json" "$AB_CONF" "$1" "$T" "$2" <<'PYEOF'
import json, sys
src, dst, port, t, code = sys.argv[1:]
cfg = json.load(open(src))
cfg["listen"] = ["127.0.0.1:" + port]
cfg["workers"] = 2
for k in ("error", "access", "audit"):
    cfg["logs"][k] = "%s/logs/%s.log" % (t, k)
exec(code)
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
PYEOF
}

# ab_start PYTHON: starts a second estrad whose configuration is the test
# configuration changed by PYTHON (ab_write_conf), logging to $T/logs; sets
# AB_HOST and AB_PID, and points LOGS there for assert_error.  The command
# words in the array AB_WRAP, when set, run estrad (prlimit, setpriv).
ab_start() {
	local code=$1 i j port
	local -a wrap=("${AB_WRAP[@]}")
	trap 'ab_cleanup' EXIT
	AB_CONF=$WORK/conf/abuse-${T##*/}.json
	LOGS=$T/logs
	mkdir -p "$T/logs"
	for ((i = 0; i < 3; i++)); do
		port=$(free_port)
		AB_HOST=127.0.0.1:$port
		ab_write_conf "$port" "$code" ||
		    fail "cannot write the abuse configuration"
		(cd "$T" && exec "${wrap[@]}" "$ESTRAD" -c "$AB_CONF" \
		    >"$T/estrad.stdout" 2>>"$T/estrad.stderr" </dev/null) &
		AB_PID=$!
		for ((j = 0; j < 100; j++)); do
			kill -0 "$AB_PID" 2>/dev/null || break
			if curl -s -o /dev/null --max-time 1 \
			    --cacert "$CERTS/tls-ca.pem" \
			    "https://$AB_HOST$EST_PATH/cacerts"; then
				return 0
			fi
			sleep 0.1
		done
		kill -0 "$AB_PID" 2>/dev/null && break
		wait "$AB_PID"
		AB_PID=""
		grep -qi 'address already in use' "$T/estrad.stderr" \
		    "$T/logs/error.log" 2>/dev/null || break
	done
	fail "the second estrad did not start" "$T/estrad.stderr" \
	    "$T/logs/error.log"
}

# ab_fds: open file descriptors of the second estrad.
ab_fds() {
	find "/proc/$AB_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# ab_json_get FILE KEY: one value of the JSON object in FILE.
ab_json_get() {
	python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1" "$2"
}

# --- slow clients -------------------------------------------------------------

t_abuse_slow_clients_held_and_closed() {
	local n=${ABUSE_CONNS:-200} fds0 fds1
	# 5 s: opening them all (hundreds of TLS handshakes) must take less,
	# also under the sanitizers.  The deadlines are longer, so silence
	# is what closes these (t_abuse_slow_deadlines tests the deadlines).
	ab_start 'cfg["limits"]["timeout"] = 5
cfg["limits"]["handshake_timeout"] = 30
cfg["limits"]["request_timeout"] = 30
cfg["limits"]["max_conns_per_client"] = 0'
	mk_csr slow /CN=slow.example ec
	fds0=$(ab_fds)
	# n connections each with a partial ClientHello and a partial head,
	# n/4 each with a partial body and idle after one request; a normal
	# enrollment meanwhile.
	python3 "$HERE/slow_clients.py" --port "${AB_HOST##*:}" \
	    --cacert "$CERTS/tls-ca.pem" --hello "$n" --head "$n" \
	    --body $((n / 4)) --idle $((n / 4)) --wait 20 -- \
	    curl -s -o "$T/enroll.body" -w '%{http_code}' --max-time 10 \
	    --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/slow.b64" \
	    "https://$AB_HOST$EST_PATH/simpleenroll" \
	    >"$T/slow.json" 2>"$T/slow.err" ||
	    fail "slow_clients.py failed" "$T/slow.err"
	cp "$T/slow.json" "$T/figures"
	assert_eq $((2 * n + 2 * (n / 4))) "$(ab_json_get "$T/slow.json" held)" \
	    "connections held" "$T/slow.json"
	assert_eq 200 "$(ab_json_get "$T/slow.json" cmd_out)" \
	    "enrollment while the slow clients are held" "$T/slow.json"
	assert_eq $((2 * n + 2 * (n / 4))) \
	    "$(ab_json_get "$T/slow.json" still_open_after_cmd)" \
	    "slow connections still open after the enrollment" "$T/slow.json"
	assert_eq $((2 * n + 2 * (n / 4))) \
	    "$(ab_json_get "$T/slow.json" closed)" \
	    "slow connections closed by estrad" "$T/slow.json"
	# Each kind is closed after the timeout (5 s), not before, and not
	# long after.
	python3 - "$T/slow.json" <<'EOF' ||
import json, sys
d = json.load(open(sys.argv[1]))["delays"]
ok = set(d) == {"hello", "head", "body", "idle"} and all(
    4.5 <= lo and hi <= 8.0 for lo, hi in d.values())
sys.exit(0 if ok else 1)
EOF
	    fail "slow connections not closed 5 s after their last byte" \
	    "$T/slow.json"
	# Every socket is given back.
	sleep 0.5
	fds1=$(ab_fds)
	((fds1 <= fds0 + 2)) ||
	    fail "estrad holds $fds1 descriptors, $fds0 before the slow clients"
	# One line per cause when it first happens, then one with the count
	# per window (est/limits.c, EST_LIMITS_WINDOW 10 s): wait for the
	# summaries and add up.
	sleep 8
	ab_limits_count 'TLS handshake not completed within limits\.timeout' "$n"
	ab_limits_count 'request head or body not completed within limits\.timeout' \
	    $((n + n / 4))
	ab_limits_count 'keep-alive connection idle for limits\.timeout' $((n / 4))
	local lines
	lines=$(grep -c 'est.limits:' "$T/logs/error.log")
	((lines <= 9)) ||
	    fail "$lines est.limits lines for $((2 * n + n / 2)) connections" \
	    "$T/logs/error.log"
	ab_cleanup
	ab_sanitizer_check
}

# ab_limits_count TEXT N: the error log counts N closures for the cause
# TEXT: one "connection closed" line and summaries whose counts add up,
# waiting up to 6 s more for the last summary.
ab_limits_count() {
	local text=$1 want=$2 got i first
	for ((i = 0; i < 30; i++)); do
		first=$(grep -c "est.limits: connection closed: $text" \
		    "$T/logs/error.log")
		got=$(grep "est.limits: connections closed: $text" \
		    "$T/logs/error.log" | sed -n 's/.*count: \([0-9]*\) in.*/\1/p' |
		    awk -v f="$first" '{ s += $1 } END { print s + f }')
		[[ $got == "$want" ]] && break
		sleep 0.2
	done
	assert_eq 1 "$first" "first lines for '$text'" "$T/logs/error.log"
	assert_eq "$want" "$got" "closures counted for '$text'" \
	    "$T/logs/error.log"
}

t_abuse_slow_per_client_limit() {
	local n=50 max=20
	ab_start "cfg['limits']['timeout'] = 3
cfg['limits']['max_conns_per_client'] = $max"
	mk_csr other /CN=other.example ec
	# 127.0.0.1 opens n partial handshakes: max are held until the
	# timeout, the others are shut at their first record.  A client
	# from another address (127.0.0.2) enrolls meanwhile.
	python3 "$HERE/slow_clients.py" --port "${AB_HOST##*:}" \
	    --cacert "$CERTS/tls-ca.pem" --hello "$n" --wait 10 -- \
	    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
	    --interface 127.0.0.2 --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
	    -H 'Content-Type: application/pkcs10' \
	    --data-binary "@$T/other.b64" \
	    "https://$AB_HOST$EST_PATH/simpleenroll" \
	    >"$T/limit.json" 2>"$T/limit.err" ||
	    fail "slow_clients.py failed" "$T/limit.err"
	cp "$T/limit.json" "$T/figures"
	assert_eq 200 "$(ab_json_get "$T/limit.json" cmd_out)" \
	    "enrollment from another address" "$T/limit.json"
	assert_eq "$n" "$(ab_json_get "$T/limit.json" closed)" \
	    "connections closed" "$T/limit.json"
	assert_eq $((n - max)) "$(ab_json_get "$T/limit.json" closed_early)" \
	    "connections shut at once for the limit" "$T/limit.json"
	assert_file_matches "$T/logs/error.log" \
	    'est.limits: connection closed: over limits.max_conns_per_client, client: 127\.0\.0\.1:[0-9]+, total: 1;'
	ab_cleanup
	ab_sanitizer_check
}

# t_abuse_fd_silent_per_client: connections that never send a byte count
# against limits.max_conns_per_client from their accept on: one address
# holds at most that many, the others are closed at once (a client that
# waited for its first TLS record to be counted could take every
# descriptor without sending anything).
t_abuse_fd_silent_per_client() {
	local n=60 max=20
	ab_start "cfg['limits']['timeout'] = 30
cfg['limits']['handshake_timeout'] = 30
cfg['limits']['max_conns_per_client'] = $max"
	python3 "$HERE/slow_clients.py" --port "${AB_HOST##*:}" \
	    --silent "$n" --sources 1 --hold 4 >"$T/silent.json" \
	    2>"$T/silent.err" || fail "slow_clients.py failed" "$T/silent.err"
	cp "$T/silent.json" "$T/figures"
	assert_eq "$n" "$(ab_json_get "$T/silent.json" silent_connected)" \
	    "silent connections made" "$T/silent.json"
	assert_eq "$max" "$(ab_json_get "$T/silent.json" silent_held)" \
	    "silent connections estrad holds" "$T/silent.json"
	assert_eq $((n - max)) "$(ab_json_get "$T/silent.json" silent_closed)" \
	    "silent connections closed for the limit" "$T/silent.json"
	assert_file_matches "$T/logs/error.log" \
	    'est.limits: connection closed: over limits.max_conns_per_client, client: 127\.0\.0\.1:[0-9]+, total: 1;'
	ab_cleanup
	ab_sanitizer_check
}

# t_abuse_fd_exhaustion: an estrad with 128 descriptors (prlimit) and no
# per-worker limit, against 400 silent connections from 12 addresses (20
# allowed each): accept(2) runs out of descriptors.  estrad pauses
# accepting instead of retrying at once (libevent's default, one warning
# line per attempt: hundreds of thousands a second), logs a bounded number
# of lines, keeps each address within its limit, and serves a new client
# once the connections are gone.
t_abuse_fd_exhaustion() {
	local lines0 lines i st
	AB_WRAP=(prlimit --nofile=128:128)
	ab_start "cfg['limits']['timeout'] = 30
cfg['limits']['handshake_timeout'] = 30
cfg['limits']['max_conns_per_client'] = 20
cfg['limits']['max_conns_per_worker'] = 0"
	# The helper labels' first FETCH-ROOTS lines come soon after the
	# start; only the lines of the flood count.
	sleep 1
	lines0=$(grep -cv ' ca\.' "$T/logs/error.log")
	# While they are held, ss(8) lists the connections estrad has
	# accepted (those still in its listen queue belong to no process).
	python3 "$HERE/slow_clients.py" --port "${AB_HOST##*:}" \
	    --silent 400 --sources 12 --hold 6 -- sh -c "ss -Htnp state \
	    established '( sport = :${AB_HOST##*:} )' >'$T/ss.txt'" \
	    >"$T/silent.json" 2>"$T/silent.err" ||
	    fail "slow_clients.py failed" "$T/silent.err"
	cp "$T/silent.json" "$T/figures"
	lines=$(($(grep -cv ' ca\.' "$T/logs/error.log") - lines0))
	echo "error-log lines during the flood: $lines" >>"$T/figures"
	((lines <= 10)) ||
	    fail "$lines error-log lines while out of descriptors" \
	    "$T/logs/error.log"
	assert_file_matches "$T/logs/error.log" \
	    '\[warn\] .*est\.limits: connection closed: out of descriptors at accept \(24: Too many open files\)'
	python3 - "$T/silent.json" "$T/ss.txt" "$AB_PID" \
	    >>"$T/figures" <<'PYEOF' ||
import collections, json, sys
d = json.load(open(sys.argv[1]))
held = collections.Counter()
for line in open(sys.argv[2]):
    if "pid=%s," % sys.argv[3] in line:
        held[line.split()[3].rsplit(":", 1)[0]] += 1
print("accepted and held per address:", dict(held))
sys.exit(0 if d["silent_connected"] > 128 and sum(held.values()) > 50 and
         max(held.values()) <= 20 else 1)
PYEOF
	    fail "an address holds more than its 20 connections, or the flood did not reach the descriptor limit" \
	    "$T/figures" "$T/ss.txt"
	# The connections are gone: a new client is served again.
	for ((i = 0; i < 50; i++)); do
		st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		    --cacert "$CERTS/tls-ca.pem" \
		    "https://$AB_HOST$EST_PATH/cacerts") || true
		[[ $st == 200 ]] && break
		sleep 0.2
	done
	assert_eq 200 "$st" "cacerts after the flood"
	ab_cleanup
	ab_sanitizer_check
}

# ab_nofile PID: the soft and hard descriptor limits of PID.
ab_nofile() {
	awk '/^Max open files/ { print $4, $5 }' "/proc/$1/limits"
}

# t_abuse_fd_rlimit_raised: started with a soft limit of 256, estrad raises
# it to what its connection limits need: workers x max_conns_per_worker +
# 256.
t_abuse_fd_rlimit_raised() {
	local hard want=$((2 * 3000 + 256)) got
	hard=$(ulimit -Hn)
	[[ $hard == unlimited ]] && hard=1048576
	if ((hard < want)); then
		echo "skipped: hard descriptor limit $hard < $want" >"$T/figures"
		return 0
	fi
	AB_WRAP=(prlimit "--nofile=256:$hard")
	ab_start "cfg['limits']['max_conns_per_worker'] = 3000"
	read -r got _ < <(ab_nofile "$AB_PID")
	echo "soft limit $got, wanted $want" >"$T/figures"
	((got >= want)) ||
	    fail "soft descriptor limit $got, $want needed" "$T/logs/error.log"
	assert_file_matches "$T/logs/error.log" \
	    "est.limits: descriptor limit raised from 256 to $want"
	# The shipped unit gives room for the default on 63 workers.
	assert_file_matches "$ROOT/packaging/estrad.service" \
	    '^LimitNOFILE=524288$'
	ab_cleanup
	ab_sanitizer_check
}

# t_abuse_fd_rlimit_hard_low: a hard limit of 2048 that estrad may not
# raise (no CAP_SYS_RESOURCE): a max_conns_per_worker set in the
# configuration that does not fit is refused at start with a clear
# message; the default is lowered to what fits, and said so.
t_abuse_fd_rlimit_hard_low() {
	local port i rc=0 per
	AB_WRAP=(prlimit --nofile=1024:2048 setpriv --inh-caps=-sys_resource \
	    --bounding-set=-sys_resource --)
	AB_CONF=$WORK/conf/abuse-${T##*/}.json
	mkdir -p "$T/logs"
	port=$(free_port)
	ab_write_conf "$port" "cfg['limits']['max_conns_per_worker'] = 8192" ||
	    fail "cannot write the abuse configuration"
	(cd "$T" && exec "${AB_WRAP[@]}" "$ESTRAD" -c "$AB_CONF" \
	    >"$T/refused.stdout" 2>"$T/refused.stderr" </dev/null) &
	AB_PID=$!
	trap 'ab_cleanup' EXIT
	for ((i = 0; i < 50; i++)); do
		kill -0 "$AB_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$AB_PID" 2>/dev/null; then
		fail "estrad started although 2 x 8192 connections cannot have descriptors under a hard limit of 2048" \
		    "$T/refused.stderr"
	fi
	wait "$AB_PID" || rc=$?
	AB_PID=""
	((rc != 0)) || fail "estrad exited 0 when refusing to start"
	assert_file_matches "$T/refused.stderr" \
	    'refusing to start: descriptor limit 2048 .*limits\.max_conns_per_worker 8192'
	assert_file_matches "$T/logs/error.log" \
	    '\[emerg\] .*refusing to start: descriptor limit 2048'
	# The default fits itself to the limit.
	mv "$T/logs/error.log" "$T/logs/error.refused.log"
	ab_start "cfg['limits'].pop('max_conns_per_worker', None)"
	per=$(((2048 - 256) / 2))
	assert_file_matches "$T/logs/error.log" \
	    "est.limits: .*limits\.max_conns_per_worker lowered to $per"
	assert_eq "2048 2048" "$(ab_nofile "$AB_PID")" "descriptor limits"
	ab_cleanup
	ab_sanitizer_check
}

# t_abuse_slow_deadlines: the phase deadlines (est/limits.c).  Clients
# that are never silent for limits.timeout (6 s) but never finish: a
# ClientHello one byte a second, the records of a request (head and body)
# one byte a second, a head at once and then its body one byte a second;
# and a ClientHello cut in half, then silent.  Half of the handshaken
# ones use TLS 1.2, half TLS 1.3, whose records all look like data from
# outside.  They are closed limits.handshake_timeout (2 s) after the
# accept and limits.request_timeout (3 s) after the request's first byte;
# meanwhile a normal enrollment works and one whose CA takes 4 s, longer
# than the request deadline, is answered.  Keep-alive connections idle
# after an answer are left to limits.timeout: no request deadline runs
# between requests.
t_abuse_slow_deadlines() {
	local n=10 slow_pid
	# The slow CA is the helper fake behind "sleep 4"; $0 and $1 are
	# for the helper's shell, not this one.
	# shellcheck disable=SC2016
	ab_start 'cfg["limits"]["timeout"] = 6
cfg["limits"]["handshake_timeout"] = 2
cfg["limits"]["request_timeout"] = 3
cfg["limits"]["max_conns_per_client"] = 0
import copy
ca = copy.deepcopy(cfg["labels"]["t-h-issue"]["ca"])
ca["command"] = ["/bin/sh", "-c", "sleep 4; exec \"$0\" \"$1\""] + \
    ca["command"]
cfg["labels"]["t-slowca"] = {"ca": ca, "csrattrs": [], "ca_wait": 10}'
	mk_csr fast /CN=fast.example ec
	mk_csr slowca /CN=slowca.example ec \
	    -addext "subjectAltName=DNS:slowca.example"
	# The slow CA's enrollment runs alongside: its request arrives at
	# once, then waits 4 s for the CA.
	curl -s -o "$T/slowca.body" -w '%{http_code}' --max-time 15 \
	    --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
	    -H 'Content-Type: application/pkcs10' \
	    --data-binary "@$T/slowca.b64" \
	    "https://$AB_HOST$EST_PATH/t-slowca/simpleenroll" \
	    >"$T/slowca.status" 2>"$T/slowca.err" &
	slow_pid=$!
	python3 "$HERE/slow_clients.py" --port "${AB_HOST##*:}" \
	    --cacert "$CERTS/tls-ca.pem" --hello "$n" --idle 4 \
	    --trickle-hello "$n" --trickle-head "$n" --trickle-body "$n" \
	    --interval 1 --wait 12 -- \
	    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
	    --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/fast.b64" \
	    "https://$AB_HOST$EST_PATH/simpleenroll" \
	    >"$T/deadlines.json" 2>"$T/deadlines.err" ||
	    fail "slow_clients.py failed" "$T/deadlines.err"
	wait "$slow_pid"
	cp "$T/deadlines.json" "$T/figures"
	assert_eq 200 "$(ab_json_get "$T/deadlines.json" cmd_out)" \
	    "enrollment while the slow clients trickle" "$T/deadlines.json"
	assert_eq 200 "$(cat "$T/slowca.status")" \
	    "enrollment through a CA slower than limits.request_timeout" \
	    "$T/slowca.err"
	assert_eq $((n + 4)) "$(ab_json_get "$T/deadlines.json" closed)" \
	    "stalled handshakes and idle connections closed" \
	    "$T/deadlines.json"
	assert_eq $((3 * n)) \
	    "$(ab_json_get "$T/deadlines.json" trickle_closed)" \
	    "trickling connections closed" "$T/deadlines.json"
	# Each kind is closed at its deadline, not before, and long before
	# it could have finished (hundreds of bytes at one a second).
	python3 - "$T/deadlines.json" <<'PYEOF' ||
import json, sys
d = json.load(open(sys.argv[1]))
want = {"trickle-hello": 2, "trickle-head": 3, "trickle-body": 3}
t = d["trickle_delays"]
ok = set(t) == set(want) and all(
    want[k] - 0.3 <= lo and hi <= want[k] + 2.0 for k, (lo, hi) in t.items())
lo, hi = d["delays"]["hello"]
ok = ok and 1.5 <= lo and hi <= 4.0
lo, hi = d["delays"]["idle"]
ok = ok and 5.5 <= lo and hi <= 8.0
sys.exit(0 if ok else 1)
PYEOF
	    fail "slow connections not closed at their deadlines" \
	    "$T/deadlines.json"
	# One line per cause when it first happens, then one with the
	# count (EST_LIMITS_WINDOW 10 s); none but the idle ones is counted
	# as silent for limits.timeout.
	sleep 4
	ab_limits_count \
	    'TLS handshake not completed within limits\.handshake_timeout (2 s)' \
	    $((2 * n))
	ab_limits_count \
	    'request not completed within limits\.request_timeout (3 s)' \
	    $((2 * n))
	ab_limits_count 'keep-alive connection idle for limits\.timeout (6 s)' 4
	! grep -q 'within limits\.timeout' "$T/logs/error.log" ||
	    fail "a deadline closure was counted as silence" \
	    "$T/logs/error.log"
	ab_cleanup
	ab_sanitizer_check
}

# --- TLS ----------------------------------------------------------------------

t_abuse_tls_renegotiation_refused() {
	local out=$T/reneg.out
	# "R" asks s_client to renegotiate on TLS 1.2; estrad must refuse
	# and stay up.
	printf 'R\n' | timeout -k 2 10 openssl s_client -connect "$HOSTPORT" \
	    -tls1_2 -CAfile "$CERTS/tls-ca.pem" >"$out" 2>&1 || true
	assert_file_has "$out" RENEGOTIATING "s_client output"
	assert_file_matches "$out" 'no renegotiation|alert' "s_client output"
	assert_file_has "$out" 'Compression: NONE' "s_client output"
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
}

t_abuse_tls_old_versions_refused() {
	local v
	# SSLv3 is not even built into OpenSSL 3; TLS 1.0 and 1.1 need the
	# client at security level 0 to be offered at all.
	for v in -tls1 -tls1_1; do
		timeout -k 2 10 openssl s_client -connect "$HOSTPORT" "$v" \
		    -cipher 'DEFAULT:@SECLEVEL=0' </dev/null \
		    >"$T/old$v.out" 2>&1 || true
		[[ -z $(tls_negotiated "$T/old$v.out") ]] ||
		    fail "$v negotiated $(tls_negotiated "$T/old$v.out")" \
		    "$T/old$v.out"
	done
}

t_abuse_tls_random_client_hello() {
	local n=${ABUSE_RANDOM:-300}
	python3 "$HERE/slow_clients.py" --port "$PORT" --random "$n" \
	    >"$T/random.json" 2>"$T/random.err" ||
	    fail "slow_clients.py --random failed" "$T/random.err"
	assert_eq "$n" "$(ab_json_get "$T/random.json" random_sent)" \
	    "random streams sent" "$T/random.json"
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "estrad died"
	http_req GET "$EST_PATH/cacerts"
	assert_status 200
}

# --- kill -9 durability -----------------------------------------------------------

# ab_burst_client LABEL N TAG: N enrollments on LABEL of the certsrv
# estrad, one fresh CSR each, recording "TAG-I STATUS RID" lines in
# $T/burst/TAG.
ab_burst_client() {
	local label=$1 n=$2 tag=$3 i st rid
	for ((i = 0; i < n; i++)); do
		openssl req -new -config "$WORK/req.cnf" -newkey ec \
		    -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout "$T/burst/$tag-$i.key" -subj "/CN=$tag-$i.example" \
		    -outform DER -out "$T/burst/$tag-$i.der" 2>/dev/null
		base64 -w64 "$T/burst/$tag-$i.der" >"$T/burst/$tag-$i.b64"
		st=$(curl -s --http1.1 --max-time 15 \
		    --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
		    -H 'Content-Type: application/pkcs10' \
		    --data-binary "@$T/burst/$tag-$i.b64" \
		    -D "$T/burst/$tag-$i.h" -o /dev/null -w '%{http_code}' \
		    "https://$CS_HOST$EST_PATH/$label/simpleenroll") || true
		rid=$(get_header X-Request-ID "$T/burst/$tag-$i.h" 2>/dev/null)
		echo "$tag-$i ${st:-000} ${rid:--}" >>"$T/burst/$tag"
	done
}

t_abuse_kill9_during_burst() {
	local c port i n200=0 n202=0 n000=0 name st rid
	local -a pids
	cs_start --approval manual
	mkdir -p "$T/burst"
	# Four clients whose requests stay pending at the CA (records) and
	# four whose requests the local CA issues at once.
	for c in 0 1 2 3; do
		ab_burst_client cs 10 "p$c" &
		ab_burst_client default 10 "i$c" &
	done
	# Mid-burst: once some answers of both kinds are out, most of the
	# 80 requests are not.
	for ((i = 0; i < 200; i++)); do
		cat "$T/burst"/[pi]? >"$T/burst.now" 2>/dev/null
		(($(wc -l <"$T/burst.now") >= 8)) &&
		    grep -q ' 200 ' "$T/burst.now" &&
		    grep -q ' 202 ' "$T/burst.now" && break
		sleep 0.05
	done
	kill -KILL "$CS_PID"
	wait "$CS_PID" 2>/dev/null
	CS_PID=""
	mapfile -t pids < <(jobs -p | grep -v "^$CS_FAKE_PID\$")
	wait "${pids[@]}" 2>/dev/null
	cat "$T/burst"/[pi]? >"$T/burst.all"
	# Restart on the same port and configuration.
	port=${CS_HOST##*:}
	(cd "$T" && exec "$ESTRAD" -c "$CS_CONF" \
	    >"$T/estrad2.stdout" 2>"$T/estrad2.stderr" </dev/null) &
	CS_PID=$!
	for ((i = 0; i < 100; i++)); do
		curl -s -o /dev/null --max-time 1 --cacert "$CERTS/tls-ca.pem" \
		    "https://127.0.0.1:$port$EST_PATH/cacerts" && break
		sleep 0.1
	done
	# Every record in the store is whole JSON with the fields the
	# strict reader needs; temporary files are no records.
	python3 - "$WORK/var/pending" >"$T/records.out" 2>&1 <<'PYEOF' ||
import json, os, sys
d = sys.argv[1]
bad = []
n = 0
for name in os.listdir(d):
    if not name.endswith(".json"):
        continue
    n += 1
    try:
        r = json.load(open(os.path.join(d, name)))
        if not isinstance(r, dict) or "key" not in r or "state" not in r:
            bad.append(name)
    except ValueError:
        bad.append(name)
print("records", n, "bad", bad)
sys.exit(1 if bad else 0)
PYEOF
	    fail "a pending record is not whole after kill -9" "$T/records.out"
	# Every answer a client received has a complete audit line.
	while read -r name st rid; do
		case $st in
		200) n200=$((n200 + 1)) ;;
		202) n202=$((n202 + 1)) ;;
		*) n000=$((n000 + 1)); continue ;;
		esac
		python3 - "$T/logs/audit.log" "$rid" "$st" <<'PYEOF' ||
import json, sys
want = {"200": "issued", "202": "pending"}[sys.argv[3]]
for line in open(sys.argv[1], errors="replace"):
    if sys.argv[2] not in line:
        continue
    r = json.loads(line)
    if r.get("rid") == sys.argv[2] and r.get("event") == want:
        sys.exit(0)
sys.exit(1)
PYEOF
		    fail "$name got $st (rid $rid) but the audit log has no" \
		    "complete record of it" "$T/burst.all"
		# A request that got 202 is found again after the restart.
		if [[ $st == 202 ]]; then
			http_req POST "https://$CS_HOST$EST_PATH/cs/simpleenroll" \
			    -H 'Content-Type: application/pkcs10' \
			    --data-binary "@$T/burst/$name.b64" -u "$CRED"
			assert_status 202
			cs_log_has "$RID" "first_rid: $rid"
		fi
	done <"$T/burst.all"
	echo "answered 200: $n200, 202: $n202, cut by kill -9: $n000;" \
	    "$(cat "$T/records.out")" >"$T/figures"
	((n200 > 0 && n202 > 0)) ||
	    fail "the burst had no issued or no pending answer" "$T/burst.all"
	((n000 > 0)) || fail "kill -9 came after the burst" "$T/burst.all"
	((n200 + n202 < 80)) || fail "kill -9 came after the burst" \
	    "$T/burst.all"
	# The audit log's last line is whole too (no torn write).
	tail -n1 "$T/logs/audit.log" | python3 -c 'import json, sys
json.loads(sys.stdin.read())' || fail "the audit log ends in a torn line" \
	    "$T/logs/audit.log"
	cs_stop_and_check
}

# --- authentication bypass matrix ----------------------------------------------

# ab_matrix_fixtures DIR: the bad credentials of the matrix in DIR: a
# client certificate of a CA no store knows (foreign), an expired one, one
# whose EKU is serverAuth only (noclient); the RA certificate comes from
# t_auth.sh's fixtures.
ab_matrix_fixtures() {
	local d=$1
	auth_ca_init "$d/ca"
	cat >>"$d/ca/ca.cnf" <<'CNF'
[ srvonly ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
CNF
	auth_issue "$d/ca" expired expired-client client \
	    "$(auth_date '-30 days')" "$(auth_date '-1 day')" &&
	    auth_issue "$d/ca" noclient noclient-client srvonly \
		"$(auth_date '-1 day')" "$(auth_date '+30 days')" ||
	    fail "cannot issue the matrix certificates" "$d/ca/openssl.log"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/rogue-ca.key" -subj '/CN=Rogue CA' -days 30 \
	    -addext basicConstraints=critical,CA:TRUE \
	    -out "$d/rogue-ca.pem" >"$d/rogue.log" 2>&1 &&
	    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -keyout "$d/foreign.key" -subj /CN=demo-client \
		-out "$d/foreign.csr" >>"$d/rogue.log" 2>&1 &&
	    openssl x509 -req -in "$d/foreign.csr" -CA "$d/rogue-ca.pem" \
		-CAkey "$d/rogue-ca.key" -CAcreateserial -days 30 \
		-extfile <(printf 'extendedKeyUsage=clientAuth\n') \
		-out "$d/foreign.pem" >>"$d/rogue.log" 2>&1 ||
	    fail "cannot make the foreign certificate" "$d/rogue.log"
}

t_abuse_auth_matrix() {
	local d=$T/fix fix=$WORK/authfix/ca label op cred want got
	local -a args
	# t-nora: an identity rule (cn_equals cert_cn) and no RA clients.
	ab_start 'import copy
l = copy.deepcopy(cfg["labels"]["t-ra"])
del l["ra_clients"]
cfg["labels"]["t-nora"] = l'
	HOSTPORT=$AB_HOST
	ab_matrix_fixtures "$d"
	# Expected answers: label:op:credential -> status.  No or bad Basic
	# credentials: 401.  A certificate that no store vouches for, that
	# has expired or that is not for clientAuth: 403, except that the
	# default label, which also takes Basic, asks for credentials with a
	# 401 on simpleenroll.  The RA certificate is an ordinary client
	# certificate where RAs are off: refused where the label ties the
	# subject to the identity (t-nora; t-strict also wants Basic) or on
	# reenroll (the subject is not its own), issued as an ordinary client
	# elsewhere (the audit record then has no "ra":true); on t-ra, the RA
	# label, it enrolls and reenrolls for others.
	declare -A expect=()
	for label in default devices phones t-strict t-ra t-eku t-nora; do
		for op in simpleenroll simplereenroll; do
			for cred in none wrongpw unknown; do
				expect[$label:$op:$cred]=401
			done
			for cred in foreign expired noclient; do
				expect[$label:$op:$cred]=403
			done
			expect[$label:$op:ra]=403
		done
		expect[$label:simpleenroll:ra]=200
	done
	for cred in foreign expired noclient; do
		expect[default:simpleenroll:$cred]=401
	done
	expect[t-nora:simpleenroll:ra]=403
	expect[t-strict:simpleenroll:ra]=401
	expect[t-strict:simplereenroll:ra]=401
	expect[t-ra:simplereenroll:ra]=200
	: >"$T/matrix"
	for label in default devices phones t-strict t-ra t-eku t-nora; do
		for op in simpleenroll simplereenroll; do
			for cred in none wrongpw unknown foreign expired \
			    noclient ra; do
				args=(--subject /CN=SEP0011223344AA)
				case $cred in
				wrongpw) args+=(--basic "estuser:wrong-$RANDOM") ;;
				unknown) args+=(--basic "nobody-$RANDOM:x") ;;
				foreign) args+=(--cert "$d/foreign.pem"
				    --key "$d/foreign.key") ;;
				expired) args+=(--cert "$d/ca/expired.pem"
				    --key "$d/ca/expired.key") ;;
				noclient) args+=(--cert "$d/ca/noclient.pem"
				    --key "$d/ca/noclient.key") ;;
				ra) args+=(--cert "$fix/ra.pem"
				    --key "$fix/ra.key") ;;
				esac
				est_req "$EST_PATH/$label/$op" "${args[@]}"
				want=${expect[$label:$op:$cred]}
				got=$STATUS
				echo "$label $op $cred $got rid=$RID" >>"$T/matrix"
				if [[ $got != "$want" ]]; then
					echo "$label $op $cred: expected $want," \
					    "got $got: $(head -c 200 "$T/body")" \
					    >>"$T/mismatch"
				elif [[ $got == 200 ]]; then
					auth_audit_has '"event":"issued"'
					[[ $label == t-ra ]] ||
					    ! grep -F -- "$RID" "$LOGS/audit.log" |
					    grep -qF '"ra":true' ||
					    fail "$label: the RA certificate was" \
					    "taken as an RA" "$LOGS/audit.log"
				else
					assert_error "$got"
				fi
			done
		done
	done
	awk '{ print $4 }' "$T/matrix" | sort | uniq -c >"$T/figures"
	[[ ! -s $T/mismatch ]] ||
	    fail "$(wc -l <"$T/mismatch") cells of the matrix differ" \
	    "$T/mismatch"
	ab_cleanup
	ab_sanitizer_check
}

# --- disk full, read-only state -----------------------------------------------

# ab_umount DIR: unmounts DIR if it is a mount point.
ab_umount() {
	mountpoint -q "$1" 2>/dev/null && umount "$1"
	return 0
}

t_abuse_disk_full_pending_503() {
	local mnt=$T/state aud=$T/audit i
	mkdir -p "$mnt" "$aud"
	# Tiny tmpfs of their own: root ignores file modes, so a full or
	# read-only file system is the honest way to refuse writes.  The
	# audit log gets one of its own, because a file system with a file
	# open for writing cannot be remounted read-only.
	if ! mount -t tmpfs -o size=256k,mode=0700 tmpfs "$mnt" \
	    2>"$T/mount.err"; then
		echo "skipped: cannot mount a tmpfs ($(cat "$T/mount.err"))" \
		    >"$T/figures"
		return 0
	fi
	trap 'ab_cleanup; ab_umount "$T/state"; ab_umount "$T/audit"' EXIT
	mount -t tmpfs -o size=256k,mode=0700 tmpfs "$aud" ||
	    fail "cannot mount the second tmpfs"
	mkdir -p "$mnt/pending"
	ab_start "cfg['pending']['dir'] = '$mnt/pending'
cfg['logs']['audit'] = '$aud/audit.log'"
	trap 'ab_cleanup; ab_umount "$T/state"; ab_umount "$T/audit"' EXIT
	HOSTPORT=$AB_HOST
	# Writable: the helper's WAIT is remembered and answered 202.
	est_req "$EST_PATH/t-h-wait/simpleenroll" --basic "$CRED" \
	    --subject /CN=room.example
	assert_status 202
	# Full: the 202 would be a promise estrad cannot keep.
	dd if=/dev/zero of="$mnt/filler" bs=4k >/dev/null 2>&1 || true
	dd if=/dev/zero of="$aud/filler" bs=4k >/dev/null 2>&1 || true
	est_req "$EST_PATH/t-h-wait/simpleenroll" --basic "$CRED" \
	    --subject /CN=full.example
	assert_error 503
	[[ -n $(get_header Retry-After) ]] || fail "503 without Retry-After" \
	    "$T/headers"
	assert_file_matches "$T/body" 'cannot be recorded'
	log_has_rid "$RID" 'No space left on device' error >/dev/null ||
	    fail "the error line does not name ENOSPC" "$T/.log_tail"
	# The audit log sits there too: a certificate is withheld when its
	# record cannot be written, and no torn line is left.
	# Records fill the last page of the file first: enroll until one
	# does not fit, and every certificate sent before has its record.
	for ((i = 0; i < 12; i++)); do
		est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
		    --subject "/CN=noaudit$i.example"
		[[ $STATUS == 200 ]] || break
		grep -qF "\"rid\":\"$RID\"" "$aud/audit.log" ||
		    fail "certificate $i sent without an audit record" \
		    "$aud/audit.log"
	done
	assert_status 500
	assert_file_matches "$T/body" 'audit log unwritable'
	assert_file_matches "$T/logs/error.log" \
	    '\[crit\].*cannot write audit log .*No space left on device'
	python3 -c 'import json, sys
for line in open(sys.argv[1]):
    json.loads(line)' "$aud/audit.log" ||
	    fail "the audit log has a torn line" "$aud/audit.log"
	# Read-only: the same.
	rm -f "$mnt/filler"
	mount -o remount,ro "$mnt" ||
	    fail "cannot remount the state directory read-only"
	est_req "$EST_PATH/t-h-wait/simpleenroll" --basic "$CRED" \
	    --subject /CN=ro.example
	assert_error 503
	log_has_rid "$RID" 'Read-only file system' error >/dev/null ||
	    fail "the error line does not name EROFS" "$T/.log_tail"
	# Writable again: 202 again, and no half-written record is left.
	mount -o remount,rw "$mnt"
	rm -f "$aud/filler"
	est_req "$EST_PATH/t-h-wait/simpleenroll" --basic "$CRED" \
	    --subject /CN=back.example
	assert_status 202
	assert_eq 2 "$(find "$mnt/pending" -name '*.json' | wc -l)" \
	    "pending records"
	assert_eq 0 "$(find "$mnt/pending" -name '*.tmp' | wc -l)" \
	    "temporary files left behind"
	ab_cleanup
	ab_umount "$mnt"
	ab_umount "$aud"
	ab_sanitizer_check
}
