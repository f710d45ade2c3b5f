"""What the page tests share: a marketplace repository, a running `setu serve`, a known hit
log, and a headless Chromium driven by Selenium."""
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETU = os.environ.get("SETU_BIN", os.path.join(ROOT, ".build", "debug", "setu"))
ADMIN = "Admin <admin@setu.example>"
SWIFT_CTO = "Swift CTO <cto@swiftloans.example>"
PENDING = "subscriptions/swift-loans/vehicle-registration.yaml"


def git(repo, *arguments, author=ADMIN):
    name, email = author[:-1].split(" <")
    environment = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name,
                       GIT_COMMITTER_EMAIL=email)
    return subprocess.run(["git", "-C", repo, *arguments], check=True, capture_output=True, text=True,
                          env=environment).stdout.strip()


def marketplace(folder):
    """The example marketplace in a new repository: everything in the root commit but Swift
    Loans' vehicle-registration subscription, which its CTO then commits, so it waits for
    the publisher's approval. Returns the repository and its head."""
    repo = os.path.join(folder, "repo")
    for part in ("catalog", "subscriptions", "policies"):
        shutil.copytree(os.path.join(ROOT, part), os.path.join(repo, part))
    pending = open(os.path.join(repo, PENDING)).read()
    os.remove(os.path.join(repo, PENDING))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "The example marketplace")
    with open(os.path.join(repo, PENDING), "w") as out:
        out.write(pending)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Subscribe to vehicle registration", author=SWIFT_CTO)
    return repo, git(repo, "rev-parse", "HEAD")


def hit_line(ms, sequence, consumer, api, status, decision, latency, upstream):
    seconds, millis = divmod(ms, 1000)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % millis
    return json.dumps({
        "ts": ts, "seq": sequence, "request_id": "known-%d" % sequence, "config_rev": "", "consumer": consumer,
        "client_id": consumer and consumer + "-prod", "api": api, "publisher": api and api.split("/")[0],
        "category": "document", "operation": None, "method": "POST", "path": "/known", "status": status,
        "decision": decision, "latency_ms": latency, "upstream_ms": upstream, "bytes_in": 10, "bytes_out": 100,
        "client_ip": "127.0.0.1"}, separators=(",", ":")) + "\n"


def write_known_hits(hits, hours):
    """Two hits in the middle of each of the `hours` hours before the current one: acme-bank
    let through in 20 ms, and swift-loans refused for its rate. Returns the hours' starts."""
    os.makedirs(hits, exist_ok=True)
    this_hour = int(time.time() * 1000) // 3_600_000
    starts = []
    sequence = 0
    for hour in range(this_hour - hours, this_hour):
        starts.append(hour * 3_600_000)
        ms = hour * 3_600_000 + 1_800_000
        day = time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))
        with open(os.path.join(hits, "hits-%s.jsonl" % day), "a") as out:
            sequence += 1
            out.write(hit_line(ms, sequence, "acme-bank", "cbse/class-xii-marksheet", 200, "allow", 20.0, 18.0))
            sequence += 1
            out.write(hit_line(ms + 1, sequence, "swift-loans", "transport/vehicle-registration", 429,
                               "deny:rate-limited", 1.0, None))
    return starts


class Daemon:
    """`setu serve` on free loopback ports, until `stop`."""

    def __init__(self, repo, state, arguments=()):
        self.stderr = open(os.path.join(os.path.dirname(state), "serve.log"), "w")
        self.process = subprocess.Popen(
            [SETU, "serve", "--repo", repo, "--state", state, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
             "--interval", "1h", *arguments], stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        ports = {}
        deadline = time.time() + 60
        while len(ports) < 2 and time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            found = re.match(r"(gateway|admin) listening on https?://127\.0\.0\.1:(\d+)", line)
            if found:
                ports[found.group(1)] = int(found.group(2))
        if len(ports) < 2:
            self.stop()
            raise RuntimeError("setu serve did not start: " + open(self.stderr.name).read())
        self.gateway = "http://127.0.0.1:%d" % ports["gateway"]
        self.admin = "http://127.0.0.1:%d" % ports["admin"]
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(self.admin + "/readyz").status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("setu serve did not become ready")

    def call(self, path, headers=None, body=b"{}"):
        request = urllib.request.Request(self.gateway + path, data=body, headers=headers or {}, method="POST")
        try:
            return urllib.request.urlopen(request).status
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def browser(width=1280, height=1400):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=%d,%d" % (width, height)):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def console_errors(driver):
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot_is_not_blank(driver, path):
    """Saves a screenshot and says whether it shows more than one colour in quantity."""
    data = driver.get_screenshot_as_png()
    with open(path, "wb") as out:
        out.write(data)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    common = sorted(count for count, _ in colours)[-2:] if len(colours) > 1 else [0]
    return len(colours) > 8 and common[0] > 100


class Checks:
    """Expectations that are all tried, then reported together."""

    def __init__(self, name):
        self.name = name
        self.failures = []

    def expect(self, condition, message):
        if not condition:
            self.failures.append(message)

    def equal(self, actual, expected, what):
        if actual != expected:
            self.failures.append("%s: expected %r, got %r" % (what, expected, actual))

    def finish(self):
        if self.failures:
            print("FAIL %s:" % self.name)
            for failure in self.failures:
                print("  - " + failure)
            raise SystemExit(1)
        print("ok %s" % self.name)


def temporary():
    return tempfile.mkdtemp(prefix="setu-browser-")
