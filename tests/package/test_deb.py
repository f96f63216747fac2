#!/usr/bin/env python3
"""The .deb, installed for real (as root; run by scripts/test-package.sh):

- `apt-get install ./postern_*.deb` pulls in the declared runtime
  dependencies and installs the program, the desktop entry, the icons, the
  systemd unit and the service helpers; the desktop entry and the unit pass
  their validators;
- the maintainer script made the postern system account and its keyring
  password (root:postern, 0640);
- the service runs as systemd would run it (the unit's ExecStart, as the
  postern user, with the unit's environment): a client secret stored with
  `postern-service account set-secret` lands in the service's own keychain,
  a message sent with swaks arrives at the fake Exchange, `postern-service
  status` sees it sent;
- `apt-get purge` removes the program, the account and its files.

Waits are on conditions with deadlines, never fixed sleeps.
"""
import configparser
import glob
import json
import os
import pwd
import grp
import re
import shutil
import signal
import stat
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "pyutil"))
from ports import free_port, port_open, wait_for  # noqa: E402
FAKES = os.path.join(ROOT, "target", "debug", "postern-fakes")


def log(msg):
    print(f"[package] {msg}", flush=True)


def run(*args, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(args), **kw)


def unit_environment(unit):
    env = {}
    for line in open(unit):
        m = re.match(r"Environment=(\w+)=(.*)", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    exec_start = next(l.split("=", 1)[1].strip() for l in open(unit) if l.startswith("ExecStart="))
    return env, exec_start.split()


def main():
    debs = glob.glob(os.path.join(ROOT, "target/release/bundle/deb/*.deb"))
    assert len(debs) == 1, f"expected one .deb: {debs}"
    deb = debs[0]
    log(f"{os.path.basename(deb)}: {os.path.getsize(deb)} bytes")
    fields = run("dpkg-deb", "--field", deb).stdout
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
    for dep in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libayatana-appindicator3-1"]:
        assert dep in depends, f"{dep} not in Depends: {depends}"
    assert re.search(r"^Recommends: .*gnome-keyring", fields, re.M), fields

    run("dpkg", "--purge", "postern", check=False)
    run("apt-get", "install", "-y", "--no-install-recommends", deb,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    files = run("dpkg", "-L", "postern").stdout.split()
    for f in ["/usr/bin/postern", "/usr/lib/systemd/system/postern.service", "/usr/lib/postern/with-keyring",
              "/usr/sbin/postern-service", "/usr/share/doc/postern/README.md",
              "/usr/share/doc/postern/postern.toml.example"]:
        assert f in files, f"{f} not installed: {files}"
    for f in ["/usr/lib/postern/with-keyring", "/usr/sbin/postern-service", "/usr/bin/postern"]:
        assert os.stat(f).st_mode & stat.S_IXOTH, f"{f} is not executable"
    desktop = [f for f in files if f.startswith("/usr/share/applications/") and f.endswith(".desktop")]
    assert len(desktop) == 1, files
    run("desktop-file-validate", desktop[0])
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(desktop[0])
    assert entry["Desktop Entry"]["Exec"].split()[0] in ("postern", "/usr/bin/postern"), dict(entry["Desktop Entry"])
    icons = [f for f in files if f.startswith("/usr/share/icons/hicolor/") and f.endswith(".png")]
    assert len(icons) >= 2, files
    assert all(os.path.basename(i) == entry["Desktop Entry"]["Icon"] + ".png" for i in icons), icons
    run("systemd-analyze", "verify", "/usr/lib/systemd/system/postern.service")
    version = run("/usr/bin/postern", "--version").stdout
    assert version.startswith("postern "), version
    log(f"installed: {len(files)} paths, {desktop[0]}, {len(icons)} icons; {version.strip()}")

    # The maintainer script: the account and its keyring password.
    user = pwd.getpwnam("postern")
    assert user.pw_dir == "/var/lib/postern" and user.pw_uid < 1000, user
    st = os.stat("/etc/postern/keyring-password")
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and st.st_gid == grp.getgrnam("postern").gr_gid, st
    assert os.path.getsize("/etc/postern/keyring-password") >= 32

    # The service, run the way the unit runs it, against the fake Exchange.
    fakes_dir = "/var/lib/postern/test-fakes"
    fakes = subprocess.Popen([FAKES, "--dir", fakes_dir], stdout=subprocess.PIPE, text=True)
    serve = None
    try:
        up = json.loads(fakes.stdout.readline())
        shutil.chown(fakes_dir, "postern", "postern")
        os.chmod(up["ca_file"], 0o644)
        smtp = free_port()
        with open("/etc/postern/postern.toml", "w") as f:
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
""")
        shutil.chown("/etc/postern/postern.toml", "root", "postern")
        os.chmod("/etc/postern/postern.toml", 0o640)
        run("/usr/sbin/postern-service", "account", "set-secret", input="test-secret")
        account = json.loads(run("/usr/sbin/postern-service", "account", "status", "--json").stdout)
        assert account["account"]["state"] == "ready", account
        assert "test-secret" not in open("/etc/postern/postern.toml").read()

        env, argv = unit_environment("/usr/lib/systemd/system/postern.service")
        serve = subprocess.Popen(["runuser", "-u", "postern", "--", "env", *[f"{k}={v}" for k, v in env.items()],
                                  *argv], cwd="/var/lib/postern", stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        wait_for("the service's listener", lambda: port_open(smtp) or serve.poll() is not None, 60)
        assert serve.poll() is None, serve.stderr.read()
        run("swaks", "--server", f"127.0.0.1:{smtp}", "--from", "scanner@contoso.com", "--to", "bob@contoso.com",
            "--header", "Subject: from the packaged service", "--silent", "2")
        got = json.loads(fakes.stdout.readline())
        assert got["rcpt_to"] == ["bob@contoso.com"] and got["mail_from"] == "scanner@contoso.com", got
        status = wait_for("the service to see it sent", lambda: (
            lambda s: s if s["queue"]["sent"] == 1 else None)(
            json.loads(run("/usr/sbin/postern-service", "status", "--json").stdout)), 30)
        assert status["account"]["state"] == "signed-in", status
        log("the service relayed a message with its own keychain; postern-service status sees it")
    finally:
        if serve and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            serve.wait(timeout=30)
        fakes.terminate()
        fakes.wait(timeout=10)

    run("apt-get", "purge", "-y", "postern", env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert not os.path.exists("/usr/bin/postern")
    assert not os.path.exists("/etc/postern") and not os.path.exists("/var/lib/postern")
    assert run("getent", "passwd", "postern", check=False).returncode != 0
    log("purged: program, account and files gone")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("test_deb.py installs a package: run it as root (scripts/test-package.sh)")
    main()
