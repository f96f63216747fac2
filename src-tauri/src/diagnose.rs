//! `postern diagnose`: runs the engine's checks and prints them, one line
//! each (`[ ok ] title — found`, with a `fix:` line under a warning or
//! failure), or the list as JSON. Exit code 0 when nothing failed.

use std::path::Path;

use postern_engine::config::Config;
use postern_engine::diagnose::{self, Check, Verdict};

use crate::commands::EXIT_FAILED;

pub async fn run(config: &Config, config_path: &Path, json: bool) -> i32 {
    let checks = diagnose::run(config, config_path).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).expect("checks serialise")
        );
    } else {
        for c in &checks {
            print!("{}", line(c));
        }
        let count = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
        println!(
            "\n{} ok, {} warning(s), {} failed, {} skipped",
            count(Verdict::Ok),
            count(Verdict::Warn),
            count(Verdict::Fail),
            count(Verdict::Skip)
        );
    }
    if diagnose::passed(&checks) {
        0
    } else {
        EXIT_FAILED
    }
}

/// One check as printed, with its trailing newline(s).
fn line(c: &Check) -> String {
    let mut s = format!("[{}] {} — {}\n", c.verdict.tag(), c.title, c.found);
    if matches!(c.verdict, Verdict::Warn | Verdict::Fail) && !c.fix.is_empty() {
        s.push_str(&format!("       fix: {}\n", c.fix));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_the_fix_only_for_warnings_and_failures() {
        let ok = Check::ok("a", "Thing", "fine");
        assert_eq!(line(&ok), "[ ok ] Thing — fine\n");
        let bad = Check::fail("b", "Other", "broken", "mend it");
        assert_eq!(line(&bad), "[fail] Other — broken\n       fix: mend it\n");
    }
}
