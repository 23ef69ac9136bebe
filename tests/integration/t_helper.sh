# shellcheck shell=bash
# t_helper.sh: the certmonger CA-helper backend (issue 7) through the real
# daemon.  Sourced by run.sh; every t_helper_* function is one test.
#
# helper_config (called by run.sh's write_config) adds one label per helper
# behaviour: t-cm-local runs Debian's certmonger local-submit (a real CA
# helper written by others) with a private CERTMONGER_LOCAL_CA_DIR, the
# t-h-* labels run tests/fakes/helpers/fake-submit.sh, whose first
# argument picks the answer (every exit status, a crash, a hang, a huge
# output, the 5 -> poll -> 0 path).  The fake signs with the dev issuing
# CA, so its certificates pass assert_issued.

HELPER_FAKE=$ROOT/tests/fakes/helpers/fake-submit.sh
HELPER_LOCAL_SUBMIT=/usr/lib/certmonger/local-submit

# helper_config FILE: adds the helper labels to the configuration FILE and
# makes their directories (once: write_config may run several times).
helper_config() {
	local cfg=$1 fix=$WORK/helperfix
	if [[ ! -e $fix/.done ]]; then
		mkdir -p "$fix/state" && mkdir -m 700 "$fix/local-ca" ||
		    return 1
		touch "$fix/.done"
	fi
	python3 - "$cfg" "$fix" "$HELPER_FAKE" "$HELPER_LOCAL_SUBMIT" \
	    "$CERTS" <<'PYEOF'
import json, sys
path, fix, fake, local_submit, certs = sys.argv[1:6]
cfg = json.load(open(path))
L = cfg["labels"]

def label(ca, **kw):
    l = {"ca": ca, "csrattrs": [], "retry_after": 30}
    l.update(kw)
    return l

def fake_ca(mode, **kw):
    ca = {"backend": "helper", "command": [fake, mode],
          "env": {"FAKE_STATE": fix + "/state",
                  "FAKE_CA_CERT": certs + "/issuing-ca.pem",
                  "FAKE_CA_KEY": certs + "/issuing-ca.key"},
          "timeout": 10}
    ca.update(kw)
    return ca

L["t-cm-local"] = label({
    "backend": "helper", "command": [local_submit],
    "env": {"CERTMONGER_LOCAL_CA_DIR": fix + "/local-ca"},
    "timeout": 30})
for mode in ("issue", "reject", "unconfigured", "unsupported", "exit7",
             "crash", "huge", "delay"):
    L["t-h-" + mode] = label(fake_ca(mode))
L["t-h-env"] = label(fake_ca("env", profile="estProfile", nickname="TestCA"))
L["t-h-wait"] = label(fake_ca("wait", retry_after=45))
L["t-h-unreachable"] = label(fake_ca("unreachable", retry_after=17))
L["t-h-hang"] = label(fake_ca("hang", timeout=1), ca_wait=10)
L["t-h-orphan"] = label(fake_ca("orphan"))
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
PYEOF
}

# --- helpers ------------------------------------------------------------------

# helper_log_line RID EXIT OPERATION CODE: the ca.helper error-log line of
# the request names the helper, the operation, how it ended, the time
# taken and the answer CODE.
helper_log_line() {
	local rid=$1 how=$2 op=$3 code=$4 re
	re="ca\\.helper: .*helper: $HELPER_FAKE, operation: $op, "
	re+="exit: $how, ms: [0-9]+.*, answer: $code"
	log_has_rid "$rid" "$re" error >/dev/null ||
	    fail "no ca.helper line with operation $op, exit $how, answer $code" \
	    "$T/.log_tail"
}

# helper_refused LABEL CODE EXIT CAUSE-ERE [EVENT]: enrolls on LABEL and
# expects an estrad error answer CODE whose text/plain body matches
# CAUSE-ERE, the one ca.helper line for exit EXIT (fl_one_error_line or,
# for a refusal, fl_one_refusal_line of t_faults.sh), and an audit record
# with EVENT (default failed) and the cause.
helper_refused() {
	local label=$1 code=$2 how=$3 re=$4 event=${5:-failed} are
	mk_csr req "/CN=$label.example" ec
	post_csr "$EST_PATH/$label/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_error "$code"
	assert_file_matches "$T/body" "$re" "error body"
	helper_log_line "$RID" "$how" SUBMIT "$code"
	# That line is the only one: the backend adds none of its own.
	if ((code >= 500)); then
		fl_one_error_line "$RID"
	else
		fl_one_refusal_line "$RID"
	fi
	# In the JSON record the quotes of the cause are escaped.
	are=${re//\"/\\\\\"}
	log_has_rid "$RID" \
	    "\"event\":\"$event\".*\"reason\":\"([^\"\\\\]|\\\\.)*$are" \
	    audit >/dev/null ||
	    fail "no $event audit record with rid=$RID matching /$re/" \
	    "$T/.log_tail"
	log_has_rid "$RID" '"backend":"helper"' audit >/dev/null ||
	    fail "audit record of rid=$RID lacks backend helper" "$T/.log_tail"
}

# --- certmonger's own local-submit -----------------------------------------

t_helper_local_submit_enroll_verifies_against_cacerts() {
	[[ -x $HELPER_LOCAL_SUBMIT ]] ||
	    fail "$HELPER_LOCAL_SUBMIT missing: install certmonger" \
	    "(scripts/install-deps.sh)"
	mk_csr req "/CN=cm-local.example" rsa:2048 \
	    -addext "subjectAltName=DNS:cm-local.example"
	post_csr "$EST_PATH/t-cm-local/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_status 200
	assert_header Content-Type \
	    'application/pkcs7-mime; smime-type=certs-only'
	decode_pkcs7 "$T/leaf.pem"
	assert_eq 1 "$NCERTS" "certificates in the enroll answer" \
	    "$T/leaf.pem.names"
	local s1 s2
	s1=$(openssl req -in "$T/req.pem" -noout -pubkey)
	s2=$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)
	assert_eq "$s1" "$s2" "issued public key"
	s2=$(openssl x509 -in "$T/leaf.pem" -noout -subject -nameopt RFC2253)
	assert_eq "subject=CN=cm-local.example" "$s2" "issued subject"
	assert_eq "DNS:cm-local.example" "$(cert_san "$T/leaf.pem")" "SAN"
	openssl x509 -in "$T/leaf.pem" -noout -issuer | grep -q \
	    'Local Signing Authority' ||
	    fail "not issued by certmonger's local CA" "$T/leaf.pem.names"
	log_has_rid "$RID" '"event":"issued".*"backend":"helper"' audit \
	    >/dev/null || fail "no issued audit record" "$T/.log_tail"
	# The roots come from FETCH-ROOTS, and the certificate chains to them.
	http_req GET "$EST_PATH/t-cm-local/cacerts"
	assert_status 200
	assert_header Content-Type application/pkcs7-mime
	decode_pkcs7 "$T/cacerts.pem"
	((NCERTS >= 1)) || fail "cacerts holds no certificate" "$T/body"
	grep -q 'subject=.*Local Signing Authority' "$T/cacerts.pem.names" ||
	    fail "cacerts lacks the Local Signing Authority" \
	    "$T/cacerts.pem.names"
	openssl verify -CAfile "$T/cacerts.pem" "$T/leaf.pem" \
	    >"$T/verify.out" 2>&1 ||
	    fail "the certificate does not verify against cacerts" \
	    "$T/verify.out"
	# The same local CA issued it: its state directory is ours.
	[[ -s $WORK/helperfix/local-ca/creds ]] ||
	    fail "local-submit did not use CERTMONGER_LOCAL_CA_DIR"
}

t_helper_local_submit_two_serials() {
	# Two requests in a row: local-submit keeps its serial in the state
	# directory, so each certificate gets its own.
	mk_csr a "/CN=cm-local-a.example" ec
	post_csr "$EST_PATH/t-cm-local/simpleenroll" "$T/a.b64" -u "$CRED"
	assert_status 200
	decode_pkcs7 "$T/a.pem"
	mk_csr b "/CN=cm-local-b.example" ec
	post_csr "$EST_PATH/t-cm-local/simpleenroll" "$T/b.b64" -u "$CRED"
	assert_status 200
	decode_pkcs7 "$T/b.pem"
	[[ $(openssl x509 -in "$T/a.pem" -noout -serial) != \
	    "$(openssl x509 -in "$T/b.pem" -noout -serial)" ]] ||
	    fail "local-submit issued the same serial twice"
}

# --- the scripted helper -----------------------------------------------------

t_helper_exit0_issued() {
	mk_csr req "/CN=helper-issue.example" ec \
	    -addext "subjectAltName=DNS:helper-issue.example"
	post_csr "$EST_PATH/t-h-issue/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	log_has_rid "$RID" '"event":"issued".*"backend":"helper"' audit \
	    >/dev/null || fail "no issued audit record" "$T/.log_tail"
	local re
	re="rid=$RID \"POST $EST_PATH/t-h-issue/simpleenroll HTTP/1\\.1\" 200 "
	re+='.*backend=helper outcome=ISSUED'
	log_has_rid "$RID" "$re" access >/dev/null ||
	    fail "no access-log line with backend=helper" "$T/.log_tail"
}

t_helper_environment_explicit() {
	mk_csr req "/CN=helper-env.example" ec \
	    -addext "subjectAltName=DNS:helper-env.example,IP:192.0.2.9"
	post_csr "$EST_PATH/t-h-env/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	local env=$WORK/helperfix/state/env.out
	[[ -s $env ]] || fail "the env helper wrote no env.out"
	cp "$env" "$T/env.out"
	assert_file_has "$T/env.out" "CERTMONGER_OPERATION=SUBMIT"
	assert_file_has "$T/env.out" "CERTMONGER_CA_PROFILE=estProfile"
	assert_file_has "$T/env.out" "CERTMONGER_CA_NICKNAME=TestCA"
	assert_file_has "$T/env.out" \
	    "CERTMONGER_CSR=-----BEGIN CERTIFICATE REQUEST-----"
	assert_file_has "$T/env.out" "CERTMONGER_REQ_SUBJECT=CN=helper-env.example"
	assert_file_has "$T/env.out" "CERTMONGER_REQ_HOSTNAME=helper-env.example"
	assert_file_has "$T/env.out" "CERTMONGER_REQ_IP_ADDRESS=192.0.2.9"
	assert_file_has "$T/env.out" "PATH=/usr/bin:/bin:/usr/sbin:/sbin"
	# Nothing of estrad's own environment (HOME, USER, the test runner's
	# variables) reaches the helper.
	local v
	for v in HOME USER LOGNAME TEST_TIMEOUT ESTRAD KEEP_WORK SSH_AUTH_SOCK; do
		! grep -q "^$v=" "$T/env.out" ||
		    fail "the helper inherited $v" "$T/env.out"
	done
}

t_helper_exit1_wait_is_202() {
	mk_csr req "/CN=helper-wait.example" ec
	post_csr "$EST_PATH/t-h-wait/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_status 202
	assert_header Retry-After 45
	log_has_rid "$RID" '"event":"pending".*"backend":"helper"' audit \
	    >/dev/null || fail "no pending audit record" "$T/.log_tail"
	log_has_rid "$RID" 'ca\.helper: enroll pending: helper exit 1 WAIT' \
	    error >/dev/null || fail "no ca.helper pending line" "$T/.log_tail"
}

t_helper_exit5_delay_202_then_poll_200() {
	mk_csr req "/CN=helper-delay.example" ec \
	    -addext "subjectAltName=DNS:helper-delay.example"
	post_csr "$EST_PATH/t-h-delay/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_status 202
	assert_header Retry-After 2
	local rid1=$RID
	log_has_rid "$rid1" \
	    'ca\.helper: enroll pending: helper exit 5 WAIT_WITH_DELAY, retry after 2 s' \
	    error >/dev/null || fail "no exit 5 line" "$T/.log_tail"
	log_has_rid "$rid1" '"event":"pending"' audit >/dev/null ||
	    fail "no pending audit record" "$T/.log_tail"
	ls "$WORK"/var/pending/* >/dev/null 2>&1 ||
	    fail "no pending record in var/pending"
	ls "$WORK"/helperfix/state/pending-req-*.csr >/dev/null 2>&1 ||
	    fail "the fake CA holds no pending request"
	sleep 2
	# The retry with the same CSR polls the helper with the cookie.
	post_csr "$EST_PATH/t-h-delay/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	log_has_rid "$RID" '"event":"issued".*"backend":"helper"' audit \
	    >/dev/null || fail "no issued audit record for the retry" \
	    "$T/.log_tail"
	! ls "$WORK"/helperfix/state/pending-req-*.csr >/dev/null 2>&1 ||
	    fail "the retry did not POLL the helper (request still held)"
}

t_helper_exit2_rejected_403() {
	helper_refused t-h-reject 403 2 \
	    'enroll refused by CA: helper exit 2 REJECTED "request denied by fake policy"' \
	    rejected
}

t_helper_exit3_unreachable_503() {
	helper_refused t-h-unreachable 503 3 \
	    'helper exit 3 UNREACHABLE "Server at https://ca.invalid/ca failed request'
	assert_header Retry-After 17
	# stderr is logged for the operator, never sent to the client.
	log_has_rid "$RID" \
	    'stderr: "fake-submit: connect to ca.invalid: no route"' error \
	    >/dev/null || fail "the helper's stderr is not logged" \
	    "$T/.log_tail"
	! grep -q 'no route' "$T/body" ||
	    fail "the client got the helper's stderr" "$T/body"
}

t_helper_exit4_unconfigured_500() {
	helper_refused t-h-unconfigured 500 4 \
	    'helper exit 4 UNCONFIGURED "Unable to read signing request\."'
}

t_helper_exit6_unsupported_501() {
	helper_refused t-h-unsupported 501 6 \
	    'enroll not supported: helper exit 6 OPERATION_NOT_SUPPORTED'
}

t_helper_exit7_undefined_500() {
	helper_refused t-h-exit7 500 7 \
	    'helper exit 7 UNDEFINED "something undefined happened"'
}

t_helper_crash_500() {
	helper_refused t-h-crash 500 SIGSEGV 'helper killed by SIGSEGV'
}

t_helper_timeout_500() {
	local start=$SECONDS
	helper_refused t-h-hang 500 'killed at the timeout' \
	    'helper timed out after 1 s, killed'
	((SECONDS - start < 8)) ||
	    fail "the timeout took $((SECONDS - start)) s"
}

t_helper_huge_output_500() {
	helper_refused t-h-huge 500 0 \
	    'helper exit 0 ISSUED but its output exceeds max_output \(65536 bytes\)'
}

t_helper_config_unknown_key_named() {
	config_variant helpertypo \
	    'c["labels"]["t-h-issue"]["ca"]["comand"] = ["x"]'
	if run_bounded 20 "$T/t.out" "$ESTRAD" -t \
	    -c "$WORK/conf/helpertypo.json"; then
		fail "estrad -t accepted an unknown helper key" "$T/t.out"
	fi
	assert_file_matches "$T/t.out" \
	    'helpertypo\.json:[0-9]+:[0-9]+: labels\.t-h-issue\.ca\.comand: unknown key "comand"'
	config_variant helperenv \
	    'c["labels"]["t-h-issue"]["ca"]["env"]["CERTMONGER_CSR"] = "x"'
	if run_bounded 20 "$T/t.out" "$ESTRAD" -t \
	    -c "$WORK/conf/helperenv.json"; then
		fail "estrad -t accepted CERTMONGER_CSR in env" "$T/t.out"
	fi
	assert_file_matches "$T/t.out" \
	    'labels\.t-h-issue\.ca\.env\.CERTMONGER_CSR: CERTMONGER_CSR is set by estrad'
}

# --- processes: how many, and none left behind ------------------------------

t_helper_background_child_killed_after_exit() {
	# A helper that leaves a process running when it exits: estrad ran it
	# for one call, so its process group goes with it.
	rm -f "$WORK/helperfix/state/orphan.pid"
	mk_csr req "/CN=helper-orphan.example" ec
	post_csr "$EST_PATH/t-h-orphan/simpleenroll" "$T/req.b64" -u "$CRED"
	assert_issued req
	local pid i
	pid=$(cat "$WORK/helperfix/state/orphan.pid" 2>/dev/null)
	[[ $pid =~ ^[0-9]+$ ]] || fail "the orphan helper wrote no pid"
	for ((i = 0; i < 30; i++)); do
		hl_pid_alive "$pid" || return 0
		sleep 0.1
	done
	fail "the helper's background sleep (pid $pid) outlived the call"
}

# hl_pid_alive PID: PID runs (a zombie counts as gone: its parent, not
# estrad, has yet to reap it).
hl_pid_alive() {
	local st
	st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)
	[[ -n $st && $st != Z && $st != X ]]
}

# hl_start MODE [CA-JSON-MEMBERS]: an estrad of its own (t_reload.sh's
# rl_start) whose label t-h-x runs the fake helper in MODE with
# FAKE_STATE=$T/state, plus CA-JSON-MEMBERS (Python dict items, e.g.
# '"max_processes": 1') in its ca object.  The shared configuration's
# helper labels are left out, so no other helper runs.
hl_start() {
	mkdir -p "$T/state"
	rl_start "$(printf '%s\n' \
	    'for k in [k for k in cfg["labels"] if k.startswith("t-h-") or k == "t-cm-local"]:' \
	    '    del cfg["labels"][k]' \
	    "cfg['labels']['t-h-x'] = {'retry_after': 30, 'csrattrs': [], 'ca': {" \
	    "    'backend': 'helper', 'command': ['$HELPER_FAKE', '$1']," \
	    "    'env': {'FAKE_STATE': '$T/state', 'FAKE_SLEEP': '${FAKE_SLEEP:-3}'," \
	    "            'FAKE_CA_CERT': '$CERTS/issuing-ca.pem'," \
	    "            'FAKE_CA_KEY': '$CERTS/issuing-ca.key'}," \
	    "    'timeout': 30, ${2:-}}}")"
}

# hl_fire N PATH [CURL-ARGS...]: N requests to this test's estrad at once,
# each with its own curl; waits for all.  Request i leaves $T/f.i.code,
# $T/f.i.headers and $T/f.i.body.
hl_fire() {
	local n=$1 path=$2 i
	local -a pids=()
	shift 2
	for ((i = 0; i < n; i++)); do
		curl --silent --http1.1 --max-time 60 \
		    --cacert "$CERTS/tls-ca.pem" \
		    --dump-header "$T/f.$i.headers" --output "$T/f.$i.body" \
		    --write-out '%{http_code}' "$@" \
		    "https://$RL_HOST$path" >"$T/f.$i.code" 2>/dev/null &
		pids+=($!)
	done
	# Not a bare wait: estrad is a child of this shell too.
	wait "${pids[@]}"
}

# hl_count FILE: lines of FILE, 0 when it does not exist.
hl_count() {
	if [[ -f $1 ]]; then
		wc -l <"$1" | tr -d ' '
	else
		echo 0
	fi
}

t_helper_cacerts_flood_one_fetch_roots() {
	# Anonymous cacerts on a helper label whose roots are not cached yet:
	# every request used to start its own FETCH-ROOTS.  The fetch started
	# with the workers (4 s) is still running when the flood comes, and
	# every request waits for that one.
	FAKE_SLEEP=4 hl_start slow-roots
	[[ ! -e $T/state/roots.done ]] ||
	    fail "test setup: the first FETCH-ROOTS ended before the flood"
	hl_fire 40 "$EST_PATH/t-h-x/cacerts"
	local i n=0
	for ((i = 0; i < 40; i++)); do
		[[ $(cat "$T/f.$i.code") == 200 ]] || {
			n=$((n + 1))
			continue
		}
		cp "$T/f.$i.body" "$T/body"
		decode_pkcs7 "$T/f.$i.pem"
		grep -q 'subject=.*CN *= *estrad dev issuing CA' \
		    "$T/f.$i.pem.names" || n=$((n + 1))
	done
	((n == 0)) || fail "$n of 40 cacerts requests got no CA chain" \
	    "$T/f.0.headers" "$T/f.0.body"
	assert_eq 1 "$(hl_count "$T/state/roots.count")" \
	    "FETCH-ROOTS runs for 40 concurrent cacerts" "$T/logs/error.log"
}

t_helper_cacerts_flood_failure_remembered() {
	# The helper's FETCH-ROOTS fails (after 1 s): waiting requests share
	# the one failed run, and later ones get the remembered failure
	# instead of a run each.
	hl_start slow-roots-fail
	hl_fire 30 "$EST_PATH/t-h-x/cacerts"
	hl_fire 30 "$EST_PATH/t-h-x/cacerts"
	local i code n
	for ((i = 0; i < 30; i++)); do
		code=$(cat "$T/f.$i.code")
		[[ $code == 503 ]] || fail "cacerts answered $code, not 503" \
		    "$T/f.$i.headers" "$T/f.$i.body"
		[[ -n $(get_header Retry-After "$T/f.$i.headers") ]] ||
		    fail "a 503 without Retry-After" "$T/f.$i.headers"
	done
	# The run at start and the background's retries (after 5 s, then
	# 10 s), never one per request.
	n=$(hl_count "$T/state/roots.count")
	((n >= 1 && n <= 5)) ||
	    fail "FETCH-ROOTS ran $n times for 60 cacerts requests" \
	    "$T/logs/error.log"
}

t_helper_queue_full_503() {
	# At most max_processes helpers run; max_queued calls wait; the rest
	# get 503 with Retry-After and one error line.
	FAKE_SLEEP=3 hl_start slow-wait '"max_processes": 1, "max_queued": 1'
	mk_csr req "/CN=helper-busy.example" ec
	hl_fire 5 "$EST_PATH/t-h-x/simpleenroll" -u "$CRED" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/req.b64"
	local i code n202=0 n503=0 rid
	for ((i = 0; i < 5; i++)); do
		code=$(cat "$T/f.$i.code")
		case $code in
		202) n202=$((n202 + 1)) ;;
		503)
			n503=$((n503 + 1))
			[[ $(get_header Retry-After "$T/f.$i.headers") == 30 ]] ||
			    fail "503 without Retry-After: 30" "$T/f.$i.headers"
			[[ $(get_header Content-Type "$T/f.$i.headers") == \
			    text/plain ]] || fail "503 not text/plain" \
			    "$T/f.$i.headers"
			grep -q 'helper busy: 1 running, 1 waiting' \
			    "$T/f.$i.body" || fail "503 body names no cause" \
			    "$T/f.$i.body"
			rid=$(get_header X-Request-ID "$T/f.$i.headers")
			fl_one_error_line "$rid"
			log_has_rid "$rid" 'max_processes' error >/dev/null ||
			    fail "the 503's line names no key to raise" \
			    "$T/.log_tail"
			;;
		*) fail "simpleenroll answered $code" "$T/f.$i.headers" \
		    "$T/f.$i.body" ;;
		esac
	done
	((n202 >= 2 && n503 >= 1)) ||
	    fail "$n202 answers 202 and $n503 answers 503 (want >= 2, >= 1)"
	[[ -s $T/state/concurrent ]] ||
	    fail "the helper noted no run" "$T/state/concurrent"
	! grep -qv '^1$' "$T/state/concurrent" ||
	    fail "more than one helper ran at once" "$T/state/concurrent"
}

t_helper_sigterm_kills_every_helper() {
	# Helpers still running (and the sleep each started) end with estrad,
	# on every worker, not only the one that fetches the roots.
	hl_start sleepy
	mk_csr req "/CN=helper-sleepy.example" ec
	local i pid left=""
	local -a pids=()
	for ((i = 0; i < 6; i++)); do
		curl --silent --http1.1 --max-time 60 -o /dev/null \
		    --cacert "$CERTS/tls-ca.pem" -u "$CRED" \
		    -H 'Content-Type: application/pkcs10' \
		    --data-binary "@$T/req.b64" \
		    "https://$RL_HOST$EST_PATH/t-h-x/simpleenroll" &
		pids+=($!)
	done
	# Six enrollments and the start-up FETCH-ROOTS: two pids each.
	for ((i = 0; i < 150; i++)); do
		(($(hl_count "$T/state/pids") >= 14)) && break
		sleep 0.1
	done
	(($(hl_count "$T/state/pids") >= 14)) ||
	    fail "test setup: $(hl_count "$T/state/pids") of 14 pids after 15 s"
	kill -TERM "$RL_PID"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$RL_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$RL_PID" 2>/dev/null &&
	    fail "estrad did not exit within 10 s of SIGTERM"
	wait "$RL_PID" 2>/dev/null
	RL_PID=""
	wait "${pids[@]}"
	for ((i = 0; i < 30; i++)); do
		left=""
		while read -r pid; do
			hl_pid_alive "$pid" && left+=" $pid"
		done <"$T/state/pids"
		[[ -z $left ]] && break
		sleep 0.1
	done
	[[ -z $left ]] || fail "processes left after estrad exited:$left" \
	    "$T/state/pids"
	# Not rl_sanitizer_check: the six requests cut off by the shutdown
	# are never freed (estrad exits with them), which LeakSanitizer
	# reports whatever the backend; any other report is a failure.
	if grep -qE 'ERROR: (Address|Thread)Sanitizer|runtime error:' \
	    "$T/estrad.stderr" 2>/dev/null; then
		fail "estrad's stderr has sanitizer reports" "$T/estrad.stderr"
	fi
}
