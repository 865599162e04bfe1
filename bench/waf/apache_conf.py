#!/usr/bin/env python3
"""Writes an Apache httpd config that runs ModSecurity 2.9 + OWASP CRS 3.3 (Debian packages) in
blocking mode at a given paranoia level, on 127.0.0.1, with every path under one temp dir.

By default (the corpus runs of bench/waf-compare) the server answers a static page, one request per
connection. For load runs (bench/waf-load): --proxy makes it a reverse proxy to an upstream,
--workers sizes the event MPM and turns client keep-alive on, --access-log logs every request, and
--no-modsecurity writes the same server without ModSecurity and CRS."""
import argparse
import os
import pwd

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--paranoia", type=int, default=1)
p.add_argument("--proxy", metavar="URL", help="reverse proxy every request to URL (mod_proxy_http, pooled upstream connections)")
p.add_argument("--workers", metavar="PROCESSES:THREADS",
               help="event MPM with this many processes of this many threads each, all started at once; client keep-alive on")
p.add_argument("--access-log", action="store_true", help="log every request (combined format) to DIR/access.log")
p.add_argument("--no-modsecurity", action="store_true", help="the same server without ModSecurity and CRS")
a = p.parse_args()

d = a.dir
mods = "/usr/lib/apache2/modules"
for sub in ("htdocs", "tmp", "data"):
    os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.chmod(os.path.join(d, sub), 0o777)
with open(os.path.join(d, "htdocs", "index.html"), "w") as f:
    f.write("ok\n")

# The recommended ModSecurity base config, switched to blocking, with its paths moved into the temp dir.
rec = open("/etc/modsecurity/modsecurity.conf-recommended").read()
rec = rec.replace("SecRuleEngine DetectionOnly", "SecRuleEngine On")
lines = []
for line in rec.splitlines():
    s = line.strip()
    if s.startswith(("SecTmpDir", "SecDataDir", "SecAuditLog ", "SecAuditEngine", "SecUnicodeMapFile", "SecDebugLog")):
        continue
    lines.append(line)
lines += [
    f"SecTmpDir {d}/tmp", f"SecDataDir {d}/data", "SecAuditEngine Off",
    "SecUnicodeMapFile /etc/modsecurity/unicode.mapping 20127",
]
with open(os.path.join(d, "modsecurity.conf"), "w") as f:
    f.write("\n".join(lines) + "\n")

user = ""
if os.geteuid() == 0:
    try:
        pwd.getpwnam("www-data")
        user = "User www-data\nGroup www-data\n"
    except KeyError:
        pass

if a.workers:
    processes, threads = (int(x) for x in a.workers.split(":"))
    # Every thread started up front and none reaped: the measured run never waits for Apache to grow.
    mpm = f"""ServerLimit {processes}
StartServers {processes}
ThreadLimit {threads}
ThreadsPerChild {threads}
MaxRequestWorkers {processes * threads}
MinSpareThreads 1
MaxSpareThreads {(processes + 1) * threads}
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
"""
else:
    mpm = "KeepAlive Off\n"

if a.proxy:
    modules = f"""LoadModule proxy_module {mods}/mod_proxy.so
LoadModule proxy_http_module {mods}/mod_proxy_http.so
"""
    site = f"""ProxyPass "/" "{a.proxy.rstrip('/')}/"
ProxyPassReverse "/" "{a.proxy.rstrip('/')}/"
"""
else:
    modules = ""
    site = f"""DocumentRoot {d}/htdocs
<Directory {d}/htdocs>
  Require all granted
</Directory>
"""

if a.no_modsecurity:
    waf = ""
else:
    modules += f"LoadModule security2_module {mods}/mod_security2.so\n"
    waf = f"""Include {d}/modsecurity.conf
Include /etc/modsecurity/crs/crs-setup.conf
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={a.paranoia}"
Include /usr/share/modsecurity-crs/rules/*.conf
"""

log = f'CustomLog {d}/access.log "%h %l %u %t \\"%r\\" %>s %O \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\""\n' if a.access_log else ""

print(f"""ServerRoot {d}
ServerName localhost
Listen 127.0.0.1:{a.port}
PidFile {d}/httpd.pid
ErrorLog {d}/error.log
LogLevel warn
{log}{user}LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule unique_id_module {mods}/mod_unique_id.so
{modules}Timeout 10
{mpm}LimitRequestLine 65536
{site}{waf}""", end="")
