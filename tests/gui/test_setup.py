#!/usr/bin/env python3
"""The setup assistant in the real app, clicked like a person (run by
scripts/test-gui.sh under Xvfb, in a private D-Bus session with an unlocked
gnome-keyring), through tauri-driver + WebKitWebDriver. Every action under
test is a WebDriver element click or typed keys; `invoke` only reads back
what the shell holds, after the clicks.

(a) "first": no config file at all. The window opens on the assistant
    (first run, "Welcome"). The assistant has no fields for where Microsoft
    is (upstream host/port/ca_file, oauth.authority: a real office never
    changes them), so the admin first leaves it (Cancel: still no config
    file) and points Postern at the testkit's fakes on the Settings page, by
    typing and Save; then "Set up" in the sidebar starts the assistant again
    and the walk goes through all seven steps without a break: answers for
    an office with a licensed mailbox and SMTP AUTH allowed → client
    submission, app-only (client-credentials); tenant, the fake identity's
    app registration (client id `postern-test`) and the mailbox typed; the
    client secret typed into the write-only field and stored; the app
    token's granted permissions shown (SMTP.SendAsApp); the diagnostics run;
    a test message to a typed address shown delivered, and received by the
    fake Exchange; the device card lists this PC's real non-loopback IPv4
    addresses (`ip -o -4 addr show scope global`), the port and whether a
    login is needed, and its consent button makes Postern listen on
    0.0.0.0:<port> and allow that network. Finish. Then: the secret lies in
    the keychain (`secret-tool`) and nowhere else — not in the TOML, not in
    any IPC answer the page got (every `invoke` answer is recorded by a
    read-only wrapper in the page, and get_settings / get_secrets /
    get_account / get_logs are read once more at the end), not in the app's
    log, not in the page's text; and the config file holds only the keys
    this choice needs.
(b) "cancel": the README's example config (pointed at the fakes as in
    test_clicks.py). "Set up…" from the tray menu (dbusmenu); step 1
    answered for another route, step 2 filled in and Next (the draft is
    saved: the file changes); Cancel → the file is byte-identical to before.

A screenshot of each step goes to POSTERN_WALKTHROUGH (else
target/walkthrough), named setup-NN-<step>.png / setup-cancel-NN-<step>.png;
with POSTERN_THEME=dark the app runs with GTK's dark theme (which WebKitGTK
hands to the page as prefers-color-scheme: dark) and the pictures are named
setup-dark-… .
"""
import ipaddress
import json
import os
import subprocess
import sys
import tomllib

from harness import (APP, keychain, log, menu_items, port_open, run, start_app, start_fakes, tray_click, tray_item,
                     wait_for, workdir)
from test_clicks import pointed_at_fakes, readme_toml, started

MAILBOX = "scanner@contoso.com"
TENANT = "contoso.com"
CLIENT_ID = "postern-test"   # the fake identity platform's confidential client
SECRET = "test-secret"       # ... and the secret it accepts for it
TEST_TO = "anna.berg@contoso.com"
DARK = os.environ.get("POSTERN_THEME") == "dark"
PREFIX = "setup-dark" if DARK else "setup"

# Records every answer the page's IPC calls get, read-only: Tauri's invoke
# (non-writable) posts each command to ipc://localhost/<command> with fetch;
# the wrapper hands the page the same response and keeps a copy of its text.
# (Events the shell pushes into the page do not pass here: the page's text
# and the app's log are checked for those.)
RECORD_IPC = """
if (!window.__ipcAnswers) {
  const orig = window.fetch.bind(window);
  window.__ipcAnswers = [];
  window.fetch = async (url, opts) => {
    const r = await orig(url, opts);
    const u = String(url);
    if (u.startsWith("ipc:")) r.clone().text().then((t) => window.__ipcAnswers.push([decodeURIComponent(u.split("/").pop()), t]));
    return r;
  };
}
done(true);
"""


def global_ipv4():
    """(interface, address, network) of this machine's global IPv4 addresses."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True,
                         check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        iface, cidr = parts[1], parts[3]
        net = ipaddress.ip_interface(cidr)
        found.append((iface, str(net.ip), str(net.network)))
    return found


def step_is(app, n, timeout=30):
    wait_for(f"step {n} of the assistant",
             lambda: app._try(lambda: app.attr("#setup-step-body", "data-step")) == str(n), timeout)


def title(app):
    return app._try(lambda: app.text("#page-title")) or ""


def confirm(app):
    """The app's confirmation dialog: its OK button."""
    app.wait_for("dialog.confirm")
    app.click('dialog.confirm button[value="ok"]')


def next_step(app, n):
    app.click("#setup-next")
    try:
        step_is(app, n)
    except AssertionError:
        raise AssertionError(f"Next did not lead to step {n}; the step shows "
                             f"{app._try(lambda: app.text('#setup-step-body'))!r}")


def answer(app, external, mailbox, connector, smtp_auth):
    """Step 1: the four questions, clicked; each answer is seen selected
    before the next, as a person looks before moving on."""
    for css in (f"#setup-answer-external-{'yes' if external else 'no'}",
                f"#setup-answer-mailbox-{'yes' if mailbox else 'no'}",
                f"#setup-answer-connector-{connector}",
                f"#setup-answer-smtpauth-{'yes' if smtp_auth else 'no'}"):
        app.click(css)
        wait_for(f"{css} to be selected", lambda: app.exists(f"{css}:checked"))


def toml(app):
    return tomllib.load(open(app.config, "rb"))


def point_settings_at_fakes(app, fakes):
    """Settings: the mailbox and client id (the form needs both on a first
    start) and where Microsoft is (the fakes), typed and saved."""
    app.page("settings")
    app.wait_for("#f-upstream-mailbox")
    app.type("#f-upstream-mailbox", MAILBOX)
    app.type("#f-oauth-client_id", CLIENT_ID)  # the form's rules want one for OAuth
    app.type("#f-upstream-host", "localhost")
    app.type("#f-upstream-port", str(fakes.smtp_port))
    app.type("#f-upstream-ca_file", fakes.ca_file)
    app.type("#f-oauth-authority", fakes.authority)
    app.show("#f-upstream-ca_file")
    app.screenshot("settings-fakes-typed")
    errors = lambda: [t for e in app.wd.find_all("#settings-form .field-error") if (t := app.wd.element(e, "text"))]
    assert app.enabled("#save-settings"), f"Save is disabled: {app.text('#save-status')!r}: {errors()}"
    app.click("#save-settings")
    app.wait_text("#save-status", "Saved")
    saved = toml(app)
    assert saved["upstream"]["port"] == fakes.smtp_port and saved["upstream"]["ca_file"] == fakes.ca_file, saved
    assert saved["oauth"]["authority"] == fakes.authority, saved
    return saved


def first_run(work, fakes):
    assert not port_open(2525), "127.0.0.1:2525 (the default listener) is taken by another program"
    app = start_app(work, PREFIX)
    assert not os.path.exists(app.config), app.config
    wait_for("the window to open on the assistant", lambda: title(app) == "Set up", 30)
    step_is(app, 1)
    app.wait_text("#setup-banner", "Welcome to Postern")
    app.screenshot("first-start")
    assert app.wd.run(RECORD_IPC)

    # The assistant has no fields for the fakes' endpoints: leave it, and type them in Settings.
    app.click("#setup-cancel")
    confirm(app)
    app.wait_for("#setup-start")
    assert not os.path.exists(app.config), "Cancel on a first start left a config file behind"
    point_settings_at_fakes(app, fakes)

    # "Set up" in the sidebar: the assistant again, now over the saved settings.
    app.page("setup")
    step_is(app, 1)
    app.wait_text("#setup-banner", "Welcome to Postern")  # still the first run
    # Nothing was ever signed in: nobody may be told a saved sign-in was refused.
    strip = wait_for("the status strip", lambda: (t := app._try(lambda: app.text(".strip"))) and "Connecting" not in t and t)
    assert "no longer accepts the saved sign-in" not in strip, f"before any secret or sign-in: {strip!r}"
    answer(app, external=True, mailbox=True, connector="no", smtp_auth=True)
    app.wait_for("#setup-recommendation[data-mode=submission]")
    reason = app.text("#setup-reason")
    log(f"step 1: recommended {app.text('#setup-rec-mode')!r}: {reason!r}")
    assert app.exists("#setup-route-submission:checked"), "the recommended route is not the one selected"
    app.show("#setup-recommendation")
    app.screenshot("1-route")
    next_step(app, 2)

    app.click("#setup-signin-way-client-credentials")
    app.type("#setup-f-upstream-mailbox", MAILBOX)
    app.type("#setup-f-oauth-tenant", TENANT)
    app.type("#setup-f-oauth-client_id", CLIENT_ID)
    wait_for("the PowerShell lines to name the client id",
             lambda: CLIENT_ID in (app._try(lambda: app.text("#setup-ms-steps")) or ""))
    wait_for("no field errors", lambda: all(not app.wd.element(e, "text")
                                            for e in app.wd.find_all("#setup-fields .field-error")))
    app.screenshot("2-microsoft")
    next_step(app, 3)
    saved = toml(app)
    assert saved["upstream"]["ca_file"] == fakes.ca_file, f"the assistant dropped the Settings page's keys: {saved}"
    assert saved["oauth"]["flow"] == "client-credentials" and saved["oauth"]["client_id"] == CLIENT_ID, saved

    app.wait_for("#secret-input")  # once the keychain said what it holds
    assert app.attr("#secret-input", "type") == "password"
    assert app.text("#secret-state") == "not stored"
    app.type("#secret-input", SECRET)
    app.click("#secret-store")
    try:
        app.wait_for('#secret-state[data-stored="true"]')
    except AssertionError:
        raise AssertionError(f"the secret was not stored: {app.text('#setup-step-body')!r}")
    assert app.value("#secret-input") == "", "the secret field was not cleared after storing"
    app.screenshot("3-secret")
    next_step(app, 4)

    verdict = app.wait_text("#setup-token-verdict", "", 60)
    roles = app.text("#setup-roles")
    log(f"step 4: {verdict!r}; roles {roles!r}")
    assert app.attr("#setup-token-verdict", "data-send") == "true", verdict
    assert "SMTP.SendAsApp" in roles, roles
    app.screenshot("4-token")
    next_step(app, 5)

    summary = wait_for("the checks to finish", lambda: (t := app._try(lambda: app.text("#setup-checks-summary")))
                       and "Running" not in t and t, 90)
    failed = [app.wd.element(e, "text").replace("\n", " | ") for e in app.wd.find_all("#setup-checks li.check-fail")]
    log(f"step 5: {summary!r}")
    warned = [app.wd.element(e, "text").replace("\n", " | ") for e in app.wd.find_all("#setup-checks li.check-warn")]
    for f in failed:
        log(f"step 5: failed: {f}")
    for w in warned:
        log(f"step 5: warning: {w}")
    # Only what the fakes cannot answer may fail: the DNS of a real tenant.
    for f in failed:
        assert "DNS" in f or "MX" in f or "autodiscover" in f.lower(), f"a check failed against the fakes: {f}"
    app.show("#setup-checks li.check-fail" if failed else "#setup-checks-summary")
    app.screenshot("5-checks")
    next_step(app, 6)

    app.type("#setup-test-to", TEST_TO)
    before = len(fakes.messages)
    app.click("#setup-send-test")
    outcome = wait_for("the test message to be delivered", lambda: app._try(
        lambda: app.attr("#setup-test-result", "data-outcome")) in ("sent", "failed") and app.text("#setup-test-outcome"), 60)
    log(f"step 6: {outcome!r}")
    assert app.attr("#setup-test-result", "data-outcome") == "sent", outcome
    msgs = fakes.wait_messages(before + 1)
    got = msgs[before]
    assert TEST_TO in json.dumps(got), f"the fake Exchange got {got!r}"
    # The status strip follows: nothing waiting any more.
    wait_for("the status strip to show the queue empty", lambda: "queued" not in (app._try(lambda: app.text(".strip")) or "queued"), 30)
    app.screenshot("6-test-sent")
    next_step(app, 7)

    device_card(app)
    app.show("#setup-step-title", "start")
    app.click("#setup-finish")
    wait_for("the Queue page after Finish", lambda: title(app) == "Queue", 30)
    app.screenshot("finished")

    final = toml(app)
    log(f"the config file after the assistant: {final}")
    expected_keys = {
        "upstream": {"mailbox", "host", "port", "ca_file"},  # the last three: the test's fakes
        "oauth": {"tenant", "client_id", "flow", "authority"},  # authority: the fakes
    }
    if "listener" in final:
        expected_keys["listener"] = {"listen", "allow"}
    assert set(final) == set(expected_keys), f"sections beyond the choice's: {sorted(final)}"
    for section, keys in expected_keys.items():
        assert set(final[section]) == keys, f"[{section}] holds {sorted(final[section])}, expected {sorted(keys)}"
    assert final["upstream"]["mailbox"] == MAILBOX and final["oauth"]["tenant"] == TENANT, final
    # mode = submission and auth = oauth are the defaults: a hand-written config leaves them out.

    secret_nowhere_else(app)
    app.stop()


def device_card(app):
    """Step 7: the addresses, port and login; the consent for this PC's network."""
    app.wait_for("#device-card #device-card-port")
    servers = app.text("#device-card-servers")
    port = int(app.text("#device-card-port"))
    login = app.text("#device-card-login")
    log(f"step 7: servers {servers!r}, port {port}, login {login!r}")
    assert port == 2525, port
    assert "127.0.0.1" not in servers, servers
    mine = global_ipv4()
    for iface, addr, net in mine:
        assert addr in servers and iface in servers and net in servers, f"{addr} ({iface}, {net}) not on the card: {servers!r}"
    # No device users and nothing but loopback allowed yet: the card says devices cannot send unasked.
    assert "not allowed yet" in login or "log in" in login, f"the card does not say whether a login is needed: {login!r}"
    app.screenshot("7-device-card")
    if not mine:
        log("step 7: this machine has no global IPv4 address: the LAN consent is not tried")
        return
    iface, addr, net = mine[0]
    # The button's id: the network with each run of other characters as one "-".
    button = "#lan-allow-" + "-".join(p for p in "".join(c if c.isalnum() else " " for c in net).split())
    assert app.exists(button), f"no consent button for {net}: {app.text('#device-card')!r}"
    app.click(button)
    app.wait_for("#device-card-note.banner-ok", 60)
    listener = toml(app)["listener"]
    assert f"0.0.0.0:{port}" in listener["listen"], listener
    assert net in listener["allow"], listener
    wait_for("the card to follow", lambda: not app.exists(button))
    login = app.text("#device-card-login")
    assert login.startswith(f"No, for devices on {net}"), f"the card's login line after the consent: {login!r}"
    wait_for("Postern to listen on the LAN address", lambda: port_open(port, addr), 30)
    log(f"step 7: {app.text('#device-card-note')!r}; login now {app.text('#device-card-login')!r}; "
        f"the listener: {listener}")
    app.screenshot("7-device-card-lan")


def secret_nowhere_else(app):
    items = [i for i in keychain() if i.get("secret") == SECRET]
    assert items, f"the client secret is not in the keychain: {[sorted(i) for i in keychain()]}"
    log(f"the keychain holds the secret under {[{k: v for k, v in i.items() if k != 'secret'} for i in items]}")
    out = subprocess.run(["secret-tool", "lookup", *sum(([k, v] for k, v in items[0].items() if k != "secret"
                                                          and k not in ("label", "created", "modified", "schema")), [])],
                         capture_output=True, text=True)
    assert out.stdout.strip() == SECRET, f"secret-tool lookup: {out.stdout!r} {out.stderr!r}"
    assert SECRET not in open(app.config).read(), "the secret is in the config file"
    assert SECRET not in app.output(), "the secret is in the app's log"
    page = app.wd.call("POST", app.wd.s("/execute/sync"), {"script": "return document.documentElement.outerHTML"
                                                           " + document.body.innerText", "args": []})
    assert SECRET not in page, "the secret is in the page"
    answers = app.wd.run("done(window.__ipcAnswers || null)")
    assert answers, "no IPC answers were recorded"
    log(f"{len(answers)} IPC answers recorded: {sorted({c for c, _ in answers})}")
    for cmd, text in answers:
        assert SECRET not in text, f"the secret is in the answer to {cmd}"
    for cmd in ("get_settings", "get_secrets", "get_account", "get_logs", "get_setup", "get_device_card", "get_status"):
        text = json.dumps(app.wd.invoke(cmd))
        assert SECRET not in text, f"the secret is in the answer to {cmd}"
    secrets = app.wd.invoke("get_secrets")
    assert secrets["client_secret"] is True, secrets


def cancel_run(work, fakes):
    text = readme_toml()
    name = f"{PREFIX}-cancel"
    os.makedirs(os.path.join(work, name), exist_ok=True)
    config = os.path.join(work, name, "postern.toml")
    with open(config, "w") as f:
        f.write(pointed_at_fakes(text, fakes))
    before = open(config, "rb").read()
    app = start_app(work, name, config)
    strip = started(app)
    # The README's config names the mailbox and the client id; what is missing is the secret.
    assert "No mailbox or app registration" not in strip, f"the README config, no secret stored yet: {strip!r}"
    log(f"cancel: the strip says {strip!r}")
    bus, menu, _ = wait_for("the tray icon on the bus", tray_item)
    assert "Set up…" in menu_items(bus, menu), menu_items(bus, menu)
    tray_click(bus, menu, "Set up…")
    wait_for("the assistant", lambda: title(app) == "Set up", 30)
    step_is(app, 1)
    assert not app.exists("#setup-banner .banner") or "Welcome" not in app.text("#setup-banner"), \
        "a welcome on a configured PC"
    # Only internal recipients, no licensed mailbox, a static IP, no SMTP AUTH: a connector relay.
    answer(app, external=False, mailbox=False, connector="ip", smtp_auth=False)
    app.wait_for("#setup-recommendation")
    mode = app.attr("#setup-recommendation", "data-mode")
    log(f"cancel: recommended {mode}: {app.text('#setup-reason')!r}")
    assert mode != "submission", mode
    app.show("#setup-recommendation")
    app.screenshot("1-route")
    next_step(app, 2)
    app.type("#setup-f-upstream-domain", "contoso.com")
    if app.exists("#setup-f-extra-public_ip"):
        app.type("#setup-f-extra-public_ip", "203.0.113.7")
    app.screenshot("2-microsoft")
    next_step(app, 3)
    changed = toml(app)
    assert changed["upstream"].get("mode") == mode, f"step 2 did not save the draft: {changed}"
    assert open(config, "rb").read() != before
    app.screenshot("3-secret")
    app.click("#setup-cancel")
    confirm(app)
    app.wait_text("#setup-banner", "previous settings and secrets are back")
    app.screenshot("cancelled")
    after = open(config, "rb").read()
    assert after == before, f"Cancel changed the config file:\n{before.decode()}\n---\n{after.decode()}"
    assert app.wd.invoke("get_settings")["config"]["upstream"]["mode"] == "submission"
    log("cancel: the config file is byte-identical to before")
    app.stop()


SCENARIOS = {"first": first_run, "cancel": cancel_run}


def main():
    names = sys.argv[1:] or list(SCENARIOS)
    log(f"app under test: {APP}{' (dark theme)' if DARK else ''}")
    if DARK:
        # GTK's dark variant: WebKitGTK gives it to the page as prefers-color-scheme: dark.
        os.environ["GTK_THEME"] = "Adwaita:dark"
    work = workdir("postern-setup-")
    fakes = start_fakes(work)
    for name in names:
        SCENARIOS[name](work, fakes)
        log(f"{name}: done")


if __name__ == "__main__":
    run(main)
