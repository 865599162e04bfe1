"""Headless Chromium for the browser tests (Debian's chromium + chromium-driver, via Selenium)."""
import shutil
import sys


def find(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def available():
    """Whether chromium, chromedriver and selenium are here; if not, says which on stderr (the
    caller then exits with status 3)."""
    try:
        import selenium  # noqa: F401
    except ImportError as e:
        print(f"selenium is not installed ({e}); pip install -r .ci/requirements.txt", file=sys.stderr)
        return False
    if not find("chromium", "chromium-browser") or not find("chromedriver"):
        print("chromium and chromedriver are needed: apt-get install chromium chromium-driver", file=sys.stderr)
        return False
    return True


def start(window_size=None, browser_log=False):
    """A headless Chromium driver (`available()` said yes)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = find("chromium", "chromium-browser")
    driver_path = find("chromedriver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    flags = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions"]
    if window_size:
        flags.append(f"--window-size={window_size}")
    for flag in flags:
        opts.add_argument(flag)
    if browser_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=opts)
