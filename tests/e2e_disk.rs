//! The disk reserve (`spool.min_free`), end to end: the real `postern
//! serve` with its spool on a real 8 MB tmpfs and 4 MB kept in reserve.
//! Messages that leave the reserve free get 250 and reach the fake
//! Exchange; one whose DATA would cut into it gets `452 4.3.1` at the end
//! of DATA (and its part file is gone); a MAIL whose SIZE= would cut into
//! it gets 452 at once; once another program fills the disk past the
//! reserve every MAIL gets 452; when space comes back mail flows again.
//! Nothing that heard 250 is lost.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says why it
//! did not run and passes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::smtp::Raw;
use support::*;

const MB: usize = 1 << 20;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (not root?): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A message of about `size` bytes, Subject `subject`.
fn message(subject: &str, size: usize) -> String {
    let mut m = format!("From: {MAILBOX}\r\nTo: bob@contoso.com\r\nSubject: {subject}\r\n\r\n");
    let line = format!("{}\r\n", "x".repeat(76));
    while m.len() < size {
        m.push_str(&line);
    }
    m.push_str(".\r\n");
    m
}

/// One transaction on `c`: MAIL (with `mail_args`), RCPT, DATA with a
/// message of `size` bytes; the reply to the end of DATA.
async fn send(c: &mut Raw<tokio::net::TcpStream>, subject: &str, size: usize) -> String {
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250").await;
    c.expect("RCPT TO:<bob@contoso.com>", "250").await;
    c.expect("DATA", "354").await;
    c.send(message(subject, size).as_bytes()).await;
    c.reply().await
}

fn part_files(spool: &Path) -> usize {
    std::fs::read_dir(spool.join("tmp")).unwrap().count()
}

// Multi-threaded: the fake Exchange keeps answering while the test waits
// on the CLI and on `postern serve` to stop.
#[tokio::test(flavor = "multi_thread")]
async fn the_disk_reserve_refuses_new_mail_and_loses_nothing() {
    let up = Upstream::start().await;
    let mut p = Postern::prepare(&up, |c| set(c, "spool.min_free", "4 MB"));
    let spool = p.spool_dir();
    let _tmpfs = match Tmpfs::mount(&spool, "8m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIPPED the_disk_reserve_refuses_new_mail_and_loses_nothing: {why}");
            return;
        }
    };
    let out = p.cli_stdin(&["account", "set-secret"], CLIENT_SECRET);
    assert!(out.status.success(), "set-secret: {}", text(&out));
    p.spawn();

    let (mut c, greeting) = Raw::connect(p.smtp).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    c.expect("EHLO scanner.test", "250").await;

    // 8 MB disk, 4 MB reserve: two 1 MB messages fit (about 6 MB free after).
    for subject in ["first", "second"] {
        let reply = send(&mut c, subject, MB).await;
        assert!(reply.starts_with("250 2.0.0"), "{subject}: {reply}");
    }
    // 2.5 MB more would leave about 3.5 MB: refused at the end of DATA,
    // and its part file is removed (the space comes back).
    let reply = send(&mut c, "too-big-for-the-reserve", 5 * MB / 2).await;
    assert!(
        reply.starts_with("452 4.3.1 Message not stored: Postern's disk is almost full")
            && reply.contains("keeps 4 MB in reserve (spool.min_free)"),
        "{reply}"
    );
    assert_eq!(
        part_files(&spool),
        0,
        "the refused message's part file is gone"
    );
    // The same size declared at MAIL: refused at once.
    let reply = c
        .cmd(&format!("MAIL FROM:<{MAILBOX}> SIZE={}", 5 * MB / 2))
        .await;
    assert!(
        reply.starts_with("452 4.3.1 Postern's disk is almost full")
            && reply.contains("would cut into it"),
        "{reply}"
    );
    // 1.5 MB still fits above the reserve.
    let reply = send(&mut c, "third", 3 * MB / 2).await;
    assert!(reply.starts_with("250 2.0.0"), "third: {reply}");

    // Another program takes 1 MB: now below the reserve, MAIL gets 452.
    let filler = spool.join("filler");
    std::fs::write(&filler, vec![0u8; MB]).unwrap();
    let reply = c.cmd(&format!("MAIL FROM:<{MAILBOX}>")).await;
    assert!(
        reply.starts_with("452 4.3.1 Postern's disk is almost full:")
            && reply.contains("free, keeps 4 MB in reserve (spool.min_free); try again later"),
        "{reply}"
    );
    // Space comes back: mail flows again, nothing to restart.
    std::fs::remove_file(&filler).unwrap();
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250").await;
    c.expect("RSET", "250").await;
    c.expect("QUIT", "221").await;

    // Everything that heard 250 reaches Exchange, and only that.
    let received = up.wait_for(3).await;
    let mut subjects: Vec<String> = received
        .iter()
        .map(|m| {
            let data = String::from_utf8_lossy(&m.data).into_owned();
            data.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["first", "second", "third"]);
    let q = p.wait_all(3, "sent");
    assert!(q.iter().all(|m| m["subject"] != "too-big-for-the-reserve"));
    assert!(
        p.log().contains("spool.min_free"),
        "the refusals are logged"
    );
    p.stop();
}
