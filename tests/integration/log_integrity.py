#!/usr/bin/env python3
"""log_integrity.py: feeds client-supplied fields with hostile bytes to a
running estrad and parses every line of its logs back.

    log_integrity.py HOST:PORT CACERT USER:PASSWORD LOGDIR

Each request carries one hostile field: a Basic user name, a User-Agent,
a query string, a Content-Type, a CSR subject (a quote, a new line and
bytes that are not UTF-8) and a CSR subjectAltName (\\xff).  The hostile
values try to forge fields ("label=phones outcome=ISSUED", ", identity:
...").  Then every line of access.log, error.log and audit.log must parse:
the access log with a tokenizer of its documented shape, the error log's
context keys once each outside quoted text, the audit log as JSON with no
key missing, and each hostile value must come back byte for byte from its
escaped form (\\xHH, \\" and \\\\).  Prints one line per problem and exits
1 when there is any.
"""
import base64
import json
import os
import re
import socket
import ssl
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

EST = "/.well-known/est"
FORGE = ' label=phones outcome=ISSUED x="'
HOSTILE_USER = b'ev"il' + FORGE.encode() + b"\\ \x01\xff"
HOSTILE_UA = b'ua"' + FORGE.encode() + b"\\\x01\x1b\xfe"
HOSTILE_QUERY = b'?q="\\\x01\xff'
HOSTILE_TYPE = b'text/x", identity: "admin", label: phones\\\x01\xff'
HOSTILE_CN = b'cn"\n, identity: "admin\\\xff\xc3('
HOSTILE_DNS = b"hidden\xff.example"

problems = []


def problem(text):
    problems.append(text)


# --- DER, just enough for one CSR ------------------------------------------


def der(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + content


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.insert(0, 0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(chunk)
    return der(0x06, body)


def hostile_csr(cn_tag):
    """A signed PKCS#10 request whose CN holds HOSTILE_CN (not UTF-8) as
    the string type cn_tag and whose SAN is the dNSName HOSTILE_DNS."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    cn = der(0x31, der(0x30, oid("2.5.4.3") + der(cn_tag, HOSTILE_CN)))
    org = der(0x31, der(0x30, oid("2.5.4.10") + der(0x0C, b"log test")))
    name = der(0x30, org + cn)
    san = der(0x30, der(0x82, HOSTILE_DNS))
    ext = der(0x30, oid("2.5.29.17") + der(0x04, san))
    attr = der(0x30, oid("1.2.840.113549.1.9.14") +
               der(0x31, der(0x30, ext)))
    info = der(0x30, der(0x02, b"\x00") + name + spki + der(0xA0, attr))
    sig = key.sign(info, ec.ECDSA(hashes.SHA256()))
    alg = der(0x30, oid("1.2.840.10045.4.3.2"))
    return der(0x30, info + alg + der(0x03, b"\x00" + sig))


# --- raw HTTP over TLS ------------------------------------------------------


def request(host, cacert, raw):
    """Sends raw (a whole HTTP/1.1 request) and returns (status, headers
    dict with lower-case names, body)."""
    addr, port = host.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=cacert)
    ctx.check_hostname = False
    with socket.create_connection((addr, int(port)), timeout=20) as sock:
        with ctx.wrap_socket(sock) as tls:
            tls.sendall(raw)
            data = b""
            while True:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLError, ConnectionError):
                    break
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.decode("latin-1").strip().lower()] = \
            v.decode("latin-1").strip()
    return status, headers, body


def http(method, target, headers, body=b""):
    h = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return (method + b" " + target + b" HTTP/1.1\r\nHost: estrad\r\n" + h +
            b"Content-Length: " + str(len(body)).encode() +
            b"\r\nConnection: close\r\n\r\n" + body)


def basic(cred):
    return b"Basic " + base64.b64encode(cred)


# --- escaping ---------------------------------------------------------------


def unescape(text):
    """The bytes an escaped log value stands for: \\xHH, \\" and \\\\."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "x" and re.match(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += n.encode()
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def split_quoted(line):
    """Splits line into (text outside quotes, [quoted strings]), a quoted
    string ending at the first double quote not behind a backslash."""
    outside, quoted, cur, i, inq = [], [], [], 0, False
    while i < len(line):
        c = line[i]
        if inq and c == "\\" and i + 1 < len(line):
            cur.append(line[i:i + 2])
            i += 2
            continue
        if c == '"':
            if inq:
                quoted.append("".join(cur))
            else:
                outside.append("".join(cur))
            cur, inq = [], not inq
            i += 1
            continue
        cur.append(c)
        i += 1
    if inq:
        return None, None
    outside.append("".join(cur))
    return " ".join(outside), quoted


def tokens(line):
    """Access-log tokens: split on spaces outside quotes, quotes kept."""
    out, cur, i, inq = [], "", 0, False
    while i < len(line):
        c = line[i]
        if inq and c == "\\" and i + 1 < len(line):
            cur += line[i:i + 2]
            i += 2
            continue
        if c == '"':
            inq = not inq
        if c == " " and not inq:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return None if inq else out


ACCESS_KEYS = ["tls", "auth", "id", "label", "op", "backend", "outcome",
               "ca_ms", "ms", "retry_after", "ua"]


def parse_access(line):
    """Returns a dict of one access-log line, or None when it does not
    have the documented shape."""
    t = tokens(line)
    if t is None or len(t) != 6 + len(ACCESS_KEYS):
        return None
    if not re.match(r"^rid=[0-9a-f]{16}$", t[2]) or \
            not (t[3].startswith('"') and t[3].endswith('"')):
        return None
    rec = {"rid": t[2][4:], "request": t[3][1:-1], "status": t[4]}
    for key, tok in zip(ACCESS_KEYS, t[6:]):
        k, eq, v = tok.partition("=")
        if k != key or not eq:
            return None
        if key in ("id", "ua"):
            if len(v) < 2 or v[0] != '"' or v[-1] != '"':
                return None
            v = v[1:-1]
        rec[key] = v
    return rec


ERROR_KEYS = ["client", "identity", "label", "op", "backend", "url",
              "answer", "hint"]


def check_error_line(line):
    outside, quoted = split_quoted(line)
    if outside is None:
        problem("error.log: unbalanced quotes: %r" % line)
        return
    for key in ERROR_KEYS:
        if outside.count(", %s: " % key) > 1:
            problem("error.log: %s: given twice: %r" % (key, line))


# --- the run ----------------------------------------------------------------


def main():
    host, cacert, cred, logs = sys.argv[1:5]
    cred = cred.encode()
    # A TeletexString takes any bytes (OpenSSL reads them as Latin-1); a
    # UTF8String that is not UTF-8 is refused as a bad CSR.
    csr_b64 = base64.b64encode(hostile_csr(0x14))
    bad_utf8_b64 = base64.b64encode(hostile_csr(0x0C))
    sent = {}  # rid -> what

    def send(what, raw, want):
        status, headers, _ = request(host, cacert, raw)
        rid = headers.get("x-request-id", "")
        if status not in want:
            problem("%s: status %d, expected %s" % (what, status, want))
        if rid:
            sent[rid] = what
        elif status in want:
            problem("%s: no X-Request-ID" % what)
        return rid

    pkcs10 = [(b"Content-Type", b"application/pkcs10")]
    r_user = send("user name", http(
        b"POST", EST.encode() + b"/simpleenroll",
        pkcs10 + [(b"Authorization", basic(HOSTILE_USER + b":x"))],
        csr_b64), (401,))
    r_ua = send("user agent", http(
        b"GET", EST.encode() + b"/cacerts",
        [(b"User-Agent", HOSTILE_UA)]), (200,))
    r_query = send("query string", http(
        b"GET", EST.encode() + b"/cacerts" + HOSTILE_QUERY, []),
        (200, 400))
    r_type = send("content type", http(
        b"POST", EST.encode() + b"/simpleenroll",
        [(b"Content-Type", HOSTILE_TYPE),
         (b"Authorization", basic(cred))], csr_b64), (415,))
    r_csr = send("csr", http(
        b"POST", EST.encode() + b"/simpleenroll",
        pkcs10 + [(b"Authorization", basic(cred))], csr_b64), (200, 403))
    r_bad = send("csr not UTF-8", http(
        b"POST", EST.encode() + b"/simpleenroll",
        pkcs10 + [(b"Authorization", basic(cred))], bad_utf8_b64), (400,))

    # The logs are written as answers leave; the audit writer may lag.
    paths = {k: os.path.join(logs, k + ".log")
             for k in ("access", "error", "audit")}
    for _ in range(50):
        text = open(paths["audit"], "rb").read() \
            if os.path.exists(paths["audit"]) else b""
        if all(r.encode() in text
               for r in (r_user, r_type, r_csr, r_bad) if r):
            break
        time.sleep(0.1)

    raw = {k: open(p, "rb").read() for k, p in paths.items()}
    for k, data in raw.items():
        for n, line in enumerate(data.split(b"\n")[:-1], 1):
            bad = [b for b in line if b < 0x20 or b >= 0x7F]
            if bad:
                problem("%s.log:%d: raw byte 0x%02x" % (k, n, bad[0]))

    access = {}
    for line in raw["access"].decode("latin-1").splitlines():
        rec = parse_access(line)
        if rec is None:
            problem("access.log: does not parse: %r" % line)
            continue
        if rec["rid"] in access:
            problem("access.log: two lines for rid %s" % rec["rid"])
        access[rec["rid"]] = rec
    for rid, what in sent.items():
        rec = access.get(rid)
        if rec is None:
            problem("access.log: no line for the %s request" % what)
            continue
        if rec["label"] not in ("default", "-") or \
                rec["outcome"] not in ("ISSUED", "REFUSED", "-"):
            problem("access.log: %s: forged label or outcome: %r" %
                    (what, rec))
    if r_user in access and unescape(access[r_user]["id"]) != HOSTILE_USER:
        problem("access.log: user name not recorded losslessly: %r" %
                access[r_user]["id"])
    if r_ua in access and unescape(access[r_ua]["ua"]) != HOSTILE_UA:
        problem("access.log: User-Agent not recorded losslessly: %r" %
                access[r_ua]["ua"])
    if r_query in access:
        target = unescape(access[r_query]["request"])
        if not target.endswith(HOSTILE_QUERY + b" HTTP/1.1"):
            problem("access.log: query string not recorded losslessly: "
                    "%r" % access[r_query]["request"])

    rid_re = re.compile(r" rid=([0-9a-f]{16}) ")
    type_seen = False
    for line in raw["error"].decode("latin-1").splitlines():
        check_error_line(line)
        m = rid_re.search(line)
        if m is None or m.group(1) not in sent:
            continue
        outside, quoted = split_quoted(line)
        if outside is None:
            continue
        if m.group(1) == r_type and "Content-Type" in line:
            type_seen = True
            if HOSTILE_TYPE not in [unescape(q) for q in quoted]:
                problem("error.log: Content-Type not quoted losslessly: "
                        "%r" % line)
        if m.group(1) == r_user and "identity: " in outside:
            if HOSTILE_USER not in [unescape(q) for q in quoted]:
                problem("error.log: identity not recorded losslessly: %r"
                        % line)
    if r_type and not type_seen:
        problem("error.log: no line names the Content-Type")

    audit = {}
    for n, line in enumerate(raw["audit"].splitlines(), 1):
        try:
            rec = json.loads(line)
        except ValueError as e:
            problem("audit.log:%d: not JSON: %s" % (n, e))
            continue
        for key in ("ts", "rid", "event", "label", "op", "client", "auth",
                    "http_status"):
            if key not in rec:
                problem("audit.log:%d: no %s: %r" % (n, key, line))
        for key in ("method", "identity"):
            if key not in rec.get("auth", {}):
                problem("audit.log:%d: no auth.%s: %r" % (n, key, line))
        if "reason" not in rec and "cert" not in rec:
            problem("audit.log:%d: neither reason nor cert" % n)
        if "csr" in rec:
            for key in ("subject", "san", "key", "spki_sha256"):
                if key not in rec["csr"]:
                    problem("audit.log:%d: no csr.%s" % (n, key))
        audit[rec.get("rid")] = rec
    rec = audit.get(r_user)
    if rec is None:
        problem("audit.log: no record of the user name request")
    elif unescape(rec["auth"].get("identity", "")) != HOSTILE_USER:
        problem("audit.log: identity not recorded losslessly: %r" %
                rec["auth"].get("identity"))
    rec = audit.get(r_type)
    if rec is None:
        problem("audit.log: no record of the Content-Type request")
    else:
        _, quoted = split_quoted(rec.get("reason", ""))
        if quoted is None or \
                HOSTILE_TYPE not in [unescape(q) for q in quoted]:
            problem("audit.log: Content-Type not quoted losslessly in the "
                    "reason: %r" % rec.get("reason"))
    rec = audit.get(r_csr)
    if rec is None:
        problem("audit.log: no record of the hostile CSR")
    else:
        csr = rec.get("csr", {})
        subject = unescape(csr.get("subject", ""))
        # RFC 2253 writes bytes outside printable ASCII as \HH itself.
        cn = re.sub(rb"\\([0-9A-Fa-f]{2})",
                    lambda m: bytes([int(m.group(1), 16)]), subject)
        cn = re.sub(rb"\\(.)", rb"\1", cn)
        if HOSTILE_CN.decode("latin-1").encode() not in cn:
            problem("audit.log: CSR subject not recorded losslessly: %r" %
                    csr.get("subject"))
        if [unescape(s) for s in csr.get("san", [])] != \
                [b"DNS:" + HOSTILE_DNS]:
            problem("audit.log: CSR SAN not recorded losslessly: %r" %
                    csr.get("san"))
    if r_bad not in audit:
        problem("audit.log: no record of the CSR that is not UTF-8")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
