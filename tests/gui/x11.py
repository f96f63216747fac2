"""Closing a window the way a window manager's close button does, on an X
server with no window manager (Xvfb): send the window the ICCCM
WM_DELETE_WINDOW client message, which GTK turns into the same
delete-event (Tauri: CloseRequested) a click on the title bar's X gives.

Only libX11 through ctypes (libx11-6 comes with every GTK install) and
`xdotool search` to find the window by its process."""
import ctypes
import os
import subprocess

_CLIENT_MESSAGE = 33


class _ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("l", ctypes.c_long * 5),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


def _x11():
    x = ctypes.cdll.LoadLibrary("libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                             ctypes.POINTER(_XEvent)]
    x.XFlush.argtypes = [ctypes.c_void_p]
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return x


def windows_of(pid, title):
    """X window ids of the process's top-level windows with this title."""
    out = subprocess.run(["xdotool", "search", "--all", "--pid", str(pid), "--name", f"^{title}$"],
                         capture_output=True, text=True)
    # xdotool matches without regard to case: GTK's hidden leader windows
    # are named "postern" (the program), the window itself "Postern".
    name = lambda w: subprocess.run(["xdotool", "getwindowname", w], capture_output=True,
                                    text=True).stdout.rstrip("\n")
    return [int(w) for w in out.stdout.split() if name(w) == title]


def close(window_ids):
    """Asks each window to close (WM_DELETE_WINDOW), as a close button does."""
    x = _x11()
    dpy = x.XOpenDisplay(os.environ["DISPLAY"].encode())
    assert dpy, "cannot open the X display"
    try:
        protocols = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        delete = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        for win in window_ids:
            ev = _XEvent()
            ev.xclient.type = _CLIENT_MESSAGE
            ev.xclient.window = win
            ev.xclient.message_type = protocols
            ev.xclient.format = 32
            ev.xclient.l[0] = delete
            ev.xclient.l[1] = 0  # CurrentTime
            x.XSendEvent(dpy, win, 0, 0, ctypes.byref(ev))
        x.XFlush(dpy)
    finally:
        x.XCloseDisplay(dpy)
