//! Figures, their targets, the printed table and the JSON report.

use serde::Serialize;
use serde_json::{Value, json};

use crate::stats::Summary;

/// One measured figure: its runs summarized, and the target it is held to, if any.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The scenario it belongs to (`1 enqueue`, `2 drain`, ...).
    pub scenario: &'static str,
    /// A stable identifier for the JSON.
    pub key: String,
    /// What the table calls it.
    pub label: String,
    pub unit: &'static str,
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Check>,
}

/// A target a figure's median is held to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// The target as the issue states it (`≥ 0.32·L`).
    pub rule: String,
    /// The threshold in the figure's unit.
    pub threshold: f64,
    /// Whether the median must be at least (rather than at most) the threshold.
    pub at_least: bool,
    pub met: bool,
}

impl Figure {
    /// A figure without a target.
    pub(crate) fn new(
        scenario: &'static str,
        key: impl Into<String>,
        label: impl Into<String>,
        unit: &'static str,
        summary: Summary,
    ) -> Self {
        Self {
            scenario,
            key: key.into(),
            label: label.into(),
            unit,
            summary,
            target: None,
        }
    }

    /// Holds the median to at least `threshold`.
    pub(crate) fn at_least(mut self, threshold: f64, rule: impl Into<String>) -> Self {
        self.target = Some(Check {
            rule: rule.into(),
            threshold,
            at_least: true,
            met: self.summary.median >= threshold,
        });
        self
    }

    /// Holds the median to at most `threshold`.
    pub(crate) fn at_most(mut self, threshold: f64, rule: impl Into<String>) -> Self {
        self.target = Some(Check {
            rule: rule.into(),
            threshold,
            at_least: false,
            met: self.summary.median <= threshold,
        });
        self
    }
}

/// What one scenario produced: its figures and everything else it measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub figures: Vec<Figure>,
    pub details: Value,
}

/// A number with as many decimals as its size deserves.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        thousands(value)
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// A large number rounded to a whole and grouped by thousands (`123 456`).
fn thousands(value: f64) -> String {
    let whole = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(digit);
    }
    if value < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// The table of every figure, one line each, with its target and whether it is met.
pub(crate) fn table(figures: &[Figure]) -> String {
    let rows: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            let (rule, met) = match &f.target {
                Some(check) => (
                    format!("{} ({})", check.rule, number(check.threshold)),
                    if check.met { "met" } else { "NOT MET" }.to_owned(),
                ),
                None => (String::new(), String::new()),
            };
            [
                format!("{} {}", f.scenario, f.label),
                number(f.summary.median),
                format!("{} – {}", number(f.summary.min), number(f.summary.max)),
                f.unit.to_owned(),
                rule,
                met,
            ]
        })
        .collect();
    let header = [
        "figure".to_owned(),
        "median".to_owned(),
        "min – max".to_owned(),
        "unit".to_owned(),
        "target".to_owned(),
        String::new(),
    ];
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: &[String; 6]| {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                let pad = width - cell.chars().count();
                if (1..=2).contains(&i) {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut out = line(&header);
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 10));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// Every target, flattened: which figure, the rule, the threshold, the median, met.
pub(crate) fn targets(figures: &[Figure]) -> Value {
    figures
        .iter()
        .filter_map(|f| {
            let check = f.target.as_ref()?;
            Some(json!({
                "figure": f.key,
                "label": f.label,
                "rule": check.rule,
                "threshold": check.threshold,
                "unit": f.unit,
                "median": f.summary.median,
                "met": check.met,
            }))
        })
        .collect()
}

/// The machine: cores (`nproc`), CPU model and memory, from `/proc`.
pub(crate) fn machine() -> Value {
    let nproc = std::process::Command::new("nproc")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|text| text.trim().to_owned());
    json!({
        "nproc": nproc,
        "cpu_model": model,
        "memory_total_kib": memory_kib,
        "kernel": kernel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(123_456.7), "123 457");
        assert_eq!(number(1000.0), "1 000");
        assert_eq!(number(512.4), "512");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(-2500.0), "-2 500");
    }

    #[test]
    fn targets_are_checked_against_the_median() {
        let summary = Summary::of(&[1.0, 2.0, 9.0]);
        let f = Figure::new("x", "k", "label", "ms", summary.clone()).at_most(2.0, "≤ 2");
        assert!(f.target.as_ref().unwrap().met);
        let f = Figure::new("x", "k", "label", "ms", summary).at_least(2.5, "≥ 2.5");
        assert!(!f.target.as_ref().unwrap().met);
        let text = table(&[f]);
        assert!(text.contains("NOT MET"));
    }
}
