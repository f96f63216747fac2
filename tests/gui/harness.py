"""What the real-app GUI tests share (tests/gui/test_*.py, run by
scripts/test-gui.sh under Xvfb and a private D-Bus session with an unlocked
gnome-keyring, scripts/with-keyring.sh):

- `start_fakes()`: the testkit's fake Exchange and identity platform
  (`postern-fakes`), with a reader thread for the messages it accepts;
- `start_app(config, name)`: the real app through tauri-driver +
  WebKitWebDriver, in a private HOME and XDG dirs (`config=None`: no config
  file at all, as on a first start), and an `App` to drive it the way a
  person does: `click(css)`, `type(css, text)`, `select(css, value)`,
  `wait_text(css, text)`, `screenshot(name)`, `screen(name)`; `invoke` is
  there to *check* what the shell answers, never for the action under test;
- the tray over dbusmenu (`tray_item`, `menu_items`, `tray_click`),
  the stand-in notification server, `set_secret`, `keychain()` (what the
  keychain holds), `App.output()` (the app's log), `swaks`, `rss_kb`;
- `wait_for(what, cond)`: every wait is on a condition with a deadline,
  never a fixed sleep;
- `run(main)`: runs a test and stops every process it started.

Which build: `POSTERN_APP` (scripts/test-gui.sh sets it to the release
binary when it is up to date), else target/debug/postern. Screenshots go
to `POSTERN_WALKTHROUGH`, else target/walkthrough (the checked-in ones in
docs/walkthrough/ are refreshed with POSTERN_WALKTHROUGH=docs/walkthrough).
"""
import base64
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "pyutil"))
from ports import free_port, port_open, wait_for  # noqa: E402,F401  (the tests import them from here)

APP = os.path.abspath(os.environ.get("POSTERN_APP", os.path.join(ROOT, "target", "debug", "postern")))
SHOTS = os.path.abspath(os.environ.get("POSTERN_WALKTHROUGH", os.path.join(ROOT, "target", "walkthrough")))
# The stand-in browser (tests/gui/bin/xdg-open) comes first on PATH.
TEST_BIN = os.path.join(ROOT, "tests", "gui", "bin")
PROCS = []
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier


def fakes_binary():
    """postern-fakes beside the app under test, else from any profile."""
    here = os.path.join(os.path.dirname(APP), "postern-fakes")
    if os.access(here, os.X_OK):
        return here
    for profile in ("debug", "release"):
        p = os.path.join(ROOT, "target", profile, "postern-fakes")
        if os.access(p, os.X_OK):
            return p
    raise AssertionError("no postern-fakes: run `cargo build -p postern-testkit`")


def log(msg):
    print(f"[gui] {msg}", flush=True)


def start(args, **kw):
    """Starts a process that run() stops at the end."""
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


def stop(p, timeout=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


APPS = []


def run(main):
    """Runs main() and stops every process started through start(). When
    main() fails, each app still open leaves a picture (`…-failure.png`)
    and its page's text in the log: what the window showed at the end."""
    try:
        main()
    except BaseException:
        for app in APPS:
            try:
                log(f"{app.name}: at the failure the page says: {app.wd.run('done(document.body.innerText)')!r}")
                log(f"{app.name}: picture at the failure: {app.screenshot('failure')}")
            except Exception as e:  # the app may be what failed
                log(f"{app.name}: no picture at the failure: {e!r}")
        raise
    finally:
        for p in reversed(PROCS):
            stop(p)


def descendants(pid):
    """The pids of a process's children, grandchildren, …"""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            kids = []
        out += kids
        todo += kids
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def rss_kb(pid):
    """RSS of a process and its descendants (WebKit's web and network processes)."""
    total = 0
    for p in [pid] + descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            pass
    return total


def stable(pid, state={}):
    """True once the tree's RSS moved by less than 1 MB since the last call."""
    now = rss_kb(pid)
    last = state.get(pid)
    state[pid] = now
    return last is not None and abs(now - last) < 1024


def swaks(port, to, subject):
    out = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", "scanner@contoso.com",
                          "--to", to, "--header", f"Subject: {subject}", "--silent", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# ------------------------------------------------------------------ fakes, keychain, notifications
class Fakes:
    """The testkit's fake Exchange (submission), identity platform and
    Microsoft Graph (`graph_endpoint`, for `graph.endpoint`).
    Accounts (testkit/src/bin/postern-fakes.rs): mailbox scanner@contoso.com;
    OAuth clients `postern-test` (secret `test-secret`) and `postern-public`
    (public: PKCE, device code). `args`: more of postern-fakes' options,
    e.g. ["--graph-roles", "Mail.Send"]; `name`: its directory under `work`."""

    def __init__(self, work, args=(), name="fakes"):
        self.proc = start([fakes_binary(), "--dir", os.path.join(work, name), *args], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
        first = json.loads(self.proc.stdout.readline())
        self.smtp_port = first["smtp_port"]
        self.authority = first["authority"]
        self.ca_file = first["ca_file"]
        self.graph_endpoint = first.get("graph_endpoint")
        self.messages = []
        self.graph_messages = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            m = json.loads(line)
            (self.graph_messages if m.get("graph") else self.messages).append(m)

    def wait_graph_messages(self, n, timeout=30):
        """Waits until the fake Graph delivered n messages in all; returns them."""
        wait_for(f"{n} message(s) at the fake Graph", lambda: len(self.graph_messages) >= n, timeout)
        return self.graph_messages

    def graph_fault(self, spec):
        """`graph-fault SPEC` (see postern-fakes' doc), e.g. "sendMail 429 ApplicationThrottled retry-after=2"."""
        self.proc.stdin.write(f"graph-fault {spec}\n")
        self.proc.stdin.flush()

    def wait_messages(self, n, timeout=30):
        """Waits until the fake Exchange accepted n messages in all; returns them."""
        wait_for(f"{n} message(s) at the fake Exchange", lambda: len(self.messages) >= n, timeout)
        return self.messages

    def fault(self, stage, reply):
        """The next transaction gets `reply` at `stage` (see postern-fakes --help)."""
        self.proc.stdin.write(f"fault {stage} {reply}\n")
        self.proc.stdin.flush()


def start_fakes(work, args=(), name="fakes"):
    return Fakes(work, args, name)


def set_secret(config, value, env):
    """`postern account set-secret`, as the README says: into the keychain."""
    subprocess.run([APP, "--config", config, "account", "set-secret"], input=value, text=True,
                   check=True, env=env, capture_output=True)


def keychain(service="postern"):
    """The keychain's items for `service`: one dict per item, its attributes
    and its `secret` (secret-tool search --all), to check what a test stored
    and that a secret lies there and nowhere else."""
    out = subprocess.run(["secret-tool", "search", "--all", "service", service], capture_output=True, text=True)
    items = []
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("[/"):
            items.append({})
        elif items and " = " in line:
            key, value = line.split(" = ", 1)
            items[-1][key.replace("attribute.", "")] = value
    return items


def notify_server(work):
    """The stand-in org.freedesktop.Notifications: (process, JSON-lines file)."""
    notes = os.path.join(work, "notifications.jsonl")
    open(notes, "w").close()
    server = start(["/usr/bin/python3", os.path.join(ROOT, "tests/gui/notify_server.py"), notes],
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    return server, notes


def app_env(config=None, home=None):
    """The environment to start the app in: the stand-in browser first on
    PATH; with `home`, a private HOME and XDG dirs under it (the session bus
    and the keyring daemon stay the ones scripts/with-keyring.sh started)."""
    env = dict(os.environ, NO_AT_BRIDGE="1", PATH=TEST_BIN + os.pathsep + os.environ["PATH"])
    env.pop("POSTERN_CONFIG", None)
    if config:
        env["POSTERN_CONFIG"] = config
    if home:
        env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_DATA_HOME=os.path.join(home, ".local", "share"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"), XDG_STATE_HOME=os.path.join(home, ".local", "state"))
        for d in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            os.makedirs(env[d], exist_ok=True)
    return env


# ------------------------------------------------------------------ WebDriver
class WebDriverError(AssertionError):
    def __init__(self, method, path, status, body):
        try:
            value = json.loads(body).get("value", {})
        except ValueError:
            value = {}
        self.error = value.get("error", "") if isinstance(value, dict) else ""
        super().__init__(f"WebDriver {method} {path}: {status} {body[:500]!r}")


class WebDriver:
    """A W3C WebDriver client over urllib, for tauri-driver."""

    def __init__(self, port, native_port):
        self.base = f"http://127.0.0.1:{port}"
        self.native_port = native_port
        self.sid = None

    def call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(3):
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read() or b"{}").get("value")
            except urllib.error.HTTPError as e:
                raise WebDriverError(method, path, e.code, e.read().decode(errors="replace"))
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                # tauri-driver forwards each request on a pooled keep-alive
                # connection to WebKitWebDriver, without retrying one that
                # the other end has just closed; it then drops ours with no
                # response. The request never reached WebKitWebDriver.
                log(f"WebDriver {method} {path}: {e!r} from tauri-driver's proxy; "
                    f"WebKitWebDriver listening: {port_open(self.native_port)}; again")
        raise AssertionError(f"WebDriver {method} {path}: dropped three times")

    def session(self, app, args, env=None):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": app, "args": args},
        }}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return f"/session/{self.sid}{path}"

    def run(self, script, *args):
        """Runs async JS; the script calls `done(value)`."""
        wrapped = "const done = arguments[arguments.length - 1];" + script
        return self.call("POST", self.s("/execute/async"), {"script": wrapped, "args": list(args)})

    def invoke(self, cmd, args=None):
        r = self.run("window.__TAURI__.core.invoke(arguments[0], arguments[1])"
                     ".then(v => done({ok: v}), e => done({err: String(e)}));", cmd, args or {})
        if "err" in r:
            raise AssertionError(f"{cmd} rejected: {r['err']}")
        return r["ok"]

    # W3C element endpoints: what a person does, through the browser engine.
    def find(self, css):
        """The element's id; WebDriverError (error "no such element") if none."""
        return self.call("POST", self.s("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css):
        return [e[ELEMENT] for e in self.call("POST", self.s("/elements"), {"using": "css selector", "value": css})]

    def element(self, eid, what, body=None):
        method = "GET" if body is None else "POST"
        return self.call(method, self.s(f"/element/{eid}/{what}"), body)

    def screenshot(self):
        """A PNG of the webview's viewport."""
        return base64.b64decode(self.call("GET", self.s("/screenshot")))


# ------------------------------------------------------------------ the app, driven like a person
_GONE = ("no such element", "stale element reference")


class App:
    """The real app in a WebDriver session. `name` prefixes its screenshots
    (`<name>-NN-<step>.png`). Selectors are CSS."""

    def __init__(self, work, name, config=None, args=None):
        self.name = name
        self.work = os.path.join(work, name)
        self.home = os.path.join(self.work, "home")
        os.makedirs(self.home, exist_ok=True)
        self.env = app_env(config, self.home)
        # With no --config and no POSTERN_CONFIG: the platform default, here
        # under the private XDG_CONFIG_HOME.
        self.config = config or os.path.join(self.env["XDG_CONFIG_HOME"], "postern", "postern.toml")
        self.step = 0
        port, native = free_port(), free_port()
        self.driver = start(["tauri-driver", "--port", str(port), "--native-port", str(native)], env=self.env,
                            stdout=open(os.path.join(self.work, "driver.out"), "w"),
                            stderr=open(os.path.join(self.work, "driver.log"), "w"))
        self.wd = WebDriver(port, native)
        # tauri-driver answers before the WebKitWebDriver it started listens:
        # a request in between is dropped.
        wait_for("tauri-driver", lambda: port_open(port), 30)
        wait_for("WebKitWebDriver", lambda: port_open(native), 30)
        self.wd.session(APP, args if args is not None else (["--config", config] if config else []))
        wait_for("window.__TAURI__", lambda: self.wd.run("done(!!(window.__TAURI__ && window.__TAURI__.core))"), 30)
        wait_for("the app's page", lambda: self.exists("nav.nav button.nav-item"), 30)
        APPS.append(self)

    # ---- looking
    def exists(self, css):
        return bool(self.wd.find_all(css))

    def _get(self, css, what):
        """GET /element/{id}/{what} of the first match; found again when the
        page re-rendered it in between (the pages rebuild their DOM)."""
        for attempt in range(5):
            try:
                return self.wd.element(self.wd.find(css), what)
            except WebDriverError as e:
                if e.error != "stale element reference" or attempt == 4:
                    raise

    def text(self, css):
        """The rendered text of the first match ("" when it is hidden)."""
        return self._get(css, "text")

    def value(self, css):
        return self._get(css, "property/value")

    def enabled(self, css):
        return self._get(css, "enabled")

    def attr(self, css, name):
        return self._get(css, f"attribute/{name}")

    def _try(self, f):
        try:
            return f()
        except WebDriverError as e:
            if e.error in _GONE:
                return None  # not there (yet), or re-rendered under us
            raise

    def wait_for(self, css, timeout=30):
        """Waits until an element matches; its id."""
        return wait_for(f"{css!r} on the page", lambda: self._try(lambda: self.wd.find(css)), timeout)

    def wait_text(self, css, text, timeout=30):
        """Waits until the element's rendered text contains `text`; the text."""
        last = [None]

        def seen():
            t = self._try(lambda: self.text(css))
            last[0] = t
            return (t,) if t is not None and text in t else None
        try:
            return wait_for(f"{text!r} in {css!r}", seen, timeout)[0]
        except AssertionError:
            raise AssertionError(f"timed out waiting for {text!r} in {css!r}; it shows {last[0]!r}")

    # ---- doing
    def click(self, css):
        self.wd.element(self.wait_for(css), "click", {})

    def type(self, css, text, replace=True):
        """Clicks into the field and types, as a person does: with
        `replace`, first Ctrl+A so the typing replaces what was there."""
        eid = self.wait_for(css)
        self.wd.element(eid, "click", {})
        if replace:
            # A command of its own: WebKitWebDriver keeps Ctrl held to the
            # end of the keys it is given (a NULL key does not release it).
            self.wd.element(eid, "value", {"text": "\ue009a"})
        self.wd.element(eid, "value", {"text": text or ("\ue017" if replace else "")})

    def select(self, css, value):
        """Picks an option of a <select> by clicking it."""
        self.click(f"{css} option[value={json.dumps(value)}]")

    def page(self, name):
        """Opens a page from the sidebar."""
        self.click(f"nav.nav button.nav-item[data-page={name}]")
        wait_for(f"the {name} page", lambda: self.attr(f"button.nav-item[data-page={name}]", "aria-current") == "page")

    # ---- pictures
    def show(self, css, block="center"):
        """Scrolls an element into the window (`block`: center, start, end),
        for a picture: the camera, not an action under test."""
        self.wd.call("POST", self.wd.s("/execute/sync"), {
            "script": "document.querySelector(arguments[0]).scrollIntoView({block: arguments[1]})",
            "args": [css, block]})

    def screenshot(self, step):
        """The webview as a PNG: <SHOTS>/<name>-NN-<step>.png."""
        # WebKit hands over the last frame it painted: let it paint what the
        # page holds now (two animation frames) first.
        self.wd.run("requestAnimationFrame(() => requestAnimationFrame(() => done(true)))")
        self.step += 1
        path = os.path.join(SHOTS, f"{self.name}-{self.step:02d}-{step}.png")
        os.makedirs(SHOTS, exist_ok=True)
        with open(path, "wb") as f:
            f.write(self.wd.screenshot())
        _shrink(path)
        return path

    def screen(self, step):
        """The whole X screen (`import -window root`), cropped to what is drawn."""
        self.step += 1
        path = os.path.join(SHOTS, f"{self.name}-{self.step:02d}-{step}-screen.png")
        os.makedirs(SHOTS, exist_ok=True)
        subprocess.run(["import", "-window", "root", "-trim", "+repage", path], check=True, timeout=30)
        _shrink(path)
        return path

    def output(self):
        """What the app wrote to stdout and stderr (its log), so far."""
        text = ""
        for name in ("driver.out", "driver.log"):
            with open(os.path.join(self.work, name), errors="replace") as f:
                text += f.read()
        return text

    # ---- the end
    def stop(self):
        """Ends the session and waits until the app and its helpers are gone
        (so a next start is not handed to this one by single-instance)."""
        tree = descendants(self.driver.pid)
        try:
            self.wd.call("DELETE", self.wd.s(""))
        except AssertionError:
            pass  # the session may have ended with its window
        stop(self.driver)
        try:
            wait_for("the app to exit", lambda: not any(alive(p) for p in tree), 20)
        except AssertionError:
            for p in tree:
                if alive(p):
                    os.kill(p, 9)


def _shrink(path):
    """Palette PNG without metadata: a few tens of kB for the repository."""
    subprocess.run(["convert", path, "-strip", "-colors", "256", f"PNG8:{path}"], check=True, timeout=30)


def start_app(work, name, config=None, args=None):
    """The real app in a private HOME; `config=None`: no config file at all."""
    return App(work, name, config, args)


def workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


# ------------------------------------------------------------------ the tray over dbusmenu
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


def tray_click(name, path, label):
    items = menu_items(name, path)
    assert label in items, f"no menu item {label!r} in {items}"
    gdbus("--dest", name, "--object-path", path, "--method", "com.canonical.dbusmenu.Event",
          "--", str(items[label]), "clicked", '<"">', "0")


if __name__ == "__main__":
    sys.exit("harness.py is a library for tests/gui/test_*.py")
