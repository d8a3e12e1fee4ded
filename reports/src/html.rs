//! HTML text: escaping, and the tables and badges the report is made of.

use std::fmt::Write as _;

use runlog::Status;

/// Escapes text for HTML element content and double- or single-quoted attributes, and
/// drops control characters (a NUL is not allowed in HTML) other than tab and newline.
///
/// ```
/// assert_eq!(reports::escape_html("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
/// ```
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            other => out.push(other),
        }
    }
    out
}

/// A pass/warn/fail badge.
pub(crate) fn badge(status: Status) -> String {
    format!(
        "<span class=\"badge {0}\">{1}</span>",
        status.as_str(),
        status.as_str().to_uppercase()
    )
}

/// One table cell: text (escaped when rendered) or trusted markup built by this crate.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    /// Plain text, left-aligned.
    Text(String),
    /// A figure, right-aligned in a tabular font.
    Num(String),
    /// A figure in readable form with its raw value beside it, muted.
    Figure(String, String),
    /// Markup made by this crate (badges); never user text.
    Markup(String),
}

impl Cell {
    pub(crate) fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub(crate) fn num(s: impl Into<String>) -> Cell {
        Cell::Num(s.into())
    }

    fn render(&self, out: &mut String) {
        match self {
            Cell::Text(s) => {
                let _ = write!(out, "<td>{}</td>", escape_html(s));
            }
            Cell::Num(s) => {
                let _ = write!(out, "<td class=\"num\">{}</td>", escape_html(s));
            }
            Cell::Figure(readable, raw) => {
                let _ = write!(
                    out,
                    "<td class=\"num\">{} <span class=\"raw\">{}</span></td>",
                    escape_html(readable),
                    escape_html(raw)
                );
            }
            Cell::Markup(s) => {
                let _ = write!(out, "<td>{s}</td>");
            }
        }
    }
}

/// A titled table with an id (for tests and links).
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) id: &'static str,
    pub(crate) title: String,
    pub(crate) head: Vec<&'static str>,
    pub(crate) rows: Vec<Vec<Cell>>,
    /// The table's CSS class: `"kv"` right-aligns the values of a name/value table.
    pub(crate) class: &'static str,
}

impl Table {
    pub(crate) fn new(id: &'static str, title: impl Into<String>, head: &[&'static str]) -> Table {
        Table {
            id,
            title: title.into(),
            head: head.to_vec(),
            rows: Vec::new(),
            class: "",
        }
    }

    /// A two-column table of names and values.
    pub(crate) fn key_values(id: &'static str, title: &str, rows: Vec<(String, Cell)>) -> Table {
        let mut table = Table::new(id, title, &[]);
        table.class = "kv";
        table.rows = rows
            .into_iter()
            .map(|(k, v)| vec![Cell::Text(k), v])
            .collect();
        table
    }

    pub(crate) fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "<section class=\"card\"><h3>{}</h3><table id=\"{}\" class=\"{}\">",
            escape_html(&self.title),
            self.id,
            self.class
        );
        if !self.head.is_empty() {
            out.push_str("<thead><tr>");
            for h in &self.head {
                let _ = write!(out, "<th>{}</th>", escape_html(h));
            }
            out.push_str("</tr></thead>");
        }
        out.push_str("<tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            for cell in row {
                cell.render(&mut out);
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></section>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_are_escaped_but_markup_is_not() {
        let mut t = Table::new("t", "<T>", &["a&b"]);
        t.row(vec![
            Cell::text("<script>"),
            Cell::Markup(badge(Status::Warn)),
        ]);
        let html = t.render();
        assert!(
            html.contains("&lt;T&gt;") && html.contains("a&amp;b"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"badge warn\">WARN</span>"),
            "{html}"
        );
        assert_eq!(escape_html("a\u{0}b\n"), "ab\n");
    }
}
