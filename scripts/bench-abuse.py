"""Abuse benchmark driver (run by scripts/bench-abuse.sh): abuses a running
`postern serve` on 127.0.0.1:PORT (process PID) and measures its memory,
descriptors, and how long a well-behaved device takes to get a message
accepted meanwhile. Prints a Markdown table.

Abusers connect from other loopback addresses (127.0.1.x and up) than the
device (127.0.0.1), as other hosts on the LAN would."""
import asyncio
import os
import smtplib
import statistics
import sys
import time

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
DEVICE_SENDS = 5
rows = []
sent_by_device = 0


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


def device_once(subject):
    global sent_by_device
    t = time.monotonic()
    with smtplib.SMTP("127.0.0.1", PORT, timeout=120) as s:
        s.sendmail("scanner@contoso.com", ["bob@contoso.com"],
                   f"From: scanner@contoso.com\r\nSubject: {subject}\r\n\r\nscan\r\n")
    sent_by_device += 1
    return (time.monotonic() - t) * 1000


async def device(label):
    """Median and max ms from connect to the 250 after DATA, over 5 sends."""
    loop = asyncio.get_running_loop()
    times = []
    for i in range(DEVICE_SENDS):
        times.append(await loop.run_in_executor(None, device_once, f"bench-{label}-{i}"))
    return statistics.median(times), max(times)


async def connect(src):
    r, w = await asyncio.open_connection("127.0.0.1", PORT, local_addr=(src, 0))
    greeting = (await r.readline()).decode().strip()
    return r, w, greeting


def row(scenario, during_rss, during_fds, lat, note):
    rows.append(f"| {scenario} | {during_rss / 1024:.1f} | {during_fds} | "
                f"{lat[0]:.1f} / {lat[1]:.1f} | {note} |")


async def close_all(conns):
    for _, w, _ in conns:
        w.close()
    await asyncio.sleep(1)


async def main():
    base_rss, base_fds = rss_kib(), fds()
    lat = await device("baseline")
    row("baseline (no abuse)", base_rss, base_fds, lat, "")

    # 1,000 idle connections from 50 hosts (20 each, the per-address share).
    conns = []
    for h in range(50):
        for _ in range(20):
            conns.append(await connect(f"127.0.1.{h + 1}"))
    held = sum(1 for c in conns if c[2].startswith("220"))
    r, f = rss_kib(), fds()
    lat = await device("idle")
    row("1,000 idle connections (50 hosts)", r, f, lat, f"{held} held open")
    await close_all(conns)

    # 1,000 connections from one host.
    conns = [await connect("127.0.2.1") for _ in range(1000)]
    held = sum(1 for c in conns if c[2].startswith("220"))
    r, f = rss_kib(), fds()
    lat = await device("one-host")
    row("1,000 connections from one host", r, f, lat,
        f"{held} held, {1000 - held} got 421 4.7.0")
    await close_all(conns)

    # Slowloris: 200 clients trickling a byte every 2 s (half in a command
    # line, half in DATA) while the device sends.
    async def trickle(src, in_data):
        r, w, _ = await connect(src)
        if in_data:
            for cmd in (b"EHLO slow\r\n", b"MAIL FROM:<s@contoso.com>\r\n",
                        b"RCPT TO:<bob@contoso.com>\r\n", b"DATA\r\n"):
                w.write(cmd)
                await w.drain()
                while (line := await r.readline())[3:4] == b"-":
                    pass
        try:
            while True:
                w.write(b"z")
                await w.drain()
                await asyncio.sleep(2)
        except (ConnectionError, asyncio.CancelledError):
            w.close()
    tasks = [asyncio.create_task(trickle(f"127.0.3.{i // 20 + 1}", i % 2 == 1)) for i in range(200)]
    await asyncio.sleep(5)
    r, f = rss_kib(), fds()
    lat = await device("slowloris")
    row("200 slowloris clients (1 byte / 2 s)", max(r, rss_kib()), f, lat,
        "cut at idle_timeout (command) / 3 × data_timeout (DATA) from their start")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1)

    # Endless lines: 4 clients sending megabytes without a line break.
    peak = [0]
    async def blast(src):
        r, w, _ = await connect(src)
        sent, chunk = 0, b"A" * 65536
        t = time.monotonic()
        try:
            while sent < (256 << 20):
                w.write(chunk)
                await w.drain()
                sent += len(chunk)
        except ConnectionError:
            pass
        w.close()
        return sent, time.monotonic() - t
    async def watch(stop):
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib())
            await asyncio.sleep(0.05)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(stop))
    results = await asyncio.gather(*(blast(f"127.0.4.{i + 1}") for i in range(4)))
    lat = await device("endless")
    stop.set()
    await watcher
    most = max(s for s, _ in results)
    slowest = max(t for _, t in results)
    row("4 endless lines (no line break)", peak[0], fds(), lat,
        f"cut after ≤ {most / 1024:.0f} KiB sent, ≤ {slowest * 1000:.0f} ms")

    # 10,000 RCPTs in one pipelined transaction.
    r_, w, _ = await connect("127.0.5.1")
    wire = b"EHLO bulk\r\nMAIL FROM:<scanner@contoso.com>\r\n" + b"".join(
        f"RCPT TO:<user{i}@contoso.com>\r\n".encode() for i in range(10_000))
    t = time.monotonic()
    w.write(wire)
    codes = []
    async def reader():
        while len(codes) < 10_002:
            line = await r_.readline()
            if not line:
                break
            if line[3:4] != b"-":
                codes.append(line[:3])
    await asyncio.gather(w.drain(), reader())
    took = (time.monotonic() - t) * 1000
    w.write(b"RSET\r\nQUIT\r\n")
    await w.drain()
    w.close()
    accepted = sum(1 for c in codes[2:] if c == b"250")
    row("10,000 RCPTs pipelined", rss_kib(), fds(), await device("rcpts"),
        f"{accepted} accepted, {codes.count(b'452')} got 452, answered in {took:.0f} ms")

    await asyncio.sleep(2)
    print("| scenario | Postern RSS (MiB) | fds | device: median / max ms to 250 | note |")
    print("|---|---|---|---|---|")
    for line in rows:
        print(line)
    print(f"| after all (idle again) | {rss_kib() / 1024:.1f} | {fds()} | | "
          f"device messages sent: {sent_by_device} |")
    print(f"SENT_BY_DEVICE={sent_by_device}", file=sys.stderr)

asyncio.run(main())
