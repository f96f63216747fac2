//! Tests of the streaming scan, with the decoder, on scanner-like messages.

use std::io::{BufReader, Cursor, Seek, Write};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::*;
use crate::graph::mime_decode::{chunks, decoded_size};

const CHUNK: usize = 4 * 1024 * 1024;

/// Writes `len` PDF-like bytes as wrapped base64 to `out`, returning their
/// sha256; the bytes are made and encoded block by block.
pub(crate) fn write_pdf_base64(out: &mut impl Write, len: usize) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut written = 0;
    let block = 57 * 1024; // whole base64 lines per block
    let mut first = true;
    while written < len {
        let n = block.min(len - written);
        let mut data: Vec<u8> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        if first {
            data[..9].copy_from_slice(b"%PDF-1.4\n");
            first = false;
        }
        hash.update(&data);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        for line in b64.as_bytes().chunks(76) {
            out.write_all(line).unwrap();
            out.write_all(b"\r\n").unwrap();
        }
        written += n;
    }
    hash.finalize().into()
}

/// A scanner's message: text/plain body (or a multipart/alternative body)
/// and one base64 PDF attachment of `len` bytes. Returns the PDF's sha256.
pub(crate) fn write_scan(out: &mut impl Write, len: usize, alternative: bool) -> [u8; 32] {
    write!(
        out,
        "From: \"HP Scanner\" <scanner@contoso.com>\r\nTo: Alice <alice@contoso.com>\r\nSubject: Scanned document\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <scan-1@scanner>\r\nX-Scanner-Id: MFP\r\n  4200\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\nThis is a multi-part message in MIME format.\r\n--outer\r\n"
    )
    .unwrap();
    if alternative {
        write!(out, "Content-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain scan.\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Scan =E2=80=93 page 1</p>\r\n--inner--\r\n\r\n--outer\r\n").unwrap();
    } else {
        write!(out, "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nScan from MFP, caf=E9.\r\n--outer\r\n").unwrap();
    }
    write!(out, "Content-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n").unwrap();
    let hash = write_pdf_base64(out, len);
    write!(out, "\r\n--outer--\r\n").unwrap();
    hash
}

fn scan_bytes(m: &[u8]) -> Result<ScanPlan, ScanError> {
    scan(Cursor::new(m))
}

#[test]
fn a_25_mb_scan_decodes_to_the_same_bytes_in_4_mb_chunks() {
    let len = 25 * 1024 * 1024 + 12345;
    for alternative in [false, true] {
        let mut file = tempfile::tempfile().unwrap();
        let want = {
            let mut w = std::io::BufWriter::new(&mut file);
            write_scan(&mut w, len, alternative)
        };
        file.rewind().unwrap();
        let plan = scan(BufReader::new(&file)).unwrap();
        assert_eq!(plan.headers.subject.as_deref(), Some("Scanned document"));
        assert_eq!(plan.attachments.len(), 1, "{:?}", plan.attachments);
        let pdf = &plan.attachments[0];
        assert_eq!(
            (pdf.name.as_str(), pdf.content_type.as_str()),
            ("scan.pdf", "application/pdf")
        );
        assert_eq!(pdf.encoding, TransferEncoding::Base64);
        assert!(!pdf.inline);
        let body = plan.body.clone().unwrap();
        if alternative {
            assert_eq!(body.content_type, BodyType::Html);
            assert_eq!(body.content.trim_end(), "<p>Scan – page 1</p>");
        } else {
            assert_eq!(body.content_type, BodyType::Text);
            assert_eq!(body.content.trim_end(), "Scan from MFP, café.");
        }
        let size = decoded_size(&file, pdf.range.clone(), pdf.encoding).unwrap();
        assert_eq!(size, len as u64);
        let mut hash = Sha256::new();
        let mut total = 0;
        let mut count = 0;
        for c in chunks(&file, pdf.range.clone(), pdf.encoding, CHUNK).unwrap() {
            let c = c.unwrap();
            assert!(c.len() <= CHUNK);
            total += c.len();
            count += 1;
            hash.update(&c);
        }
        assert_eq!(total, len);
        assert_eq!(count, len.div_ceil(CHUNK));
        assert_eq!(<[u8; 32]>::from(hash.finalize()), want);
    }
}

#[test]
fn top_headers_for_graph() {
    let mut m = Vec::new();
    write_scan(&mut m, 1000, false);
    let plan = scan_bytes(&m).unwrap();
    let h = &plan.headers;
    assert_eq!(h.from.as_ref().unwrap().address, "scanner@contoso.com");
    assert_eq!(h.from.as_ref().unwrap().name.as_deref(), Some("HP Scanner"));
    assert_eq!(h.to[0].address, "alice@contoso.com");
    assert_eq!(h.message_id.as_deref(), Some("scan-1@scanner"));
    assert_eq!(h.date.as_deref(), Some("2026-12-01T10:00:00Z"));
    assert_eq!(
        h.x_headers,
        [("X-Scanner-Id".to_string(), "MFP  4200".to_string())]
    );
    assert!(plan.header_section.starts_with(b"From:"));
    assert!(plan.header_section.ends_with(b"\r\n\r\n"));
}

#[test]
fn nested_multiparts_and_inline_images() {
    let m = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/related; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<img src=cid:logo>\r\n--b\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n--a\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nnotes\r\n--a\r\nContent-Type: text/plain\r\n\r\nsecond text\r\n--a--\r\nepilogue\r\n";
    let plan = scan_bytes(m).unwrap();
    assert_eq!(plan.body.unwrap().content.trim_end(), "<img src=cid:logo>");
    let names: Vec<&str> = plan.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["part2.png", "notes.txt", "part4.txt"]);
    let logo = &plan.attachments[0];
    assert_eq!(
        (logo.content_id.as_deref(), logo.inline),
        (Some("logo"), true)
    );
    let r = logo.range.start as usize..logo.range.end as usize;
    assert_eq!(&m[r], b"iVBORw0K");
    let notes = &plan.attachments[1];
    assert_eq!(
        &m[notes.range.start as usize..notes.range.end as usize],
        b"notes"
    );
}

#[test]
fn a_message_that_is_not_multipart() {
    let m = b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nJust text.\r\n";
    let plan = scan_bytes(m).unwrap();
    assert!(plan.attachments.is_empty());
    assert_eq!(plan.body.unwrap().content, "Just text.\r\n");
    let plan = scan_bytes(b"Subject: only headers\r\n").unwrap();
    assert_eq!(plan.headers.subject.as_deref(), Some("only headers"));
    let plan = scan_bytes(b"Subject: pdf\r\nContent-Type: application/pdf\r\n\r\n%PDF").unwrap();
    assert!(plan.body.is_none());
    assert_eq!(plan.attachments[0].name, "part1.pdf");
    assert_eq!(plan.attachments[0].range, 47..51);
}

#[test]
fn filenames_in_rfc_2231_and_encoded_words() {
    let m = "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*=utf-8''R%C3%A9sum%C3%A9%20%C3%A9t%C3%A9.pdf\r\n\r\nA\r\n--x\r\nContent-Type: application/pdf; name=\"=?utf-8?B?w5xiZXJzaWNodC5wZGY=?=\"\r\n\r\nB\r\n--x\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*0*=utf-8''long%20;\r\n filename*1=name.pdf\r\n\r\nC\r\n--x--\r\n";
    let plan = scan_bytes(m.as_bytes()).unwrap();
    let names: Vec<&str> = plan.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Résumé été.pdf", "Übersicht.pdf", "long name.pdf"]);
}

#[test]
fn truncated_or_malformed_messages_give_clear_errors() {
    let mut m = Vec::new();
    write_scan(&mut m, 10_000, false);
    let headers_end = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    let part_headers = m.windows(8).position(|w| w == b"\r\n\r\nScan").unwrap();
    for cut in [m.len() - 14, m.len() / 2, part_headers, headers_end] {
        let e = scan_bytes(&m[..cut]).expect_err(&format!(
            "cut at {cut}: {:?}",
            String::from_utf8_lossy(&m[cut.saturating_sub(40)..cut])
        ));
        assert!(matches!(e, ScanError::Truncated(_)), "cut at {cut}: {e}");
        assert!(e.to_string().contains("cut short"));
    }
    let e = scan_bytes(b"Content-Type: multipart/mixed\r\n\r\n--x\r\n").unwrap_err();
    assert!(matches!(e, ScanError::NoBoundary), "{e}");
    let huge = format!("Subject: {}\r\n\r\n", "x".repeat(MAX_HEADERS));
    assert!(matches!(
        scan_bytes(huge.as_bytes()),
        Err(ScanError::HeadersTooLarge)
    ));
    // Garbage never panics.
    for seed in 0..200u32 {
        let junk: Vec<u8> = (0..500u32)
            .map(|i| {
                b"-\r\n:; =abx\"Content-Type: multipart/mixed; boundary=a"
                    [((i * 7 + seed * 13) % 52) as usize]
            })
            .collect();
        let _ = scan_bytes(&junk);
    }
}

#[test]
fn a_long_text_part_becomes_an_attachment() {
    let mut m =
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n"
            .to_vec();
    m.extend(std::iter::repeat_n(b'a', MAX_BODY + 10));
    m.extend_from_slice(b"\r\n--x\r\nContent-Type: text/plain\r\n\r\nshort\r\n--x--\r\n");
    let plan = scan_bytes(&m).unwrap();
    assert_eq!(plan.body.unwrap().content.trim_end(), "short");
    assert_eq!(plan.attachments.len(), 1);
    let a = &plan.attachments[0];
    assert_eq!(a.range.end - a.range.start, MAX_BODY as u64 + 10);
}
