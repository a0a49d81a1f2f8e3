//! Plain-text tables and times for the admin commands.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// A table printed with columns padded to their widest cell.
#[derive(Debug)]
pub(super) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(super) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header = self
            .header
            .iter()
            .map(|h| (*h).to_owned())
            .collect::<Vec<_>>();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `2026-11-28 14:03:07Z`.
pub(super) fn timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%d %H:%M:%SZ")
        .to_string()
}

/// `in 4.2s`, `3m ago`, relative to `now`.
pub(super) fn relative(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(ahead) => format!("in {}", short(ahead)),
        Err(behind) => format!("{} ago", short(behind.duration())),
    }
}

/// `850ms`, `4.2s`, `3m12s`, `2h5m`, `3d4h`.
pub(super) fn short(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0 => format!("{}ms", duration.as_millis()),
        1..60 => format!("{:.1}s", duration.as_secs_f64()),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&["KEY", "STATE"]);
        table.row(vec!["a-long-key".into(), "QUEUED".into()]);
        table.row(vec!["k".into(), "RUNNING".into()]);
        assert_eq!(
            table.render(),
            "KEY         STATE\na-long-key  QUEUED\nk           RUNNING\n"
        );
    }

    #[test]
    fn times_read_naturally() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_hours(1000);
        assert_eq!(relative(now + Duration::from_millis(4200), now), "in 4.2s");
        assert_eq!(relative(now - Duration::from_secs(192), now), "3m12s ago");
        assert_eq!(short(Duration::from_millis(850)), "850ms");
        assert_eq!(short(Duration::from_mins(125)), "2h5m");
        assert_eq!(short(Duration::from_hours(76)), "3d4h");
        assert_eq!(timestamp(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00Z");
    }
}
