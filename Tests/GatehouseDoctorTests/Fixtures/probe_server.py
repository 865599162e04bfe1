"""A small HTTP server on 127.0.0.1 that denies in known ways, for the doctor's probe tests.
Prints its port on the first line of stdout."""
import http.server, json, signal, sys, urllib.parse

# The test runner may block SIGTERM; children inherit that mask, so restore the default here.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
signal.signal(signal.SIGTERM, signal.SIG_DFL)

state = {"limited": 0}

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode() if n else ""

    def handle_any(self):
        url = urllib.parse.urlparse(self.path)
        body = self.body()
        if url.path == "/waf":
            # A WAF-like rule: any header, query value or body containing "<script" is blocked.
            haystack = [v for _, v in self.headers.items()] + [url.query, urllib.parse.unquote_plus(url.query), body, urllib.parse.unquote_plus(body)]
            if any("<script" in h.lower() for h in haystack):
                return self.reply(403, "Request blocked by security rule. Support ID: 4711", [("Content-Type", "text/plain")])
            return self.reply(200, "ok", [("Content-Type", "text/plain")])
        if url.path == "/needkey":
            if self.headers.get("X-Api-Key"):
                return self.reply(200, "ok")
            return self.reply(403, json.dumps({"message": "Forbidden"}), [("Content-Type", "application/json")])
        if url.path == "/limited":
            # A passing limit: the first request is over the limit, the next one passes.
            state["limited"] += 1
            if state["limited"] % 2 == 1:
                return self.reply(429, json.dumps({"error": "slow down"}), [("Content-Type", "application/json"), ("Retry-After", "1")])
            return self.reply(200, "ok")
        if url.path == "/fixed":
            return self.reply(403, json.dumps({"error": "forbidden"}), [("Content-Type", "application/json")])
        if url.path == "/cors":
            if self.command == "OPTIONS":
                origin = self.headers.get("Origin", "")
                headers = [("Access-Control-Allow-Methods", "GET, POST")]
                if origin == "https://good.example":
                    headers.append(("Access-Control-Allow-Origin", origin))
                return self.reply(204, "", headers)
            return self.reply(200, "ok", [("Access-Control-Allow-Origin", "https://good.example")])
        return self.reply(404, "not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = handle_any

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
