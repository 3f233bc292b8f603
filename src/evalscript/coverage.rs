//! `tessera eval --explain DIR`: which tier runs each script of a collection and why,
//! as a table, so the compiled tier's coverage can be measured on any set of scripts.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Mosaicking, Program, ScriptFormat};

/// One script's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTier {
    pub name: String,
    /// `V3 SIMPLE`, `V3 ORBIT`, `V1 body`, ... (`error` when the script does not compile).
    pub kind: String,
    /// `None` when compiled; the reason it runs in boa, or the compile error.
    pub boa_reason: Option<String>,
    pub error: bool,
}

/// Compiles each `(name, source)` and records its tier.
pub fn explain<'s>(scripts: impl IntoIterator<Item = (String, &'s str)>) -> Vec<ScriptTier> {
    scripts
        .into_iter()
        .map(|(name, source)| match Program::compile(source) {
            Ok(program) => {
                let format = match program.format() {
                    ScriptFormat::V3 => "V3",
                    ScriptFormat::V1Body => "V1 body",
                    ScriptFormat::V1Function => "V1/V2 function",
                };
                let setup = program.setup();
                let kind = if setup.is_fusion() {
                    format!("{format} fusion")
                } else if program.format() == ScriptFormat::V3 {
                    let mosaicking = match setup.mosaicking {
                        Mosaicking::Simple => "SIMPLE",
                        Mosaicking::Orbit => "ORBIT",
                        Mosaicking::Tile => "TILE",
                    };
                    format!("{format} {mosaicking}")
                } else {
                    format.to_string()
                };
                ScriptTier {
                    name,
                    kind,
                    boa_reason: program.boa_reason().map(str::to_string),
                    error: false,
                }
            }
            Err(err) => ScriptTier {
                name,
                kind: "error".into(),
                boa_reason: Some(err.to_string()),
                error: true,
            },
        })
        .collect()
}

/// A reason with the names it quotes elided, so like reasons group together.
fn reason_class(reason: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in reason.chars() {
        if c == '\'' {
            if !quoted {
                out.push_str("'…");
            }
            quoted = !quoted;
        }
        if !quoted {
            out.push(c);
        }
    }
    out
}

/// The per-script table, then totals by kind and fallback reasons by count.
pub fn render(rows: &[ScriptTier]) -> String {
    let mut out = String::new();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(
        out,
        "{:width$}  {:16}  {:8}  reason",
        "script", "kind", "tier"
    );
    for r in rows {
        let tier = match (&r.boa_reason, r.error) {
            (_, true) => "error",
            (None, _) => "compiled",
            (Some(_), _) => "boa",
        };
        let _ = writeln!(
            out,
            "{:width$}  {:16}  {:8}  {}",
            r.name,
            r.kind,
            tier,
            r.boa_reason.as_deref().unwrap_or("")
        );
    }
    let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        let entry = kinds.entry(r.kind.as_str()).or_default();
        entry.0 += 1;
        match &r.boa_reason {
            None => entry.1 += 1,
            Some(reason) if !r.error => *reasons.entry(reason_class(reason)).or_default() += 1,
            Some(_) => {}
        }
    }
    let _ = writeln!(
        out,
        "\n| kind | scripts | compiled | share |\n| --- | --- | --- | --- |"
    );
    let (mut all, mut compiled) = (0, 0);
    for (kind, (n, c)) in &kinds {
        all += n;
        compiled += c;
        let _ = writeln!(
            out,
            "| {kind} | {n} | {c} | {:.0}% |",
            100.0 * *c as f64 / *n as f64
        );
    }
    let share = if all == 0 {
        0.0
    } else {
        100.0 * compiled as f64 / all as f64
    };
    let _ = writeln!(out, "| all | {all} | {compiled} | {share:.0}% |");
    if !reasons.is_empty() {
        let mut by_count: Vec<(String, usize)> = reasons.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let _ = writeln!(out, "\n| scripts | runs in boa because |\n| --- | --- |");
        for (reason, n) in by_count {
            let _ = writeln!(out, "| {n} | {reason} |");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_totals_and_grouped_reasons() {
        let ndvi = "//VERSION=3\nfunction setup() { return { input: ['B04', 'B08'], output: { bands: 1 } }; }\n\
                    function evaluatePixel(s) { return [(s.B08 - s.B04) / (s.B08 + s.B04)]; }";
        let method =
            "//VERSION=3\nfunction setup() { return { input: ['B04'], output: { bands: 1 } }; }\n\
                      function evaluatePixel(s) { return [s.B04.toFixed(1)]; }";
        let other = method.replace("toFixed(1)", "toPrecision(2)");
        let scripts = vec![
            ("ndvi.js".to_string(), ndvi),
            ("a.js".to_string(), method),
            ("b.js".to_string(), other.as_str()),
            ("v1.js".to_string(), "return [B04 * 2];"),
            ("bad.js".to_string(), "function setup( {"),
        ];
        let rows = explain(scripts);
        let tiers: Vec<(&str, bool)> = rows
            .iter()
            .map(|r| (r.kind.as_str(), r.boa_reason.is_none()))
            .collect();
        assert_eq!(
            tiers,
            vec![
                ("V3 SIMPLE", true),
                ("V3 SIMPLE", false),
                ("V3 SIMPLE", false),
                ("V1 body", true),
                ("error", false)
            ]
        );
        let table = render(&rows);
        assert!(table.contains("| V3 SIMPLE | 3 | 1 | 33% |"), "{table}");
        assert!(table.contains("| V1 body | 1 | 1 | 100% |"), "{table}");
        assert!(table.contains("| all | 5 | 2 | 40% |"), "{table}");
        // Two method calls of different names group as one reason.
        assert!(table.contains("| 2 | method call "), "{table}");
    }

    #[test]
    fn reason_class_elides_quoted_names() {
        assert_eq!(
            reason_class("unknown identifier 'samples' in 'x'"),
            "unknown identifier '…' in '…'"
        );
    }
}
