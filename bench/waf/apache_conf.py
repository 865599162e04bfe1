#!/usr/bin/env python3
"""Writes an Apache httpd config that runs ModSecurity 2.9 + OWASP CRS 3.3 (Debian packages) in
blocking mode at a given paranoia level, on 127.0.0.1, with every path under one temp dir."""
import argparse
import os
import pwd

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--paranoia", type=int, default=1)
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

print(f"""ServerRoot {d}
ServerName localhost
Listen 127.0.0.1:{a.port}
PidFile {d}/httpd.pid
ErrorLog {d}/error.log
LogLevel warn
{user}LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule unique_id_module {mods}/mod_unique_id.so
LoadModule security2_module {mods}/mod_security2.so
Timeout 10
KeepAlive Off
LimitRequestLine 65536
DocumentRoot {d}/htdocs
<Directory {d}/htdocs>
  Require all granted
</Directory>
Include {d}/modsecurity.conf
Include /etc/modsecurity/crs/crs-setup.conf
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={a.paranoia}"
Include /usr/share/modsecurity-crs/rules/*.conf
""")
