//! The preflight's output: a table for people, JSON for scripts.

use super::{Outcome, Report};
use std::fmt::Write;

/// One line per check (`CHECK  RESULT  DETAIL`), the fix indented under
/// it, then the CDI section and a summary line.
pub fn render_table(report: &Report) -> String {
    let width = report
        .findings
        .iter()
        .map(|f| f.group.name().len() + 1 + f.check.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!("{:width$}  {:7}  DETAIL\n", "CHECK", "RESULT");
    for f in &report.findings {
        let name = format!("{}/{}", f.group.name(), f.check);
        let _ = writeln!(
            out,
            "{name:width$}  {:7}  {}",
            f.outcome.to_string(),
            f.detail
        );
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "{:width$}  {:7}  fix: {fix}", "", "");
        }
    }
    if let Some(listing) = &report.cdi {
        out.push('\n');
        out.push_str(&crate::container::cdi::render_listing(listing));
    }
    let _ = writeln!(
        out,
        "\n{} blocker(s), {} warning(s), {} ok{}",
        report.count(Outcome::Blocker),
        report.count(Outcome::Warn),
        report.count(Outcome::Ok),
        match report.count(Outcome::Skipped) {
            0 => String::new(),
            n => format!(", {n} skipped"),
        }
    );
    out
}

/// `{"blockers": n, "warnings": n, "checks": [{group, check, outcome, detail, fix?}...]}`.
pub fn render_json(report: &Report) -> String {
    let value = serde_json::json!({
        "blockers": report.count(Outcome::Blocker),
        "warnings": report.count(Outcome::Warn),
        "checks": report.findings,
    });
    serde_json::to_string_pretty(&value).expect("findings serialise") + "\n"
}
