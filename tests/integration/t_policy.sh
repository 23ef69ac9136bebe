# shellcheck shell=bash
# t_policy.sh: what a CSR may ask for, through the real daemon: names that
# are no names (a wildcard "*", "*.*.com", a javascript: URI, 0.0.0.0), an
# EC key with explicit curve parameters, a CA certificate, and requested
# extensions on a label whose CA receives the CSR as sent, where "drop"
# cannot be kept: the helper fake (tests/fakes/helpers/fake-submit.sh)
# copies the CSR's extensions into the certificate as such CAs do.
# Sourced by run.sh; every t_policy_* function is one test.

POLICY_FAKE=$ROOT/tests/fakes/helpers/fake-submit.sh

# policy_config FILE: adds the labels of these tests to the configuration
# FILE: t-p-fwd (the helper fake, policy left at its defaults) and
# t-p-fwd-drop (the same with extensions.unlisted "drop" written out).
policy_config() {
	mkdir -p "$WORK/policyfix/state" || return 1
	python3 - "$1" "$POLICY_FAKE" "$WORK/policyfix" "$CERTS" <<'PYEOF'
import json, sys
path, fake, fix, certs = sys.argv[1:5]
cfg = json.load(open(path))

def label(**kw):
    l = {"csrattrs": [], "retry_after": 30,
         "ca": {"backend": "helper", "command": [fake, "issue"],
                "env": {"FAKE_STATE": fix + "/state",
                        "FAKE_CA_CERT": certs + "/issuing-ca.pem",
                        "FAKE_CA_KEY": certs + "/issuing-ca.key"},
                "timeout": 10}}
    l.update(kw)
    return l

cfg["labels"]["t-p-fwd"] = label()
cfg["labels"]["t-p-fwd-drop"] = label(
    policy={"extensions": {"allow": ["subjectAltName"], "unlisted": "drop"}})
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
PYEOF
}

# policy_refused CODE ERE: an estrad refusal whose reason matches ERE in
# the text/plain body, the error log and the audit record, with exactly
# one error-log line of level notice or worse for the request.
policy_refused() {
	auth_refused "$1" "$2"
	fl_one_refusal_line "$RID"
}

t_policy_san_names_refused() {
	local -a basic=(--basic "$CRED")
	# "*" names every host: no name at all, wherever it is asked for.
	est_req "$EST_PATH/simpleenroll" "${basic[@]}" \
	    --subject /CN=wild.example --san 'DNS:*'
	policy_refused 403 'dNSName .{1,2}\*.{1,2} is not a valid DNS name: a wildcard must stand over two or more labels'
	est_req "$EST_PATH/simpleenroll" "${basic[@]}" \
	    --subject /CN=wild.example --san 'DNS:*.*.com'
	policy_refused 403 'is not a valid DNS name: a wildcard'
	# A well-formed wildcard only where san.wildcard allows it.
	est_req "$EST_PATH/simpleenroll" "${basic[@]}" \
	    --subject /CN=wild.example --san 'DNS:*.wild.example'
	policy_refused 403 'is a wildcard, which rule san.wildcard does not allow'
	est_req "$EST_PATH/simpleenroll" "${basic[@]}" \
	    --subject /CN=uri.example --san 'URI:javascript:alert(1)'
	policy_refused 403 'URI scheme .{1,2}javascript.{1,2} is never allowed'
	est_req "$EST_PATH/simpleenroll" "${basic[@]}" \
	    --subject /CN=any.example --san 'IP:0.0.0.0'
	policy_refused 403 'iPAddress 0\.0\.0\.0 is an unspecified address'
	# The same label issues well-formed names.
	est_req "$EST_PATH/simpleenroll" "${basic[@]}" \
	    --subject /CN=fine.example \
	    --san 'DNS:fine.example,URI:https://fine.example/,IP:192.0.2.5'
	auth_issued
}

t_policy_explicit_curve_parameters_400() {
	openssl ecparam -name prime256v1 -param_enc explicit \
	    -out "$T/explicit.pem" 2>"$T/ecparam.err" ||
	    fail "openssl ecparam failed (test setup)" "$T/ecparam.err"
	mk_csr req /CN=explicit.example "ec:$T/explicit.pem"
	# The request carries the curve's parameters, not its name.
	openssl req -in "$T/req.pem" -noout -text >"$T/req.txt" 2>&1
	grep -q 'Field Type: prime-field' "$T/req.txt" ||
	    fail "the CSR does not carry explicit parameters" "$T/req.txt"
	post_csr "$EST_PATH/simpleenroll" "$T/req.b64" -u "$CRED"
	policy_refused 400 'its curve is given by explicit parameters, not named'
}

t_policy_ca_request_refused_on_drop_label() {
	# The default label drops unlisted extensions, but a CA certificate
	# or a certificate-signing key usage is refused, never dropped.
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
	    --subject /CN=ca.example --ext "basicConstraints=critical,CA:TRUE"
	policy_refused 403 'basicConstraints CA:TRUE is never allowed'
	est_req "$EST_PATH/simpleenroll" --basic "$CRED" \
	    --subject /CN=ca.example --ext "keyUsage=digitalSignature,keyCertSign"
	policy_refused 403 'keyUsage keyCertSign is never allowed'
	if log_has_rid "$RID" dropped_extensions audit >/dev/null; then
		fail "the audit record says something was dropped" "$LOGS/audit.log"
	fi
}

# A label whose CA receives the CSR as sent: the fake copies a requested
# certificatePolicies into the certificate, so "drop" would be a lie.
t_policy_forwarded_extension_refused() {
	local label
	for label in t-p-fwd t-p-fwd-drop; do
		mk_csr req "/CN=$label.example" ec \
		    -addext "subjectAltName=DNS:$label.example" \
		    -addext "certificatePolicies=1.2.3.4"
		post_csr "$EST_PATH/$label/simpleenroll" "$T/req.b64" -u "$CRED"
		policy_refused 403 'extension certificatePolicies not allowed by rule extensions, and it cannot be dropped'
		if log_has_rid "$RID" dropped_extensions audit >/dev/null; then
			fail "the audit record of $label says something was dropped" \
			    "$LOGS/audit.log"
		fi
		# What the label allows is issued.
		mk_csr ok "/CN=$label.example" ec \
		    -addext "subjectAltName=DNS:$label.example"
		post_csr "$EST_PATH/$label/simpleenroll" "$T/ok.b64" -u "$CRED"
		assert_issued ok
	done
}

t_policy_doctor_warns_drop_on_forwarding_label() {
	mkdir -p "$T/hstate"
	doc_config h "{\"backend\": \"helper\", \"command\": [\"$POLICY_FAKE\", \"issue\"], \"env\": {\"FAKE_STATE\": \"$T/hstate\", \"FAKE_CA_CERT\": \"$CERTS/issuing-ca.pem\", \"FAKE_CA_KEY\": \"$CERTS/issuing-ca.key\"}}"
	python3 - "$T/estrad.json" <<'EOF' || fail "cannot edit the configuration"
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["labels"]["h"]["policy"] = {"extensions": {"unlisted": "drop"}}
json.dump(cfg, open(sys.argv[1], "w"), indent=2)
EOF
	doc_run
	assert_eq 0 "$DOC_RC" "--doctor exit status" "$T/doctor.out" \
	    "$T/doctor.err"
	grep -qE '^warn  label h: policy: policy\.extensions\.unlisted is "drop", but backend helper sends the CSR to its CA as received.*refused \(403\), not dropped: set extensions\.unlisted to "refuse"' \
	    "$T/doctor.out" || fail "no warning about drop on label h" \
	    "$T/doctor.out"
	# The default label drops for real (the built-in CA): no warning.
	assert_eq 1 "$(grep -c 'extensions\.unlisted' "$T/doctor.out")" \
	    "lines about extensions.unlisted" "$T/doctor.out"
	doc_no_sanitizer
}
