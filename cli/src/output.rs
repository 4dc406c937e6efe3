//! What commands print: JSON as the API gives it (`--output json`), or aligned tables for
//! people (`--output text`).

use std::io::{ErrorKind, Write};

use serde_json::Value;

/// `text` safe for a terminal: control characters other than newline and tab, and the
/// Unicode controls that reorder text, are shown escaped as JSON escapes them (`\u001b`),
/// so that JSON output stays JSON with the same values. What the ledger holds (a
/// project's title, a device's stream) is anyone's text, and an escape sequence in it must
/// not rewrite the terminal's lines or set its clipboard.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    // All of them are in the Basic Multilingual Plane: four hex digits.
                    format!("\\u{:04x}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Writes `args` (and a newline if `newline`) to standard output, [`printable`]. A closed
/// pipe (`acta keys list | head`) ends the process quietly with status 0, as a Unix filter
/// does; any other failure to write ends it with status 1 and a message. Never a panic.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let text = std::fmt::format(args);
    let written = out.write_all(printable(&text).as_bytes()).and_then(|()| {
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

/// What the wallet knows by name: public keys (hex) and DIDs of its keystore.
static NAMES: std::sync::OnceLock<std::collections::HashMap<String, String>> =
    std::sync::OnceLock::new();

/// Sets the names text output shows beside the keys and DIDs they stand for (once).
pub fn set_names(names: std::collections::HashMap<String, String>) {
    let _ = NAMES.set(names);
}

/// Whether a field named `key` holds a time in Unix milliseconds (not a height, not a
/// duration).
fn is_time_key(key: &str) -> bool {
    const TIMES: [&str; 10] = [
        "time",
        "valid_from",
        "valid_until",
        "closes_at",
        "proposals_from",
        "voting_from",
        "window_start",
        "window_end",
        "last_window_end",
        "genesis_time",
    ];
    TIMES.contains(&key)
        || key.ends_with("_time")
        || key.ends_with("_time_ms")
        || key.ends_with("_at_ms")
}

/// A leaf for people: a time in RFC 3339, a key or DID of the keystore with its name.
fn leaf(key: &str, v: &Value) -> String {
    match v {
        // Times from 1973 to 5138: anything else is not a time in milliseconds.
        Value::Number(n) if is_time_key(key) => match n.as_u64() {
            Some(ms) if (100_000_000_000..100_000_000_000_000).contains(&ms) => {
                acta_ledger::Timestamp(ms).rfc3339()
            }
            _ => n.to_string(),
        },
        Value::String(s) => match NAMES.get().and_then(|m| m.get(s)) {
            Some(name) if s.len() > 20 => {
                let short: String = s.chars().take(12).collect();
                format!("{name} ({short}…)")
            }
            Some(name) => format!("{name} ({s})"),
            None => s.clone(),
        },
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|i| leaf(key, i)).collect();
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join(", ")
            }
        }
        other => scalar(other).unwrap_or_default(),
    }
}

/// A nested value in one table cell: `add_validator(key=…, power=10)`, `a=1, b=2`.
fn compact(key: &str, v: &Value) -> String {
    match v {
        Value::Object(map) if map.len() == 1 => {
            let (k, inner) = map.iter().next().expect("one entry");
            match inner {
                Value::Object(_) | Value::Array(_) => format!("{k}({})", compact(k, inner)),
                _ => format!("{k}={}", leaf(k, inner)),
            }
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, inner)| format!("{k}={}", compact(k, inner)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| compact(key, i))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => leaf(key, other),
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
        other => {
            let key = prefix.rsplit('.').next().unwrap_or(prefix);
            rows.push((prefix.to_string(), leaf(key, other)));
        }
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
            // One column per field; a nested value reads in its cell.
            let rows: Vec<(String, String)> = match item {
                Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| match v {
                        _ if k == "proof" => (k.clone(), "(proof)".to_string()),
                        Value::Array(list) if list.len() > 8 && scalar(v).is_none() => {
                            (k.clone(), format!("({} items)", list.len()))
                        }
                        Value::Object(_) | Value::Array(_) => (k.clone(), compact(k, v)),
                        _ => (k.clone(), leaf(k, v)),
                    })
                    .collect(),
                other => vec![("value".into(), compact("value", other))],
            };
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
    fn text_from_the_ledger_cannot_drive_the_terminal() {
        assert_eq!(printable("Trees\tin\nOld Town ü"), "Trees\tin\nOld Town ü");
        // Erase the line and write over it; set the clipboard (OSC 52); reverse the text.
        assert_eq!(printable("\u{1b}[2K\rFree"), "\\u001b[2K\\u000dFree");
        assert_eq!(
            printable("\u{1b}]52;c;eA==\u{7}"),
            "\\u001b]52;c;eA==\\u0007"
        );
        assert_eq!(printable("a\u{202e}b\u{9b}"), "a\\u202eb\\u009b");
        // JSON that serde leaves these in stays JSON, with the same value.
        let title = "a\u{7f}\u{202e}b";
        let json = serde_json::json!({ "title": title }).to_string();
        let shown: serde_json::Value = serde_json::from_str(&printable(&json)).unwrap();
        assert_eq!(shown["title"], title);
    }

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
    fn times_read_as_rfc3339_and_nested_values_in_one_cell() {
        let v = serde_json::json!({
            "block_time_ms": 1_796_211_376_797u64,
            "height": 1_796_211_376_797u64,
            "deciding_ms": 1200,
            "proposals": [
                { "id": 0, "action": { "add_validator": { "key": "ab", "power": 10 } },
                  "created_time": 1_796_211_376_797u64 },
            ],
        });
        let text = render(&v);
        assert!(
            text.contains("block_time_ms  2026-12-02T11:36:16Z"),
            "{text}"
        );
        assert!(text.contains("height         1796211376797"), "{text}");
        assert!(text.contains("deciding_ms    1200"), "{text}");
        assert!(text.contains("add_validator(key=ab, power=10)"), "{text}");
        assert!(text.contains("2026-12-02T11:36:16Z"), "{text}");
        assert!(!text.contains("ACTION.ADD_VALIDATOR"), "{text}");
    }

    #[test]
    fn empty_lists_say_so() {
        assert_eq!(render(&serde_json::json!([])), "  (none)\n");
    }
}
