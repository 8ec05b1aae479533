//! SQL keyword highlighting for the editor.

use crate::viewer::theme;
use egui::text::LayoutJob;
use egui::{FontId, TextFormat};

const KEYWORDS: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "group",
    "by",
    "order",
    "limit",
    "as",
    "on",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "having",
    "distinct",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "case",
    "when",
    "then",
    "else",
    "end",
    "in",
    "is",
    "null",
    "like",
    "between",
    "create",
    "view",
    "drop",
    "with",
    "union",
    "all",
    "desc",
    "asc",
    "cast",
    "over",
    "partition",
    "interval",
    "exists",
    "true",
    "false",
    "approx_percentile_cont",
    "date_trunc",
];

/// SQL keywords, strings, numbers and comments coloured, for the editor's layouter.
pub fn highlight_sql(text: &str, font: FontId) -> LayoutJob {
    let mut job = LayoutJob::default();
    let plain = theme::SQL_PLAIN;
    let keyword = theme::SQL_KEYWORD;
    let string = theme::SQL_STRING;
    let number = theme::SQL_NUMBER;
    let comment = theme::SQL_COMMENT;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = bytes[i];
        let start = i;
        let color = if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < text.len() && bytes[i] != b'\n' {
                i += 1;
            }
            comment
        } else if c == b'\'' || c == b'"' {
            i += 1;
            while i < text.len() && bytes[i] != c {
                i += 1;
            }
            i = (i + 1).min(text.len());
            string
        } else if c.is_ascii_digit() {
            while i < text.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            number
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < text.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if KEYWORDS.contains(&text[start..i].to_ascii_lowercase().as_str()) {
                keyword
            } else {
                plain
            }
        } else {
            // One character (maybe multi-byte) of punctuation or space.
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            plain
        };
        job.append(
            &text[start..i],
            0.0,
            TextFormat {
                font_id: font.clone(),
                color,
                ..Default::default()
            },
        );
    }
    job
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlighting_keeps_every_character() {
        let sql = "SELECT name, 'it''s' -- note\nFROM t WHERE x > 1.5 AND é";
        let job = highlight_sql(sql, FontId::monospace(12.0));
        assert_eq!(job.text, sql);
        assert_eq!(job.sections[0].format.color, theme::SQL_KEYWORD, "SELECT");
        assert_ne!(
            job.sections[1].format.color,
            theme::SQL_KEYWORD,
            "the space"
        );
        assert_ne!(job.sections[2].format.color, theme::SQL_KEYWORD, "name");
    }
}
