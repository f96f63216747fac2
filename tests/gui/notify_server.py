#!/usr/bin/python3
"""A stand-in desktop notification service for the GUI test: owns
org.freedesktop.Notifications on the session bus, appends each Notify call
to the file given as argv[1] as one JSON line (with the id it answered),
and prints "ready" once the name is owned. A line `click ID` on stdin
clicks notification ID (the ActionInvoked signal with "default", as a
notification daemon sends when the person clicks the body). Needs
python3-dbus and python3-gi (Debian packages)."""
import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

OUT = sys.argv[1]


class Server(dbus.service.Object):
    def __init__(self, bus):
        self.next_id = 1
        super().__init__(bus, "/org/freedesktop/Notifications")

    @dbus.service.method("org.freedesktop.Notifications", in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        with open(OUT, "a") as f:
            f.write(json.dumps({"id": self.next_id, "app": str(app), "summary": str(summary),
                                "body": str(body), "actions": [str(a) for a in actions]}) + "\n")
        self.next_id += 1
        return self.next_id - 1

    @dbus.service.method("org.freedesktop.Notifications", out_signature="as")
    def GetCapabilities(self):
        return ["body", "actions"]

    @dbus.service.method("org.freedesktop.Notifications", out_signature="ssss")
    def GetServerInformation(self):
        return ("test-notifications", "postern", "1", "1.2")

    @dbus.service.method("org.freedesktop.Notifications", in_signature="u")
    def CloseNotification(self, nid):
        pass

    @dbus.service.signal("org.freedesktop.Notifications", signature="us")
    def ActionInvoked(self, nid, action):
        pass


def on_stdin(source, _condition):
    line = source.readline()
    if not line:
        return False
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "click":
        server.ActionInvoked(dbus.UInt32(int(arg)), "default")
    return True


DBusGMainLoop(set_as_default=True)
bus = dbus.SessionBus()
name = dbus.service.BusName("org.freedesktop.Notifications", bus)
server = Server(bus)
GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
print("ready", flush=True)
GLib.MainLoop().run()
