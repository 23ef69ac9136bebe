#!/usr/bin/env python3
"""fake_dogtag.py: a fake Dogtag / Red Hat Certificate System CA (REST API).

It replaces a real Dogtag CA in estrad's tests.  Standard
library plus the openssl CLI only.

Usage
-----
  fake_dogtag.py --listen 127.0.0.1:PORT --cert server.pem --key server.key
                 --client-ca ca.pem --state-dir DIR
                 [--agents CN-or-user[:password],...] [--users ...]
                 [--version 11.7.0] [--v1 on|off] [--v2 on|off]
                 [--profiles caServerCert:auto,caManual:pending,...]
                 [--request-id-start 26]

  Prints "fake_dogtag: ready on 127.0.0.1:PORT" on stdout once listening,
  logs one line per request on stderr, exits 0 on SIGTERM or SIGINT.
  PORT 0 picks a free port (the ready line names it).

  --client-ca   CA file for TLS client certificates.  The TLS layer asks for
                a client certificate (ssl.CERT_OPTIONAL): none is fine, one
                that does not verify (unknown issuer, expired) fails the
                handshake, as JSS/Tomcat does.  The subject CN of a verified
                certificate names the user.
  --agents      agents (role "Certificate Manager Agents"), default
                "demo-client,caadmin:Secret.123".  "name" alone: a certificate
                user (CN=name); "name:password": also a Basic user.
  --users       authenticated users that are NOT agents (same syntax, default
                none): login works, /agent/ paths give 403 ForbiddenException.
  --version     reported by /pki/v2/info and /pki/rest/info (default 11.7.0).
  --v1 on|off   off = api.v1.status=disabled: every /ca/rest, /ca/v1,
                /pki/rest, /pki/v1 path gives the 404 JSON of §1.
  --v2 on|off   off = a server before 11.6: /pki/v2/info and every /ca/v2
                path give Tomcat's HTML 404.
  --profiles    profile:mode[+auth] list (default "caServerCert:auto,
                estServiceCert:auto+agentcert,caManual:pending,
                caReject:reject,caOff:disabled").  Modes:
                  auto      → requestStatus complete, certId set
                  pending   → pending until approved (agent API or control)
                  reject    → rejected with errorMessage
                  error     → rejected, errorMessage "Request N - Server
                              Internal Error" (§3.5, modelled)
                  disabled  → POST 400 "Bad request data: Profile X not
                              enabled" (template still served, as
                              CertRequestService does; profiles/{id}
                              says "enabled": false)
                Profiles not listed: POST 400 "... Profile X Not Found",
                template 400 "Unable to get enrollment template for X:
                Profile not found".  Auth suffixes (profile authenticators,
                §7): +agentcert (AgentCertAuth/raCertAuth: the POST's TLS
                client certificate must be an agent's, else 401
                UnauthorizedException "Authentication failed: Invalid
                Credential."), +session (SessionAuthentication: the POST's
                JSESSIONID must carry a logged-in agent, else 401).

  The CA lives in DIR: root-ca.pem/.key ("CN=Fake Dogtag Root CA,O=EXAMPLE"),
  ca-signing.pem/.key ("CN=CA Signing Certificate,O=EXAMPLE", signed by the
  root), ca-chain.pem (signing + root), authority-id (the host authority's
  UUID).  Existing material is reused on restart; requests, certificates and
  sessions live in memory only (DIR/tmp/ holds scratch files).

Endpoints (v2 under /ca/v2, v1 under /ca/rest or /ca/v1; §2)
  GET  /pki/v2/info, /pki/rest/info (/pki/v1/info)   {"Name","Version"}
  GET  account/login     container auth (TLS client cert, else Basic);
                         200 {"id","FullName","Email","Roles"} + Set-Cookie
                         JSESSIONID (Path=/ca).  No credentials → 401 with
                         WWW-Authenticate: Basic realm="Certificate
                         Authority" and Tomcat's HTML page.
  GET  account/logout    204, the session is invalidated (no auth needed)
  GET  certrequests/profiles/{id}   enrollment template (certReqInputImpl,
                         plus raClientAuthInfoInputImpl for +agentcert
                         profiles)
  GET  profiles/{id}     ProfileData ("enabled", "enabledBy", "visible",
                         Input, ...), as ProfileServlet / ProfileService:
                         not constrained by the container, so the principal
                         is the session's; auth method "profiles" is
                         certUserDBAuthMgr and the ACL profiles.read
                         (certServer.profile.configuration read) allows
                         agents.  No session principal → 403 "Anonymous
                         access not allowed.", a Basic login → 403
                         "Authentication method not allowed.", a non-agent
                         → 403; unknown profile → 404
  POST certrequests[?issuer-id=AID|issuer-dn=DN]     200 CertRequestInfos
  GET  certrequests/{id}            hex 0x… or decimal; 200 CertRequestInfo
  GET  agent/certrequests/{id}      review + nonce (kept in the session; a
                         session is created on first use: alwaysUseSession)
  POST agent/certrequests/{id}/approve|reject|cancel   204 (nonce rules §5)
  POST agent/certrequests/{id}/update|validate|assign|unassign  204 (no-op)
  GET  certs/{serial}    CertData (v1 adds PrettyPrint)
  GET  authorities/{host-authority|AID}/chain   Accept negotiation
  GET  config/cert/signing          CertData of the signing cert + ETag
  GET  /ca/ee/ca/getCertChain       {"Response":{"Status":"0",
                         "ChainBase64":…}} (?xml=true: XMLResponse)
  v1 answers carry "Deprecation: true" and the Link header; v1 request infos
  carry requestURL and certURL (decimal ids).  Unknown paths → Tomcat HTML
  404.  Only /account, /agent, /admin need container auth.

Control API (no authentication, JSON in and out)
  GET  /_fake/state     requests (id hex, id_dec, state, profile, api,
                        submitted_by, auth, subject, cert_id, ...), logins
                        (who, method cert|basic|session, api, time),
                        counters per API version and endpoint (info, login,
                        logout, template, submit, request, review, approve,
                        reject, cancel, agent_other, cert, chain, signing,
                        getCertChain, profile, not_found; "disabled" counts v1 hits
                        while v1 is off, "absent" v2 hits while v2 is off;
                        /pki/*/info counts under v1/v2, unknown paths under
                        "unknown"), sessions, config, CA paths
  GET  /_fake/config    the current switches
  POST /_fake/config    merge switches, e.g.
        {"v1": true, "v2": true,
         "down": false | true | "refuse" | "close" | "503",
            # true = "refuse": the listening socket is closed, new
            # connections are REFUSED (a stopped pki-tomcatd) for down_ms
            # (default 5000), then it reopens by itself (SIGUSR1 reopens
            # early).  The control API is unreachable meanwhile.
            # "close": every non-control request gets its connection closed
            # without an answer (curl 52) until {"down": false}.
            # "503": Apache-style 503 HTML (a proxy in front of a stopped
            # Tomcat, as on FreeIPA) until {"down": false}.
         "down_ms": 5000,
         "delay_ms": 0 | {"submit": 2000, "/ca/v2/certs": 500, "*": 100},
            # slept before the endpoint runs; keys: endpoint names (as
            # in the counters), path prefixes starting with "/" (the
            # longest wins), "*"; control calls are never delayed
         "drop": null | "submit" | ["cert"] | {"submit": 1},
            # answers of that endpoint are cut mid-body and the connection
            # closed (N times with a count); the request is processed first
         "agent_expired": false,
            # the agent certificate is treated as expired: the container
            # sees no valid client certificate (Tomcat's authenticator drops
            # it), so login/agent paths fall back to Basic and answer the
            # 401 Tomcat HTML without it, and +agentcert profiles answer
            # 401 UnauthorizedException.  (A really expired certificate
            # fails the TLS handshake itself, see --client-ca.)
         "basic": true,          # false: agent-certificate-only container
         "ca_disabled": false,   # POST certrequests, approve → 409
         "random_ids": false,    # 128-bit random request ids and serials
         "profiles": {"caManual": "pending", "caX": "auto+agentcert",
                      "caOld": null},   # merged; null removes a profile
         "authorities": {"<uuid>": "enabled"|"disabled"|"not_ready"},
            # lightweight CAs (issue from the host CA); merged, null removes;
            # disabled → POST 409, not_ready → chain 404 and POST 503;
            # approving a request of a removed one → 410
         "reject_message": "Request Rejected - ...",
         "version": "11.7.0"}
        Unknown keys or values → 400.  Answers the new config.
  POST /_fake/reset     switches back to the command-line defaults
  GET  /_fake/requests/{id}          one request (+ csr_pem, cert_pem)
  POST /_fake/requests/{id}/approve  issue a pending request (hex or decimal)
  POST /_fake/requests/{id}/reject   reject it; optional {"message": "..."}
  POST /_fake/requests/{id}/cancel   cancel it
  POST /_fake/sessions/clear         forget every JSESSIONID (server restart)

Modelled, not captured: the info "Name", the Account JSON's Email and Roles,
the review's ProfilePolicySet contents, the template Descriptor texts, the
CertData date format (Java Date.toString in UTC), the reject message, the
406 body (Tomcat HTML), the v2 "review of an unknown id" 500 message.
Not reproduced: XML bodies on v1 (JSON only), the legacy XML servlets other
than getCertChain, renewal by serial, server-side keygen, HTTP/2.
"""

import argparse
import base64
import calendar
import hashlib
import json
import os
import random
import re
import secrets
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROG = "fake_dogtag"
REALM = "Certificate Authority"
V2_DOC = "https://github.com/dogtagpki/pki/wiki/REST-API-v2"
V1_HEADERS = (("Deprecation", "true"),
              ("Link", '<%s>; rel="alternate"' % V2_DOC))
AGENT_ROLES = ["Certificate Manager Agents"]
MODES = ("auto", "pending", "reject", "error", "disabled")
AUTHS = ("", "agentcert", "session")
AUTH_STATES = ("enabled", "disabled", "not_ready")

EXC = {
    400: "com.netscape.certsrv.base.BadRequestException",
    401: "com.netscape.certsrv.base.UnauthorizedException",
    403: "com.netscape.certsrv.base.ForbiddenException",
    404: "com.netscape.certsrv.base.ResourceNotFoundException",
    409: "com.netscape.certsrv.base.ConflictingOperationException",
    410: "com.netscape.certsrv.base.ResourceGoneException",
    500: "com.netscape.certsrv.base.PKIException",
    503: "com.netscape.certsrv.base.ServiceUnavailableException",
}
REQ_NOT_FOUND = "com.netscape.certsrv.request.RequestNotFoundException"
CERT_NOT_FOUND = "com.netscape.certsrv.cert.CertNotFoundException"

ENDPOINTS = ("info", "login", "logout", "template", "submit", "request",
             "review", "approve", "reject", "cancel", "agent_other", "cert",
             "chain", "signing", "getCertChain", "profile", "not_found")


def log(msg):
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write("%s.%03dZ %s: %s\n" % (t, int(time.time() * 1000) % 1000,
                                           PROG, msg))
    sys.stderr.flush()


def b64lines(der, width=64):
    b64 = base64.b64encode(der).decode()
    return "\n".join(b64[i:i + width] for i in range(0, len(b64), width))


def pem(der, label="CERTIFICATE"):
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (
        label, b64lines(der), label)


def hexid(n):
    return "0x%x" % n


def parse_id(text):
    """'0x1a' / '26' → 26; None if neither."""
    text = (text or "").strip()
    try:
        if text.lower().startswith("0x"):
            return int(text[2:], 16)
        if text.isdigit():
            return int(text)
    except ValueError:
        pass
    return None


def java_date(ts):
    """Java Date.toString() in UTC: 'Fri Nov 22 10:00:00 UTC 2025'."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(ts))


def tomcat_page(status, reason, description, message=None):
    msg = "<p><b>Message</b> %s</p>" % message if message else ""
    return ("<!doctype html><html lang=\"en\"><head><title>HTTP Status %d – %s"
            "</title><style type=\"text/css\">body {font-family:Tahoma,Arial,"
            "sans-serif;} h1, h2, h3, b {color:white;background-color:#525D76;}"
            " h1 {font-size:22px;} h2 {font-size:16px;} h3 {font-size:14px;} p"
            " {font-size:12px;} a {color:black;} .line {height:1px;background-"
            "color:#525D76;border:none;}</style></head><body><h1>HTTP Status %d"
            " – %s</h1><hr class=\"line\" /><p><b>Type</b> Status Report</p>%s"
            "<p><b>Description</b> %s</p><hr class=\"line\" /><h3>Apache Tomcat"
            "</h3></body></html>" % (status, reason, status, reason, msg,
                                     description)).encode("utf-8")


DESC_401 = ("The request has not been applied to the target resource because "
            "it lacks valid authentication credentials for that resource.")
DESC_404 = ("The origin server did not find a current representation for the "
            "target resource or is not willing to disclose that one exists.")
DESC_406 = ("The target resource does not have a current representation that "
            "would be acceptable to the user agent, according to the proactive "
            "negotiation header fields received in the request, and the server "
            "is unwilling to supply a default representation.")

PAGE_503 = (b"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>"
            b"\n<title>503 Service Unavailable</title>\n</head><body>\n<h1>"
            b"Service Unavailable</h1>\n<p>The server is temporarily unable to "
            b"service your\nrequest due to maintenance downtime or capacity\n"
            b"problems. Please try again later.</p>\n</body></html>\n")


class PKIError(Exception):
    """A PKIException answer."""

    def __init__(self, code, message, cls=None, attrs=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.cls = cls or EXC.get(code, EXC[500])
        self.attrs = attrs or []

    def body(self):
        return {"Attributes": {"Attribute": self.attrs},
                "ClassName": self.cls, "Code": self.code,
                "Message": self.message}


class Raw(Exception):
    """A non-JSON answer decided deep inside a handler."""

    def __init__(self, status, body, ctype, headers=()):
        super().__init__(status)
        self.status, self.body, self.ctype = status, body, ctype
        self.headers = list(headers)


class Dropped(Exception):
    """The answer was cut or refused on purpose; the connection is closed."""


# --- the CA ------------------------------------------------------------------

class CA:
    """Root + "CA Signing Certificate" in a state directory, via openssl."""

    CNF = """[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_signing ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, nonRepudiation, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_leaf ]
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

    def __init__(self, state_dir):
        self.dir = os.path.abspath(state_dir)
        os.makedirs(self.path("tmp"), exist_ok=True)
        self.cnf = self.path("openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(self.CNF)
        if not os.path.exists(self.path("root-ca.pem")):
            self._gen_root()
        if not os.path.exists(self.path("ca-signing.pem")):
            self._gen_signing()
        with open(self.path("ca-chain.pem"), "w") as out:
            for name in ("ca-signing.pem", "root-ca.pem"):
                with open(self.path(name)) as src:
                    out.write(src.read())
        if not os.path.exists(self.path("authority-id")):
            with open(self.path("authority-id"), "w") as f:
                f.write(str(uuid.uuid4()) + "\n")
        with open(self.path("authority-id")) as f:
            self.aid = f.read().strip()
        self.root_der = self.to_der(self.path("root-ca.pem"))
        self.signing_der = self.to_der(self.path("ca-signing.pem"))
        self.chain_ders = [self.signing_der, self.root_der]
        self.chain_p7 = self.p7b(self.chain_ders)
        self.signing_info = self.cert_info(self.signing_der)
        self.issuer_dn = self.signing_info["subject"]

    def path(self, name):
        return os.path.join(self.dir, name)

    @staticmethod
    def ossl(*args, stdin=None):
        """Runs openssl; returns stdout, raises RuntimeError naming the call."""
        p = subprocess.run(["openssl"] + list(args), input=stdin,
                           capture_output=True)
        if p.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (
                args[0], p.stderr.decode(errors="replace").strip()[:500]))
        return p.stdout

    def to_der(self, pem_file):
        return self.ossl("x509", "-in", pem_file, "-outform", "DER")

    def _gen_root(self):
        self.ossl("genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt",
                  "rsa_keygen_bits:2048", "-out", self.path("root-ca.key"))
        self.ossl("req", "-new", "-x509", "-config", self.cnf, "-key",
                  self.path("root-ca.key"), "-subj",
                  "/O=EXAMPLE/CN=Fake Dogtag Root CA", "-days", "3650",
                  "-sha256", "-set_serial", "1", "-extensions", "v3_root",
                  "-out", self.path("root-ca.pem"))

    def _gen_signing(self):
        key, csr = self.path("ca-signing.key"), self.path("tmp/signing.csr")
        self.ossl("genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt",
                  "rsa_keygen_bits:2048", "-out", key)
        self.ossl("req", "-new", "-config", self.cnf, "-key", key, "-subj",
                  "/O=EXAMPLE/CN=CA Signing Certificate", "-out", csr)
        self.ossl("x509", "-req", "-in", csr, "-CA", self.path("root-ca.pem"),
                  "-CAkey", self.path("root-ca.key"), "-days", "1825",
                  "-sha256", "-set_serial", "2", "-extfile", self.cnf,
                  "-extensions", "v3_signing", "-out", self.path("ca-signing.pem"))
        os.unlink(csr)

    def _tmp(self, data, suffix):
        fd, name = tempfile.mkstemp(dir=self.path("tmp"), suffix=suffix)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return name

    def csr_check(self, der):
        """(pem bytes, subject) of a DER PKCS#10 whose signature verifies."""
        name = self._tmp(der, ".csr")
        try:
            out = self.ossl("req", "-inform", "DER", "-in", name, "-verify",
                            "-outform", "PEM")
            subj = self.ossl("req", "-inform", "DER", "-in", name, "-noout",
                             "-subject", "-nameopt", "RFC2253")
        finally:
            os.unlink(name)
        subj = subj.decode(errors="replace").strip()
        if subj.startswith("subject="):
            subj = subj[len("subject="):]
        return out, subj

    def issue(self, csr_pem, serial):
        """Signs csr_pem (extensions copied) with serial: cert DER."""
        name = self._tmp(csr_pem, ".csr")
        try:
            return self.ossl(
                "x509", "-req", "-in", name, "-CA", self.path("ca-signing.pem"),
                "-CAkey", self.path("ca-signing.key"), "-days", "365",
                "-sha256", "-set_serial", hexid(serial),
                "-copy_extensions", "copy", "-extfile", self.cnf,
                "-extensions", "v3_leaf", "-outform", "DER")
        finally:
            os.unlink(name)

    def p7b(self, ders):
        """A certs-only PKCS#7 (DER) holding ders."""
        files = [self._tmp(pem(d).encode(), ".pem") for d in ders]
        try:
            args = ["crl2pkcs7", "-nocrl", "-outform", "DER"]
            for name in files:
                args += ["-certfile", name]
            return self.ossl(*args)
        finally:
            for name in files:
                os.unlink(name)

    def cert_info(self, der):
        """subject, issuer (RFC 2253), serial, notBefore/After (epoch)."""
        name = self._tmp(der, ".der")
        try:
            out = self.ossl("x509", "-inform", "DER", "-in", name, "-noout",
                            "-subject", "-issuer", "-serial", "-startdate",
                            "-enddate", "-nameopt", "RFC2253").decode()
            pretty = self.ossl("x509", "-inform", "DER", "-in", name, "-noout",
                               "-text").decode(errors="replace")
        finally:
            os.unlink(name)
        info = {"pretty": pretty}
        for line in out.splitlines():
            k, _, v = line.partition("=")
            info[k.strip()] = v.strip()
        fmt = "%b %d %H:%M:%S %Y GMT"
        info["not_before"] = calendar.timegm(time.strptime(
            re.sub(r"\s+", " ", info["notBefore"]), fmt))
        info["not_after"] = calendar.timegm(time.strptime(
            re.sub(r"\s+", " ", info["notAfter"]), fmt))
        info["serial_int"] = int(info["serial"], 16)
        return info


# --- state ---------------------------------------------------------------------

def parse_principals(text):
    """'a,b:pw' → {'a': None, 'b': 'pw'}."""
    out = {}
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, pw = entry.partition(":")
        out[name] = pw if sep else None
    return out


def parse_profiles(text):
    out = {}
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, _, mode = entry.partition(":")
        check_mode(name, mode or "auto")
        out[name] = mode or "auto"
    return out


def check_mode(name, mode):
    if not isinstance(mode, str):
        raise ValueError("profile %s: mode must be a string" % name)
    base, _, auth = mode.partition("+")
    if base not in MODES or auth not in AUTHS:
        raise ValueError("profile %s: mode must be one of %s, optionally "
                         "+agentcert or +session" % (name, "|".join(MODES)))


class State:
    """Everything the fake remembers, behind one lock."""

    def __init__(self, args, ca):
        self.lock = threading.Lock()
        self.ca = ca
        self.defaults = {
            "v1": args.v1 == "on",
            "v2": args.v2 == "on",
            "down": False,
            "down_ms": 5000,
            "delay_ms": 0,
            "drop": None,
            "agent_expired": False,
            "basic": True,
            "ca_disabled": False,
            "random_ids": False,
            "profiles": parse_profiles(args.profiles),
            "authorities": {},
            "reject_message": "Request Rejected - Subject Name Not Matched",
            "version": args.version,
        }
        self.config = json.loads(json.dumps(self.defaults))
        self.agents = parse_principals(args.agents)
        self.users = parse_principals(args.users)
        self.requests = {}          # int id → record
        self.certs = {}             # int serial → record
        self.next_req = args.request_id_start
        self.next_serial = random.randint(0x10000000, 0x3fffffff)
        self.sessions = {}          # JSESSIONID → {"user", "nonces"}
        self.logins = []
        self.counters = {"v1": {}, "v2": {}, "legacy": {}}
        self.drops_done = {}
        self.connections = 0
        self.down_until = 0.0

    def set_config(self, new):
        """Validates and merges new into the config; raises ValueError."""
        bools = ("v1", "v2", "agent_expired", "basic", "ca_disabled",
                 "random_ids")
        if not isinstance(new, dict):
            raise ValueError("config must be a JSON object")
        for k, v in new.items():
            if k not in self.defaults:
                raise ValueError("unknown config key %r" % k)
            if k in bools and not isinstance(v, bool):
                raise ValueError("%s must be true or false" % k)
            if k == "down" and v not in (False, True, "refuse", "close", "503"):
                raise ValueError('down must be false, true, "refuse", "close" '
                                 'or "503"')
            if k == "down_ms" and not (isinstance(v, int) and 0 < v <= 600000):
                raise ValueError("down_ms must be 1..600000")
            if k == "delay_ms" and not (
                    (isinstance(v, (int, float)) and not isinstance(v, bool))
                    or (isinstance(v, dict) and all(
                        isinstance(x, (int, float)) for x in v.values()))):
                raise ValueError("delay_ms must be ms or {endpoint: ms}")
            if k == "drop" and not (v is None or isinstance(v, (str, list, dict))):
                raise ValueError("drop must be null, an endpoint, a list or "
                                 "{endpoint: count}")
            if k == "profiles":
                if not isinstance(v, dict):
                    raise ValueError("profiles must be {profile: mode}")
                for name, mode in v.items():
                    if mode is not None:
                        check_mode(name, mode)
            if k == "authorities":
                if not isinstance(v, dict) or not all(
                        s is None or s in AUTH_STATES for s in v.values()):
                    raise ValueError("authorities must be {uuid: %s|null}"
                                     % "|".join(AUTH_STATES))
            if k in ("reject_message", "version") and not (
                    isinstance(v, str) and v):
                raise ValueError("%s must be a non-empty string" % k)
        with self.lock:
            for k, v in new.items():
                if k in ("profiles", "authorities"):
                    merged = dict(self.config[k])
                    for name, mode in v.items():
                        if mode is None:
                            merged.pop(name, None)
                        else:
                            merged[name] = mode
                    self.config[k] = merged
                else:
                    self.config[k] = v
            if "drop" in new:
                self.drops_done = {}
            if new.get("down") in (True, "refuse"):
                self.down_until = time.time() + self.config["down_ms"] / 1000.0
            elif "down" in new:
                self.down_until = 0.0
            return json.loads(json.dumps(self.config))

    def cfg(self):
        with self.lock:
            return json.loads(json.dumps(self.config))

    def count(self, api, endpoint):
        with self.lock:
            t = self.counters.setdefault(api, {})
            t[endpoint] = t.get(endpoint, 0) + 1

    def new_request_id(self, random_ids):
        """A new request id: sequential, or 128-bit random (SSNv2)."""
        with self.lock:
            if random_ids:
                rid = secrets.randbits(128) | (1 << 127)
            else:
                rid = self.next_req
                self.next_req += 1
            return rid

    def new_serial(self, random_ids):
        with self.lock:
            if random_ids:
                return secrets.randbits(127) | (1 << 126)
            s = self.next_serial
            self.next_serial += 1
            return s

    def public(self, rec):
        out = {k: v for k, v in rec.items()
               if k not in ("csr_pem", "request_json", "cert_der")}
        out["id"] = hexid(rec["id"])
        out["id_dec"] = str(rec["id"])
        return out

    def snapshot(self):
        with self.lock:
            return {
                "requests": [self.public(r) for r in self.requests.values()],
                "certs": [{"id": hexid(c["serial"]), "request_id":
                           hexid(c["request_id"]), "subject": c["subject"]}
                          for c in self.certs.values()],
                "logins": list(self.logins),
                "counters": json.loads(json.dumps(self.counters)),
                "sessions": len(self.sessions),
                "connections": self.connections,
                "next_request_id": hexid(self.next_req),
                "config": json.loads(json.dumps(self.config)),
                "agents": sorted(self.agents),
                "users": sorted(self.users),
                "ca": {"dir": self.ca.dir,
                       "root": self.ca.path("root-ca.pem"),
                       "signing": self.ca.path("ca-signing.pem"),
                       "chain": self.ca.path("ca-chain.pem"),
                       "authority_id": self.ca.aid,
                       "issuer_dn": self.ca.issuer_dn},
            }


# --- HTTP ----------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """One instance per TCP connection."""

    protocol_version = "HTTP/1.1"
    server_version = ""
    sys_version = ""
    timeout = 120

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request = self.server.ssl_ctx.wrap_socket(self.request,
                                                       server_side=True)
        super().setup()
        self.peer_cn = None
        try:
            cert = self.request.getpeercert()
        except (ValueError, ssl.SSLError):
            cert = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        self.peer_cn = v
        with self.server.state.lock:
            self.server.state.connections += 1

    def finish(self):
        try:
            super().finish()
        finally:
            try:
                self.request.close()
            except OSError:
                pass

    def log_message(self, fmt, *args):
        pass    # One line per answer comes from send().

    def version_string(self):
        return ""

    def send_response(self, code, message=None):
        # No Server header (Dogtag hides it); Date stays.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # -- plumbing --

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body, ctype="application/json", headers=()):
        """One answer with Content-Length; may cut it (drop switch)."""
        self.send_response(status)
        hdrs = list(headers) + self.extra_headers
        if status != 204:
            self.send_header("Content-Type", ctype)
        for k, v in hdrs:
            self.send_header(k, v)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        drop = status == 200 and self.should_drop()
        if drop:
            self.send_header("Connection", "close")
        self.end_headers()
        log('%s:%d "%s %s" %d %d api=%s ep=%s user=%s%s' % (
            self.client_address[0], self.client_address[1], self.command,
            self.path[:200], status, len(body), self.api or "-",
            self.endpoint or "-", self.who or self.peer_cn or "-",
            " DROPPED" if drop else ""))
        if drop:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise Dropped()
        if status != 204:
            self.wfile.write(body)

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send(status, body, "application/json", headers)

    def send_tomcat(self, status, headers=()):
        reason, desc = {401: ("Unauthorized", DESC_401),
                        404: ("Not Found", DESC_404),
                        406: ("Not Acceptable", DESC_406)}[status]
        message = None
        if status == 404:
            message = "The requested resource [%s] is not available" % (
                self.path.partition("?")[0])
        self.send(status, tomcat_page(status, reason, desc, message),
                  "text/html;charset=utf-8",
                  [("Content-Language", "en")] + list(headers))

    def should_drop(self):
        st = self.server.state
        ep = self.endpoint
        if not ep:
            return False
        with st.lock:
            drop = st.config.get("drop")
            if not drop:
                return False
            if isinstance(drop, str):
                return drop == ep
            if isinstance(drop, list):
                return ep in drop
            v = drop.get(ep, "absent")
            if v == "absent":
                return False
            done = st.drops_done.get(ep, 0)
            if v is None or done < int(v):
                st.drops_done[ep] = done + 1
                return True
            return False

    # -- sessions and container authentication --

    def cookie_session(self):
        """(session id, session) from the JSESSIONID cookie, or (None, None)."""
        for part in self.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "JSESSIONID":
                with self.server.state.lock:
                    s = self.server.state.sessions.get(v)
                if s is not None:
                    return v, s
        return None, None

    def new_session(self, user, method):
        sid = secrets.token_hex(16).upper()
        s = {"user": user, "method": method, "nonces": {},
             "created": time.time()}
        with self.server.state.lock:
            self.server.state.sessions[sid] = s
        self.extra_headers.append(
            ("Set-Cookie", "JSESSIONID=%s; Path=/ca; Secure; HttpOnly" % sid))
        return sid, s

    def valid_cert_user(self, cfg):
        """The client certificate's CN if the container accepts it."""
        st = self.server.state
        cn = self.peer_cn
        if not cn or cfg["agent_expired"]:
            return None
        if cn in st.agents or cn in st.users:
            return cn
        return None

    def container_auth(self, cfg, fresh=False):
        """(user, method, session) for a constrained path, or raises Raw 401.

        SSLAuthenticatorWithFallback + alwaysUseSession: an existing session
        principal first (unless fresh, as for login), then the client
        certificate, then Basic."""
        st = self.server.state
        sid, sess = self.cookie_session()
        if sess is not None and sess.get("user") and not fresh:
            return sess["user"], "session", sess
        user = self.valid_cert_user(cfg)
        method = "cert"
        if user is None:
            hdr = self.headers.get("Authorization", "")
            scheme, _, cred = hdr.strip().partition(" ")
            if scheme.lower() == "basic" and cfg["basic"]:
                try:
                    name, _, pw = base64.b64decode(cred.strip()).decode(
                        "utf-8").partition(":")
                except (ValueError, UnicodeDecodeError):
                    name, pw = "", None
                want = st.agents.get(name, st.users.get(name))
                if name and want is not None and want == pw:
                    user, method = name, "basic"
                self.who = name or None
        if user is None:
            raise Raw(401, None, None, [
                ("WWW-Authenticate", 'Basic realm="%s"' % REALM)])
        if sess is not None:
            sess["user"], sess["method"] = user, method
        else:
            sid, sess = self.new_session(user, method)
        return user, method, sess

    def is_agent(self, user):
        return user in self.server.state.agents

    # -- dispatch --

    def dispatch(self, method):
        self.who = None
        self.api = None
        self.endpoint = None
        self.extra_headers = []
        try:
            self._dispatch(method)
        except Dropped:
            pass
        except (ConnectionError, ssl.SSLError, socket.timeout) as e:
            log("%s:%d connection lost while answering %s: %s" % (
                self.client_address[0], self.client_address[1], self.path, e))
            self.close_connection = True

    def _dispatch(self, method):
        st = self.server.state
        body = self.read_body()
        raw, _, query = self.path.partition("?")
        path = urllib.parse.unquote(raw)
        if path.startswith("/_fake/"):
            return self.control(method, path, body)
        cfg = st.cfg()
        if cfg["down"] in (True, "refuse", "close"):
            # "close" (or a connection that slipped in before the listener
            # closed): no answer at all.
            log("%s:%d \"%s %s\" closed: down" % (
                self.client_address[0], self.client_address[1], method,
                self.path[:200]))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise Dropped()
        if cfg["down"] == "503":
            return self.send(503, PAGE_503, "text/html; charset=iso-8859-1")
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        route = self.route(path)
        if route is None:
            self.endpoint = "not_found"
            st.count("unknown", "not_found")
            return self.send_tomcat(404)
        api, rest = route
        self.api = api
        if api in ("v1", "pki1"):
            self.extra_headers += list(V1_HEADERS)
        if api in ("v1", "pki1") and not cfg["v1"]:
            st.count("v1", "disabled")
            return self.send_json(404, {
                "error": "REST API v1 have been disabled",
                "message": "The REST API v1 have been disabled in this PKI "
                           "instance. Please use the API v2 instead.",
                "documentation": V2_DOC})
        if api in ("v2", "pki2") and not cfg["v2"]:
            st.count("v2", "absent")
            return self.send_tomcat(404)
        handler, endpoint, args = self.match(method, api, rest)
        self.endpoint = endpoint
        st.count({"pki1": "v1", "pki2": "v2"}.get(api, api), endpoint)
        if handler is None:
            return self.send_tomcat(404)
        delay = cfg["delay_ms"]
        if isinstance(delay, dict):
            # Endpoint name, else the longest path prefix, else "*".
            prefixes = sorted((k for k in delay
                               if k.startswith("/") and path.startswith(k)),
                              key=len, reverse=True)
            delay = delay.get(endpoint, delay.get(prefixes[0]) if prefixes
                              else delay.get("*", 0))
        if delay:
            time.sleep(delay / 1000.0)
            cfg = st.cfg()
        try:
            handler(cfg, q, body, *args)
        except PKIError as e:
            self.send_json(e.code, e.body())
        except Raw as e:
            if e.body is None:
                self.send_tomcat(e.status, e.headers)
            else:
                self.send(e.status, e.body, e.ctype, e.headers)

    @staticmethod
    def route(path):
        """(api, rest) for a known prefix, else None."""
        if path in ("/pki/v2/info", "/pki/v2/info/"):
            return "pki2", "info"
        if path in ("/pki/rest/info", "/pki/v1/info", "/pki/rest/info/",
                    "/pki/v1/info/"):
            return "pki1", "info"
        for prefix, api in (("/ca/v2/", "v2"), ("/ca/rest/", "v1"),
                            ("/ca/v1/", "v1"), ("/ca/ee/ca/", "legacy")):
            if path.startswith(prefix):
                return api, path[len(prefix):].rstrip("/")
        return None

    def match(self, method, api, rest):
        """(handler or None, endpoint name, args)."""
        if api in ("pki1", "pki2"):
            return (self.h_info if method == "GET" else None), "info", ()
        if api == "legacy":
            if rest == "getCertChain" and method in ("GET", "POST"):
                return self.h_getcertchain, "getCertChain", ()
            return None, "not_found", ()
        parts = rest.split("/") if rest else []
        if parts == ["account", "login"] and method in ("GET", "POST"):
            return self.h_login, "login", ()
        if parts == ["account", "logout"] and method in ("GET", "POST"):
            return self.h_logout, "logout", ()
        if len(parts) == 3 and parts[:2] == ["certrequests", "profiles"] \
                and method == "GET":
            return self.h_template, "template", (parts[2],)
        if len(parts) == 2 and parts[0] == "profiles" and method == "GET":
            return self.h_profile, "profile", (parts[1],)
        if parts == ["certrequests"] and method == "POST":
            return self.h_submit, "submit", ()
        if len(parts) == 2 and parts[0] == "certrequests" and method == "GET":
            return self.h_request, "request", (parts[1],)
        if len(parts) == 3 and parts[:2] == ["agent", "certrequests"] \
                and method == "GET":
            return self.h_review, "review", (parts[2],)
        if len(parts) == 4 and parts[:2] == ["agent", "certrequests"] \
                and method == "POST":
            action = parts[3]
            if action in ("approve", "reject", "cancel"):
                return self.h_action, action, (parts[2], action)
            if action in ("update", "validate", "assign", "unassign"):
                return self.h_action, "agent_other", (parts[2], action)
        if len(parts) == 2 and parts[0] == "certs" and method == "GET":
            return self.h_cert, "cert", (parts[1],)
        if len(parts) == 3 and parts[0] == "authorities" and \
                parts[2] == "chain" and method == "GET":
            return self.h_chain, "chain", (parts[1],)
        if parts == ["config", "cert", "signing"] and method == "GET":
            return self.h_signing, "signing", ()
        if parts and parts[0] in ("agent", "admin", "account"):
            # Constrained by the container even when nothing is there.
            return self.h_constrained_404, "not_found", ()
        return None, "not_found", ()

    # -- endpoints --

    def h_info(self, cfg, q, body):
        self.send_json(200, {"Name": "Dogtag Certificate System",
                             "Version": cfg["version"]})

    def h_constrained_404(self, cfg, q, body):
        self.container_auth(cfg)
        self.send_tomcat(404)

    def h_login(self, cfg, q, body):
        st = self.server.state
        user, method, sess = self.container_auth(cfg, fresh=True)
        self.who = user
        with st.lock:
            st.logins.append({"who": user, "method": method, "api": self.api,
                              "agent": user in st.agents,
                              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime())})
        roles = list(AGENT_ROLES) if self.is_agent(user) else []
        self.send_json(200, {"id": user, "FullName": user,
                             "Email": "%s@example.com" % user,
                             "Roles": roles})

    def h_logout(self, cfg, q, body):
        sid, sess = self.cookie_session()
        if sid:
            with self.server.state.lock:
                self.server.state.sessions.pop(sid, None)
        self.send(204, b"")

    def profile_mode(self, cfg, profile):
        mode = cfg["profiles"].get(profile)
        if mode is None:
            return None, None
        base, _, auth = mode.partition("+")
        return base, auth

    def template(self, profile, auth):
        inputs = [{
            "id": "i1", "ClassID": "certReqInputImpl",
            "Name": "Certificate Request Input", "ConfigAttribute": [],
            "Attribute": [
                {"name": "cert_request_type", "Descriptor": {
                    "Syntax": "cert_request_type",
                    "Description": "Certificate Request Type"}},
                {"name": "cert_request", "Descriptor": {
                    "Syntax": "cert_request",
                    "Description": "Certificate Request"}}]}]
        if auth == "agentcert":
            inputs.append({
                "id": "i2", "ClassID": "raClientAuthInfoInputImpl",
                "Name": "RA Client Authentication Information",
                "ConfigAttribute": [],
                "Attribute": [
                    {"name": n, "Descriptor": {"Syntax": "string",
                                               "Description": d}}
                    for n, d in (("ra_client_uid", "RA Client UID"),
                                 ("ra_client_name", "RA Client Name"),
                                 ("ra_client_certificate",
                                  "RA Client Certificate"))]})
        return {"ProfileID": profile, "Renewal": False, "Input": inputs,
                "Output": [], "Attributes": {"Attribute": []}}

    def h_template(self, cfg, q, body, profile):
        base, auth = self.profile_mode(cfg, profile)
        if base is None:
            raise PKIError(400, "Unable to get enrollment template for %s: "
                           "Profile not found" % profile)
        self.send_json(200, self.template(profile, auth))

    def h_profile(self, cfg, q, body, profile):
        """ProfileData of a profile (§2 note in the docstring above)."""
        sid, sess = self.cookie_session()
        user = sess.get("user") if sess is not None else None
        if not user:
            raise PKIError(403, "Anonymous access not allowed.")
        self.who = user
        if sess.get("method") != "cert":
            raise PKIError(403, "Authentication method not allowed.")
        if not self.is_agent(user):
            raise PKIError(403, "Authorization Error: %s is not permitted "
                           "certServer.profile.configuration,read" % user)
        base, auth = self.profile_mode(cfg, profile)
        if base is None:
            raise PKIError(404, "Profile not found: %s" % profile,
                           "com.netscape.certsrv.profile."
                           "ProfileNotFoundException")
        data = {"id": profile, "classId": "caEnrollImpl",
                "name": "Fake profile %s" % profile,
                "description": "Fake profile %s" % profile,
                "enabled": base != "disabled", "visible": True,
                "renewal": False, "xmlOutput": False,
                "Input": self.template(profile, auth)["Input"],
                "Output": [], "PolicySets": {}}
        # NON_NULL: a disabled profile has no enabledBy.
        if base != "disabled":
            data["enabledBy"] = "caadmin"
        if auth:
            data["authenticatorId"] = {"agentcert": "AgentCertAuth",
                                       "session": "SessionAuthn"}[auth]
        self.send_json(200, data)

    def request_info(self, rec, with_result=False):
        info = {"requestID": hexid(rec["id"]), "requestType": "enrollment",
                "requestStatus": rec["state"], "certRequestType": "pkcs10",
                "creationTime": rec["created_ms"],
                "modificationTime": rec["modified_ms"]}
        if with_result:
            info["operationResult"] = "success"
        if rec.get("cert_id") is not None:
            info["certId"] = hexid(rec["cert_id"])
        if rec.get("error_message"):
            info["errorMessage"] = rec["error_message"]
        if self.api == "v1":
            base = "https://%s/ca/rest" % (self.headers.get("Host") or
                                           "%s:%d" % self.server.server_address[:2])
            info["requestURL"] = "%s/certrequests/%d" % (base, rec["id"])
            if rec.get("cert_id") is not None:
                info["certURL"] = "%s/certs/%d" % (base, rec["cert_id"])
        return info

    @staticmethod
    def find_attr(req, name):
        for inp in req.get("Input") or []:
            if not isinstance(inp, dict):
                continue
            for a in inp.get("Attribute") or []:
                if isinstance(a, dict) and a.get("name") == name:
                    return a.get("Value")
        return None

    def resolve_issuer(self, cfg, q):
        """Checks issuer-id / issuer-dn (§2, §8); raises PKIError."""
        st = self.server.state
        aid, dn = q.get("issuer-id"), q.get("issuer-dn")
        if aid is not None and dn is not None:
            raise PKIError(400, "Bad request data: Cannot provide both "
                           "issuer-id and issuer-dn")
        if aid is not None:
            try:
                aid_norm = str(uuid.UUID(aid))
            except ValueError:
                raise PKIError(400, "Bad request data: Bad AuthorityID: %s"
                               % aid)
            if aid_norm == st.ca.aid:
                return
            state = cfg["authorities"].get(aid_norm)
            if state is None:
                raise PKIError(404, "CA not found: %s" % aid_norm)
            if state == "disabled":
                raise PKIError(409, "CA not enabled")
            if state == "not_ready":
                raise PKIError(503, "CA signing unit not ready")
            return
        if dn is not None:
            if not re.fullmatch(r"\s*[A-Za-z0-9.]+\s*=[^,]+(,\s*[A-Za-z0-9.]+"
                                r"\s*=[^,]+)*\s*", dn):
                raise PKIError(400, "Bad request data: Invalid issuer-dn: %s"
                               % dn)
            norm = [p.strip().lower() for p in dn.split(",")]
            if norm != [p.strip().lower() for p in st.ca.issuer_dn.split(",")]:
                raise PKIError(404, "CA not found: %s" % dn)

    def h_submit(self, cfg, q, body):
        st = self.server.state
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            raise PKIError(400, "Bad request data: unable to parse request")
        profile = req.get("ProfileID") or ""
        self.resolve_issuer(cfg, q)
        base, auth = self.profile_mode(cfg, profile)
        if base is None:
            raise PKIError(400, "Bad request data: Profile %s Not Found"
                           % profile)
        if base == "disabled":
            raise PKIError(400, "Bad request data: Profile %s not enabled"
                           % profile)
        if cfg["ca_disabled"]:
            raise PKIError(409, "CA not enabled")
        # Profile authenticator.
        submitter, how = None, "none"
        if auth == "agentcert":
            user = self.valid_cert_user(cfg)
            if user is None or not self.is_agent(user):
                raise PKIError(401, "Authentication failed: Invalid "
                               "Credential.")
            submitter, how = user, "agentcert"
        elif auth == "session":
            sid, sess = self.cookie_session()
            user = sess.get("user") if sess else None
            if not user:
                raise PKIError(401, "Authentication failed: Invalid "
                               "Credential.")
            if not self.is_agent(user):
                raise PKIError(401, "Authorization failed: %s is not an "
                               "agent" % user)
            submitter, how = user, "session"
        else:
            sid, sess = self.cookie_session()
            submitter = (sess or {}).get("user") or self.peer_cn
        self.who = submitter
        rtype = self.find_attr(req, "cert_request_type") or "pkcs10"
        csr_text = self.find_attr(req, "cert_request") or ""
        try:
            if rtype != "pkcs10":
                raise ValueError("cert_request_type %s" % rtype)
            text = re.sub(r"-----(BEGIN|END)[^-]*-----", "", str(csr_text))
            text = re.sub(r"\s+", "", text)
            if not text:
                raise ValueError("empty")
            der = base64.b64decode(text, validate=True)
            csr_pem, subject = st.ca.csr_check(der)
        except (ValueError, RuntimeError) as e:
            log("submit: request unreadable: %s" % str(e)[:200])
            raise PKIError(500, "Unable to create enrollment request: "
                           "Invalid Request")
        now = int(time.time() * 1000)
        rid = st.new_request_id(cfg["random_ids"])
        rec = {"id": rid, "state": "pending", "profile": profile,
               "api": self.api, "submitted_by": submitter, "auth": how,
               "subject": subject, "created_ms": now, "modified_ms": now,
               "cert_id": None, "error_message": None, "approved_by": None,
               "issuer_id": q.get("issuer-id"), "csr_pem": csr_pem,
               "request_json": req, "remote_addr": self.client_address[0]}
        with st.lock:
            st.requests[rid] = rec
        if base == "reject":
            self.finish_request(rec, "rejected", cfg["reject_message"])
        elif base == "error":
            self.finish_request(rec, "rejected",
                                "Request %d - Server Internal Error" % rid)
        elif base == "auto":
            try:
                self.issue_request(rec, cfg, "system")
            except RuntimeError as e:
                log("submit: signing request %s failed: %s" % (hexid(rid), e))
                self.finish_request(rec, "rejected",
                                    "Request %d - Server Internal Error" % rid)
        self.send_json(200, {"total": 1, "entries": [
            self.request_info(rec, with_result=True)]})

    def finish_request(self, rec, state, message=None):
        with self.server.state.lock:
            rec["state"] = state
            rec["error_message"] = message
            rec["modified_ms"] = int(time.time() * 1000)

    def issue_request(self, rec, cfg, approver):
        st = self.server.state
        serial = st.new_serial(cfg["random_ids"])
        der = st.ca.issue(rec["csr_pem"], serial)
        info = st.ca.cert_info(der)
        with st.lock:
            st.certs[serial] = {"serial": serial, "der": der,
                                "request_id": rec["id"],
                                "subject": info["subject"], "info": info}
            rec["state"] = "complete"
            rec["cert_id"] = serial
            rec["approved_by"] = approver
            rec["modified_ms"] = int(time.time() * 1000)

    def lookup_request(self, text):
        st = self.server.state
        rid = parse_id(text)
        if rid is None:
            raise PKIError(400, "Bad request data: Invalid request ID: %s"
                           % text)
        with st.lock:
            rec = st.requests.get(rid)
        if rec is None:
            raise PKIError(404, "Request ID %s not found" % hexid(rid),
                           REQ_NOT_FOUND,
                           [{"name": "requestId", "value": str(rid)}])
        return rec

    def h_request(self, cfg, q, body, text):
        rec = self.lookup_request(text)
        self.send_json(200, self.request_info(rec))

    def agent_auth(self, cfg):
        user, method, sess = self.container_auth(cfg)
        self.who = user
        if not self.is_agent(user):
            raise PKIError(403, "Authorization Error: %s is not permitted "
                           "certServer.ca.certrequests,execute" % user)
        return user, sess

    def review_body(self, rec, nonce):
        st = self.server.state
        out = json.loads(json.dumps(rec["request_json"]))
        out.setdefault("ProfileID", rec["profile"])
        out.setdefault("Renewal", False)
        out.setdefault("Input", [])
        out.setdefault("Output", [])
        out.setdefault("Attributes", {"Attribute": []})
        out.update({
            "nonce": str(nonce),
            "requestId": hexid(rec["id"]),
            "requestType": "enrollment",
            "requestStatus": rec["state"],
            "requestOwner": "",
            "requestCreationTime": str(rec["created_ms"]),
            "requestModificationTime": str(rec["modified_ms"]),
            "requestNotes": "",
            "profileApprovedBy": rec.get("approved_by") or "",
            "profileSetId": "serverCertSet",
            "profileIsVisible": "true",
            "profileName": rec["profile"],
            "profileDescription": "Fake profile %s" % rec["profile"],
            "profileRemoteHost": rec["remote_addr"],
            "profileRemoteAddr": rec["remote_addr"],
            "ProfilePolicySet": [{
                "id": "serverCertSet",
                "value": [{
                    "id": "1",
                    "def": {"id": "Subject Name Default",
                            "name": "Subject Name Default",
                            "text": "This default populates a User-Supplied "
                                    "Certificate Subject Name to the request.",
                            "ClassId": "userSubjectNameDefaultImpl",
                            "Attribute": [{"name": "name",
                                           "Value": rec["subject"],
                                           "Descriptor": {
                                               "Syntax": "string",
                                               "Description": "Subject Name"}}],
                            "params": []},
                    "constraint": {"id": "Subject Name Constraint",
                                   "name": "Subject Name Constraint",
                                   "text": "This constraint accepts the "
                                           "subject name that matches "
                                           "UID=.*",
                                   "classId": "subjectNameConstraintImpl",
                                   "constraint": []}}]}],
        })
        return out

    def h_review(self, cfg, q, body, text):
        user, sess = self.agent_auth(cfg)
        try:
            rec = self.lookup_request(text)
        except PKIError as e:
            if self.api == "v2" and e.code == 404:
                # AgentCertRequestServlet.reviewRequest's catch-all.
                raise PKIError(500, "Unable to review request: %s" % e.message)
            raise
        nonce = secrets.randbits(63)
        with self.server.state.lock:
            sess["nonces"][rec["id"]] = nonce
        self.send_json(200, self.review_body(rec, nonce))

    def h_action(self, cfg, q, body, text, action):
        st = self.server.state
        user, sess = self.agent_auth(cfg)
        rec = self.lookup_request(text)
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError()
        except ValueError:
            raise PKIError(400, "Bad request data: unable to parse review "
                           "data")
        if action in ("update", "validate", "assign", "unassign"):
            return self.send(204, b"")
        nonce = data.get("nonce")
        if nonce is None or nonce == "":
            raise PKIError(400, "Missing nonce.")
        with st.lock:
            want = sess["nonces"].get(rec["id"])
        if want is None:
            raise PKIError(400, "Nonce for cert-request %d does not exist"
                           % rec["id"])
        try:
            given = int(str(nonce))
        except ValueError:
            given = None
        if given != want:
            raise PKIError(403, "Invalid nonce: %s" % nonce)
        with st.lock:
            sess["nonces"].pop(rec["id"], None)
            state = rec["state"]
        if state != "pending":
            raise PKIError(400, "Bad request data: Request Not In Pending "
                           "State")
        if action == "approve":
            if cfg["ca_disabled"]:
                raise PKIError(409, "CA not enabled")
            self.check_authority_for_approve(cfg, rec)
            try:
                self.issue_request(rec, cfg, user)
            except RuntimeError as e:
                log("approve: signing %s failed: %s" % (hexid(rec["id"]), e))
                raise PKIError(500, "Request %d - Server Internal Error"
                               % rec["id"])
        elif action == "reject":
            self.finish_request(rec, "rejected")
        else:
            self.finish_request(rec, "canceled")
        self.send(204, b"")

    def check_authority_for_approve(self, cfg, rec):
        """A lightweight CA gone, disabled or keyless since the submission
        (§8: 410 / 409 / 503)."""
        aid = rec.get("issuer_id")
        if not aid:
            return
        try:
            aid = str(uuid.UUID(aid))
        except ValueError:
            return
        if aid == self.server.state.ca.aid:
            return
        state = cfg["authorities"].get(aid)
        if state is None:
            raise PKIError(410, "CA %s has been deleted" % aid)
        if state == "disabled":
            raise PKIError(409, "CA not enabled")
        if state == "not_ready":
            raise PKIError(503, "CA signing unit not ready")

    def cert_data(self, serial, der, info, only_chain=False):
        chain = self.server.state.ca.chain_ders
        p7 = self.server.state.ca.p7b(chain if only_chain else [der] + chain)
        out = {"id": hexid(serial), "IssuerDN": info["issuer"],
               "SubjectDN": info["subject"], "Status": "VALID",
               "Encoded": pem(der), "PKCS7CertChain": b64lines(p7),
               "NotBefore": java_date(info["not_before"]),
               "NotAfter": java_date(info["not_after"])}
        if self.api == "v1":
            out["PrettyPrint"] = info["pretty"]
        return out

    def h_cert(self, cfg, q, body, text):
        st = self.server.state
        serial = parse_id(text)
        if serial is None:
            raise PKIError(400, "Bad request data: Invalid certificate ID: %s"
                           % text)
        with st.lock:
            c = st.certs.get(serial)
        ca = st.ca
        if c is None and serial == ca.signing_info["serial_int"]:
            return self.send_json(200, self.cert_data(
                serial, ca.signing_der, ca.signing_info, only_chain=True))
        if c is None:
            raise PKIError(404, "Certificate ID %s not found" % hexid(serial),
                           CERT_NOT_FOUND)
        self.send_json(200, self.cert_data(serial, c["der"], c["info"]))

    def h_chain(self, cfg, q, body, aid):
        st = self.server.state
        if aid != "host-authority":
            try:
                norm = str(uuid.UUID(aid))
            except ValueError:
                raise PKIError(400, "Bad request data: Bad AuthorityID: %s"
                               % aid)
            state = cfg["authorities"].get(norm)
            if norm != st.ca.aid and state in (None, "not_ready"):
                raise PKIError(404, 'CA "%s" not found' % norm)
        accept = (self.headers.get("Accept") or "").lower()
        types = [t.split(";")[0].strip() for t in accept.split(",") if t.strip()]
        if not types or any(t in ("application/pkcs7-mime", "*/*",
                                  "application/*") for t in types):
            if "application/x-pem-file" in types and (
                    types.index("application/x-pem-file") <
                    min(types.index(t) for t in types if t in (
                        "application/pkcs7-mime", "*/*", "application/*"))):
                return self.send(200, pem(st.ca.chain_p7, "PKCS7").encode(),
                                 "application/x-pem-file")
            return self.send(200, st.ca.chain_p7, "application/pkcs7-mime")
        if "application/x-pem-file" in types:
            return self.send(200, pem(st.ca.chain_p7, "PKCS7").encode(),
                             "application/x-pem-file")
        raise Raw(406, None, None)

    def h_signing(self, cfg, q, body):
        ca = self.server.state.ca
        etag = '"%s"' % hashlib.sha256(ca.signing_der).hexdigest()[:16]
        out = self.cert_data(ca.signing_info["serial_int"], ca.signing_der,
                             ca.signing_info, only_chain=True)
        self.send_json(200, out, [("ETag", etag)])

    def h_getcertchain(self, cfg, q, body):
        ca = self.server.state.ca
        b64 = base64.b64encode(ca.chain_p7).decode()
        if q.get("xml", "").lower() == "true":
            out = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
                   "<XMLResponse><Status>0</Status><ChainBase64>%s"
                   "</ChainBase64></XMLResponse>" % b64)
            return self.send(200, out.encode(), "application/xml")
        self.send_json(200, {"Response": {"Status": "0", "ChainBase64": b64}})

    # -- control API --

    def control(self, method, path, body):
        st = self.server.state
        parts = [p for p in path.split("/") if p][1:]
        try:
            obj = json.loads(body) if body.strip() else {}
        except ValueError as e:
            return self.send_json(400, {"error": "body is not JSON: %s" % e})
        if parts == ["state"] and method == "GET":
            return self.send_json(200, st.snapshot())
        if parts == ["config"] and method == "GET":
            return self.send_json(200, st.cfg())
        if parts == ["config"] and method == "POST":
            try:
                new = st.set_config(obj)
            except ValueError as e:
                return self.send_json(400, {"error": str(e)})
            self.send_json(200, new)
            if new["down"] in (True, "refuse"):
                self.close_connection = True
                self.server.refuse_event.set()
            return None
        if parts == ["reset"] and method == "POST":
            with st.lock:
                st.config = json.loads(json.dumps(st.defaults))
                st.drops_done = {}
                st.down_until = 0.0
            return self.send_json(200, st.cfg())
        if parts == ["sessions", "clear"] and method == "POST":
            with st.lock:
                n = len(st.sessions)
                st.sessions.clear()
            return self.send_json(200, {"cleared": n})
        if len(parts) >= 2 and parts[0] == "requests":
            rid = parse_id(parts[1])
            with st.lock:
                rec = st.requests.get(rid) if rid is not None else None
            if rec is None:
                return self.send_json(404, {"error": "no request %s" % parts[1]})
            if len(parts) == 2 and method == "GET":
                out = st.public(rec)
                out["csr_pem"] = rec["csr_pem"].decode()
                c = st.certs.get(rec.get("cert_id"))
                if c:
                    out["cert_pem"] = pem(c["der"])
                    out["cert_id"] = hexid(c["serial"])
                return self.send_json(200, out)
            if len(parts) == 3 and method == "POST" and \
                    parts[2] in ("approve", "reject", "cancel"):
                if rec["state"] != "pending":
                    return self.send_json(409, {"error": "request %s is %s" % (
                        hexid(rec["id"]), rec["state"])})
                if parts[2] == "approve":
                    try:
                        self.issue_request(rec, st.cfg(), "control")
                    except RuntimeError as e:
                        return self.send_json(500, {"error": str(e)})
                elif parts[2] == "reject":
                    self.finish_request(rec, "rejected", obj.get("message"))
                else:
                    self.finish_request(rec, "canceled")
                out = st.public(rec)
                if rec.get("cert_id") is not None:
                    out["cert_id"] = hexid(rec["cert_id"])
                return self.send_json(200, out)
        return self.send_json(404, {"error": "no such control call: %s %s"
                                    % (method, path)})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Tomcat queues many connections; Python's default of 5 would turn a
    # burst into SYN retransmits that no real CA causes.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ssl.SSLError, ConnectionError, socket.timeout, OSError)):
            log("%s:%d connection failed: %s" % (client_address[0],
                                                  client_address[1], e))
            return
        super().handle_error(request, client_address)

    def reopen(self):
        self.socket = socket.socket(self.address_family, self.socket_type)
        self.server_bind()
        self.server_activate()

    def run(self):
        """serve_forever with a listener that can be closed ("refuse")."""
        self.stopping = False
        listening = True
        while not self.stopping:
            st = self.state
            with st.lock:
                refuse = st.config["down"] in (True, "refuse") and \
                    time.time() < st.down_until
                if st.config["down"] in (True, "refuse") and not refuse:
                    st.config["down"] = False     # period over
            if refuse and self.wake_refuse.is_set():
                refuse = False
                with st.lock:
                    st.config["down"] = False
                    st.down_until = 0.0
            self.wake_refuse.clear()
            if refuse and listening:
                time.sleep(0.05)      # let the control answer go out
                self.socket.close()
                listening = False
                log("down: listener closed, connections refused")
            elif not refuse and not listening:
                try:
                    self.reopen()
                    listening = True
                    log("down over: listening again on %s:%d"
                        % self.server_address[:2])
                except OSError as e:
                    log("reopen failed: %s" % e)
                    time.sleep(0.2)
                    continue
            if not listening:
                self.refuse_event.wait(0.1)
                self.refuse_event.clear()
                continue
            with selectors.DefaultSelector() as sel:
                sel.register(self.socket, selectors.EVENT_READ)
                ready = sel.select(0.1)
            if self.refuse_event.is_set():
                self.refuse_event.clear()
                continue
            if ready:
                self._handle_request_noblock()
        self.server_close()


def main():
    ap = argparse.ArgumentParser(description="fake Dogtag CA REST server")
    ap.add_argument("--listen", required=True, help="HOST:PORT (port 0: any free)")
    ap.add_argument("--cert", required=True, help="TLS certificate (PEM, chain)")
    ap.add_argument("--key", required=True, help="TLS key (PEM)")
    ap.add_argument("--client-ca", required=True,
                    help="CA file for TLS client certificates")
    ap.add_argument("--state-dir", required=True, help="CA material goes here")
    ap.add_argument("--agents", default="demo-client,caadmin:Secret.123")
    ap.add_argument("--users", default="")
    ap.add_argument("--version", default="11.7.0")
    ap.add_argument("--v1", choices=("on", "off"), default="on")
    ap.add_argument("--v2", choices=("on", "off"), default="on")
    ap.add_argument("--profiles", default="caServerCert:auto,"
                    "estServiceCert:auto+agentcert,caManual:pending,"
                    "caReject:reject,caOff:disabled")
    ap.add_argument("--request-id-start", type=lambda s: int(s, 0), default=26)
    args = ap.parse_args()
    try:
        parse_profiles(args.profiles)
    except ValueError as e:
        ap.error(str(e))

    host, _, port = args.listen.rpartition(":")
    try:
        ca = CA(args.state_dir)
    except (RuntimeError, OSError) as e:
        log("CA setup in %s failed: %s" % (args.state_dir, e))
        return 1
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        srv = Server((host or "127.0.0.1", int(port)), Handler)
    except OSError as e:
        log("bind %s failed: %s" % (args.listen, e))
        return 1
    srv.ssl_ctx = ctx
    srv.state = State(args, ca)
    srv.refuse_event = threading.Event()
    srv.wake_refuse = threading.Event()

    def stop(signum, frame):
        log("signal %d, shutting down" % signum)
        srv.stopping = True
        srv.refuse_event.set()

    def wake(signum, frame):
        srv.wake_refuse.set()
        srv.refuse_event.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, wake)
    h, p = srv.server_address[:2]
    # Later re-binds (after "down") must reuse the same port.
    srv.server_address = (h, p)
    print("%s: ready on %s:%d" % (PROG, h, p), flush=True)
    log("CA %s (authority %s), state in %s" % (ca.issuer_dn, ca.aid, ca.dir))
    srv.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
