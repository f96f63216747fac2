"""Soak sender (scripts/soak.sh): TOTAL one-recipient messages at RATE a
minute, each over a new smtplib connection, Subject soak-NNNNN; one line per
message in OUT: "<subject> ok" when the device heard 250, else "refused"."""
import smtplib
import sys
import time

port, total, rate, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
gap = 60.0 / rate
start = time.monotonic()
with open(path, "w", buffering=1) as out:
    for i in range(total):
        # Steady: message i leaves at start + i*gap, whatever the last one cost.
        time.sleep(max(0.0, start + i * gap - time.monotonic()))
        subject = f"soak-{i:05}"
        msg = (f"From: scanner@contoso.com\r\nTo: bob@contoso.com\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject}@soak.postern>\r\n\r\nscan {i}\r\n" + ("x" * 76 + "\r\n") * 26)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                s.sendmail("scanner@contoso.com", ["bob@contoso.com"], msg)
            out.write(f"{subject} ok\n")
        except Exception as e:  # the device heard no 250: not Postern's to keep
            out.write(f"{subject} refused {e!r}\n")
