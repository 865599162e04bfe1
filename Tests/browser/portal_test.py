#!/usr/bin/env python3
"""Drives headless Chromium (Debian's chromium + chromium-driver, via Selenium) through the
developer portal of a running gateway.

A developer signs in and applies for a service; an administrator approves it through the admin
API; the developer creates a key in the portal, calls the gateway with it until a rate limit
answers 429, pastes that request id in the portal and reads why. Then it pastes a request id of
another application and reads the explained 403. Screenshots of both pages are saved in --out.

Prints one JSON object with what the browser saw; the calling test asserts on it. Exit status 3
means a prerequisite (chromium, chromedriver, selenium) is missing.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

import chrome


def call(url, headers=None, data=None, method=None):
    """(status, headers, body) of one request; error statuses are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True, help="gateway base URL")
    ap.add_argument("--portal", required=True, help="portal listener base URL (the portal is at /portal/)")
    ap.add_argument("--admin", required=True, help="admin listener base URL (the administrator's approval)")
    ap.add_argument("--admin-token", required=True, help="an admin token that may approve the subscription")
    ap.add_argument("--developer", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--path", required=True, help="a path of the service's route, e.g. /payments/1")
    ap.add_argument("--other-request-id", required=True, help="a request id of another application")
    ap.add_argument("--out", required=True, help="directory for the screenshots")
    a = ap.parse_args()

    if not chrome.available():
        return 3
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    os.makedirs(a.out, exist_ok=True)

    # Generous: CI runs this beside the other suites (and other browsers) on two cores.
    driver = chrome.start(window_size="1280,1400")
    driver.set_page_load_timeout(120)
    out = {}
    try:
        wait = WebDriverWait(driver, 60)
        text = lambda css: driver.find_element(By.CSS_SELECTOR, css).text

        # Sign in.
        driver.get(f"{a.portal}/portal/sign-in")
        driver.find_element(By.ID, "name").send_keys(a.developer)
        driver.find_element(By.ID, "password").send_keys(a.password)
        driver.find_element(By.ID, "sign-in").click()
        wait.until(lambda d: d.current_url.endswith("/portal/services"))
        out["signed_in_as"] = text("#signed-in-user")

        # Apply with a reason.
        row = driver.find_element(By.CSS_SELECTOR, f'#services tr[data-service="{a.service}"]')
        row.find_element(By.NAME, "reason").send_keys("card payments for the shop")
        row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.current_url.endswith("/portal/subscriptions"))
        out["after_apply"] = driver.find_element(
            By.CSS_SELECTOR, f'#subscriptions tr[data-service="{a.service}"]').get_attribute("data-state")

        # An administrator approves it through the admin API.
        auth = {"Authorization": f"Bearer {a.admin_token}"}
        status, _, body = call(f"{a.admin}/admin/v1/subscriptions?state=pending&service={a.service}", auth)
        pending = json.loads(body)["items"]
        out["pending_seen_by_admin"] = len(pending)
        sub = pending[0]["id"]
        status, _, body = call(f"{a.admin}/admin/v1/subscriptions/{sub}/approve", dict(auth, **{"Content-Type": "application/json"}),
                               json.dumps({"opinion": "welcome"}).encode(), "POST")
        out["approve_status"] = status
        driver.get(f"{a.portal}/portal/subscriptions")
        out["after_approval"] = driver.find_element(
            By.CSS_SELECTOR, f'#subscriptions tr[data-service="{a.service}"]').get_attribute("data-state")

        # A key, shown once.
        driver.get(f"{a.portal}/portal/keys")
        driver.find_element(By.ID, "create-key").click()
        wait.until(lambda d: d.find_elements(By.ID, "new-key"))
        key = text("#new-key")
        out["key_prefix"] = key[:4]

        # Call until the approval has reached the data plane (about a second), then past the limit.
        calls = []
        deadline = time.time() + 15
        while time.time() < deadline:
            status, headers, body = call(a.gateway + a.path, {"X-API-Key": key})
            calls.append(status)
            if status == 429:
                out["limited_request_id"] = headers.get("X-Request-Id")
                out["limited_body"] = json.loads(body)
                break
            if status != 200:
                time.sleep(0.3)
        out["calls"] = calls

        # Paste the request id and read why (the call log is written within a second).
        def explain(request_id, ready):
            deadline = time.time() + 10
            while True:
                driver.get(f"{a.portal}/portal/explain")
                box = driver.find_element(By.ID, "request-id")
                box.clear()
                box.send_keys(request_id)
                driver.find_element(By.ID, "explain").click()
                wait.until(lambda d: "request_id=" in d.current_url)
                if ready() or time.time() > deadline:
                    return
                time.sleep(0.5)

        rid = out.get("limited_request_id") or ""
        explain(rid, lambda: bool(driver.find_elements(By.ID, "explanation")))
        if driver.find_elements(By.ID, "explanation"):
            out["explained_reason"] = text("#explain-reason")
            out["explained_verdict"] = text("#explain-verdict")
            out["explained_required"] = text("#explain-required") if driver.find_elements(By.ID, "explain-required") else ""
            out["explained_steps"] = text("#explain-steps")
            out["explained_page"] = text("main")
        else:
            out["explain_failed_page"] = text("main")
        driver.save_screenshot(os.path.join(a.out, "explanation.png"))

        # Another application's request id: the explained 403.
        explain(a.other_request_id, lambda: True)
        out["other_title"] = driver.title
        out["other_reason"] = text("#refusal-reason") if driver.find_elements(By.ID, "refusal-reason") else ""
        out["other_page"] = text("main")
        driver.save_screenshot(os.path.join(a.out, "not-yours.png"))
    finally:
        driver.quit()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
