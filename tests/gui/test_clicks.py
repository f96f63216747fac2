#!/usr/bin/env python3
"""The real app, clicked like a person (run by scripts/test-gui.sh under
Xvfb, in a private D-Bus session with an unlocked gnome-keyring): the
release build when POSTERN_APP points at it, through tauri-driver +
WebKitWebDriver. Every action under test is a WebDriver element click or
typed keys, found by CSS selector; `invoke` is never used for them.

Twice, each in a private HOME:

(a) "empty": no config file at all, as on a first start. The status strip
    must not claim a saved sign-in was refused; Account offers both sign-in
    buttons; on Settings, Port is empty (the mode's default), and typing
    only the mailbox makes the form saveable: Save writes the platform's
    default config file, in the README's words (`auth = "oauth"`). Then the
    app registration (client id, and the authority: the testkit's fake
    identity platform) is typed and saved, and "Sign in with the browser"
    signs in through the stand-in browser (tests/gui/bin/xdg-open), which
    the page shows; Sign out.
(b) "readme": the README's example config, extracted from README.md's
    ```toml block at run time, with only upstream host/port/ca_file and
    oauth.authority pointed at the fakes. Account explains the
    client-credentials flow (nobody signs in); Settings: a limit changed and
    saved keeps every README value in the file; the flow switched to
    interactive (with the fake's public client id) and saved; then the same
    browser sign-in and Sign out.

A screenshot of each step goes to POSTERN_WALKTHROUGH (else
target/walkthrough), named <scenario>-NN-<step>.png; the checked-in ones
are in docs/walkthrough/ (its README says what each shows).
"""
import os
import re
import sys
import tomllib

from harness import APP, ROOT, keychain, log, port_open, run, start_app, start_fakes, wait_for, workdir

MAILBOX = "scanner@contoso.com"
PUBLIC_CLIENT = "postern-public"  # the fake identity platform's public client (PKCE)


def readme_toml():
    """The README's example config, as the README writes it."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"^```toml\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md has no ```toml block"
    return m.group(1)


def pointed_at_fakes(text, fakes):
    """The README's text with the keys that must reach the fakes added under
    their sections, and nothing else changed (checked with tomllib)."""
    add = {
        "upstream": [f'host = "localhost"', f"port = {fakes.smtp_port}", f'ca_file = "{fakes.ca_file}"'],
        "oauth": [f'authority = "{fakes.authority}"'],
    }
    out = []
    for line in text.splitlines():
        out.append(line)
        m = re.match(r"^\[(\w+)\]\s*$", line)
        if m and m.group(1) in add:
            out += [k + "  # the test's fakes" for k in add.pop(m.group(1))]
    for section, keys in add.items():
        out += ["", f"[{section}]"] + keys
    result = "\n".join(out) + "\n"
    want = tomllib.loads(text)
    want.setdefault("upstream", {}).update(host="localhost", port=fakes.smtp_port, ca_file=fakes.ca_file)
    want.setdefault("oauth", {})["authority"] = fakes.authority
    assert tomllib.loads(result) == want, (result, want)
    return result


def listen_ports(config_text):
    return [int(a.rsplit(":", 1)[1]) for a in tomllib.loads(config_text).get("listener", {}).get("listen", [])]


def keychain_items():
    """How many keychain items are stored under the service `postern`."""
    return len(keychain())


def started(app):
    """Waits until the status strip shows the engine's answer; its text."""
    return wait_for("the status strip", lambda: (t := app._try(lambda: app.text(".strip")))
                    and "Connecting" not in t and t)


def save(app, step, field):
    """Pictures the changed field, presses Save, waits for the page to say it
    saved (pictured too); the config file's contents."""
    app.show(field)
    app.screenshot(f"{step}-typed")
    assert app.enabled("#save-settings"), f"Save is disabled: {app.text('#save-status')!r}"
    app.click("#save-settings")
    app.wait_text("#save-status", "Saved")
    app.show("#page-title", "start")
    app.screenshot(f"{step}-saved")
    return tomllib.load(open(app.config, "rb"))


def strip_text(app):
    return app._try(lambda: app.text(".strip")) or ""


def sign_in_with_browser(app):
    """Account → "Sign in with the browser": the stand-in browser follows
    the sign-in through the fake identity platform; the page says signed in."""
    app.page("account")
    try:
        # The page re-reads the account each time it is opened.
        app.wait_for("#signin-browser", 15)
    except AssertionError:
        raise AssertionError(f"Account offers no \"Sign in with the browser\": {app.text('#page-account')!r}")
    assert app.exists("#signin-device"), "Account offers no device-code sign-in"
    assert app.text("#signin-browser") == "Sign in with the browser"
    before = keychain_items()
    app.screenshot("account-before-sign-in")
    app.click("#signin-browser")
    banner = app.wait_text("#signin-flow", "Signed in", 60)
    wait_for("the state to turn good", lambda: "pill-ok" in app.attr("#account-state", "class"), 30)
    state = app.text("#account-state")
    log(f"{app.name}: signed in; the page says {banner!r}, state {state!r}")
    assert "Waiting for Microsoft" not in app.text("#signin-flow"), app.text("#signin-flow")
    items = keychain()
    assert len(items) == before + 1, "the sign-in did not put a refresh token in the keychain"
    # The refresh token lies in the keychain, and not in the file or the log.
    for item in items:
        token = item.get("secret", "")
        assert len(token) > 8, item.keys()
        assert token not in open(app.config).read(), "a secret in the config file"
        assert token not in app.output(), "a secret in the app's log"
        assert token not in app.text("#page-account"), "a secret on the Account page"
    assert app.enabled("#signout")
    # The status strip at the top follows: no more "sign in" there.
    wait_for("the status strip to drop the sign-in", lambda: not re.search(
        r"(?i)sign-in needed|not signed in", strip_text(app)), 30)
    app.screenshot("account-signed-in")
    app.click("#signout")
    wait_for("the state to show signed out", lambda: "pill-ok" not in app.attr("#account-state", "class")
             and not app.enabled("#signout"), 30)
    assert keychain_items() == before, "Sign out left the refresh token in the keychain"
    log(f"{app.name}: signed out; state {app.text('#account-state')!r}, strip {strip_text(app)!r}")
    app.screenshot("account-signed-out")


def empty_config(work, fakes):
    assert not port_open(2525), "127.0.0.1:2525 (the default listener) is taken by another program"
    app = start_app(work, "empty")
    assert not os.path.exists(app.config), app.config
    strip = started(app)
    app.screenshot("first-start")
    app.screen("first-start")
    assert "no longer accepts the saved sign-in" not in strip, f"first start: {strip!r}"

    app.page("account")
    app.wait_for("#account-state")
    assert app.exists("#signin-browser") and app.exists("#signin-device"), \
        f"Account offers no sign-in on a first start: {app.text('#page-account')!r}"
    app.screenshot("account")

    app.page("settings")
    app.wait_for("#f-upstream-mailbox")
    port = app.value("#f-upstream-port")
    assert port == "", f"Port shows {port!r} on an untouched config (the mode's default is meant)"
    app.screenshot("settings")
    app.type("#f-upstream-mailbox", MAILBOX)
    saved = save(app, "settings-mailbox", "#f-upstream-mailbox")
    assert app.text("#page-settings .toolbar").startswith(f"Saved in {app.config}")
    assert saved["upstream"]["mailbox"] == MAILBOX, saved
    assert saved["upstream"].get("auth", "oauth") == "oauth", f"the form wrote auth = {saved['upstream']['auth']!r}"
    assert saved.get("oauth", {}).get("flow", "interactive") == "interactive", saved
    # What the page shows now is what is on disk: Revert reads it back.
    app.click("#page-settings .toolbar button.btn:not(.primary)")
    wait_for("the mailbox read back", lambda: app._try(lambda: app.value("#f-upstream-mailbox")) == MAILBOX)

    app.type("#f-oauth-client_id", PUBLIC_CLIENT)
    app.type("#f-oauth-authority", fakes.authority)
    saved = save(app, "settings-app-registration", "#f-oauth-client_id")
    assert saved["oauth"]["client_id"] == PUBLIC_CLIENT and saved["oauth"]["authority"] == fakes.authority, saved
    assert saved["upstream"]["mailbox"] == MAILBOX, saved
    # Nothing was ever signed in: nobody may be told a saved sign-in was refused.
    strip = wait_for("the status strip to show the new state",
                     lambda: (t := strip_text(app)) and "No mailbox" not in t and "not set up" not in t and t)
    assert "no longer accepts the saved sign-in" not in strip, f"before any sign-in: {strip!r}"

    sign_in_with_browser(app)
    app.stop()


def readme_config(work, fakes):
    text = readme_toml()
    readme = tomllib.loads(text)
    for port in listen_ports(text):
        assert not port_open(port), f"port {port} (the README's listener) is taken by another program"
    os.makedirs(os.path.join(work, "readme"), exist_ok=True)
    config = os.path.join(work, "readme", "postern.toml")
    with open(config, "w") as f:
        f.write(pointed_at_fakes(text, fakes))
    app = start_app(work, "readme", config)
    started(app)
    app.screenshot("start")

    flow = readme["oauth"]["flow"]
    app.page("account")
    app.wait_for("#account-state")
    app.screenshot("account")
    page = app.text("#page-account")
    assert readme["upstream"]["mailbox"] in page, page
    assert f"OAuth, {flow}" in page, f"Account does not show the README's sign-in (oauth, {flow}): {page!r}"
    if flow == "client-credentials":
        assert not app.exists("#signin-browser"), "a browser sign-in offered for the app-only flow"
        assert "nobody signs in here" in page, page

    app.page("settings")
    app.wait_for("#f-limits-recipients_per_day")
    assert app.value("#f-upstream-mailbox") == readme["upstream"]["mailbox"]
    app.screenshot("settings")
    app.type("#f-limits-recipients_per_day", "5000")
    saved = save(app, "settings-limit", "#f-limits-recipients_per_day")
    assert saved["limits"]["recipients_per_day"] == 5000, saved
    for section, keys in readme.items():
        for key, value in keys.items():
            assert saved[section][key] == value, f"saving lost the README's {section}.{key}: {saved[section].get(key)!r}"
    assert saved["upstream"]["port"] == fakes.smtp_port and saved["oauth"]["authority"] == fakes.authority, saved

    app.select("#f-oauth-flow", "interactive")
    app.type("#f-oauth-client_id", PUBLIC_CLIENT)
    saved = save(app, "settings-interactive", "#f-oauth-flow")
    assert saved["oauth"].get("flow", "interactive") == "interactive" and saved["oauth"]["client_id"] == PUBLIC_CLIENT, saved
    assert saved["limits"]["recipients_per_day"] == 5000, saved

    sign_in_with_browser(app)
    app.stop()


SCENARIOS = {"empty": empty_config, "readme": readme_config}


def main():
    """Every scenario, or those named on the command line (empty, readme)."""
    names = sys.argv[1:] or list(SCENARIOS)
    log(f"app under test: {APP}")
    work = workdir("postern-clicks-")
    fakes = start_fakes(work)
    for name in names:
        SCENARIOS[name](work, fakes)
        log(f"{name}: saved and signed in by clicking")


if __name__ == "__main__":
    run(main)
