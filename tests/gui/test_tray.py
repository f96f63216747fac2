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
- closing the window (WM_DELETE_WINDOW, as a close button sends) destroys
  the webview and gives its memory back; the app stays in the tray, relays,
  and Open Postern brings the window back;
- measurements for BENCHMARKS.md (startup to tray icon, RSS with the window
  open and after it is closed) printed as JSON on the last line.

Waits are on conditions (with deadlines), never fixed sleeps.
"""
import json
import os
import subprocess
import tempfile
import time

import x11
from harness import (APP, WebDriver, app_env, free_port, log, menu_items, notify_server, port_open, rss_kb, run,
                     set_secret, stable, start, start_fakes, swaks, tray_click as click, tray_item, wait_for)

SEND_AS = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"


def main():
    work = tempfile.mkdtemp(prefix="postern-gui-")
    measures = {}
    fakes = start_fakes(work)
    up = {"smtp_port": fakes.smtp_port, "authority": fakes.authority, "ca_file": fakes.ca_file}
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
    # tests/gui/bin/xdg-open is the "browser" the app opens for sign-in.
    env = app_env(config)
    set_secret(config, "test-secret", env)
    server, notes = notify_server(work)

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
    # Closing the window (as its close button does) destroys the webview and
    # gives its memory back; the app stays in the tray.
    windows = wait_for("the window on the X server", lambda: x11.windows_of(direct.pid, "Postern"))
    x11.close(windows)
    wait_for("the window to go", lambda: not x11.windows_of(direct.pid, "Postern"))
    wait_for("the webview's memory to be given back",
             lambda: rss_kb(direct.pid) < measures["rss_window_open_kb"] - 20000, 30)
    wait_for("RSS to settle after closing", lambda: stable(direct.pid), 30, 0.5)
    measures["rss_after_close_kb"] = rss_kb(direct.pid)
    assert direct.poll() is None, "closing the window ended the app"
    assert tray_item() is not None, "the tray icon went with the window"
    swaks(smtp, "bob@contoso.com", "gui-after-close")
    fakes.wait_messages(1, 30)  # a delivery with the window closed
    # The tray's Open Postern brings a new window back.
    click(name, menu, "Open Postern")
    wait_for("the window to come back", lambda: x11.windows_of(direct.pid, "Postern"))
    # A second launch focuses the first and exits.
    second = subprocess.run([APP], env=env, timeout=30, capture_output=True)
    assert second.returncode == 0, second
    assert direct.poll() is None
    # Start at login, from the tray: an XDG autostart entry that starts this
    # program, and gone again when turned off.
    autostart = os.path.join(os.environ["HOME"], ".config", "autostart")
    entries = lambda: [os.path.join(autostart, f) for f in os.listdir(autostart)] if os.path.isdir(autostart) else []
    assert entries() == [], entries()
    click(name, menu, "Start at login")
    entry = wait_for("the autostart entry", entries)[0]
    text = open(entry).read()
    assert f"Exec={APP}" in text or f'Exec="{APP}"' in text, text
    click(name, menu, "Start at login")
    wait_for("the autostart entry to go", lambda: not entries())
    click(name, menu, "Quit")
    assert direct.wait(timeout=30) == 0, "Quit did not exit cleanly"
    log(f"direct launch: {measures}")

    # -------- 2. through WebDriver
    driver_port, native_port = free_port(), free_port()
    driver = start(["tauri-driver", "--port", str(driver_port), "--native-port", str(native_port)], env=env,
                   stdout=open(os.path.join(work, "driver.out"), "w"),
                   stderr=open(os.path.join(work, "driver.log"), "w"))
    wd = WebDriver(driver_port, native_port)
    # tauri-driver answers before the WebKitWebDriver it started listens:
    # a request in between is dropped (tauri-driver's proxy gets "connection
    # refused" and closes the connection without a response).
    wait_for("tauri-driver", lambda: port_open(driver_port), 30)
    wait_for("WebKitWebDriver", lambda: port_open(native_port), 30)
    wd.session(APP, ["--config", config])
    wait_for("window.__TAURI__", lambda: wd.run("done(!!(window.__TAURI__ && window.__TAURI__.core))"), 30)
    wd.run("window.__statuses = []; window.__TAURI__.event.listen('status-changed',"
           " e => window.__statuses.push(e.payload)).then(() => done(true));")
    status = wd.invoke("get_status")
    assert status["running"] is True, status

    swaks(smtp, "bob@contoso.com", "gui-sent")
    wait_for("the message sent", lambda: [m for m in wd.invoke("get_queue")
                                          if m["state"] == "sent" and m["subject"] == "gui-sent"])
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
    fakes.fault("data-end", SEND_AS)
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

    # Clicking the notification opens the window on that message.
    wd.run("location.hash = '#logs'; done(true)")
    server.stdin.write(f"click {note['id']}\n")
    server.stdin.flush()
    wait_for("the window to show the clicked message", lambda: wd.run(
        "const r = document.querySelector(`tr[data-id='${arguments[0]}']`);"
        "done(!document.getElementById('page-queue').hidden && !!r && r.getAttribute('aria-selected') === 'true'"
        " && document.getElementById('message-detail').textContent.includes('5.7.60'))", failed["id"]))
    log("a notification click opened the window on the failed message")

    # Saving settings rewrites the TOML and restarts the engine in-process:
    # the listener moves to the new port.
    new_smtp = free_port()
    cfg = wd.invoke("get_settings")["config"]
    cfg["listener"]["listen"] = [f"127.0.0.1:{new_smtp}"]
    saved = wd.invoke("save_settings", {"config": cfg})
    assert saved["ok"] is True and saved["restarted"] is True, saved
    assert f"127.0.0.1:{new_smtp}" in open(config).read()
    assert not port_open(smtp), "the old listener is still open"
    swaks(new_smtp, "bob@contoso.com", "gui-new-port")
    wait_for("the message on the new port sent", lambda: [
        m for m in wd.invoke("get_queue") if m["subject"] == "gui-new-port" and m["state"] == "sent"])
    log("save_settings moved the listener and restarted the engine")

    # Sign-in from the window (interactive flow: the system browser, here
    # tests/gui/bin/xdg-open, through the fake authorize endpoint).
    cfg["oauth"]["flow"] = "interactive"
    cfg["oauth"]["client_id"] = "postern-public"  # a public client: no secret, PKCE
    saved = wd.invoke("save_settings", {"config": cfg})
    assert saved["ok"] is True, saved
    assert wd.invoke("get_account")["account"]["state"] == "signed-out"
    wd.run("window.__signin = null; window.__TAURI__.event.listen('signin-finished',"
           " e => { window.__signin = e.payload; }).then(() => done(true));")
    shown = wd.invoke("sign_in", {"deviceCode": False})
    assert shown["kind"] == "browser" and "/oauth2/v2.0/authorize?" in shown["url"], shown
    assert "code_challenge=" in shown["url"], shown
    finished = wait_for("signin-finished", lambda: wd.run("done(window.__signin)"), 60)
    assert finished["ok"] is True, finished
    # The refresh token is in the keychain: "ready" until it is first used,
    # "signed-in" once it has been — the Account page asks for the granted
    # permissions right after a sign-in, which may fetch the access token.
    account = wd.invoke("get_account")["account"]
    assert account["state"] in ("ready", "signed-in"), account
    swaks(new_smtp, "bob@contoso.com", "gui-signed-in")
    wait_for("the message sent with the user's sign-in", lambda: [
        m for m in wd.invoke("get_queue") if m["subject"] == "gui-signed-in" and m["state"] == "sent"])
    account = wd.invoke("get_account")["account"]
    assert account["state"] == "signed-in" and account["access_token_expires_at"] > time.time() * 1000, account
    wd.invoke("sign_out")
    assert wd.invoke("get_account")["account"]["state"] == "signed-out"
    log("signed in from the window, relayed with the user's token, signed out")

    try:
        wd.call("DELETE", f"/session/{wd.sid}")
    except AssertionError:
        pass  # the session may have ended with its window
    print(json.dumps(measures), flush=True)


if __name__ == "__main__":
    run(main)
