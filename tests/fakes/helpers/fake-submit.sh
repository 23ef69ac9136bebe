#!/bin/sh
# fake-submit.sh MODE: a scripted certmonger CA helper for estrad's tests
# (certmonger's CA-helper contract).  It reads CERTMONGER_OPERATION and the
# request variables like a real helper, and MODE picks its answer:
#
#   issue         SUBMIT/POLL: sign CERTMONGER_CSR, print the PEM (exit 0)
#   issue-p7      the same as a PEM PKCS#7 with the CA certificate
#   issue-der     the same as a DER certificate
#   wrong-key     print the CA certificate instead of one for the CSR
#   garbage       exit 0 with text that is no certificate
#   wait          exit 1 with cookie "fake-cookie-1"
#   wait-empty    exit 1 without a cookie
#   delay         SUBMIT: keep the CSR, exit 5 with delay 2 and a cookie;
#                 POLL with that cookie: sign the kept CSR (exit 0)
#   delay-only    exit 5 with a delay line and no cookie
#   delay-bad     exit 5 with a line 1 that is no number
#   reject        exit 2 "request denied by fake policy"
#   unreachable   exit 3 with a message on stdout and a line on stderr
#   unconfigured  exit 4 "Unable to read signing request."
#   unsupported   exit 6 for everything
#   exit7         exit 7 (undefined in the contract)
#   crash         killed by SIGSEGV
#   hang          never answers (a child sleep keeps running)
#   huge          exit 0 after 3 MB of output
#   env           write the environment to $FAKE_STATE/env.out, then issue
#   slow-roots    FETCH-ROOTS: add a line to $FAKE_STATE/roots.count, sleep
#                 FAKE_SLEEP seconds (default 3), answer, then touch
#                 $FAKE_STATE/roots.done; SUBMIT and POLL as issue
#   slow-roots-fail  FETCH-ROOTS: add a line to roots.count, sleep 1, exit 3
#   slow-wait     SUBMIT: note how many runs are under way at once in
#                 $FAKE_STATE/concurrent (one number a line), sleep
#                 FAKE_SLEEP seconds (default 2), exit 1 with a cookie
#   sleepy        every operation: write its pid and that of a child sleep
#                 to $FAKE_STATE/pids, then wait for the sleep (120 s)
#   orphan        SUBMIT: leave a sleep running in the background (its pid
#                 in $FAKE_STATE/orphan.pid), then issue and exit
#
# FETCH-ROOTS prints "Fake Helper CA" and the CA certificate for the modes
# that do not fail everything; IDENTIFY prints "Fake helper (estrad tests)".
#
# Environment (set in the label's "env"): FAKE_STATE, a writable directory;
# FAKE_CA_CERT and FAKE_CA_KEY, the CA that signs (default: one made in
# FAKE_STATE on first use); FAKE_SLEEP, seconds for the slow modes.
set -u
mode=${1:-issue}
op=${CERTMONGER_OPERATION:-SUBMIT}
state=${FAKE_STATE:?FAKE_STATE must name a writable directory}

ca_setup() {
	if [ -z "${FAKE_CA_CERT:-}" ]; then
		FAKE_CA_CERT=$state/ca.pem
		FAKE_CA_KEY=$state/ca.key
		if [ ! -f "$FAKE_CA_CERT" ]; then
			openssl req -x509 -newkey ec \
			    -pkeyopt ec_paramgen_curve:P-256 -nodes \
			    -keyout "$state/ca.key.$$" -out "$state/ca.pem.$$" \
			    -subj "/CN=Fake Helper CA" -days 30 \
			    -addext "basicConstraints=critical,CA:TRUE" \
			    >/dev/null 2>&1 || exit 3
			mv "$state/ca.key.$$" "$FAKE_CA_KEY"
			mv "$state/ca.pem.$$" "$FAKE_CA_CERT"
		fi
	fi
}

# sign CSR-FILE [FORM]: the certificate for CSR-FILE on stdout.
sign() {
	ca_setup
	cat >"$state/ext.$$" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth, serverAuth
EXT
	openssl x509 -req -in "$1" -CA "$FAKE_CA_CERT" -CAkey "$FAKE_CA_KEY" \
	    -set_serial "0x4$(openssl rand -hex 15)" -days 30 -sha256 \
	    -extfile "$state/ext.$$" -copy_extensions copy \
	    -out "$state/cert.$$" 2>"$state/sign.err.$$" || {
		echo "signing failed: $(head -n1 "$state/sign.err.$$")"
		rm -f "$state/ext.$$" "$state/sign.err.$$"
		exit 4
	}
	case ${2:-pem} in
	p7)
		openssl crl2pkcs7 -nocrl -certfile "$state/cert.$$" \
		    -certfile "$FAKE_CA_CERT"
		;;
	der) openssl x509 -in "$state/cert.$$" -outform DER ;;
	*) cat "$state/cert.$$" ;;
	esac
	rm -f "$state/ext.$$" "$state/sign.err.$$" "$state/cert.$$"
}

# sign_env [FORM]: signs CERTMONGER_CSR.
sign_env() {
	[ -n "${CERTMONGER_CSR:-}" ] || {
		echo "Unable to read signing request."
		exit 4
	}
	printf '%s\n' "$CERTMONGER_CSR" >"$state/csr.$$"
	sign "$state/csr.$$" "${1:-pem}"
	rm -f "$state/csr.$$"
}

# Modes that answer every operation the same way.
case $mode in
reject)
	echo "request denied by fake policy"
	exit 2
	;;
unreachable)
	echo "Server at https://ca.invalid/ca failed request, will retry: 4301 (RPC failed)."
	echo "fake-submit: connect to ca.invalid: no route" >&2
	exit 3
	;;
unconfigured)
	echo "Unable to read signing request."
	exit 4
	;;
unsupported) exit 6 ;;
exit7)
	echo "something undefined happened"
	exit 7
	;;
crash)
	echo "about to crash" >&2
	kill -SEGV $$
	exit 0
	;;
hang)
	echo $$ >"$state/hang.pid"
	sleep 60 &
	echo $! >"$state/sleep.pid"
	wait
	exit 0
	;;
huge)
	head -c 3000000 /dev/zero | tr '\0' 'A'
	exit 0
	;;
sleepy)
	echo $$ >>"$state/pids"
	sleep 120 &
	echo $! >>"$state/pids"
	wait
	exit 3
	;;
esac

case $op in
SUBMIT | POLL) ;;
FETCH-ROOTS)
	case $mode in
	slow-roots)
		echo $$ >>"$state/roots.count"
		sleep "${FAKE_SLEEP:-3}"
		;;
	slow-roots-fail)
		echo $$ >>"$state/roots.count"
		sleep 1
		echo "fake-submit: the CA is down"
		exit 3
		;;
	esac
	ca_setup
	echo "Fake Helper CA"
	cat "$FAKE_CA_CERT"
	[ "$mode" != slow-roots ] || touch "$state/roots.done"
	exit 0
	;;
IDENTIFY)
	echo "Fake helper (estrad tests)"
	exit 0
	;;
*) exit 6 ;;
esac

case $mode in
issue | slow-roots | slow-roots-fail) sign_env ;;
slow-wait)
	# A file per run under way: the count seen after adding our own is
	# at least the number running together at that moment.
	touch "$state/run.$$"
	n=0
	for f in "$state"/run.*; do
		[ -e "$f" ] && n=$((n + 1))
	done
	echo "$n" >>"$state/concurrent"
	sleep "${FAKE_SLEEP:-2}"
	rm -f "$state/run.$$"
	echo "fake-cookie-slow"
	exit 1
	;;
orphan)
	sleep 120 >/dev/null 2>&1 &
	echo $! >"$state/orphan.pid"
	sign_env
	;;
issue-p7) sign_env p7 ;;
issue-der) sign_env der ;;
wrong-key)
	ca_setup
	cat "$FAKE_CA_CERT"
	;;
garbage) echo "certificate follows... not" ;;
wait)
	echo "fake-cookie-1"
	exit 1
	;;
wait-empty) exit 1 ;;
delay)
	if [ "$op" = POLL ]; then
		c=${CERTMONGER_CA_COOKIE:-}
		if [ -z "$c" ] || [ ! -f "$state/pending-$c.csr" ]; then
			echo "unknown cookie \"$c\""
			exit 2
		fi
		sign "$state/pending-$c.csr"
		rm -f "$state/pending-$c.csr"
		exit 0
	fi
	c=req-$(openssl rand -hex 8)
	printf '%s\n' "${CERTMONGER_CSR:?}" >"$state/pending-$c.csr"
	printf '2\n%s\n' "$c"
	exit 5
	;;
delay-only)
	echo 3
	exit 5
	;;
delay-bad)
	printf 'soon\nfake-cookie-2\n'
	exit 5
	;;
env)
	env >"$state/env.out"
	sign_env
	;;
*)
	echo "fake-submit: unknown mode $mode"
	exit 4
	;;
esac
exit 0
