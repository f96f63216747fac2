//! Peak memory of the Graph draft route's scan and decode of a 25 MB scan.
//!
//! Writes a scanner-like message (text/plain body, 25 MB base64 PDF) to a
//! temporary file, scans it with `graph::mime_scan::scan`, gets the decoded
//! size and decodes the PDF in 4 MB chunks (as an upload session would send
//! them), and prints the process's peak resident memory (`VmHWM`, Linux)
//! before and after. Run: `cargo run --release -p postern-engine --example
//! graph_scan_memory`.

use std::io::{BufReader, BufWriter, Seek, Write};

use base64::Engine as _;
use postern_engine::graph::mime_decode::{chunks, decoded_size};
use postern_engine::graph::mime_scan::scan;

const LEN: usize = 25 * 1024 * 1024;
const CHUNK: usize = 4 * 1024 * 1024;

fn peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn show(what: &str) {
    match peak_kb() {
        Some(kb) => println!("{what}: peak RSS (VmHWM) {:.1} MB", kb as f64 / 1024.0),
        None => println!("{what}: peak RSS unavailable on this platform"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut file = tempfile::tempfile()?;
    {
        let mut out = BufWriter::new(&mut file);
        out.write_all(b"From: scanner@contoso.com\r\nTo: alice@contoso.com\r\nSubject: Scan\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nScan.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")?;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let block = 57 * 1024;
        let mut written = 0;
        while written < LEN {
            let n = block.min(LEN - written);
            let data: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            for line in b64.as_bytes().chunks(76) {
                out.write_all(line)?;
                out.write_all(b"\r\n")?;
            }
            written += n;
        }
        out.write_all(b"--b--\r\n")?;
    }
    println!("message file: {} bytes", file.metadata()?.len());
    show("before the scan");
    file.rewind()?;
    let plan = scan(BufReader::new(&file))?;
    let pdf = &plan.attachments[0];
    let size = decoded_size(&file, pdf.range.clone(), pdf.encoding)?;
    let (mut total, mut largest) = (0usize, 0usize);
    for chunk in chunks(&file, pdf.range.clone(), pdf.encoding, CHUNK)? {
        let chunk = chunk?;
        total += chunk.len();
        largest = largest.max(chunk.len());
    }
    assert_eq!((size, total), (LEN as u64, LEN));
    println!("decoded {total} bytes (decoded_size {size}), largest chunk {largest}");
    show("after scanning and decoding");
    Ok(())
}
