//! Tests of the bounded-memory decoder.

use std::io::Cursor;

use base64::Engine as _;

use super::*;

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Base64 in lines of 76 with the given newline.
fn wrap(data: &[u8], newline: &str) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::new();
    for line in b64.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(newline.as_bytes());
    }
    out
}

fn decode_all(file: &[u8], range: Range<u64>, enc: TransferEncoding, chunk: usize) -> Vec<Vec<u8>> {
    chunks(Cursor::new(file), range, enc, chunk)
        .unwrap()
        .collect::<std::io::Result<Vec<_>>>()
        .unwrap()
}

#[test]
fn base64_in_exact_chunks_with_every_padding() {
    for len in [0, 1, 2, 3, 4, 5, 57, 1000, 200_001] {
        let data = bytes(len, len as u64 + 7);
        for newline in ["\r\n", "\n"] {
            let mut file = b"prefix\r\n".to_vec();
            let start = file.len() as u64;
            file.extend(wrap(&data, newline));
            let end = file.len() as u64;
            file.extend_from_slice(b"--boundary--\r\n");
            let got = decode_all(&file, start..end, TransferEncoding::Base64, 4096);
            assert!(got.iter().all(|c| c.len() <= 4096));
            assert!(
                got.iter().rev().skip(1).all(|c| c.len() == 4096),
                "exact chunks"
            );
            assert_eq!(got.concat(), data, "len {len}");
            let size = decoded_size(Cursor::new(&file), start..end, TransferEncoding::Base64);
            assert_eq!(size.unwrap(), len as u64);
        }
    }
}

#[test]
fn base64_without_padding_or_with_odd_lines() {
    let data = bytes(1001, 3);
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&data);
    let odd: Vec<u8> = b64
        .as_bytes()
        .chunks(13)
        .flat_map(|c| c.iter().copied().chain(*b" \r\n\t"))
        .collect();
    let n = odd.len() as u64;
    assert_eq!(
        decode_all(&odd, 0..n, TransferEncoding::Base64, 100).concat(),
        data
    );
    assert_eq!(
        decoded_size(Cursor::new(&odd), 0..n, TransferEncoding::Base64).unwrap(),
        1001
    );
}

#[test]
fn broken_base64_is_an_error_not_a_panic() {
    let file = b"QUJD\r\nR\r\n";
    let n = file.len() as u64;
    let results: Vec<_> = chunks(Cursor::new(&file[..]), 0..n, TransferEncoding::Base64, 10)
        .unwrap()
        .collect();
    assert!(results.last().unwrap().is_err());
    let e = decoded_size(Cursor::new(&file[..]), 0..n, TransferEncoding::Base64).unwrap_err();
    assert!(e.to_string().contains("encoding is broken"), "{e}");
}

#[test]
fn quoted_printable() {
    let qp = b"Caf=C3=A9 au lait   \r\nsoft=\r\nbreak and =3D sign=\r\n\r\nlone = here=\nx=4\ttab\t \r\nend  ";
    let want = "Café au lait\r\nsoftbreak and = sign\r\nlone = herex=4\ttab\r\nend".as_bytes();
    let n = qp.len() as u64;
    for chunk in [1, 2, 3, 7, 1000] {
        let got = decode_all(qp, 0..n, TransferEncoding::QuotedPrintable, chunk).concat();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "chunk {chunk}"
        );
    }
    // A split anywhere in the input decodes the same.
    for split in 0..qp.len() {
        let mut out = Vec::new();
        let mut pending = qp[..split].to_vec();
        let used = qp_decode(&pending, &mut out, false);
        pending.drain(..used);
        pending.extend_from_slice(&qp[split..]);
        qp_decode(&pending, &mut out, true);
        assert_eq!(out, want, "split at {split}");
    }
    assert_eq!(
        decoded_size(
            Cursor::new(&qp[..]),
            0..n,
            TransferEncoding::QuotedPrintable
        )
        .unwrap(),
        want.len() as u64
    );
}

#[test]
fn identity_is_the_range() {
    let file = b"headers\r\n\r\n\x00\x01binary\xff\r\n--b--";
    let got = decode_all(file, 11..22, TransferEncoding::Identity, 4).concat();
    assert_eq!(got, &file[11..22]);
    assert_eq!(
        TransferEncoding::from_header(" 8BIT "),
        TransferEncoding::Identity
    );
    assert_eq!(
        TransferEncoding::from_header("Base64"),
        TransferEncoding::Base64
    );
    assert_eq!(
        TransferEncoding::from_header("Quoted-Printable"),
        TransferEncoding::QuotedPrintable
    );
}
