#!/usr/bin/env python3
"""End-to-end test of the tray app (`postern` with no subcommand) under
Xvfb and a private D-Bus session (run by scripts/test-gui.sh):

- the real app, driven through tauri-driver + WebKitWebDriver (raw WebDriver
  over urllib), relays a message sent with swaks to the fake Exchange and
  `get_queue` shows it "sent"; `status-changed` events were pushed;
- the tray's menu, clicked over dbusmenu with gdbus: Pause -> status paused,
  the item turns into "Resume delivery"; Resume;
- the fake answers 550 5.7.60: the message shows failed, and a desktop
  notification with the same explanation reached the session bus;
- measurements for BENCHMARKS.md (startup to tray icon, RSS with the window
  open and after it is closed) printed as JSON on the last line.

Waits are on conditions (with deadlines), never fixed sleeps.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "debug")
APP = os.path.join(BIN, "postern")
FAKES = os.path.join(BIN, "postern-fakes")
SEND_AS = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
PROCS = []


def log(msg):
    print(f"[gui] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=30.0, every=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def start(args, **kw):
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


# ------------------------------------------------------------------ WebDriver
class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.sid = None

    def call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"WebDriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def session(self, app, args, env):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": app, "args": args},
        }}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]

    def run(self, script, *args):
        """Runs async JS; the script calls `done(value)`."""
        wrapped = "const done = arguments[arguments.length - 1];" + script
        return self.call("POST", f"/session/{self.sid}/execute/async", {"script": wrapped, "args": list(args)})

    def invoke(self, cmd, args=None):
        r = self.run("window.__TAURI__.core.invoke(arguments[0], arguments[1])"
                     ".then(v => done({ok: v}), e => done({err: String(e)}));", cmd, args or {})
        if "err" in r:
            raise AssertionError(f"{cmd} rejected: {r['err']}")
        return r["ok"]


# ------------------------------------------------------------------ tray over dbusmenu
def gdbus(*args):
    return subprocess.run(["gdbus", "call", "--session", *args], check=True, capture_output=True,
                          text=True, timeout=10).stdout


def tray_item():
    """(bus name, menu object path, pid) of the app's tray icon, or None.
    With no tray host on the bus, libayatana exports the item and its menu
    on the app's unique connection name, under /org/ayatana/NotificationItem/."""
    bus = ("--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus")
    names = re.findall(r"'(:1\.\d+)'", gdbus(*bus, "--method", "org.freedesktop.DBus.ListNames"))
    for name in names:
        tree = subprocess.run(["gdbus", "introspect", "--session", "--dest", name, "--object-path",
                               "/org/ayatana/NotificationItem", "--recurse"],
                              capture_output=True, text=True).stdout
        menu = re.search(r"node (/org/ayatana/NotificationItem/[^/ ]+/Menu) \{", tree)
        if menu and "interface com.canonical.dbusmenu" in tree:
            path = menu.group(1)
            pid = int(re.search(r"uint32 (\d+)", gdbus(*bus, "--method",
                                "org.freedesktop.DBus.GetConnectionUnixProcessID", name)).group(1))
            return name, path, pid
    return None


def menu_items(name, path):
    out = gdbus("--dest", name, "--object-path", path, "--method", "com.canonical.dbusmenu.GetLayout", "--",
                "0", "-1", "[]")
    return {label.replace("_", ""): int(i) for i, label in re.findall(r"\((\d+), \{[^}]*'label': <'([^']*)'>", out)}


def click(name, path, label):
    items = menu_items(name, path)
    assert label in items, f"no menu item {label!r} in {items}"
    gdbus("--dest", name, "--object-path", path, "--method", "com.canonical.dbusmenu.Event",
          "--", str(items[label]), "clicked", '<"">', "0")


# ------------------------------------------------------------------ helpers
def rss_kb(pid):
    """RSS of a process and its descendants (WebKit's web and network processes)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            pass
    return total


def swaks(port, to, subject):
    out = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", "scanner@contoso.com",
                          "--to", to, "--header", f"Subject: {subject}", "--silent", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def main():
    work = tempfile.mkdtemp(prefix="postern-gui-")
    measures = {}
    fakes = start([FAKES, "--dir", os.path.join(work, "fakes")], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, text=True)
    up = json.loads(fakes.stdout.readline())
    smtp = free_port()
    config = os.path.join(work, "postern.toml")
    with open(config, "w") as f:
        f.write(f"""[listener]
listen = ["127.0.0.1:{smtp}"]

[upstream]
host = "localhost"
port = {up['smtp_port']}
mailbox = "scanner@contoso.com"
ca_file = "{up['ca_file']}"

[oauth]
authority = "{up['authority']}"
tenant = "contoso.com"
client_id = "postern-test"
flow = "client-credentials"

[delivery]
retry_first = "1s"
retry_max = "2s"

[spool]
dir = "{work}/spool"
""")
    env = dict(os.environ, POSTERN_CONFIG=config, NO_AT_BRIDGE="1")
    subprocess.run([APP, "--config", config, "account", "set-secret"], input="test-secret", text=True,
                   check=True, env=env, capture_output=True)

    notes = os.path.join(work, "notifications.jsonl")
    open(notes, "w").close()
    server = start(["/usr/bin/python3", os.path.join(ROOT, "tests/gui/notify_server.py"), notes],
                   stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"

    # -------- 1. startup to tray icon, RSS with no window (launched directly)
    t0 = time.monotonic()
    direct = start([APP], env=env, stderr=open(os.path.join(work, "direct.log"), "w"))
    name, menu, pid = wait_for("the tray icon on the bus", tray_item)
    measures["startup_to_tray_ms"] = round((time.monotonic() - t0) * 1000)
    assert pid == direct.pid, (pid, direct.pid)
    items = menu_items(name, menu)
    for label in ["Open Postern", "Pause delivery", "Send test message…", "Start at login", "Quit"]:
        assert label in items, f"{label!r} missing from the tray menu: {items}"
    measures["rss_tray_only_kb"] = rss_kb(direct.pid)
    click(name, menu, "Open Postern")
    wait_for("the window's web process", lambda: rss_kb(direct.pid) > measures["rss_tray_only_kb"] + 20000, 30)
    # Let the page finish loading before measuring: its RSS settles.
    wait_for("the window's RSS to settle", lambda: stable(direct.pid), 30, 0.5)
    measures["rss_window_open_kb"] = rss_kb(direct.pid)
    # A second launch focuses the first and exits.
    second = subprocess.run([APP], env=env, timeout=30, capture_output=True)
    assert second.returncode == 0, second
    assert direct.poll() is None
    click(name, menu, "Quit")
    assert direct.wait(timeout=30) == 0, "Quit did not exit cleanly"
    log(f"direct launch: {measures}")

    # -------- 2. through WebDriver
    driver_port = free_port()
    driver = start(["tauri-driver", "--port", str(driver_port), "--native-port", str(free_port())], env=env,
                   stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "driver.log"), "w"))
    wd = WebDriver(driver_port)
    wait_for("tauri-driver", lambda: port_open(driver_port), 30)
    wd.session(APP, ["--config", config], env)
    wait_for("window.__TAURI__", lambda: wd.run("done(!!(window.__TAURI__ && window.__TAURI__.core))"), 30)
    wd.run("window.__statuses = []; window.__TAURI__.event.listen('status-changed',"
           " e => window.__statuses.push(e.payload)).then(() => done(true));")
    status = wd.invoke("get_status")
    assert status["running"] is True, status

    swaks(smtp, "bob@contoso.com", "gui-sent")
    queue = wait_for("the message sent", lambda: [m for m in wd.invoke("get_queue") if m["state"] == "sent"])
    assert queue[0]["subject"] == "gui-sent", queue
    pushed = wait_for("a pushed status-changed with sent=1",
                      lambda: wd.run("done(window.__statuses.filter(s => s.queue.sent >= 1).length)"))
    assert pushed >= 1
    log("relayed through the app; status-changed pushed")

    # Tray: Pause -> paused, Resume.
    name, menu, _ = wait_for("the tray icon on the bus", tray_item)
    click(name, menu, "Pause delivery")
    wait_for("status paused", lambda: wd.invoke("get_status")["paused"] is True)
    wait_for("the menu to offer Resume", lambda: "Resume delivery" in menu_items(name, menu))
    click(name, menu, "Resume delivery")
    wait_for("status running", lambda: wd.invoke("get_status")["paused"] is False)
    log("tray menu Pause/Resume works over dbusmenu")

    # 550 5.7.60 -> failed with the explanation, and a notification saying the same.
    fakes.stdin.write(f"fault data-end {SEND_AS}\n")
    fakes.stdin.flush()
    swaks(smtp, "bob@contoso.com", "gui-fails")
    failed = wait_for("the message failed",
                      lambda: [m for m in wd.invoke("get_queue") if m["state"] == "failed"])[0]
    assert "5.7.60" in failed["last_reply"], failed
    note = wait_for("a notification", lambda: [json.loads(l) for l in open(notes) if "bounced" in l])[0]
    body = note["body"]
    assert body.startswith("Scan to bob@contoso.com bounced: "), body
    assert "(5.7.60)" in body, body
    assert failed["summary"].rstrip(".") in body, (failed["summary"], body)
    assert failed["fix"] in body, (failed["fix"], body)
    assert "default" in note["actions"], note
    log(f"notification: {body}")

    # Logs and settings round trip.
    logs = wd.invoke("get_logs", {"since": 0})
    assert any("starting Postern" in l["message"] for l in logs), logs[:3]
    settings = wd.invoke("get_settings")
    assert settings["config"]["upstream"]["mailbox"] == "scanner@contoso.com", settings
    bad = json.loads(json.dumps(settings["config"]))
    bad["listener"]["listen"] = []
    bad["listener"]["tls_listen"] = []
    v = wd.invoke("validate_settings", {"config": bad})
    assert v["ok"] is False and v["errors"][0]["key"] == "listener.listen", v

    # Closing the window destroys it (the webview's memory is given back);
    # the app stays in the tray with the engine running.
    _, _, app_pid = tray_item()
    measures["rss_webdriver_window_open_kb"] = rss_kb(app_pid)
    wd.call("DELETE", f"/session/{wd.sid}/window")
    alive = lambda: os.path.exists(f"/proc/{app_pid}")
    wait_for("the web process to end",
             lambda: not alive() or rss_kb(app_pid) < measures["rss_webdriver_window_open_kb"] - 20000, 30)
    # WebKitWebDriver may end the browser with its last window; when it
    # does not, the app must still be in the tray, relaying.
    if alive() and tray_item() is not None:
        wait_for("RSS to settle", lambda: stable(app_pid), 30, 0.5)
        measures["rss_after_close_kb"] = rss_kb(app_pid)
        swaks(smtp, "bob@contoso.com", "gui-after-close")
        wait_for("a delivery with the window closed", lambda: fakes_seen(fakes, 2), 30)
    else:
        log("WebKitWebDriver ended the app with its last window: RSS after close not measured here")
    try:
        wd.call("DELETE", f"/session/{wd.sid}")
    except AssertionError:
        pass  # the session may have ended with its window
    print(json.dumps(measures), flush=True)


def fakes_seen(fakes, n, seen=[]):
    """True once the fake Exchange reported n accepted messages."""
    while len(seen) < n:
        line = fakes.stdout.readline()
        if not line:
            return False
        seen.append(json.loads(line))
    return True


def stable(pid, state={}):
    now = rss_kb(pid)
    last = state.get(pid)
    state[pid] = now
    return last is not None and abs(now - last) < 1024


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in reversed(PROCS):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
