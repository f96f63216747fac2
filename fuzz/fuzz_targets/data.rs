//! Fuzzes the DATA state machine (`listener::data::DataReceiver`) with
//! arbitrary bytes from a device, fed whole and in arbitrary pieces.
//!
//! Invariants checked on every input:
//! - feeding in pieces gives exactly what feeding at once gives (content,
//!   where the message ended, size, long-line note);
//! - stored content never holds a bare CR, a bare LF or a NUL;
//! - content is bounded: at most `max_bytes`, at most twice the input
//!   (a bare line break grows to CRLF), and never longer than `size()`;
//! - no smuggled end of message survives: dot-stuffing the content (as the
//!   delivery side does) plus the terminator parses back to the same content,
//!   ending exactly at that terminator and nowhere before it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_engine::listener::data::{DataReceiver, Feed};

struct Run {
    out: Vec<u8>,
    /// Offset in the input just past the terminator.
    end: Option<usize>,
    size: u64,
    long_line: Option<usize>,
}

fn run(input: &[u8], max: u64, cuts: &[usize]) -> Run {
    let mut rx = DataReceiver::new(max);
    let mut out = Vec::new();
    let mut end = None;
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    for stop in bounds {
        if stop < start {
            continue;
        }
        match rx.feed(&input[start..stop], &mut out) {
            Feed::Done { consumed } => {
                assert!(consumed <= stop - start);
                end = Some(start + consumed);
                assert!(rx.is_finished());
                // A finished machine takes nothing more.
                assert_eq!(
                    rx.feed(b"more\r\n.\r\n", &mut out),
                    Feed::Done { consumed: 0 }
                );
                break;
            }
            Feed::NeedMore => start = stop,
        }
    }
    Run {
        out,
        end,
        size: rx.size(),
        long_line: rx.long_line(),
    }
}

/// What the delivery side sends: lines starting with "." get another ".".
fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(content.len() + 8);
    let mut line_start = true;
    for (i, &b) in content.iter().enumerate() {
        if line_start && b == b'.' {
            wire.push(b'.');
        }
        wire.push(b);
        line_start = b == b'\n' && i > 0 && content[i - 1] == b'\r';
    }
    wire
}

fn assert_clean(content: &[u8]) {
    for (i, &b) in content.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(content.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert!(i > 0 && content[i - 1] == b'\r', "bare LF at {i}"),
            0 => panic!("NUL stored at {i}"),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    // Header: a size limit (small ones exercise the cut-off) and cut points.
    let max = u64::from(u16::from_le_bytes([data[0], data[1]]));
    let seed = data[2];
    let input = &data[3..];
    let cuts: Vec<usize> = input
        .iter()
        .take(8)
        .map(|&b| usize::from(b ^ seed) * 7)
        .collect();

    let whole = run(input, max, &[]);
    let pieces = run(input, max, &cuts);
    let bytewise = run(input, max, &(0..input.len()).collect::<Vec<_>>());
    for other in [&pieces, &bytewise] {
        assert_eq!(
            whole.out, other.out,
            "content depends on how the bytes arrived"
        );
        assert_eq!(whole.end, other.end, "end depends on how the bytes arrived");
        assert_eq!(whole.size, other.size);
        assert_eq!(whole.long_line, other.long_line);
    }

    assert_clean(&whole.out);
    assert!(
        whole.out.len() as u64 <= max,
        "content past max_bytes was stored"
    );
    assert!(whole.out.len() as u64 <= whole.size);
    let used = whole.end.unwrap_or(input.len());
    assert!(
        whole.out.len() <= 2 * used,
        "content grew more than CRLF normalisation allows"
    );
    if let Some(end) = whole.end {
        assert!(
            input[..end].ends_with(b".\r\n"),
            "ended without a terminator"
        );
    }

    // Round trip through the delivery side: nothing in the content can end
    // the message early at the next hop.
    if whole.size <= max {
        let mut wire = dot_stuff(&whole.out);
        let mut expect = whole.out.clone();
        if !wire.is_empty() && !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
            expect.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        let again = run(&wire, u64::MAX, &[]);
        assert_eq!(
            again.end,
            Some(wire.len()),
            "a terminator was smuggled into the content"
        );
        assert_eq!(
            again.out, expect,
            "content changed on the way to the next hop"
        );
    }
});
