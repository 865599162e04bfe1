#!/usr/bin/env python3
"""Drives headless Chromium (Debian's chromium + chromium-driver, via Selenium) against a running
gateway: CORS from an allowed and a disallowed origin, a cross-site and a same-origin form POST.

Serves the pages in pages/ on the origins it is given, loads them in the browser, and prints one
JSON object with what the browser saw. The calling test asserts on it and on the gateway's call log.
Exit status 3 means a prerequisite (chromium, chromedriver, selenium) is missing.
"""
import argparse
import functools
import http.server
import json
import os
import sys
import threading
import time

import chrome

HERE = os.path.dirname(os.path.abspath(__file__))


def serve(host, port):
    handler = functools.partial(Quiet, directory=os.path.join(HERE, "pages"))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True, help="gateway base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--allowed", required=True, help="allowed page origin host:port")
    ap.add_argument("--denied", required=True, help="disallowed page origin host:port")
    ap.add_argument("--site", required=True, help="host:port of the upstream that serves pages through the gateway")
    a = ap.parse_args()

    if not chrome.available():
        return 3
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.common.exceptions import TimeoutException

    servers = []
    for hp in (a.allowed, a.denied, a.site):
        host, port = hp.rsplit(":", 1)
        servers.append(serve(host, int(port)))

    driver = chrome.start()
    driver.set_page_load_timeout(30)
    out = {}
    try:
        wait = WebDriverWait(driver, 20)

        def probe(origin):
            driver.get(f"http://{origin}/app/cors.html?gw={a.gateway}")
            wait.until(lambda d: d.find_element(By.ID, "result").text.strip() != "")
            return driver.find_element(By.ID, "result").text

        out["allowed"] = probe(a.allowed)
        out["denied"] = probe(a.denied)

        def form(url):
            driver.get(url)
            try:
                wait.until(lambda d: d.current_url.split("?")[0].endswith("/form"))
            except TimeoutException:
                pass  # reported through "url"; the test decides
            time.sleep(0.3)
            return {"url": driver.current_url, "body": driver.find_element(By.TAG_NAME, "body").text}

        out["cross_site"] = form(f"http://{a.denied}/app/evil.html?gw={a.gateway}")
        out["same_origin"] = form(f"{a.gateway}/app/form.html")
    finally:
        driver.quit()
        for s in servers:
            s.shutdown()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
