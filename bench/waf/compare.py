#!/usr/bin/env python3
"""Sends every request of the WAF corpora to Apache+ModSecurity+CRS (raw HTTP/1.1 on loopback) and
through `gatehouse waf test --json`, then prints per-category detection and false-positive rates.

A request counts as blocked by Apache when it answers 403 (ModSecurity's deny) or refuses the
request outright (400, 411, 413, 414, 431, 501, or closes without a status line). Anything else
(200, 404, 405, ...) passed the WAF.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

CATEGORIES = ["sqli", "xss", "lfi", "rce", "ssrf", "protocol", "scanner", "benign"]
APACHE_BLOCK = {400, 403, 411, 413, 414, 431, 501, 0}


def load(corpus):
    rows = {}
    for cat in CATEGORIES:
        path = os.path.join(corpus, f"{cat}.jsonl")
        if not os.path.exists(path):
            continue
        rows[cat] = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip() and not l.startswith("#")]
    return rows


def raw_request(r):
    method = r.get("method") or ("POST" if "body" in r else "GET")
    headers = dict(r.get("headers") or {})
    body = r.get("body", "").encode("utf-8")
    lower = {k.lower() for k in headers}
    lines = [f"{method} {r['url']} HTTP/1.1", "Host: localhost"]
    if "user-agent" not in lower:
        lines.append("User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0")
    if "accept" not in lower:
        lines.append("Accept: */*")
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    if body and "content-length" not in lower and "transfer-encoding" not in lower:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def send(port, data):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(data)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            line = buf.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return 0


def gatehouse(binary, corpus, paranoia):
    verdicts = {}
    for cat in CATEGORIES:
        path = os.path.join(corpus, f"{cat}.jsonl")
        if not os.path.exists(path):
            continue
        p = subprocess.run([binary, "waf", "test", "--json", "--paranoia", str(paranoia), "--file", path],
                           capture_output=True, text=True)
        if p.returncode not in (0, 1):
            sys.exit(f"gatehouse waf test failed on {path}: {p.stderr.strip()}")
        for line in p.stdout.splitlines():
            o = json.loads(line)
            verdicts[o["id"]] = o
    return verdicts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gatehouse", required=True)
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument("--out", default="bench/out")
    a = ap.parse_args()

    rows = load(a.corpus)
    t0 = time.time()
    gh = gatehouse(a.gatehouse, a.corpus, a.paranoia)
    t_gh = time.time() - t0
    t0 = time.time()
    apache = {}
    for cat, rs in rows.items():
        for r in rs:
            apache[r["id"]] = send(a.port, raw_request(r))
    t_ap = time.time() - t0

    print(f"WAF comparison, paranoia level {a.paranoia}: Gatehouse (gatehouse waf test, offline engine) vs "
          f"Apache + ModSecurity 2.9 + OWASP CRS 3.3 (blocking)")
    print()
    header = f"{'category':<10} {'requests':>8}  {'gatehouse':>10}  {'modsec+crs':>10}"
    print(header)
    print("-" * len(header))
    summary = {}
    misses = []
    for cat in CATEGORIES:
        if cat not in rows:
            continue
        rs = rows[cat]
        gb = sum(1 for r in rs if gh.get(r["id"], {}).get("blocked"))
        ab = sum(1 for r in rs if apache[r["id"]] in APACHE_BLOCK)
        n = len(rs)
        label = "benign FP" if cat == "benign" else cat
        print(f"{label:<10} {n:>8}  {100.0 * gb / n:>9.1f}%  {100.0 * ab / n:>9.1f}%")
        summary[cat] = {"requests": n, "gatehouse_blocked": gb, "modsecurity_blocked": ab}
        for r in rs:
            g = bool(gh.get(r["id"], {}).get("blocked"))
            m = apache[r["id"]] in APACHE_BLOCK
            want = cat != "benign"
            if g != want or m != want:
                misses.append({"id": r["id"], "category": cat, "decoded": r.get("decoded"), "gatehouse": "block" if g else "allow",
                               "gatehouse_rules": gh.get(r["id"], {}).get("rule_ids"), "apache_status": apache[r["id"]]})
    attacks = [c for c in CATEGORIES if c in rows and c != "benign"]
    tn = sum(len(rows[c]) for c in attacks)
    tg = sum(summary[c]["gatehouse_blocked"] for c in attacks)
    ta = sum(summary[c]["modsecurity_blocked"] for c in attacks)
    print("-" * len(header))
    print(f"{'attacks':<10} {tn:>8}  {100.0 * tg / tn:>9.1f}%  {100.0 * ta / tn:>9.1f}%")
    print()
    print(f"time: gatehouse {t_gh:.1f}s (process start per corpus file), apache {t_ap:.1f}s (one connection per request)")
    print()
    print("Requests where either WAF was wrong (decoded payload, gatehouse verdict/rules, apache status):")
    for m in misses:
        flag = []
        if (m["gatehouse"] == "block") != (m["category"] != "benign"):
            flag.append("gatehouse wrong")
        if (m["apache_status"] in APACHE_BLOCK) != (m["category"] != "benign"):
            flag.append("modsec wrong")
        print(f"  {m['id']:<14} {', '.join(flag):<28} gh={m['gatehouse']:<5} {m['gatehouse_rules'] or []} apache={m['apache_status']}  {json.dumps(m['decoded'])[:90]}")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "waf-compare.json"), "w") as f:
        json.dump({"paranoia": a.paranoia, "summary": summary, "disagreements": misses}, f, indent=1)


if __name__ == "__main__":
    main()
