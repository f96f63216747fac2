//! Table tests for the DATA machine, with the smuggling sequences, every
//! split position, and a small deterministic fuzz loop.

use super::*;

const BIG: u64 = 1 << 30;

/// Feeds `pieces` in order; returns (content, consumed-in-last-piece or None,
/// number of Done results).
fn run(pieces: &[&[u8]], max: u64) -> (Vec<u8>, Option<usize>, usize, DataReceiver) {
    let mut rx = DataReceiver::new(max);
    let mut out = Vec::new();
    let mut done = None;
    let mut dones = 0;
    for piece in pieces {
        if let Feed::Done { consumed } = rx.feed(piece, &mut out) {
            if dones == 0 {
                done = Some(consumed);
            }
            dones += 1;
            break;
        }
    }
    (out, done, dones, rx)
}

fn whole(input: &[u8]) -> (Vec<u8>, Option<usize>) {
    let (out, done, _, _) = run(&[input], BIG);
    (out, done)
}

/// Feeds one byte at a time; returns content and the total consumed count.
fn bytewise(input: &[u8]) -> (Vec<u8>, Option<usize>) {
    let mut rx = DataReceiver::new(BIG);
    let mut out = Vec::new();
    for (i, b) in input.iter().enumerate() {
        if let Feed::Done { consumed } = rx.feed(std::slice::from_ref(b), &mut out) {
            assert_eq!(consumed, 1);
            return (out, Some(i + 1));
        }
    }
    (out, None)
}

/// Every CR is followed by LF and every LF preceded by CR; no NULs.
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn plain_cases() {
    let table: &[(&[u8], &[u8])] = &[
        (b".\r\n", b""),
        (b"a\r\n.\r\n", b"a\r\n"),
        (b"..a\r\n.\r\n", b".a\r\n"),
        (b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n"),
        (b"a\r\n...\r\n.\r\n", b"a\r\n..\r\n"),
        (b"a\nb\r\n.\r\n", b"a\r\nb\r\n"),
        (b"a\rb\r\n.\r\n", b"a\r\nb\r\n"),
        (b"a\r\r\n.\r\n", b"a\r\n\r\n"),
        (b"a\n\n.\r\n.\r\n", b"a\r\n\r\n.\r\n"),
        (b"a\x00b\r\n.\r\n", b"ab\r\n"),
        (b"x\r\n.\r\r\n.\r\n", b"x\r\n.\r\n\r\n"),
        (b"\r\n.\r\n", b"\r\n"),
        (b"a .\r\n.\r\n", b"a .\r\n"),
        (b"\xff\xfe8bit\r\n.\r\n", b"\xff\xfe8bit\r\n"),
    ];
    for (input, want) in table {
        let (out, done) = whole(input);
        assert_eq!(done, Some(input.len()), "input {input:?}");
        assert_eq!(&out, want, "input {input:?}");
        assert_clean(&out);
        assert_eq!(bytewise(input), (out, done), "bytewise {input:?}");
    }
}

#[test]
fn smuggling_sequences_never_end_the_message() {
    let smuggled = b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nsmuggled\r\n";
    let seqs: &[&[u8]] = &[
        b"\n.\n",
        b"\r.\r",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n\x00.\r\n",
        b"\r\n.\x00\r\n",
        b"\n\r.\r\n",
    ];
    for seq in seqs {
        let mut input = b"Subject: hi\r\n\r\nbody".to_vec();
        input.extend_from_slice(seq);
        input.extend_from_slice(smuggled);
        input.extend_from_slice(b"\r\n.\r\n");
        let end = input.len();
        input.extend_from_slice(b"QUIT\r\n");

        let (out, done, dones, _) = run(&[&input], BIG);
        assert_eq!(dones, 1, "seq {seq:?}");
        assert_eq!(done, Some(end), "seq {seq:?}: ended early");
        assert!(find(&out, b"MAIL FROM:<evil@x>").is_some(), "seq {seq:?}");
        assert!(find(&out, b"smuggled").is_some(), "seq {seq:?}");
        assert_clean(&out);
        assert_eq!(bytewise(&input), (out, done), "bytewise {seq:?}");
    }
}

#[test]
fn every_split_position_gives_the_same_result() {
    let input: &[u8] = b"..x\r\na\rb\nc\r\n.\n\r\n.\r\r\n\x00.\r\n..\r\nend\r\n.\r\nNEXT";
    let (want, done) = whole(input);
    assert_eq!(done, Some(input.len() - 4));
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        let mut rx = DataReceiver::new(BIG);
        let mut out = Vec::new();
        let consumed = match rx.feed(a, &mut out) {
            Feed::Done { consumed } => Some(consumed),
            Feed::NeedMore => match rx.feed(b, &mut out) {
                Feed::Done { consumed } => Some(a.len() + consumed),
                Feed::NeedMore => None,
            },
        };
        assert_eq!(consumed, done, "split {split}");
        assert_eq!(out, want, "split {split}");
    }
}

#[test]
fn terminator_split_across_reads_and_rest_kept() {
    let (out, done, dones, rx) = run(&[b"hello\r\n.", b"\r", b"\nQUIT\r\n"], BIG);
    assert_eq!(out, b"hello\r\n");
    assert_eq!(done, Some(1), "only the LF of the third read is DATA");
    assert_eq!(dones, 1);
    assert!(rx.is_finished());
    let mut rx = rx;
    assert_eq!(
        rx.feed(b"more", &mut Vec::new()),
        Feed::Done { consumed: 0 }
    );
}

#[test]
fn oversized_content_is_counted_not_emitted() {
    let mut input = vec![b'a'; 100];
    input.extend_from_slice(b"\r\n.\r\n");
    let (out, done, _, rx) = run(&[&input], 10);
    assert_eq!(done, Some(input.len()));
    assert!(out.len() <= 10);
    assert!(rx.too_big());
    assert_eq!(rx.size(), 102);

    let (_, _, _, rx) = run(&[b"0123456789\r\n.\r\n"], 12);
    assert!(!rx.too_big(), "exactly at the limit is fine");
}

#[test]
fn long_lines_are_reported_with_their_number() {
    let mut input = b"Subject: x\r\n\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', MAX_TEXT_LINE));
    input.extend_from_slice(b"\r\n");
    let (_, _, _, rx) = run(&[&input, b".\r\n"], BIG);
    assert_eq!(rx.long_line(), None, "998 characters are allowed");

    input.extend(std::iter::repeat_n(b'b', MAX_TEXT_LINE + 1));
    input.extend_from_slice(b"\r\n.\r\n");
    let (_, done, _, rx) = run(&[&input], BIG);
    assert_eq!(done, Some(input.len()));
    assert_eq!(rx.long_line(), Some(4));
}

#[test]
fn fuzz_matches_the_specification() {
    // The message ends exactly at the first CRLF "." CRLF of "\r\n" + input,
    // content is always clean, and chunking never changes anything.
    let alphabet = [b'\r', b'\n', b'.', 0, b'a'];
    for input in crate::listener::tests::random_inputs(0x9e37_79b9_7f4a_7c15, &alphabet, 40, 3000) {
        let mut framed = b"\r\n".to_vec();
        framed.extend_from_slice(&input);
        let expected = find(&framed, b"\r\n.\r\n").map(|j| j + 3);
        let (out, done) = whole(&input);
        assert_eq!(done, expected, "input {input:?}");
        assert_clean(&out);
        assert_eq!(bytewise(&input), (out, done), "input {input:?}");
    }
}

/// Runs a bare-LF session's receiver over `input` in one piece.
fn lf_whole(input: &[u8]) -> (Vec<u8>, Option<usize>) {
    let mut rx = DataReceiver::bare_lf_session(BIG);
    let mut out = Vec::new();
    match rx.feed(input, &mut out) {
        Feed::Done { consumed } => (out, Some(consumed)),
        Feed::NeedMore => (out, None),
    }
}

#[test]
fn bare_lf_session_ends_at_lf_dot_lf() {
    // (input, content, consumed): None = not finished.
    let table: &[(&[u8], &[u8], Option<usize>)] = &[
        (b"a\n.\nQUIT\n", b"a\r\n", Some(4)),
        (b".\n", b"", Some(2)),
        (b"..x\n.\n", b".x\r\n", Some(6)),
        (b"a\n..\n.\n", b"a\r\n.\r\n", Some(7)),
        (b"a\n.\r\n", b"a\r\n", Some(5)),
        (b"a\r\n.\n", b"a\r\n", Some(5)),
        (b"a\r\n.\r\n", b"a\r\n", Some(6)),
        // Bare CR is never a line end.
        (b"a\r.\rx", b"a\r\n.\r\nx", None),
        (b"a\r.\n", b"a\r\n.\r\n", None),
        (b"a\n .\n", b"a\r\n .\r\n", None),
        (b"a\n\x00.\n", b"a\r\n.\r\n", None),
    ];
    for (input, want, done) in table {
        let (out, got) = lf_whole(input);
        assert_eq!(got, *done, "input {input:?}");
        assert_eq!(&out, want, "input {input:?}");
        assert_clean(&out);
    }
}

#[test]
fn bare_lf_session_fuzz_and_splits() {
    // The message ends at the first LF "." (CR) LF of "\n" + input, where
    // the first LF may be bare; chunking never changes anything.
    let alphabet = [b'\r', b'\n', b'.', 0, b'a'];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (next() % 30) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let mut framed = b"\n".to_vec();
        framed.extend_from_slice(&input);
        let expected = (0..framed.len())
            .filter(|&j| framed[j] == b'\n' && framed.get(j + 1) == Some(&b'.'))
            .filter_map(|j| match framed.get(j + 2) {
                Some(b'\n') => Some(j + 2),
                Some(b'\r') if framed.get(j + 3) == Some(&b'\n') => Some(j + 3),
                _ => None,
            })
            .min();
        let (out, done) = lf_whole(&input);
        assert_eq!(done, expected, "input {input:?}");
        assert_clean(&out);
        let split = (next() as usize) % (input.len() + 1);
        let mut rx = DataReceiver::bare_lf_session(BIG);
        let mut out2 = Vec::new();
        let got = match rx.feed(&input[..split], &mut out2) {
            Feed::Done { consumed } => Some(consumed),
            Feed::NeedMore => match rx.feed(&input[split..], &mut out2) {
                Feed::Done { consumed } => Some(split + consumed),
                Feed::NeedMore => None,
            },
        };
        assert_eq!((out2, got), (out, done), "input {input:?} split {split}");
    }
}
