#!/usr/bin/env python3
"""report.py JSONL OUT ROOT: the benchmark's table, target verdicts and
bench/results.json from the JSON lines estbench appended.

results.json holds "meta" (commit, date, machine), "runs" (every estbench
record as written), "targets" (each target with its measured value and
PASS, MISS or SKIPPED) and "yardsticks" (per key set: tls_reference's CPU
per exchange, the least an enrollment can cost on this OpenSSL and kernel,
and estrad's CPU beyond it), so that two commits can be compared run by
run.
"""
import json
import os
import platform
import subprocess
import sys
import time


def git(root, *args):
    try:
        return subprocess.run(["git", "-C", root] + list(args),
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    jsonl, out, root = sys.argv[1:4]
    runs = []
    with open(jsonl) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    by = {r["name"]: r for r in runs}

    print()
    print("%-34s %9s %8s %8s %8s %9s %8s %6s %7s %8s" % (
        "run (mode-keys-concurrency)", "enroll/s", "p50 ms", "p99 ms",
        "max ms", "cpu ms/en", "floor ms", "xfloor", "eff", "peak MiB"))
    for r in runs:
        if r.get("mode") in ("full", "resume", "keepalive") and \
                "enrollments" in r:
            print("%-34s %9.1f %8.2f %8.2f %8.2f %9.3f %8.3f %6.2f %7.2f "
                  "%8.1f" % (
                      r["name"], r["enroll_per_s"], r["latency_ms"]["p50"],
                      r["latency_ms"]["p99"], r["latency_ms"]["max"],
                      r["cpu_per_enroll_ms"], r["floor_ms"], r["x_floor"],
                      r["efficiency"], r["rss_peak_kib"] / 1024.0))
    print()
    for r in runs:
        if r.get("mode") == "idle":
            p = r["cacerts_probe"]
            print("%-12s %5d held (alive %d), RSS %.1f KiB/conn, "
                  "/cacerts p50 %.2f p99 %.2f max %.2f ms (p99 %.2f ms "
                  "with none held)" % (
                      r["name"], r["opened"], r["alive_after_probe"],
                      r["rss_per_conn_kib"], p["p50_ms"], p["p99_ms"],
                      p["max_ms"], r["cacerts_probe_idle_0"]["p99_ms"]))
    floors = {}
    for r in runs:
        if r.get("mode") == "full" and "floor" in r and \
                r["keys"] not in floors:
            floors[r["keys"]] = r["floor"]
    for keys, fl in floors.items():
        print("floor %-8s %s %.3f + kex %s %.3f + %s %.3f + %s %.3f = "
              "%.3f ms; crypt(3) of the Basic password %.3f ms (apart)" % (
                  keys, fl["tls_sign_alg"], fl["tls_sign_ms"],
                  fl["kex_alg"], fl["kex_ms"], fl["csr_alg"],
                  fl["csr_verify_ms"], fl["cert_alg"], fl["cert_sign_ms"],
                  fl["total_ms"], fl["auth_crypt_ms"]))

    # The yardstick: tls_reference does the TLS and TCP of a full-handshake
    # exchange and nothing else.  Adding the enrollment's own public-key
    # operations (CSR verification, certificate signature) gives the least
    # CPU any server on this OpenSSL and kernel spends per enrollment.
    yardsticks = []
    for keys in floors:
        ref = by.get("reference-full-%s-c64" % keys)
        est = by.get("full-%s-c64" % keys)
        if not ref or not est or not ref.get("enrollments"):
            continue
        # The floor of the run the target judges, so that the ratios
        # compare with its x_floor.
        fl = est["floor"]
        tls_floor = fl["tls_sign_ms"] + fl["kex_ms"]
        bound = ref["cpu_per_enroll_ms"] + fl["csr_verify_ms"] + \
            fl["cert_sign_ms"]
        y = {"keys": keys, "reference_ms": ref["cpu_per_enroll_ms"],
             "tls_floor_ms": tls_floor, "bound_ms": bound,
             "bound_x_floor": bound / fl["total_ms"],
             "estrad_ms": est["cpu_per_enroll_ms"],
             "estrad_x_floor": est["x_floor"],
             "estrad_own_ms": est["cpu_per_enroll_ms"] - bound}
        yardsticks.append(y)
        print("yardstick %-8s tls_reference %.3f ms per exchange (%.1f x "
              "its TLS floor %.3f); + CSR verify + certificate signature = "
              "%.3f ms = %.2f x floor, the least on this OpenSSL and kernel; "
              "estrad %.3f ms = %.2f x, %.3f ms of its own" % (
                  keys, y["reference_ms"], y["reference_ms"] / tls_floor,
                  tls_floor, bound, y["bound_x_floor"], y["estrad_ms"],
                  y["estrad_x_floor"], y["estrad_own_ms"]))

    targets = []

    def target(name, value, limit, ok, unit, run=None, why=None):
        verdict = "SKIPPED" if value is None else ("PASS" if ok else "MISS")
        targets.append({"target": name, "value": value, "limit": limit,
                        "unit": unit, "verdict": verdict, "run": run,
                        "note": why})

    for keys, limit in (("rsa2048", 1.5), ("p256", 2.5)):
        r = by.get("full-%s-c64" % keys)
        v = r["x_floor"] if r and r["enrollments"] else None
        target("full handshake %s c64: estrad CPU/enroll <= %.1f x floor"
               % (keys, limit), v, limit, v is not None and v <= limit,
               "x floor", r and r["name"])
    for keys in ("rsa2048", "p256"):
        f, k = by.get("full-%s-c64" % keys), by.get("keepalive-%s-c64" % keys)
        v = None
        if f and k and f["enroll_per_s"] > 0:
            v = k["enroll_per_s"] / f["enroll_per_s"]
        target("keep-alive >= 3 x full-handshake enroll/s (%s, c64)" % keys,
               v, 3.0, v is not None and v >= 3.0, "x", "keepalive/full")
    r = by.get("idle-5000")
    v = r["rss_per_conn_kib"] if r else None
    target("5,000 idle TLS connections: <= 48 KiB RSS each", v, 48,
           v is not None and v <= 48 and r["opened"] == 5000, "KiB",
           "idle-5000")
    v = r["cacerts_probe"]["p99_ms"] if r else None
    target("5,000 idle TLS connections: /cacerts p99 < 50 ms", v, 50,
           v is not None and v < 50, "ms", "idle-5000")
    # The slow CA twice: the local backend holding each answer 2 s on the
    # loop (estrad alone), and the fake AD CS answering after 2 s (whose
    # Python and TLS share the two cores).
    for name, what in (("slow-ca-local", "local delay_ms"),
                       ("slow-ca", "fake AD CS")):
        r = by.get(name)
        t_total = "slow CA 2 s (%s): 256 enrollments in < 3 s" % what
        t_probe = "slow CA 2 s (%s): /cacerts p99 < 50 ms" % what
        if r is None or "skipped" in r:
            why = r["skipped"] if r else "not run"
            target(t_total, None, 3, False, "s", name, why)
            for kind in ("kept-alive", "new connection each"):
                target("%s (%s)" % (t_probe, kind), None, 50, False, "ms",
                       name, why)
            continue
        # Every client answered (200 or 202) when wall_s ends; only an
        # all-200 run can pass.
        v = r["wall_s"]
        target(t_total, v, 3, r["enrollments"] == 256 and v < 3, "s", name,
               "%d of 256 issued, %d not (202 or error)" % (
                   r["enrollments"], r["failed"]))
        # Two probes ran: one kept-alive connection (a client already
        # served) and a new TLS connection per probe (a new client, whose
        # handshake queues behind the burst's).
        for key, kind in (("cacerts_probe_keepalive", "kept-alive"),
                          ("cacerts_probe", "new connection each")):
            p = r.get(key, {})
            v = p.get("p99_ms")
            target("%s (%s)" % (t_probe, kind), v, 50,
                   v is not None and v < 50, "ms", name,
                   "max %.0f ms" % p["max_ms"] if "max_ms" in p else "")

    # A hostile client-certificate list against a normal client
    # certificate, estrad's CPU per connection (handshake and one GET
    # /cacerts, or the refusal).
    normal = by.get("handshake-client")
    for name, what in (
            ("handshake-h72", "72 certificates, 97 KB, huge RSA exponents"),
            ("handshake-h6", "6 certificates, huge RSA exponents"),
            ("handshake-m75", "75 smallest certificates, 16 KB")):
        r = by.get(name)
        v = None
        if r and normal and normal["cpu_per_attempt_ms"] > 0 and \
                r["answered"] + r["refused"] > 0:
            v = r["cpu_per_attempt_ms"] / normal["cpu_per_attempt_ms"]
            print("%-16s %.3f ms per connection (%d answered, %d refused) "
                  "= %.2f x a normal client certificate's %.3f ms" % (
                      name, r["cpu_per_attempt_ms"], r["answered"],
                      r["refused"], v, normal["cpu_per_attempt_ms"]))
        target("hostile handshake (%s) <= 3 x a normal one" % what, v, 3.0,
               v is not None and v <= 3.0, "x", name)

    print()
    for t in targets:
        val = "-" if t["value"] is None else "%.2f %s" % (t["value"],
                                                          t["unit"])
        print("%-7s %-72s %s%s" % (t["verdict"], t["target"], val,
                                   "  (%s)" % t["note"] if t["note"] else ""))

    meta = {
        "commit": git(root, "rev-parse", "HEAD"),
        "dirty": git(root, "status", "--porcelain", "--untracked-files=no")
        != "",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "openssl": subprocess.run(["openssl", "version"],
                                  capture_output=True,
                                  text=True).stdout.strip(),
    }
    with open(out, "w") as f:
        json.dump({"meta": meta, "runs": runs, "targets": targets,
                   "yardsticks": yardsticks}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
