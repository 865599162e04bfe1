#!/usr/bin/env python3
"""Drives headless Chromium (Debian's chromium + chromium-driver, via Selenium) through the
operator console of a running gateway: sign in; a denial produced moments earlier appears in the
overview's figures and in the call log; its explanation; approving a pending subscription from the
queue lets the application's next call through; a form auto-submitted by a page of another origin
is refused. Saves screenshots of the overview and of the request page.

Prints one JSON object with what the browser saw; the calling test asserts on it and on the
gateway's call log. Exit status 3 means a prerequisite (chromium, chromedriver, selenium) is missing.
"""
import argparse
import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

import chrome


def call(url, key):
    """GET url with the API key; (status, request id)."""
    req = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("X-Request-Id")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Request-Id")


def cross_site_server(host, port, target):
    """A page of another origin whose form posts itself to `target` as soon as it loads."""
    page = f"""<!doctype html><html><body>
<form id="f" method="post" action="{target}"><input type="hidden" name="csrf" value="forged"></form>
<script>document.getElementById("f").submit();</script>
</body></html>""".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True, help="the admin listener's base URL, e.g. http://127.0.0.1:9901")
    ap.add_argument("--gateway", required=True, help="the gateway's base URL")
    ap.add_argument("--path", default="/pay", help="the route the application calls")
    ap.add_argument("--key", required=True, help="the application's API key")
    ap.add_argument("--application", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--other", required=True, help="host:port for the page of another origin")
    ap.add_argument("--out", required=True, help="directory for the screenshots")
    a = ap.parse_args()

    if not chrome.available():
        return 3
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    os.makedirs(a.out, exist_ok=True)

    host, port = a.other.rsplit(":", 1)
    other = cross_site_server(host, int(port), f"{a.console}/console/sign-out")

    driver = chrome.start(window_size="1280,1400", browser_log=True)
    driver.set_page_load_timeout(30)
    out = {"screenshots": []}
    try:
        wait = WebDriverWait(driver, 20)
        text = lambda el_id: driver.find_element(By.ID, el_id).text

        # Sign in.
        driver.get(f"{a.console}/console/sign-in")
        driver.find_element(By.NAME, "name").send_keys(a.user)
        driver.find_element(By.NAME, "password").send_keys(a.password)
        driver.find_element(By.CSS_SELECTOR, "form.sign-in button[type=submit]").click()
        wait.until(lambda d: "/console/overview" in d.current_url)
        out["signed_in_user"] = text("signed-in-user")
        out["cookies"] = [{"name": c["name"], "secure": c.get("secure"), "httpOnly": c.get("httpOnly"),
                           "sameSite": c.get("sameSite")} for c in driver.get_cookies()]

        # A denial, moments ago.
        status, request_id = call(a.gateway + a.path, a.key)
        out["denied_call"] = {"status": status, "request_id": request_id}

        # It reaches the call log within a second or two.
        found = False
        for _ in range(40):
            driver.get(f"{a.console}/console/calls?application={a.application}")
            if driver.find_elements(By.CSS_SELECTOR, f'a[href="/console/calls/{request_id}"]'):
                found = True
                break
            time.sleep(0.25)
        out["in_call_log"] = found

        # The overview's figures and denials by reason.
        driver.get(f"{a.console}/console/overview?period=1h")
        out["overview"] = {
            "requests": text("fig-requests"), "denied": text("fig-denied"), "allowed": text("fig-allowed"),
            "reasons": [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#denials-by-reason td code")],
            "charts": len(driver.find_elements(By.CSS_SELECTOR, ".charts img")),
            "charts_loaded": driver.execute_script(
                "return Array.from(document.querySelectorAll('.charts img')).every(i => i.complete && i.naturalWidth > 0)"),
            "stylesheet_applied": driver.execute_script(
                "return getComputedStyle(document.querySelector('header')).backgroundColor"),
        }
        shot = os.path.join(a.out, "overview.png")
        driver.save_screenshot(shot)
        out["screenshots"].append(shot)

        # Its explanation, from the call log's link.
        driver.get(f"{a.console}/console/calls?application={a.application}")
        driver.find_element(By.CSS_SELECTOR, f'a[href="/console/calls/{request_id}"]').click()
        wait.until(lambda d: d.find_elements(By.ID, "explanation"))
        out["explanation"] = text("explanation")
        shot = os.path.join(a.out, "request.png")
        driver.save_screenshot(shot)
        out["screenshots"].append(shot)

        # Approve the pending subscription from the queue, with an opinion.
        driver.get(f"{a.console}/console/subscriptions")
        row = driver.find_element(By.CSS_SELECTOR, f'#approval-queue tr[data-application="{a.application}"]')
        row.find_element(By.NAME, "opinion").send_keys("approved in the browser test")
        row.find_element(By.CSS_SELECTOR, "button.approve").click()
        wait.until(lambda d: "/console/subscriptions" in d.current_url and d.find_elements(By.ID, "approval-queue"))
        out["queue_after"] = len(driver.find_elements(By.CSS_SELECTOR, f'#approval-queue tr[data-application="{a.application}"]'))
        shot = os.path.join(a.out, "subscriptions.png")
        driver.save_screenshot(shot)
        out["screenshots"].append(shot)

        # The application's next call succeeds (once the data plane's snapshot has the approval).
        after = None
        for _ in range(60):
            after, after_id = call(a.gateway + a.path, a.key)
            if after == 200:
                break
            time.sleep(0.1)
        out["after_approval"] = {"status": after, "request_id": after_id}

        # A page of another origin auto-submits a form to the console: refused.
        driver.get(f"http://{a.other}/")
        wait.until(lambda d: d.current_url.startswith(a.console))
        wait.until(lambda d: d.find_elements(By.ID, "refusal-reason"))
        out["cross_site"] = {"url": driver.current_url, "reason": text("refusal-reason"), "check": text("refusal-check"),
                             "detail": text("refusal-detail")}
        # And the session it tried to end is still there.
        driver.get(f"{a.console}/console/overview")
        out["still_signed_in"] = bool(driver.find_elements(By.ID, "signed-in-user"))

        # No Content-Security-Policy violation was reported on the console's pages.
        out["csp_violations"] = [e["message"] for e in driver.get_log("browser")
                                 if "Content Security Policy" in e.get("message", "")]
    finally:
        driver.quit()
        other.shutdown()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
