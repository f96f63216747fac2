"""Soak verdict (scripts/soak.sh): every message the device got a 250 for
was delivered exactly once or is still queued; prints the RSS and fd
figures from the CSV. Exit status 1 when anything was lost or failed."""
import collections
import csv
import json
import sys

sent_path, fakes_path, queue_path, csv_path, faults, minutes, rate = sys.argv[1:8]
lines = [l.split() for l in open(sent_path)]
sent = [l[0] for l in lines if l[1:2] == ["ok"]]
refused = [l[0] for l in lines if l[1:2] != ["ok"]]
arrived = collections.Counter(
    json.loads(l)["subject"] for l in open(fakes_path).read().splitlines()[1:]
)
queue = json.load(open(queue_path))
waiting = {m["subject"]: m["state"] for m in queue if m["state"] != "sent"}
failed = [s for s, st in waiting.items() if st == "failed"]
lost = [s for s in sent if arrived[s] == 0 and s not in waiting]
dupes = {s: n for s, n in arrived.items() if n > 1}
strangers = [s for s in arrived if s not in set(sent)]
rows = list(csv.DictReader(open(csv_path)))
rss = [int(r["rss_kib"]) for r in rows]
fds = [int(r["fds"]) for r in rows]
threads = [int(r["threads"]) for r in rows]


def spark(vals):
    bars = "▁▂▃▄▅▆▇█"
    lo, hi = min(vals), max(vals)
    return "".join(bars[0 if hi == lo else int((v - lo) * 7 / (hi - lo))] for v in vals)


half = len(rss) // 2
print(f"soak: {minutes} min at {rate}/min, {faults} faults injected")
print(f"sent (device heard 250): {len(sent)}; refused to the device: {len(refused)} "
      f"{[' '.join(l) for l in lines if l[1:2] != ['ok']][:3]}")
print(f"delivered exactly once: {sum(1 for s in sent if arrived[s] == 1)}; "
      f"duplicates: {len(dupes)} {dict(list(dupes.items())[:5])}")
print(f"still queued: {len(waiting) - len(failed)}; failed: {len(failed)} {failed[:5]}")
print(f"LOST: {len(lost)} {lost[:10]}; unexpected arrivals: {len(strangers)}")
print(f"RSS KiB: start {rss[0]}, min {min(rss)}, max {max(rss)}, end {rss[-1]}; "
      f"mean of 1st half {sum(rss[:half]) // max(half, 1)}, "
      f"2nd half {sum(rss[half:]) // max(len(rss) - half, 1)}")
print(f"RSS curve ({len(rss)} samples, {min(rss)}..{max(rss)} KiB): {spark(rss)}")
print(f"fds: start {fds[0]}, min {min(fds)}, max {max(fds)}, end {fds[-1]}; "
      f"threads: min {min(threads)}, max {max(threads)}")
ok = bool(sent) and not refused and not lost and not failed and not strangers
print("VERDICT:", "PASS (nothing lost)" if ok else "FAIL")
sys.exit(0 if ok else 1)
