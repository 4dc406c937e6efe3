//! What commands print: JSON as the API gives it (`--output json`), or aligned tables for
//! people (`--output text`).

use std::io::{ErrorKind, Write};

use serde_json::Value;

/// Writes `args` (and a newline if `newline`) to standard output. A closed pipe (`acta keys
/// list | head`) ends the process quietly with status 0, as a Unix filter does; any other
/// failure to write ends it with status 1 and a message. Never a panic.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("acta: writing to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` through [`write`].
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), true) };
}

/// `print!` through [`write`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), false) };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned tables for people.
    Text,
    /// JSON for programs.
    Json,
}

impl Output {
    /// Prints `value` as JSON, or as tables under an optional title line.
    pub fn print(self, title: Option<&str>, value: &Value) {
        match self {
            Output::Json => crate::outln!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
            ),
            Output::Text => {
                if let Some(t) = title {
                    crate::outln!("{t}");
                }
                crate::out!("{}", render(value));
            }
        }
    }
}

/// Records as a table whose columns come in the order given (a JSON object's keys are
/// sorted), under a title line.
pub fn print_columns(title: &str, columns: &[&str], records: &[Value]) {
    crate::outln!("{title}");
    let mut out = String::new();
    table_in_order(&mut out, records, columns);
    crate::out!("{out}");
}

/// A scalar as text; `None` for objects and arrays of objects.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("-".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items.iter().filter_map(scalar).collect();
            Some(if parts.is_empty() {
                "-".into()
            } else {
                parts.join(", ")
            })
        }
        _ => None,
    }
}

/// Flattens an object into `(dotted.path, text)` rows; arrays of objects are set aside as
/// `(path, items)` to print as tables.
fn flatten<'a>(
    prefix: &str,
    v: &'a Value,
    rows: &mut Vec<(String, String)>,
    tables: &mut Vec<(String, &'a [Value])>,
) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if k == "proof" {
                    rows.push((
                        path,
                        "(a proof bundle: use --output json to keep it)".into(),
                    ));
                    continue;
                }
                flatten(&path, child, rows, tables);
            }
        }
        Value::Array(items) if scalar(v).is_none() => tables.push((prefix.to_string(), items)),
        other => rows.push((prefix.to_string(), scalar(other).unwrap_or_default())),
    }
}

/// A value as aligned text: `field  value` rows, then one table per list of records.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    if let Value::Array(items) = v {
        table(&mut out, items);
        return out;
    }
    let mut rows = Vec::new();
    let mut tables = Vec::new();
    flatten("", v, &mut rows, &mut tables);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, val) in &rows {
        out.push_str(&format!("{k:<width$}  {val}\n"));
    }
    for (name, items) in tables {
        out.push_str(&format!("\n{name} ({}):\n", items.len()));
        table(&mut out, items);
    }
    out
}

/// Records as columns: one per scalar field (nested objects flattened with dots).
fn table(out: &mut String, items: &[Value]) {
    table_in_order(out, items, &[]);
}

/// [`table`] with the columns named in `first` first, in that order.
fn table_in_order(out: &mut String, items: &[Value], first: &[&str]) {
    if items.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let mut columns: Vec<String> = first.iter().map(|c| c.to_string()).collect();
    let rows: Vec<Vec<(String, String)>> = items
        .iter()
        .map(|item| {
            let mut rows = Vec::new();
            let mut nested = Vec::new();
            match item {
                Value::Object(_) => flatten("", item, &mut rows, &mut nested),
                other => rows.push(("value".into(), scalar(other).unwrap_or_default())),
            }
            for (name, list) in nested {
                rows.push((name, format!("({} items)", list.len())));
            }
            for (k, _) in &rows {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
            rows
        })
        .collect();
    let cell = |row: &[(String, String)], c: &str| {
        row.iter()
            .find(|(k, _)| k == c)
            .map_or("-".to_string(), |(_, v)| v.clone())
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::from(" ");
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(&format!(" {c:<w$} "));
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(columns.iter().map(|c| c.to_uppercase()).collect()));
    for r in &rows {
        out.push_str(&line(columns.iter().map(|c| cell(r, c)).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_become_aligned_rows_and_lists_become_tables() {
        let v = serde_json::json!({
            "height": 7,
            "round": { "id": 0, "title": "Trees" },
            "tags": ["a", "b"],
            "proposals": [
                { "id": 0, "cost": 40000 },
                { "id": 1, "cost": 8000, "note": null }
            ],
            "proof": { "big": true },
        });
        let text = render(&v);
        assert_eq!(
            text,
            "height       7\n\
             proof        (a proof bundle: use --output json to keep it)\n\
             round.id     0\n\
             round.title  Trees\n\
             tags         a, b\n\
             \n\
             proposals (2):\n\
             \x20 COST   ID  NOTE\n\
             \x20 40000  0   -\n\
             \x20 8000   1   -\n"
        );
    }

    #[test]
    fn named_columns_come_first_in_their_order() {
        let rows = [
            serde_json::json!({ "b": 1, "a": "x", "z": true }),
            serde_json::json!({ "b": 22, "a": "y" }),
        ];
        let mut out = String::new();
        table_in_order(&mut out, &rows, &["z", "b"]);
        assert_eq!(out, "  Z     B   A\n  true  1   x\n  -     22  y\n");
    }

    #[test]
    fn empty_lists_say_so() {
        assert_eq!(render(&serde_json::json!([])), "  (none)\n");
    }
}
