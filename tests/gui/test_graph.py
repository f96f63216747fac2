#!/usr/bin/env python3
"""The real app in Graph mode (run by scripts/test-gui.sh under Xvfb, in a
private D-Bus session with an unlocked gnome-keyring), through tauri-driver
+ WebKitWebDriver, against the testkit's fake identity platform and fake
Microsoft Graph (postern-fakes). Every action under test is a WebDriver
click or typed keys; `invoke` is never used for them.

(a) "consented": the app registration holds Mail.Send and Mail.ReadWrite.
    Account says "Signed in as the app … for tenant …; sends as …" and lists
    both permissions, read from the engine's access token, with no warning
    and no token on the page; Settings shows the Graph keys and the SMTP
    port set aside; a message from swaks reaches the fake Graph.
    Tracking: the fake trace says the message bounced for one recipient
    (5.1.10) after the fake Graph took it: a desktop notification "Message
    bounced after sending" with the reason and the fix (the stand-in
    notification server on the session bus), the queue row marked bounced
    and the detail pane with the reason and the fix.
(b) "no-read-write": the app holds Mail.Send only. Account warns that
    Mail.ReadWrite is missing (big scans fail); Settings: a plain-http
    endpoint typed in gets the engine's error under the field and is not
    saved.

Screenshots: POSTERN_WALKTHROUGH (else target/walkthrough), graph-<scenario>-NN-<step>.png.
"""
import json
import os
import sys
import tomllib

from harness import (APP, app_env, free_port, log, notify_server, run, set_secret, start_app, start_fakes, swaks,
                     wait_for, workdir)

MAILBOX = "scanner@contoso.com"
CLIENT = "postern-test"


def graph_config(work, name, fakes):
    """A Graph-mode, app-only config pointed at the fakes; its path and listener port."""
    assert fakes.graph_endpoint, "postern-fakes printed no graph_endpoint: rebuild it (cargo build -p postern-testkit)"
    port = free_port()
    os.makedirs(os.path.join(work, name), exist_ok=True)
    config = os.path.join(work, name, "postern.toml")
    with open(config, "w") as f:
        f.write(f"""[listener]
listen = ["127.0.0.1:{port}"]

[upstream]
mode = "graph"
mailbox = "{MAILBOX}"

[oauth]
authority = "{fakes.authority}"
tenant = "contoso.com"
client_id = "{CLIENT}"
flow = "client-credentials"

[graph]
endpoint = "{fakes.graph_endpoint}"

[delivery]
retry_first = "1s"
retry_max = "2s"

[tracking]
poll = "1s"

[spool]
dir = "{work}/{name}/spool"
""")
    set_secret(config, "test-secret", app_env(config))
    return config, port


def account_page(app):
    """Account: the app-only line and the permissions; (granted, warnings)."""
    app.page("account")
    line = app.wait_text("#app-only", "Signed in as the app", 30)
    assert line == f"Signed in as the app {CLIENT} for tenant contoso.com; sends as {MAILBOX}", line
    app.wait_for("#granted", 30)
    granted = [app.wd.element(e, "text") for e in app.wd.find_all("#granted li")]
    warnings = [app.wd.element(e, "attribute/data-permission") for e in app.wd.find_all("#permissions .warning")]
    page = app.text("#page-account")
    assert "eyJ" not in page, "a token on the Account page"
    assert "test-secret" not in page, "the client secret on the Account page"
    assert not app.exists("#signin-browser"), "a browser sign-in offered for the app-only flow"
    return granted, warnings


def consented(work):
    _, notes = notify_server(work)
    fakes = start_fakes(work, name="fakes-consented")
    config, port = graph_config(work, "consented", fakes)
    app = start_app(work, "graph-consented", config)
    granted, warnings = account_page(app)
    app.show("#permissions")
    app.screenshot("account")
    # postern-fakes grants the message trace too (tracking).
    assert sorted(granted) == ["ExchangeMessageTrace.Read.All", "Mail.ReadWrite", "Mail.Send"], granted
    assert warnings == [], warnings

    app.page("settings")
    app.wait_for("#group-graph")
    assert app.value("#f-upstream-mode") == "graph"
    assert app.value("#f-graph-endpoint") == fakes.graph_endpoint
    assert not app.enabled("#f-upstream-port"), "the SMTP port is offered in Graph mode"
    assert "no SMTP port" in app.text("#f-upstream-port-help")
    app.show("#group-graph")
    app.screenshot("settings")

    swaks(port, "bob@contoso.com", "gui-graph-sent")
    got = fakes.wait_graph_messages(1, 60)
    assert got[0]["subject"] == "gui-graph-sent" and got[0]["mailbox"].lower() == MAILBOX, got
    assert got[0]["recipients"] == ["bob@contoso.com"], got
    log(f"graph: delivered through the fake Graph by the {got[0]['route']} route")

    # Accepted by Microsoft, then bounced by the recipient's side (the trace).
    gone = "old.supplier@fabrikam.com"
    fakes.proc.stdin.write(f"graph-trace {gone} failed 5.1.10\n")
    fakes.proc.stdin.flush()
    swaks(port, gone, "gui-graph-bounce")
    fakes.wait_graph_messages(2, 60)
    note = wait_for("the bounce notification", lambda: [json.loads(l) for l in open(notes)
                                                       if "bounced after sending" in l], 60)[0]
    body = note["body"]
    assert body.startswith(f"Scan to {gone} was accepted by Microsoft 365, then bounced: "), body
    assert "(5.1.10)" in body and "typos" in body, body
    log(f"notification: {note['summary']}: {body}")
    app.page("queue")
    mark = app.wait_for("tr[data-id] .trace-mark[data-trace=bounced]", 30)
    assert "bounced" in app.wd.element(mark, "text"), app.wd.element(mark, "text")
    app.click("tr[data-id] .trace-mark[data-trace=bounced]")
    detail = app.wait_text(f'#message-detail li[data-address="{gone}"] .trace[data-trace=bounced]', "5.1.10", 30)
    assert "does not know this recipient" in detail and "typos" in detail, detail
    app.show("#message-detail")
    app.screenshot("queue-bounced-after-sending")
    app.stop()


def no_read_write(work):
    fakes = start_fakes(work, ["--graph-roles", "Mail.Send"], name="fakes-no-read-write")
    config, _ = graph_config(work, "no-read-write", fakes)
    app = start_app(work, "graph-no-read-write", config)
    granted, warnings = account_page(app)
    assert granted == ["Mail.Send"], granted
    assert warnings == ["Mail.ReadWrite"], warnings
    text = app.text("#permissions .warning")
    assert "big scans" in text and "Grant admin consent" in text, text
    app.show("#permissions")
    app.screenshot("account-warning")

    app.page("settings")
    app.wait_for("#f-graph-endpoint")
    before = open(config).read()
    app.type("#f-graph-endpoint", "http://example.com")
    err = app.wait_text("#f-graph-endpoint-err", "must use https", 30)
    assert err == '"http://example.com" must use https (plain http is allowed only for a loopback host)', err
    app.show("#group-graph")
    app.screenshot("settings-bad-endpoint")
    app.click("#save-settings")
    wait_for("the save to be refused", lambda: "problem" in app.text("#save-status") or "Not saved" in app.text("#save-status"), 30)
    assert open(config).read() == before, "a refused endpoint reached the config file"
    assert tomllib.load(open(config, "rb"))["graph"]["endpoint"] == fakes.graph_endpoint
    app.stop()


SCENARIOS = {"consented": consented, "no-read-write": no_read_write}


def main():
    names = sys.argv[1:] or list(SCENARIOS)
    log(f"app under test: {APP}")
    work = workdir("postern-graph-")
    for name in names:
        SCENARIOS[name](work)
        log(f"graph {name}: ok")


if __name__ == "__main__":
    run(main)
