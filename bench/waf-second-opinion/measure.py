#!/usr/bin/env python3
"""Runs the second-opinion corpora (gather.py) through `gatehouse waf test --crs --json` with and
without the built-in tokenizers' second opinion, and, with --apache-port, through Apache +
ModSecurity 2.9 + CRS 3.3 at the same paranoia level, then prints detection per attack family and
false positives on benign text, for the tuning half and the held-out half apart.

A request is blocked by Apache when it answers 403 or refuses it (400, 411, 413, 414, 431, 501, no
status line), as in bench/waf/compare.py.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "waf"))
from compare import APACHE_BLOCK, send  # noqa: E402

RULE_FAMILIES = [
    (913000, "scanner"), (920000, "protocol"), (921000, "protocol-attack"), (930000, "lfi"), (931000, "rfi"),
    (932000, "rce"), (933000, "php"), (934000, "nodejs"), (941000, "xss"), (942000, "sqli"),
    (943000, "session-fixation"), (944000, "java"),
]


def rule_family(rule):
    rule = int(rule)
    for start, name in RULE_FAMILIES:
        if start <= rule < start + 1000:
            return name
    return "other"


def rows(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


def gatehouse(binary, path, paranoia, extra):
    cmd = [binary, "waf", "test", "--crs", "--json", "--paranoia", str(paranoia), "--file", path] + extra
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"measure: {' '.join(cmd)} failed: {p.stderr}")
    return {r["id"]: r for r in map(json.loads, p.stdout.splitlines())}


def raw(r):
    method = r.get("method", "GET")
    headers = dict(r.get("headers") or {})
    body = r.get("body", "").encode("utf-8")
    lines = [f"{method} {r['url']} HTTP/1.1"]
    if not any(k.lower() == "host" for k in headers):
        lines.append("Host: localhost")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def pct(n, d):
    return f"{100.0 * n / d:5.1f}%" if d else "    -"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gatehouse", required=True)
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "..", "..", "corpus", "waf-second-opinion"))
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument(
        "--variant", action="append", default=[],
        help="NAME=ARGS: another second-opinion setting to measure, e.g. 'so3=--second-opinion-score 3' (repeatable)")
    ap.add_argument("--halves", default="tuning,heldout")
    ap.add_argument("--apache-port", type=int)
    ap.add_argument("--out")
    a = ap.parse_args()
    variants = {"crs": ["--no-second-opinion"], "crs+so": ["--second-opinion"]}
    for v in a.variant:
        name, _, args = v.partition("=")
        variants[name] = ["--second-opinion"] + args.split()
    detail = {}
    for h in a.halves.split(","):
        print(f"\n== {h} half ==")
        attack_path = os.path.join(a.corpus, f"attacks-{h}.jsonl")
        benign_path = os.path.join(a.corpus, f"benign-{h}.jsonl")
        reqs = rows(attack_path) + rows(benign_path)
        runs = {}
        for path in (attack_path, benign_path):
            for name, args in variants.items():
                runs.setdefault(name, {}).update(gatehouse(a.gatehouse, path, a.paranoia, args))
        if a.apache_port:
            runs["modsec"] = {r["id"]: {"blocked": send(a.apache_port, raw(r)) in APACHE_BLOCK} for r in reqs}
        names = list(runs)
        cats = sorted({r["category"] for r in reqs if r["category"] != "benign"})
        w = {n: max(11, len(n) + 2) for n in names}
        print(f"{'family':<18}{'requests':>9}" + "".join(f"{n:>{w[n]}}" for n in names))
        for c in cats + ["attacks", "benign FP"]:
            sel = [r for r in reqs if r["category"] == c or (c == "attacks" and r["category"] != "benign")
                   or (c == "benign FP" and r["category"] == "benign")]
            print(f"{c:<18}{len(sel):>9}" + "".join(f"{pct(sum(runs[n][r['id']]['blocked'] for r in sel), len(sel)):>{w[n]}}" for n in names))
        # Benign requests blocked, by the rule families that scored in them.
        benign = [r for r in reqs if r["category"] == "benign"]
        print("benign blocked, by the rule family that scored (a request can count in several):")
        fams = {}
        for n in names:
            if n == "modsec":
                continue
            for r in benign:
                g = runs[n][r["id"]]
                if g["blocked"]:
                    for f in {rule_family(x["rule"]) for x in g["findings"]}:
                        fams.setdefault(f, {}).setdefault(n, 0)
                        fams[f][n] += 1
        for f in sorted(fams):
            print(f"  {f:<16}" + "".join(f"{n}={fams[f].get(n, 0)}  " for n in names if n != "modsec"))
        detail[h] = {
            r["id"]: {"category": r["category"], "source": r["source"], **{n: runs[n][r["id"]]["blocked"] for n in names}}
            for r in reqs
        }
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        json.dump(detail, open(a.out, "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
