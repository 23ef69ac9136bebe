# shellcheck shell=bash
# t_doctor.sh: estrad --doctor against each failure an operator meets at
# 3 a.m., each produced for real (sourced by run.sh): a name DNS does not
# know, a closed port, the certsrv fake (tests/fakes/fake_certsrv.py) behind
# a certificate the bundle does not vouch for, that names another host, or
# that is not valid yet, a wrong password, a template the CA does not
# offer, a missing helper; the Dogtag fake (tests/fakes/fake_dogtag.py)
# with a profile that exists but is disabled, and an agent certificate
# that has expired.  Each must name the cause and the remedy; a healthy
# setup prints only ok.  Also: the world-writable refusal and the
# privilege drop of the daemon itself, and make install into a DESTDIR.

DOC_FAKE_PID="" DOC_FAKE=""

# doc_cleanup: stops the fake (EXIT trap of a test).
doc_cleanup() {
	[[ -n $DOC_FAKE_PID ]] || return 0
	kill -TERM "$DOC_FAKE_PID" 2>/dev/null
	wait "$DOC_FAKE_PID" 2>/dev/null
	DOC_FAKE_PID=""
}

# doc_mkcert NAME SAN DAYS-FROM-NOW: $T/NAME.pem (leaf and TLS CA) and
# $T/NAME.key, a serverAuth certificate of the dev TLS CA for SAN
# (DNS:x or IP:x) whose validity starts DAYS-FROM-NOW days from now.
doc_mkcert() {
	python3 - "$CERTS" "$T/$1" "$2" "$3" <<'EOF' >"$T/mkcert.err" 2>&1 ||
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
certs, out, san, days = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ca_pem = open(certs + "/tls-ca.pem", "rb").read()
ca = x509.load_pem_x509_certificate(ca_pem)
ca_key = serialization.load_pem_private_key(
    open(certs + "/tls-ca.key", "rb").read(), None)
key = ec.generate_private_key(ec.SECP256R1())
kind, value = san.split(":", 1)
name = (x509.DNSName(value) if kind == "DNS"
        else x509.IPAddress(ipaddress.ip_address(value)))
start = datetime.datetime.now(datetime.timezone.utc) + \
    datetime.timedelta(days=days)
cert = (x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                    value)]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([name]), False)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256()))
with open(out + ".pem", "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
with open(out + ".key", "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
EOF
	    fail "cannot make the test certificate $1" "$T/mkcert.err"
	chmod 600 "$T/$1.key"
}

# doc_fake [CERT KEY [FAKE-ARGS...]]: starts the certsrv fake (default:
# the dev server certificate) and sets DOC_FAKE to its https://IP:PORT.
doc_fake() {
	local cert=${1:-$CERTS/server.pem} key=${2:-$CERTS/server.key} line i
	shift 2 2>/dev/null
	trap 'doc_cleanup' EXIT
	mkdir -p "$T/fake-state"
	# A stale "ready on" line of an earlier fake must not be read.
	rm -f "$T/fake.out"
	python3 "$ROOT/tests/fakes/fake_certsrv.py" --listen 127.0.0.1:0 \
	    --cert "$cert" --key "$key" --state-dir "$T/fake-state" \
	    --users 'certuser:certpass' --auth ntlm "$@" \
	    >"$T/fake.out" 2>"$T/fake.err" </dev/null &
	DOC_FAKE_PID=$!
	DOC_FAKE=$(fake_ready_url "$DOC_FAKE_PID" fake_certsrv) || exit 1
}

# doc_dogtag_fake: starts the Dogtag fake (the dev server certificate; TLS
# client certificates of the dev CAs accepted, CN=demo-client an agent)
# and sets DOC_FAKE to its https://IP:PORT.  Its default profiles include
# caServerCert (enabled) and caOff (disabled).
doc_dogtag_fake() {
	local line i
	trap 'doc_cleanup' EXIT
	mkdir -p "$T/dogtag-state"
	# A stale "ready on" line of an earlier fake must not be read.
	rm -f "$T/fake.out"
	python3 "$ROOT/tests/fakes/fake_dogtag.py" --listen 127.0.0.1:0 \
	    --cert "$CERTS/server.pem" --key "$CERTS/server.key" \
	    --client-ca "$CERTS/ca-chain.pem" --state-dir "$T/dogtag-state" \
	    >"$T/fake.out" 2>"$T/fake.err" </dev/null &
	DOC_FAKE_PID=$!
	DOC_FAKE=$(fake_ready_url "$DOC_FAKE_PID" fake_dogtag) || exit 1
	# The agent's key as an operator keeps it: readable by root only.
	cp "$CERTS/client.key" "$T/agent.key"
	chmod 600 "$T/agent.key"
}

# doc_expired_agent: $T/agent-old.pem and $T/agent-old.key, CN=demo-client
# (an agent of the fake) issued by the dev issuing CA, which the fake
# trusts for client certificates, but valid only in 2020: the fake's TLS
# layer refuses it as a real Dogtag does.
doc_expired_agent() {
	issue_expired_client_cert "$T/agent-ca" "$T/agent-old.key" \
	    "$T/agent-old.pem" "ec -pkeyopt ec_paramgen_curve:P-256"
}

# doc_dogtag URL [KEY=JSON-VALUE...]: the "ca" object of a dogtag label for
# URL (agent certificate client.pem, the dev bundle, profile caServerCert);
# a null VALUE removes KEY.
doc_dogtag() {
	python3 - "$CERTS" "$T" "$@" <<'EOF_PY'
import json, sys
certs, t, url = sys.argv[1:4]
ca = {"backend": "dogtag", "urls": [url], "ca_bundle": certs + "/tls-ca.pem",
      "agent_cert": certs + "/client.pem", "agent_key": t + "/agent.key",
      "profile": "caServerCert", "connect_timeout": 3, "timeout": 10}
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    ca[k] = json.loads(v)
print(json.dumps({k: v for k, v in ca.items() if v is not None}))
EOF_PY
}

# doc_json_has STATUS CHECK-ERE CAUSE-ERE REMEDY-ERE: the --json output in
# $T/doctor.out has a line with that status whose check, cause and remedy
# match the EREs (Python re.search).
doc_json_has() {
	python3 - "$T/doctor.out" "$@" <<'EOF_PY' 2>"$T/json.err" ||
import json, re, sys
lines = json.load(open(sys.argv[1]))
status, check, cause, remedy = sys.argv[2:6]
for l in lines:
    assert set(l) == {"status", "subject", "check", "cause", "remedy"}, l
if not any(l["status"] == status and re.search(check, l["check"])
           and re.search(cause, l["cause"]) and re.search(remedy, l["remedy"])
           for l in lines):
    sys.exit("no %s line: check /%s/, cause /%s/, remedy /%s/"
             % (status, check, cause, remedy))
EOF_PY
	    fail "--json output lacks the expected line" "$T/json.err" \
	    "$T/doctor.out"
}

# doc_config [LABEL CA-JSON]...: $T/estrad.json, the shipped configuration
# with absolute paths, only its local "default" label, user nobody, plus
# each LABEL whose "ca" object is CA-JSON (Basic, the CN bound to the
# user, no SANs).
doc_config() {
	printf 'certpass\n' >"$T/ca.pass"
	printf 'wrong-password\n' >"$T/bad.pass"
	chmod 600 "$T/ca.pass" "$T/bad.pass"
	python3 - "$ROOT/conf/estrad.json" "$T/estrad.json" "$CERTS" "$T" \
	    "$@" <<'EOF' || fail "cannot write the doctor configuration"
import json, sys
src, dst, certs, t = sys.argv[1:5]
extra = sys.argv[5:]
cfg = json.load(open(src))
def fix(v):
    return certs + v[len("../certs"):] if v.startswith("../certs") else v
for k in ("cert", "key", "explicit_ca", "implicit_ca"):
    if k in cfg["tls"]:
        cfg["tls"][k] = fix(cfg["tls"][k])
cfg["users"] = fix(cfg["users"])
cfg["logs"] = {"error": t + "/error.log", "level": "info"}
cfg["pending"] = {"dir": t + "/pending", "lifetime": 3600}
cfg["user"] = "nobody"
default = cfg["labels"]["default"]
for k in ("cert", "key", "chain"):
    default["ca"][k] = fix(default["ca"][k])
for k in ("explicit_ca", "implicit_ca"):
    if k in default.get("trust", {}):
        default["trust"][k] = fix(default["trust"][k])
cfg["labels"] = {"default": default}
for i in range(0, len(extra), 2):
    lab = {"auth": ["basic"], "csrattrs": [],
           "policy": {"cn_equals": "user", "san": {"max": 0}},
           "ca": json.loads(extra[i + 1])}
    cfg["labels"][extra[i]] = lab
json.dump(cfg, open(dst, "w"), indent=2)
EOF
	chmod 644 "$T/estrad.json"
}

# doc_certsrv URL [KEY=JSON-VALUE...]: the "ca" object of a certsrv label
# for URL (NTLM as certuser, the dev bundle, template WebServer).
doc_certsrv() {
	python3 - "$CERTS" "$T" "$@" <<'EOF'
import json, sys
certs, t, url = sys.argv[1:4]
ca = {"backend": "certsrv", "urls": [url], "user": "FAKE\\certuser",
      "password_file": t + "/ca.pass", "auth": "ntlm",
      "ca_bundle": certs + "/tls-ca.pem", "template": "WebServer",
      "connect_timeout": 3, "timeout": 10}
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    ca[k] = json.loads(v)
print(json.dumps(ca))
EOF
}

# doc_run [ARGS]: estrad --doctor [ARGS] -c $T/estrad.json into $T/doctor.out
# (stderr $T/doctor.err); DOC_RC its exit status.
doc_run() {
	timeout -k 5 150 "$ESTRAD" --doctor "$@" -c "$T/estrad.json" \
	    >"$T/doctor.out" 2>"$T/doctor.err"
	DOC_RC=$?
}

# doc_expect_fail ERE [REMEDY-ERE]: exit status 1 and a FAIL line matching
# ERE (and REMEDY-ERE), and no sanitizer report.
doc_expect_fail() {
	assert_eq 1 "$DOC_RC" "--doctor exit status" "$T/doctor.out" \
	    "$T/doctor.err"
	grep -E '^FAIL  ' "$T/doctor.out" | grep -E -- "$1" |
	    grep -qE -- "${2:-.}" ||
	    fail "no FAIL line matching /$1/ and /${2:-.}/" "$T/doctor.out"
	doc_no_sanitizer
}

doc_no_sanitizer() {
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
	    "$T/doctor.err"; then
		fail "sanitizer report from --doctor" "$T/doctor.err"
	fi
}

t_doctor_healthy_all_ok() {
	doc_fake
	doc_config phones "$(doc_certsrv "$DOC_FAKE/certsrv")"
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status" "$T/doctor.out" \
	    "$T/doctor.err"
	if grep -vE '^(ok    |doctor: )' "$T/doctor.out" >"$T/notok"; then
		fail "a healthy setup printed more than ok lines" "$T/notok"
	fi
	local re
	for re in 'server certificate .*: key match: ' \
	    'server certificate .*: chain: complete' \
	    'trust store .*ca-chain.pem.*: load: 2 anchors' \
	    'label default: local .*: CA key and certificate' \
	    "label phones: certsrv $DOC_FAKE/certsrv: DNS resolution of 127.0.0.1: ok" \
	    'label phones: certsrv .*: TCP connect to 127.0.0.1:[0-9]+: ok' \
	    'label phones: certsrv .*: TLS handshake \(CA bundle .*tls-ca.pem, host name 127.0.0.1\): ok' \
	    'label phones: certsrv .*: HTTP authentication \(auth ntlm, user FAKE.certuser\): ok' \
	    'label phones: certsrv .*: template WebServer on certrqxt.asp: ok' \
	    'label phones: certsrv .*: CA chain fetch: [0-9]+ certificate'; do
		grep -qE -- "^ok    $re" "$T/doctor.out" ||
		    fail "no ok line matching /$re/" "$T/doctor.out"
	done
	# --doctor never enrolls: the fake saw no submission.
	curl -s --cacert "$CERTS/tls-ca.pem" "$DOC_FAKE/_fake/state" \
	    >"$T/state.json"
	python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
assert not s.get("requests") and not s.get("submissions"), s' "$T/state.json" \
	    2>"$T/state.err" || fail "--doctor submitted a request" \
	    "$T/state.err" "$T/state.json"
	doc_no_sanitizer
}

t_doctor_json_parses() {
	doc_fake
	doc_config phones "$(doc_certsrv "$DOC_FAKE/certsrv" \
	    'template="NoSuchTemplate"')"
	doc_run --json
	assert_eq 1 "$DOC_RC" "--doctor --json exit status" "$T/doctor.out"
	python3 -c 'import json, sys
a = json.load(open(sys.argv[1]))
assert isinstance(a, list) and a, a
for l in a:
    assert set(l) == {"status", "subject", "check", "cause", "remedy"}, l
    assert l["status"] in ("ok", "warn", "FAIL"), l
f = [l for l in a if l["status"] == "FAIL"]
assert len(f) == 1 and "NoSuchTemplate" in f[0]["cause"], f
assert f[0]["remedy"], f' "$T/doctor.out" 2>"$T/py.err" ||
	    fail "--json output is not the documented array" "$T/py.err" \
	    "$T/doctor.out"
}

t_doctor_dns_unknown_host() {
	doc_config phones "$(doc_certsrv https://nonexistent.invalid/certsrv)"
	doc_run
	doc_expect_fail \
	    'certsrv https://nonexistent.invalid/certsrv: DNS resolution of nonexistent.invalid: .*curl 6 ' \
	    'check DNS'
}

t_doctor_closed_port() {
	local port
	port=$(free_port)
	doc_config phones "$(doc_certsrv "https://127.0.0.1:$port/certsrv")"
	doc_run
	grep -qE "^ok    .*DNS resolution of 127.0.0.1: ok" "$T/doctor.out" ||
	    fail "DNS not reported ok before the TCP failure" "$T/doctor.out"
	doc_expect_fail "TCP connect to 127.0.0.1:$port: .*curl 7 " \
	    'listens on|firewall|runs and the urls'
}

t_doctor_untrusted_ca() {
	doc_fake
	doc_config phones "$(doc_certsrv "$DOC_FAKE/certsrv" \
	    "ca_bundle=\"$CERTS/manufacturer-ca.pem\"")"
	doc_run
	doc_expect_fail 'TLS handshake \(CA bundle .*manufacturer-ca.pem.*curl 60 ' \
	    "issuer to the ca_bundle"
}

t_doctor_wrong_host_name() {
	# A certificate for another name, served on 127.0.0.1.
	doc_mkcert other DNS:ca.other.example 0
	doc_fake "$T/other.pem" "$T/other.key"
	doc_config phones "$(doc_certsrv "$DOC_FAKE/certsrv")"
	doc_run
	doc_expect_fail 'TLS handshake .*host name 127.0.0.1.*curl 60 .*(subject name|match)' \
	    'does not name the host'
}

t_doctor_not_yet_valid_clock_skew() {
	doc_mkcert future IP:127.0.0.1 2
	doc_fake "$T/future.pem" "$T/future.key"
	doc_config phones "$(doc_certsrv "$DOC_FAKE/certsrv")"
	doc_run
	doc_expect_fail 'TLS handshake .*curl 60 .*not yet valid.*clock skew' \
	    'clock'
}

t_doctor_wrong_password() {
	doc_fake
	doc_config phones "$(doc_certsrv "$DOC_FAKE/certsrv" \
	    "password_file=\"$T/bad.pass\"")"
	doc_run
	grep -qE "^ok    .*TLS handshake .*: ok" "$T/doctor.out" ||
	    fail "TLS not reported ok before the 401" "$T/doctor.out"
	doc_expect_fail 'HTTP authentication \(auth ntlm, user FAKE.certuser\): .*401.*bad credentials' \
	    'password_file'
	if grep -q 'wrong-password' "$T/doctor.out"; then
		fail "--doctor prints the password" "$T/doctor.out"
	fi
}

t_doctor_unknown_template() {
	doc_fake
	doc_config phones "$(doc_certsrv "$DOC_FAKE/certsrv" \
	    'template="CiscoPhnoe"')"
	doc_run
	grep -qE "^ok    .*HTTP authentication .*: ok" "$T/doctor.out" ||
	    fail "authentication not reported ok" "$T/doctor.out"
	doc_expect_fail 'template CiscoPhnoe on certrqxt.asp: .*not offered' \
	    'publish CiscoPhnoe'
}

t_doctor_missing_helper() {
	doc_config h '{"backend": "helper", "command": ["/nonexistent/cm-submit"]}'
	doc_run
	doc_expect_fail 'labels\.h\.ca\.command.*/nonexistent/cm-submit' \
	    'estrad -t'
}

t_doctor_helper_identify() {
	mkdir -p "$T/hstate"
	doc_config h "{\"backend\": \"helper\", \"command\": [\"$ROOT/tests/fakes/helpers/fake-submit.sh\", \"issue\"], \"env\": {\"FAKE_STATE\": \"$T/hstate\", \"FAKE_CA_CERT\": \"$CERTS/issuing-ca.pem\", \"FAKE_CA_KEY\": \"$CERTS/issuing-ca.key\"}}"
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status" "$T/doctor.out"
	grep -qE '^ok    label h: helper .*fake-submit.sh: answers IDENTIFY: .*Fake helper' \
	    "$T/doctor.out" || fail "no ok IDENTIFY line" "$T/doctor.out"
}

# A helper that cannot reach its CA: the FAIL line carries what the error
# log would (the exit status and the helper's stderr), not only the cause.
t_doctor_helper_unreachable() {
	mkdir -p "$T/hstate"
	doc_config h "{\"backend\": \"helper\", \"command\": [\"$ROOT/tests/fakes/helpers/fake-submit.sh\", \"unreachable\"], \"env\": {\"FAKE_STATE\": \"$T/hstate\"}}"
	doc_run
	doc_expect_fail 'answers IDENTIFY: .*exit 3 UNREACHABLE.*\(helper: .*operation: IDENTIFY, exit: 3, .*stderr: "fake-submit: connect to ca.invalid: no route"\)' \
	    'reachable'
}

t_doctor_key_world_readable() {
	doc_config
	cp "$CERTS/server.key" "$T/server.key"
	chmod 644 "$T/server.key"
	python3 - "$T/estrad.json" "$T/server.key" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["tls"]["key"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
EOF
	doc_run
	doc_expect_fail "file $T/server.key: tls.key \\(secret\\): a secret readable by everyone" \
	    'chmod 600'
}

t_doctor_world_writable_config_refused() {
	doc_config
	chmod 666 "$T/estrad.json"
	doc_run
	doc_expect_fail 'configuration .*: mode: world-writable' 'chmod o-w'
	# The daemon refuses to start with it.
	timeout -k 2 10 "$ESTRAD" -c "$T/estrad.json" >"$T/daemon.out" \
	    2>"$T/daemon.err" </dev/null
	local rc=$?
	assert_eq 1 "$rc" "estrad exit status with a world-writable config" \
	    "$T/daemon.err"
	assert_file_matches "$T/daemon.err" \
	    'refusing to start: configuration .* is world-writable'
}

t_doctor_privilege_drop() {
	[[ $(id -u) == 0 ]] || return 0
	local port i pid uid=""
	port=$(free_port)
	doc_config
	python3 - "$T/estrad.json" "$port" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["listen"] = ["127.0.0.1:" + sys.argv[2]]
c["workers"] = 1
json.dump(c, open(sys.argv[1], "w"))
EOF
	"$ESTRAD" -c "$T/estrad.json" >"$T/daemon.out" 2>"$T/daemon.err" \
	    </dev/null &
	pid=$!
	for ((i = 0; i < 50; i++)); do
		curl -s -o /dev/null --max-time 1 --cacert "$CERTS/tls-ca.pem" \
		    "https://127.0.0.1:$port$EST_PATH/cacerts" && break
		sleep 0.1
	done
	uid=$(awk '/^Uid:/ { print $2 "/" $3 }' "/proc/$pid/status" 2>/dev/null)
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	assert_eq "$(id -u nobody)/$(id -u nobody)" "$uid" \
	    "estrad's real/effective uid after start" "$T/daemon.err" \
	    "$T/error.log"
	assert_file_matches "$T/error.log" 'dropped privileges to user nobody'
}

t_doctor_make_install_destdir() {
	local dest=$T/dest
	make -s -C "$ROOT" install DESTDIR="$dest" PREFIX=/usr/local \
	    ESTRAD_BIN="$ESTRAD" >"$T/install.out" 2>&1 ||
	    fail "make install DESTDIR failed" "$T/install.out"
	local f
	for f in usr/local/sbin/estrad usr/local/share/man/man8/estrad.8 \
	    usr/local/share/man/man5/estrad.json.5 \
	    usr/local/lib/systemd/system/estrad.service \
	    usr/local/etc/estrad/estrad.json.example \
	    usr/local/etc/logrotate.d/estrad; do
		[[ -s $dest/$f ]] || fail "make install did not install $f" \
		    "$T/install.out"
	done
	[[ -x $dest/usr/local/sbin/estrad ]] || fail "estrad not executable"
	grep -q '^ExecStart=/usr/local/sbin/estrad ' \
	    "$dest/usr/local/lib/systemd/system/estrad.service" ||
	    fail "the unit does not run the installed binary" \
	    "$dest/usr/local/lib/systemd/system/estrad.service"
	if command -v systemd-analyze >/dev/null 2>&1; then
		systemd-analyze verify --man=no \
		    "$dest/usr/local/lib/systemd/system/estrad.service" \
		    >"$T/verify.out" 2>&1 || true
		if grep -qiE 'unknown (key|section)|invalid' "$T/verify.out"; then
			fail "systemd-analyze verify complains" "$T/verify.out"
		fi
	fi
	if command -v groff >/dev/null 2>&1; then
		for f in man8/estrad.8 man5/estrad.json.5; do
			groff -man -Tutf8 -ww -z \
			    "$dest/usr/local/share/man/$f" >"$T/groff.out" 2>&1
			[[ ! -s $T/groff.out ]] ||
			    fail "groff warns about $f" "$T/groff.out"
		done
	fi
}

t_doctor_dogtag_healthy_all_ok() {
	doc_dogtag_fake
	doc_config dg "$(doc_dogtag "$DOC_FAKE")"
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status" "$T/doctor.out" \
	    "$T/doctor.err"
	if grep -vE '^(ok    |doctor: )' "$T/doctor.out" >"$T/notok"; then
		fail "a healthy dogtag setup printed more than ok lines" "$T/notok"
	fi
	local re
	for re in \
	    "label dg: dogtag $DOC_FAKE: validity of agent certificate /CN=demo-client: valid until " \
	    'label dg: dogtag .*: TLS handshake \(CA bundle .*tls-ca.pem, host name 127.0.0.1\): ok' \
	    'label dg: dogtag .*: HTTP authentication \(auth agent certificate\): ok' \
	    'label dg: dogtag .*: Dogtag API, agent login and profile caServerCert: REST API v2, agent "CN=demo-client" valid until .*, profile caServerCert enabled by caadmin' \
	    'label dg: dogtag .*: CA chain fetch: 2 certificates'; do
		grep -qE -- "^ok    $re" "$T/doctor.out" ||
		    fail "no ok line matching /$re/" "$T/doctor.out"
	done
	# --doctor read the profile's state and never enrolled.
	curl -s --cacert "$CERTS/tls-ca.pem" "$DOC_FAKE/_fake/state" \
	    >"$T/state.json"
	python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
assert not s["requests"], s["requests"]
c = s["counters"]["v2"]
assert c.get("profile") == 1 and not c.get("submit"), c' "$T/state.json" \
	    2>"$T/state.err" || fail "--doctor did not read the profile once, or submitted" \
	    "$T/state.err" "$T/state.json"
	doc_no_sanitizer
}

t_doctor_dogtag_profile_disabled() {
	doc_dogtag_fake
	# caOff exists (its template is served) but is disabled at the CA.
	doc_config dg "$(doc_dogtag "$DOC_FAKE" 'profile="caOff"')"
	doc_run
	grep -qE "^ok    label dg: .*HTTP authentication .*: ok" \
	    "$T/doctor.out" ||
	    fail "the agent login not reported ok before the profile" \
	    "$T/doctor.out"
	doc_expect_fail \
	    "label dg: dogtag $DOC_FAKE: Dogtag API, agent login and profile caOff: profile disabled: profile caOff exists but the CA has it disabled" \
	    'pki ca-profile-enable caOff'
	# One cause, one FAIL line.
	assert_eq 1 "$(grep -c '^FAIL' "$T/doctor.out")" "FAIL lines" \
	    "$T/doctor.out"
	doc_run --json
	assert_eq 1 "$DOC_RC" "--doctor --json exit status" "$T/doctor.out"
	doc_json_has FAIL 'profile caOff' 'profile caOff exists but the CA has it disabled' \
	    'pki ca-profile-enable caOff'
}

# An agent certificate that expires in 10 days: one warn line from the
# certificate's own check (with its date), and no second one from the
# backend's health call saying the same.
t_doctor_dogtag_agent_cert_expiring() {
	doc_dogtag_fake
	issue_expired_client_cert "$T/agent-ca" "$T/agent-soon.key" \
	    "$T/agent-soon.pem" "ec -pkeyopt ec_paramgen_curve:P-256" \
	    "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" \
	    "$(date -u -d '+10 days' +%Y%m%d%H%M%SZ)"
	doc_config dg "$(doc_dogtag "$DOC_FAKE" \
	    "agent_cert=\"$T/agent-soon.pem\"" "agent_key=\"$T/agent-soon.key\"")"
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status" "$T/doctor.out" \
	    "$T/doctor.err"
	grep -E '^warn  ' "$T/doctor.out" | grep -v 'privileges' >"$T/warns"
	assert_eq 1 "$(wc -l <"$T/warns")" "warn lines" "$T/warns"
	grep -qE 'validity of agent certificate /CN=demo-client: expires on .*, in (9|10) days' \
	    "$T/warns" || fail "no expiry warn line for the agent" "$T/doctor.out"
	grep -qE '^ok    label dg: .*agent login and profile caServerCert: ' \
	    "$T/doctor.out" || fail "the agent login not ok" "$T/doctor.out"
	doc_no_sanitizer
}

t_doctor_dogtag_agent_cert_expired() {
	doc_dogtag_fake
	doc_expired_agent
	doc_config dg "$(doc_dogtag "$DOC_FAKE" \
	    "agent_cert=\"$T/agent-old.pem\"" "agent_key=\"$T/agent-old.key\"")"
	doc_run
	# The certificate itself, read from its file ...
	doc_expect_fail \
	    'label dg: dogtag .*: validity of agent certificate /CN=demo-client: expired on 2020-12-31T00:00:00Z' \
	    'renew it, then reload estrad'
	# ... and what the CA made of it: the TLS layer answered (server
	# certificate fine), the agent login was refused.
	grep -qE "^ok    label dg: .*TLS handshake .*: ok" "$T/doctor.out" ||
	    fail "TLS not reported ok before the refused login" "$T/doctor.out"
	doc_expect_fail \
	    'label dg: dogtag .*: HTTP authentication \(auth agent certificate\): agent login failed: curl (35|55|56) ' \
	    'renew the agent certificate'
	doc_run --json
	assert_eq 1 "$DOC_RC" "--doctor --json exit status" "$T/doctor.out"
	doc_json_has FAIL 'validity of agent certificate /CN=demo-client' \
	    'expired on 2020-12-31T00:00:00Z' 'renew it'
	doc_json_has FAIL 'HTTP authentication' 'agent login failed' \
	    'renew the agent certificate'
}

t_doctor_dogtag_basic_agent_state_unread() {
	doc_dogtag_fake
	printf 'Secret.123\n' >"$T/agent.pass"
	chmod 600 "$T/agent.pass"
	# Dogtag lets only certificate logins read a profile's state: a Basic
	# agent gets the profile's existence checked and a warning, no FAIL.
	doc_config dg "$(doc_dogtag "$DOC_FAKE" agent_cert=null agent_key=null \
	    'user="caadmin"' "password_file=\"$T/agent.pass\"")"
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status" "$T/doctor.out" \
	    "$T/doctor.err"
	grep -qE '^ok    label dg: .*profile caServerCert: REST API v2, agent user caadmin, profile caServerCert exists$' \
	    "$T/doctor.out" || fail "no ok line for the profile" "$T/doctor.out"
	grep -qE '^warn  label dg: .*backend warning: profile caServerCert exists, but whether it is enabled could not be read: HTTP 403 .*Authentication method not allowed.*: set agent_cert and agent_key instead of user' \
	    "$T/doctor.out" ||
	    fail "no warn line naming the refused read and the remedy" \
	    "$T/doctor.out"
	if grep -q 'Secret\.123' "$T/doctor.out"; then
		fail "--doctor prints the agent password" "$T/doctor.out"
	fi
	doc_no_sanitizer
}

t_doctor_open_label_warned() {
	# A label where any authenticated client may ask for any name: the
	# Basic label doc_config adds, without its policy.
	doc_config open '{"backend": "local", "cert": "'"$CERTS"'/issuing-ca.pem", "key": "'"$CERTS"'/issuing-ca.key", "profile": {"extended_key_usage": ["clientAuth", "serverAuth"]}}'
	python3 - "$T/estrad.json" <<'EOF_PY'
import json, sys
c = json.load(open(sys.argv[1]))
del c["labels"]["open"]["policy"]
json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF_PY
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status (a warning only)" \
	    "$T/doctor.out" "$T/doctor.err"
	grep -E '^warn  label open: policy: ' "$T/doctor.out" |
	    grep -E 'any authenticated client may request any name' |
	    grep -E 'subject CN, dNSName.*serverAuth' |
	    grep -qE 'cn_equals' ||
	    fail "no warn line for the open label" "$T/doctor.out"
	# The shipped labels bind their names: no such line for them.
	if grep -E '^warn  label default: policy' "$T/doctor.out"; then
		fail "the shipped default label is reported open" "$T/doctor.out"
	fi
	doc_no_sanitizer
}

t_doctor_shipped_labels_bound() {
	# The shipped configuration as it is: no label open, none accepting
	# another label's certificates.
	python3 - "$ROOT/conf/estrad.json" "$T/estrad.json" "$CERTS" "$T" \
	    <<'EOF_PY'
import json, sys
src, dst, certs, t = sys.argv[1:]
cfg = json.load(open(src))
def fix(o):
    for k, v in o.items():
        if isinstance(v, dict):
            fix(v)
        elif isinstance(v, str) and v.startswith("../certs"):
            o[k] = certs + v[len("../certs"):]
fix(cfg)
cfg["logs"] = {"error": t + "/error.log", "level": "info"}
cfg["pending"] = {"dir": t + "/pending", "lifetime": 3600}
json.dump(cfg, open(dst, "w"), indent=2)
EOF_PY
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status" "$T/doctor.out" \
	    "$T/doctor.err"
	if grep -E '^(warn|FAIL) ' "$T/doctor.out" >"$T/notok"; then
		fail "the shipped configuration is not all ok" "$T/notok"
	fi
	# A label that shares the default label's store accepts what the
	# default label issued: said.
	python3 - "$T/estrad.json" "$CERTS" <<'EOF_PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["labels"]["phones"]["trust"]["explicit_ca"] = sys.argv[2] + "/ca-chain.pem"
json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF_PY
	doc_run
	grep -qE '^warn  label phones: trust: accepts certificates issued by label (default|devices)' \
	    "$T/doctor.out" ||
	    fail "no warn line for the shared store" "$T/doctor.out"
	doc_no_sanitizer
}

t_doctor_parent_dir_and_owner_refused() {
	mkdir -p "$T/ww"
	doc_config
	cp "$CERTS/users.htpasswd" "$T/ww/users.htpasswd"
	python3 - "$T/estrad.json" "$T/ww/users.htpasswd" <<'EOF_PY'
import json, sys
c = json.load(open(sys.argv[1])); c["users"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
EOF_PY
	# A world-writable directory (without the sticky bit) above a file.
	chmod 777 "$T/ww"
	doc_run
	doc_expect_fail "file $T/ww/users.htpasswd: users \\(secret\\): in directory $T/ww, world-writable" \
	    "chmod o-w $T/ww"
	timeout -k 2 10 "$ESTRAD" -c "$T/estrad.json" >"$T/daemon.out" \
	    2>"$T/daemon.err" </dev/null
	assert_eq 1 "$?" "estrad exit status" "$T/daemon.err"
	assert_file_matches "$T/daemon.err" \
	    "refusing to start: users $T/ww/users.htpasswd is in directory $T/ww, world-writable"
	# With the sticky bit (like /tmp) only the file's owner may replace
	# it: fine.
	chmod 1777 "$T/ww"
	doc_run
	grep -qE "^ok    file $T/ww/users.htpasswd: users" "$T/doctor.out" ||
	    fail "a file in a sticky directory is not ok" "$T/doctor.out"
	chmod 755 "$T/ww"
	# A file of another user, who could rewrite it at will.
	[[ $(id -u) == 0 ]] || return 0
	chown nobody "$T/ww/users.htpasswd"
	doc_run
	doc_expect_fail "file $T/ww/users.htpasswd: users \\(secret\\): owned by nobody" \
	    "chown root"
	timeout -k 2 10 "$ESTRAD" -c "$T/estrad.json" >"$T/daemon.out" \
	    2>"$T/daemon.err" </dev/null
	assert_eq 1 "$?" "estrad exit status" "$T/daemon.err"
	assert_file_matches "$T/daemon.err" \
	    "refusing to start: users $T/ww/users.htpasswd is owned by nobody"
}
