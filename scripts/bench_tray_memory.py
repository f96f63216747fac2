#!/usr/bin/env python3
"""Measures the tray app's memory, phase by phase, for BENCHMARKS.md
("Tray app: memory"). Run by scripts/bench-tray-memory.sh, which provides
Xvfb, a private D-Bus session and an unlocked gnome-keyring.

Phases (each waited for on a condition, then SETTLE seconds more for memory
to be given back, then until the tree's RSS is stable):
  tray    - `postern` started, its tray icon exported over dbusmenu and
            its SMTP listener accepting connections; no window yet;
  open    - a second `postern` start (single-instance handoff) opened the
            window and its page has loaded (the app logs "page loaded");
  closed  - the window got WM_DELETE_WINDOW (what a close button sends)
            and is gone, and its web process has ended;
  reopen / reclosed (with --cycles 2) - the same once more, to see that
            nothing grows and that the window still works.

For each phase, every process of the tree (the app and its WebKit
children) with VmRSS and its split from /proc/PID/status (RssAnon,
RssFile, RssShmem), its Pss from smaps_rollup, and its thread count; then
the tree total. `--detail` adds, per process, the mappings that hold the
most RSS (grouped by file; anonymous ones as [anon]/[heap]).
The last line is the whole result as JSON.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "gui"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pyutil"))
import x11  # noqa: E402  (WM_DELETE_WINDOW without a window manager)
from ports import free_port, port_open, wait_for  # noqa: E402


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ /proc
def tree(pid):
    """The process and its descendants, parents first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def kv(path):
    vals = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                parts = v.split()
                if parts and parts[0].isdigit():
                    vals[k] = int(parts[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return vals


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return "?"


def proc_mem(pid):
    st, roll = kv(f"/proc/{pid}/status"), kv(f"/proc/{pid}/smaps_rollup")
    if st is None or roll is None:
        return None
    return {
        "pid": pid, "name": comm(pid), "threads": st.get("Threads", 0),
        "rss": st.get("VmRSS", 0), "anon": st.get("RssAnon", 0), "file": st.get("RssFile", 0),
        "shmem": st.get("RssShmem", 0), "pss": roll.get("Pss", 0),
        "pss_anon": roll.get("Pss_Anon", 0), "pss_file": roll.get("Pss_File", 0),
        "pss_shmem": roll.get("Pss_Shmem", 0),
    }


def top_mappings(pid, n=25):
    """RSS per mapped file (anonymous mappings by their kind), largest first."""
    sums, name = {}, None
    head = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                m = head.match(line)
                if m:
                    name = m.group(1).strip() or "[anon]"
                    name = re.sub(r"^\[anon:.*\]$", "[anon]", name)
                    name = "[stack]" if name.startswith("[stack") else name
                    continue
                k, _, v = line.partition(":")
                if k in ("Rss", "Anonymous"):
                    e = sums.setdefault(name, [0, 0])
                    e[0 if k == "Rss" else 1] += int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return []
    rows = sorted(sums.items(), key=lambda kv_: -kv_[1][0])[:n]
    return [{"map": os.path.basename(k) if k.startswith("/") else k, "rss": r, "anon": a} for k, (r, a) in rows]


def measure(pid, detail):
    procs = [m for m in (proc_mem(p) for p in tree(pid)) if m]
    total = {k: sum(p[k] for p in procs) for k in
             ("rss", "anon", "file", "shmem", "pss", "pss_anon", "pss_file", "pss_shmem")}
    if detail:
        for p in procs:
            p["top"] = top_mappings(p["pid"])
    return {"procs": procs, "total": total}


def tree_rss(pid):
    return sum(m["rss"] for m in (proc_mem(p) for p in tree(pid)) if m)


def settle(pid, secs):
    """SETTLE seconds for memory to be given back, then until the tree's RSS
    moves by less than 256 KiB over one second (a minute at most)."""
    time.sleep(secs)
    last = [tree_rss(pid)]

    def steady():
        time.sleep(1.0)
        now = tree_rss(pid)
        ok = abs(now - last[0]) < 256
        last[0] = now
        return ok
    wait_for("the tree's RSS to settle", steady, 60, 0)


def children_named(pid, prefix):
    return [p for p in tree(pid)[1:] if comm(p).startswith(prefix)]


# ------------------------------------------------------------------ tray over D-Bus
def tray_exported(pid):
    """True once a bus connection of `pid` exports the dbusmenu of a tray icon."""
    bus = ["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus", "--object-path",
           "/org/freedesktop/DBus", "--method"]
    names = subprocess.run(bus + ["org.freedesktop.DBus.ListNames"], capture_output=True, text=True).stdout
    for name in re.findall(r"'(:1\.\d+)'", names):
        owner = subprocess.run(bus + ["org.freedesktop.DBus.GetConnectionUnixProcessID", name],
                               capture_output=True, text=True).stdout
        if f"uint32 {pid}," not in owner and f"uint32 {pid})" not in owner:
            continue
        tree_ = subprocess.run(["gdbus", "introspect", "--session", "--dest", name, "--object-path",
                                "/org/ayatana/NotificationItem", "--recurse"], capture_output=True, text=True).stdout
        if "interface com.canonical.dbusmenu" in tree_:
            return True
    return False


# ------------------------------------------------------------------ output
def fmt_mb(kb):
    return f"{kb / 1024:7.1f}"


def print_phase(phase, m, detail):
    print(f"\n== {phase}: tree {m['total']['rss'] / 1024:.1f} MB RSS, {m['total']['pss'] / 1024:.1f} MB PSS")
    print(f"{'process':<18}{'pid':>8}{'thr':>5}{'RSS MB':>8}{'anon':>8}{'file':>8}{'shmem':>8}"
          f"{'PSS MB':>8}{'P.anon':>8}{'P.file':>8}{'P.shm':>8}")
    for p in m["procs"] + [dict(m["total"], name="total", pid="", threads="")]:
        print(f"{p['name']:<18}{p['pid']:>8}{p['threads']:>5}{fmt_mb(p['rss']):>8}{fmt_mb(p['anon']):>8}"
              f"{fmt_mb(p['file']):>8}{fmt_mb(p['shmem']):>8}{fmt_mb(p['pss']):>8}{fmt_mb(p['pss_anon']):>8}"
              f"{fmt_mb(p['pss_file']):>8}{fmt_mb(p['pss_shmem']):>8}")
    if detail:
        for p in m["procs"]:
            print(f"  {p['name']} ({p['pid']}): largest mappings (RSS MB / of it anon MB)")
            for t in p.get("top", []):
                print(f"    {fmt_mb(t['rss'])} {fmt_mb(t['anon'])}  {t['map']}")
    sys.stdout.flush()


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("app", help="the postern binary to measure")
    ap.add_argument("--settle", type=float, default=float(os.environ.get("SETTLE", "5")),
                    help="seconds to let memory be given back before measuring (default 5)")
    ap.add_argument("--cycles", type=int, default=2, help="open/close cycles (default 2)")
    ap.add_argument("--detail", action="store_true", help="largest mappings per process")
    args = ap.parse_args()
    app = os.path.abspath(args.app)

    work = tempfile.mkdtemp(prefix="postern-bench-mem-")
    smtp = free_port()
    config = os.path.join(work, "postern.toml")
    # What a first start that got as far as its listener looks like: the
    # engine runs and listens; there is nothing upstream to deliver to yet.
    with open(config, "w") as f:
        f.write(f'[listener]\nlisten = ["127.0.0.1:{smtp}"]\n\n[spool]\ndir = "{work}/spool"\n')
    env = dict(os.environ, POSTERN_CONFIG=config, NO_AT_BRIDGE="1")
    env.update({k: v for k, v in (a.split("=", 1) for a in os.environ.get("BENCH_ENV", "").split() if "=" in a)})
    logf = os.path.join(work, "app.log")
    results = {"app": app, "settle_secs": args.settle, "phases": {}}

    t0 = time.monotonic()
    proc = subprocess.Popen([app], env=env, stdout=subprocess.DEVNULL, stderr=open(logf, "w"))
    try:
        wait_for("the tray icon on the bus", lambda: proc.poll() is None and tray_exported(proc.pid), 60, 0.2)
        wait_for("the SMTP listener", lambda: port_open(smtp), 60)
        results["startup_to_tray_ms"] = round((time.monotonic() - t0) * 1000)
        settle(proc.pid, args.settle)
        phases = [("tray", measure(proc.pid, args.detail))]
        print_phase("tray only", phases[-1][1], args.detail)

        for cycle in range(args.cycles):
            loaded = open(logf).read().count("page loaded")
            # A second start hands over to the first (single instance): it
            # opens the window and exits.
            second = subprocess.run([app], env=env, timeout=60, capture_output=True)
            assert second.returncode == 0, second
            wait_for("the window on the X server", lambda: x11.windows_of(proc.pid, "Postern"), 60)
            wait_for("the page to load", lambda: open(logf).read().count("page loaded") > loaded, 60)
            settle(proc.pid, args.settle)
            name = "open" if cycle == 0 else f"open{cycle + 1}"
            phases.append((name, measure(proc.pid, args.detail)))
            print_phase(f"window open (cycle {cycle + 1})", phases[-1][1], args.detail)

            x11.close(x11.windows_of(proc.pid, "Postern"))
            wait_for("the window to go", lambda: not x11.windows_of(proc.pid, "Postern"), 60)
            wait_for("the web process to end", lambda: not children_named(proc.pid, "WebKitWebProces"), 60)
            settle(proc.pid, args.settle)
            name = "closed" if cycle == 0 else f"closed{cycle + 1}"
            phases.append((name, measure(proc.pid, args.detail)))
            print_phase(f"window closed (cycle {cycle + 1})", phases[-1][1], args.detail)
            assert proc.poll() is None, "closing the window ended the app"
            assert tray_exported(proc.pid), "the tray icon went with the window"
        results["phases"] = dict(phases)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print("\nsummary (tree RSS MB): " + ", ".join(
        f"{k} {v['total']['rss'] / 1024:.1f}" for k, v in results["phases"].items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
