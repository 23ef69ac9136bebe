#!/usr/bin/env python3
"""slow_clients.py: abuse clients for tests/integration/t_abuse.sh.

Opens many connections to estrad that stop half-way, one kind each:

  hello  the first half of a real TLS ClientHello, then nothing
  head   a full TLS handshake, then part of an HTTP request head
  body   a full request head announcing more body than is sent
  idle   one complete keep-alive request answered, then nothing (every
         other one on TLS 1.3)

Or connections that are never idle but never finish, each sending one
raw byte every --interval seconds (a slowloris client), half of them on
TLS 1.2 and half on TLS 1.3:

  trickle-hello  a real ClientHello, byte by byte
  trickle-head   after a full handshake, the TLS records of a whole
                 request (head and body), byte by byte
  trickle-body   after a full handshake, the request head at once, then
                 the records of its body byte by byte

While they are held, runs the command given after "--" (a normal
enrollment) and records its output; then waits until estrad has closed
every slow connection and prints one JSON object with the figures:
how many were held, how many estrad closed, the least and most seconds
from a connection's last byte to its close (for the trickling kinds:
from the connect for trickle-hello, from the request's first byte for
the others), the command's exit status and output.

  slow_clients.py --host 127.0.0.1 --port P --cacert F --hello N
      --head N --body N --idle N --trickle-hello N --trickle-head N
      --trickle-body N --interval S --wait S [--random N] -- CMD...

--random N instead sends N connections of random bytes (some framed as a
TLS handshake record) and closes them at once: a fuzzed ClientHello
stream.

--silent N --sources K --hold S instead opens N TCP connections that send
nothing, spread over the addresses 127.0.0.1 to 127.0.0.K, holds them S
seconds while counting those estrad closes (per address), runs the
command while they are still held, and closes the rest: descriptor
exhaustion and the per-client limit before any TLS record.

--load N --path PATH --body FILE --user USER:PASSWORD [--concurrency C]
instead sends N POSTs of FILE (application/pkcs10) to PATH over
keep-alive connections and prints the count of each status: the fault
tests drive thousands of failures through it.
"""
import argparse
import base64
import collections
import http.client
import threading
import json
import os
import random
import selectors
import socket
import ssl
import subprocess
import sys
import time


def client_hello():
    """The bytes of a real ClientHello, from an in-memory handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_connect(args, ctx):
    raw = socket.create_connection((args.host, args.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def open_slow(args):
    """Returns [(kind, socket, time of its last byte)]."""
    held = []
    hello = client_hello()
    ctx = ssl.create_default_context(cafile=args.cacert)
    ctx.check_hostname = False
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx13 = ssl.create_default_context(cafile=args.cacert)
    ctx13.check_hostname = False
    ctx13.minimum_version = ssl.TLSVersion.TLSv1_3
    for _ in range(args.hello):
        s = socket.create_connection((args.host, args.port), timeout=10)
        s.sendall(hello[: len(hello) // 2])
        held.append(("hello", s, time.monotonic()))
    for _ in range(args.head):
        s = tls_connect(args, ctx)
        s.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\n"
                  b"Host: 127.0.0.1\r\nContent-Ty")
        held.append(("head", s, time.monotonic()))
    for _ in range(args.body):
        s = tls_connect(args, ctx)
        s.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\n"
                  b"Host: 127.0.0.1\r\n"
                  b"Content-Type: application/pkcs10\r\n"
                  b"Content-Length: 1000\r\n\r\nMIIB")
        held.append(("body", s, time.monotonic()))
    for i in range(args.idle):
        s = tls_connect(args, ctx13 if i % 2 else ctx)
        s.sendall(b"GET /.well-known/est/cacerts HTTP/1.1\r\n"
                  b"Host: 127.0.0.1\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        head, _, rest = got.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        held.append(("idle", s, time.monotonic()))
    return held


def raw_tls(args, ctx):
    """A TLS connection whose records the caller sends itself:
    returns (socket, SSLObject, outgoing MemoryBIO)."""
    raw = socket.create_connection((args.host, args.port), timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = out.read()
            if data:
                raw.sendall(data)
            chunk = raw.recv(65536)
            if not chunk:
                raise OSError("closed during the handshake")
            inc.write(chunk)
    data = out.read()
    if data:
        raw.sendall(data)
    return raw, obj, out


def records(obj, out, data):
    """The TLS records that carry data."""
    obj.write(data)
    return out.read()


def open_trickle(args):
    """Returns [[kind, socket, start time, bytes left to trickle]]."""
    held = []
    request_head = (b"POST /.well-known/est/simpleenroll HTTP/1.1\r\n"
                    b"Host: 127.0.0.1\r\n"
                    b"Content-Type: application/pkcs10\r\n"
                    b"Content-Length: 600\r\n\r\n")
    body = b"MIIB" * 150
    ctxs = []
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=args.cacert)
        ctx.check_hostname = False
        ctx.minimum_version = ctx.maximum_version = version
        ctxs.append(ctx)
    hello = client_hello()
    for _ in range(args.trickle_hello):
        s = socket.create_connection((args.host, args.port), timeout=10)
        held.append(["trickle-hello", s, time.monotonic(), hello])
    for i in range(args.trickle_head):
        s, obj, out = raw_tls(args, ctxs[i % 2])
        held.append(["trickle-head", s, None,
                     records(obj, out, request_head + body)])
    for i in range(args.trickle_body):
        s, obj, out = raw_tls(args, ctxs[i % 2])
        held.append(["trickle-body", s, None,
                     (records(obj, out, request_head),
                      records(obj, out, body))])
    return held


def trickle(held, interval, limit, result):
    """Sends one byte per connection every interval seconds until estrad
    closes each; fills result with the delays and what was left open."""
    for h in held:
        h[1].setblocking(False)
        if h[0] == "trickle-body":
            # The whole head at once: the request has begun.
            head, rest = h[3]
            h[1].sendall(head)
            h[2], h[3] = time.monotonic(), rest
    delays, sent = {}, {}
    deadline = time.monotonic() + limit
    open_ = list(held)
    next_send = time.monotonic()
    while open_ and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_send:
            next_send = now + interval
            for h in open_:
                if not h[3]:
                    continue
                try:
                    h[1].send(h[3][:1], socket.MSG_NOSIGNAL)
                except (BlockingIOError, OSError):
                    continue
                if h[2] is None:
                    h[2] = time.monotonic()
                h[3] = h[3][1:]
                sent[h[0]] = sent.get(h[0], 0) + 1
        still = []
        for h in open_:
            try:
                data = h[1].recv(65536)
                closed = data == b""
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if closed:
                delays.setdefault(h[0], []).append(time.monotonic() - h[2])
            else:
                still.append(h)
        open_ = still
        time.sleep(0.05)
    left = {}
    for h in open_:
        left[h[0]] = left.get(h[0], 0) + 1
    for h in held:
        h[1].close()
    result["trickle_closed"] = sum(len(v) for v in delays.values())
    result["trickle_left_open"] = left
    result["trickle_delays"] = {k: [round(min(v), 2), round(max(v), 2)]
                                for k, v in delays.items()}
    result["trickle_bytes_sent"] = sent


def is_closed(s):
    """True when the peer closed (EOF, reset or a TLS alert)."""
    try:
        s.setblocking(False)
        data = s.recv(4096)
        return data == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except (ssl.SSLError, OSError):
        return True


def wait_closed(held, limit):
    """Waits until every connection is closed; returns their delays."""
    open_ = {id(s): (kind, s, t0) for kind, s, t0 in held}
    delays = {}
    deadline = time.monotonic() + limit
    # epoll, not select(): thousands of descriptors.
    sel = selectors.DefaultSelector()
    for _, s, _ in held:
        sel.register(s, selectors.EVENT_READ)
    while open_ and time.monotonic() < deadline:
        ready = sel.select(0.2)
        now = time.monotonic()
        for key, _ in ready:
            s = key.fileobj
            kind, _, t0 = open_[id(s)]
            if is_closed(s):
                delays.setdefault(kind, []).append(now - t0)
                del open_[id(s)]
                sel.unregister(s)
    sel.close()
    for _, s, _ in held:
        s.close()
    left = {}
    for kind, _, _ in open_.values():
        left[kind] = left.get(kind, 0) + 1
    return delays, left


def random_streams(args):
    """Sends args.random connections of random bytes; returns how many."""
    rng = random.Random(int(os.environ.get("SEED", "10")))
    sent = 0
    for i in range(args.random):
        n = rng.randint(1, 4096)
        data = bytes(rng.getrandbits(8) for _ in range(n))
        if i % 2 == 0:
            # A handshake record header, so the TLS parser goes deeper.
            data = bytes([0x16, 0x03, rng.choice([0, 1, 3, 4]),
                          n >> 8 & 0xff, n & 0xff, 0x01]) + data
        try:
            s = socket.create_connection((args.host, args.port), timeout=5)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            while s.recv(4096):
                pass
            s.close()
            sent += 1
        except OSError:
            sent += 1
    return sent


def silent(args, result):
    """Opens args.silent connections that never send a byte, from
    args.sources loopback addresses in turn; fills result with how many
    connected, how many estrad closed within args.hold seconds (in all
    and per address) and how many were still open then (accepted or
    still in estrad's listen queue); runs args.cmd, then closes them."""
    sel = selectors.DefaultSelector()
    socks = {}
    connected = failed = 0
    for i in range(args.silent):
        src = "127.0.0.%d" % (1 + i % args.sources)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        # A paused listener leaves connections in its queue, where the
        # kernel completes them; a full queue drops the SYN, hence the
        # timeout.
        s.settimeout(3)
        try:
            s.connect((args.host, args.port))
        except OSError:
            failed += 1
            s.close()
            continue
        s.setblocking(False)
        connected += 1
        socks[s.fileno()] = (src, s)
        sel.register(s, selectors.EVENT_READ)
    closed = collections.Counter()
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            s = key.fileobj
            if is_closed(s):
                closed[socks[s.fileno()][0]] += 1
                sel.unregister(s)
                del socks[s.fileno()]
                s.close()
    held = collections.Counter(src for src, _ in socks.values())
    if args.cmd:
        run = subprocess.run(args.cmd, capture_output=True, timeout=60)
        result["cmd_rc"] = run.returncode
        result["cmd_out"] = run.stdout.decode(errors="replace").strip()
    for _, s in socks.values():
        s.close()
    sel.close()
    result["silent_connected"] = connected
    result["silent_failed"] = failed
    result["silent_closed"] = sum(closed.values())
    result["silent_closed_per_source"] = dict(closed)
    result["silent_held"] = sum(held.values())
    result["silent_held_per_source"] = dict(held)


def load(args):
    """Sends args.load requests; returns {status: count}."""
    body = open(args.body_file, "rb").read()
    auth = "Basic " + base64.b64encode(args.user.encode()).decode()
    ctx = ssl.create_default_context(cafile=args.cacert)
    ctx.check_hostname = False
    counts = collections.Counter()
    lock = threading.Lock()
    left = [args.load]

    def worker():
        conn = None
        while True:
            with lock:
                if left[0] == 0:
                    break
                left[0] -= 1
            status = "000"
            for _ in range(2):
                try:
                    if conn is None:
                        conn = http.client.HTTPSConnection(
                            args.host, args.port, context=ctx, timeout=30)
                    conn.request("POST", args.path, body, {
                        "Content-Type": "application/pkcs10",
                        "Authorization": auth})
                    resp = conn.getresponse()
                    resp.read()
                    status = str(resp.status)
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
            with lock:
                counts[status] += 1
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker)
               for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return dict(counts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cacert")
    for kind in ("hello", "head", "body", "idle", "random",
                 "trickle-hello", "trickle-head", "trickle-body"):
        p.add_argument("--" + kind, type=int, default=0)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--wait", type=float, default=30)
    p.add_argument("--load", type=int, default=0)
    p.add_argument("--path")
    p.add_argument("--body-file")
    p.add_argument("--user")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--silent", type=int, default=0)
    p.add_argument("--sources", type=int, default=1)
    p.add_argument("--hold", type=float, default=3)
    p.add_argument("cmd", nargs="*")
    args = p.parse_args()
    result = {}
    if args.load:
        t0 = time.monotonic()
        result["statuses"] = load(args)
        result["seconds"] = round(time.monotonic() - t0, 2)
        json.dump(result, sys.stdout, sort_keys=True)
        print()
        return
    if args.silent:
        silent(args, result)
        json.dump(result, sys.stdout, sort_keys=True)
        print()
        return
    if args.random:
        result["random_sent"] = random_streams(args)
    t0 = time.monotonic()
    trickling = open_trickle(args)
    held = open_slow(args)
    result["held"] = len(held) + len(trickling)
    result["open_seconds"] = round(time.monotonic() - t0, 2)
    thread = None
    if trickling:
        thread = threading.Thread(target=trickle, args=(
            trickling, args.interval, args.wait, result))
        thread.start()
    if args.cmd:
        run = subprocess.run(args.cmd, capture_output=True, timeout=60)
        result["cmd_rc"] = run.returncode
        result["cmd_out"] = run.stdout.decode(errors="replace").strip()
        # The slow connections are still open while the command runs.
        result["still_open_after_cmd"] = sum(
            1 for _, s, _ in held if not is_closed(s))
    delays, left = wait_closed(held, args.wait)
    if thread is not None:
        thread.join()
    result["closed"] = sum(len(v) for v in delays.values())
    result["left_open"] = left
    result["delays"] = {k: [round(min(v), 2), round(max(v), 2)]
                        for k, v in delays.items()}
    # Closed at once (a limit), not after a timeout.
    result["closed_early"] = sum(1 for v in delays.values() for d in v
                                 if d < 1.0)
    json.dump(result, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
