#!/usr/bin/env python3
"""Builds the second-opinion corpora: attack requests from the OWASP CRS v3.3.4 regression suite and
benign form-field text from this machine's Debian documentation, man pages and Python packages'
docstrings. Every source is assigned to the tuning half or the held-out half by a hash of its name
(a regression-suite rule file, a Debian package, a man page, a Python package), before any request
is run, so no text of one source lands in both halves.

Usage: bench/waf-second-opinion/gather.py [--suite DIR] [--out DIR]
Writes attacks-tuning.jsonl, attacks-heldout.jsonl, benign-tuning.jsonl, benign-heldout.jsonl and
sources.txt (every source, its half and how many requests it gave).
"""
import argparse
import ast
import glob
import gzip
import hashlib
import json
import os
import re
import urllib.parse

import yaml

# Rule file of the regression suite -> the family its attacks belong to.
FAMILIES = {
    "913": "scanner", "920": "protocol", "921": "protocol-attack", "930": "lfi", "931": "rfi", "932": "rce",
    "933": "php", "934": "nodejs", "941": "xss", "942": "sqli", "943": "session-fixation", "944": "java",
}
PER_SOURCE = 5  # benign snippets taken from one source at most, so no source dominates


def half(source):
    """`tuning` or `heldout`, fixed by the source's name alone."""
    return "tuning" if hashlib.sha256(source.encode()).digest()[0] % 2 == 0 else "heldout"


def rule_paranoia(rules_dir):
    """Rule id -> paranoia level, from the `paranoia-level/N` tags of Debian's CRS (no tag: 1)."""
    levels = {}
    for path in glob.glob(os.path.join(rules_dir, "REQUEST-9*.conf")):
        text = open(path, encoding="utf-8").read()
        for block in re.split(r"\n(?=Sec(?:Rule|Action))", text):
            m = re.search(r"\bid:(\d+)", block)
            if not m:
                continue
            p = re.search(r"paranoia-level/(\d)", block)
            levels[int(m.group(1))] = int(p.group(1)) if p else 1
    return levels


def attacks(suite, rules_dir, max_paranoia=1):
    """Attack requests: regression tests whose stage expects a rule of paranoia level up to
    `max_paranoia` to fire."""
    levels = rule_paranoia(rules_dir)
    out = []
    seen = set()
    for path in sorted(glob.glob(os.path.join(suite, "tests", "regression", "tests", "*", "*.yaml"))):
        rule_file = os.path.basename(path)[:-5]
        family = FAMILIES.get(rule_file[:3])
        if family is None:
            continue
        doc = yaml.safe_load(open(path, encoding="utf-8"))
        if doc.get("meta", {}).get("enabled") is False:
            continue
        for test in doc.get("tests") or []:
            for i, stage in enumerate(test.get("stages") or []):
                st = stage.get("stage", stage)
                inp, exp = st.get("input", {}), st.get("output", {})
                lc = str(exp.get("log_contains", ""))
                m = re.search(r'id "(\d+)"', lc)
                if not m or levels.get(int(m.group(1)), 9) > max_paranoia:
                    continue
                if "encoded_request" in inp or "raw_request" in inp:
                    continue
                headers = {str(k): str(v) for k, v in (inp.get("headers") or {}).items()}
                data = inp.get("data")
                if isinstance(data, list):
                    data = "\r\n".join(str(x) for x in data)
                rid = f"{test.get('test_title')}#{i}"
                while rid in seen:  # the suite has a title twice (941160-10)
                    rid += "'"
                seen.add(rid)
                r = {
                    "id": rid, "category": family, "source": f"crs-v3.3.4/{rule_file}",
                    "method": str(inp.get("method", "GET")), "url": str(inp.get("uri") or "/"), "headers": headers,
                    "expect": "block", "half": half(rule_file),
                }
                if data:
                    r["body"] = str(data)
                    if not any(k.lower() == "content-type" for k in headers):
                        headers["Content-Type"] = "application/x-www-form-urlencoded"
                out.append(r)
    return out


def snippets(text):
    """Sentence-sized pieces of prose: whitespace collapsed, 24-400 characters."""
    for para in re.split(r"\n\s*\n", text):
        s = re.sub(r"\s+", " ", para).strip()
        if len(s) < 24:
            continue
        while len(s) > 400:
            cut = s.rfind(". ", 0, 400)
            cut = cut + 1 if cut > 40 else 400
            yield s[:cut].strip()
            s = s[cut:].strip()
        if len(s) >= 24:
            yield s


def pick(items):
    """At most PER_SOURCE items, spread over the source."""
    items = list(dict.fromkeys(items))
    if len(items) <= PER_SOURCE:
        return items
    step = len(items) / PER_SOURCE
    return [items[int(i * step)] for i in range(PER_SOURCE)]


def read(path):
    try:
        raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    except OSError:
        return ""
    if b"\0" in raw[:4096]:
        return ""
    return raw.decode("utf-8", "replace")


def debian_docs():
    """README, NEWS and changelog files of each Debian package: source `deb-doc/PACKAGE`."""
    for pkg in sorted(os.listdir("/usr/share/doc")):
        base = os.path.join("/usr/share/doc", pkg)
        if not os.path.isdir(base):
            continue
        texts = []
        for path in sorted(glob.glob(os.path.join(base, "*"))):
            name = os.path.basename(path).lower()
            if name.startswith(("readme", "news", "changelog")) or name.endswith((".txt", ".md")):
                texts.append(read(path))
        items = [s for t in texts for s in snippets(t)]
        if items:
            yield f"deb-doc/{pkg}", pick(items)


def man_pages():
    """Every 40th man page of section 1, 5 and 8, groff requests removed: source `man/PAGE`."""
    pages = sorted(glob.glob("/usr/share/man/man[158]/*.gz"))[::40]
    for path in pages:
        lines = []
        for line in read(path).splitlines():
            if line.startswith((".", "'")):
                if line[:3] in (".B ", ".I ") or line.startswith((".BR ", ".IR ", ".BI ", ".RB ", ".IB ", ".RI ")):
                    line = re.sub(r'"', "", line.split(" ", 1)[1]) if " " in line else ""
                elif line.startswith((".PP", ".P", ".LP", ".SH", ".SS", ".TP", ".IP")):
                    lines.append("")
                    continue
                else:
                    continue
            line = re.sub(r"\\f[BIRP]|\\f\(..|\\\*\(..|\\\(..|\\&|\\e", "", line).replace("\\-", "-").replace("\\", "")
            lines.append(line)
        items = pick(snippets("\n".join(lines)))
        if items:
            yield "man/" + os.path.basename(path)[:-3], items


def python_docstrings():
    """Docstrings and comments of installed Python packages: source `py/PACKAGE`."""
    roots = ["/usr/lib/python3/dist-packages"] + glob.glob("/root/.pyenv/versions/*/lib/python3*/site-packages")
    seen = set()
    for root in roots:
        for pkg in sorted(os.listdir(root)):
            base = os.path.join(root, pkg)
            if not os.path.isdir(base) or pkg in seen or "." in pkg or pkg.startswith("_"):
                continue
            seen.add(pkg)
            items = []
            for path in sorted(glob.glob(os.path.join(base, "**", "*.py"), recursive=True))[:60]:
                src = read(path)
                try:
                    tree = ast.parse(src)
                except (SyntaxError, ValueError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                        d = ast.get_docstring(node)
                        if d:
                            items.extend(snippets(d))
                # Comment lines, several joined: code remarks as people write them.
                comments = [m.group(1) for m in re.finditer(r"^\s*# ?(.+)$", src, re.M)]
                items.extend(snippets("\n".join(comments)))
            items = pick(items)
            if items:
                yield f"py/{pkg}", items


def benign():
    out = []
    for gen in (debian_docs, man_pages, python_docstrings):
        for source, items in gen():
            h = half(source)
            for i, text in enumerate(items):
                rid = f"{source}#{i}"
                shape = int(hashlib.sha256(rid.encode()).hexdigest(), 16) % 3
                r = {"id": rid, "category": "benign", "source": source, "expect": "allow", "half": h}
                browser = {
                    "Host": "localhost", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
                    "Accept": "*/*",
                }
                if shape == 0:
                    r.update(method="GET", url="/search?" + urllib.parse.urlencode({"q": text, "page": "1"}), headers=browser)
                elif shape == 1:
                    r.update(
                        method="POST", url="/comments", headers={**browser, "Content-Type": "application/x-www-form-urlencoded"},
                        body=urllib.parse.urlencode({"name": "Sam", "email": "sam@example.org", "comment": text}))
                else:
                    r.update(
                        method="POST", url="/api/notes", headers={**browser, "Content-Type": "application/json"},
                        body=json.dumps({"title": "note", "text": text}))
                out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="/work/shared/conformance/crs-v3.3.4")
    ap.add_argument("--rules", default="/usr/share/modsecurity-crs/rules")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "corpus", "waf-second-opinion"))
    ap.add_argument(
        "--regression-all", metavar="FILE",
        help="only write every regression-suite attack (rules of all paranoia levels, both halves) to FILE")
    a = ap.parse_args()
    if a.regression_all:
        with open(a.regression_all, "w", encoding="utf-8") as f:
            for r in attacks(a.suite, a.rules, max_paranoia=4):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        return
    os.makedirs(a.out, exist_ok=True)
    counts = {}
    for kind, rows in (("attacks", attacks(a.suite, a.rules)), ("benign", benign())):
        for h in ("tuning", "heldout"):
            with open(os.path.join(a.out, f"{kind}-{h}.jsonl"), "w", encoding="utf-8") as f:
                for r in rows:
                    if r["half"] == h:
                        f.write(json.dumps(r, ensure_ascii=False) + "\n")
                        counts[(r["source"], h)] = counts.get((r["source"], h), 0) + 1
    with open(os.path.join(a.out, "sources.txt"), "w", encoding="utf-8") as f:
        f.write("# source\thalf\trequests\n")
        for (s, h), n in sorted(counts.items()):
            f.write(f"{s}\t{h}\t{n}\n")
    for kind in ("attacks", "benign"):
        for h in ("tuning", "heldout"):
            n = sum(1 for _ in open(os.path.join(a.out, f"{kind}-{h}.jsonl")))
            print(f"{kind}-{h}: {n} requests")


if __name__ == "__main__":
    main()
