//! A strict reader and a writer for the Pabulib `.pb` format: the subset of
//! `docs/tally-rules.md`, section 1 (approval ballots, integer money).
//!
//! [`parse`] checks everything that section lists and reports the first problem with its
//! 1-based physical line number (the table of section 1.6 says which line). It is linear in
//! the size of the input, never panics and keeps no state between calls. [`write`] produces
//! a file that [`parse`] reads back into an equal [`Election`].

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{Ballot, Election, Project};

/// Why a `.pb` file was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PbError {
    /// The 1-based physical line the problem is reported on (a leading BOM does not shift
    /// it), or `None` for problems of the whole file.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn at(line: usize, message: impl Into<String>) -> PbError {
    PbError {
        line: Some(line),
        message: message.into(),
    }
}

fn whole(message: impl Into<String>) -> PbError {
    PbError {
        line: None,
        message: message.into(),
    }
}

/// A value from the file for an error message: quoted and escaped like a Rust string, and
/// cut after 40 characters so that a message stays short whatever the input.
fn show(s: &str) -> String {
    const MAX: usize = 40;
    let mut cut: String = s.chars().take(MAX).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// META keys that [`write`] derives from the election and [`Election::meta`] leaves out.
const DERIVED_KEYS: [&str; 4] = ["budget", "vote_type", "num_projects", "num_votes"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Meta,
    Projects,
    Votes,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Meta => "META",
            Section::Projects => "PROJECTS",
            Section::Votes => "VOTES",
        }
    }

    fn of_marker(line: &str) -> Option<Section> {
        match line {
            "META" => Some(Section::Meta),
            "PROJECTS" => Some(Section::Projects),
            "VOTES" => Some(Section::Votes),
            _ => None,
        }
    }

    /// The section that must come after `current` (`None`: before any section).
    fn after(current: Option<Section>) -> Option<Section> {
        match current {
            None => Some(Section::Meta),
            Some(Section::Meta) => Some(Section::Projects),
            Some(Section::Projects) => Some(Section::Votes),
            Some(Section::Votes) => None,
        }
    }
}

/// The columns of a section's header row that the parser reads.
#[derive(Clone, Copy, Debug)]
enum Columns {
    /// Exactly `key;value`.
    Meta,
    Projects {
        id: usize,
        cost: usize,
        votes: Option<usize>,
        name: Option<usize>,
        selected: Option<usize>,
    },
    Votes {
        voter: usize,
        vote: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct Header {
    /// The number of fields every data row must have.
    width: usize,
    columns: Columns,
}

/// Splits one line (without its terminator) into fields, section 1.3.
fn split_fields(line: &str, lineno: usize) -> Result<Vec<Cow<'_, str>>, PbError> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            // Runs to the next `"` that is not doubled; `""` stands for one `"`.
            let mut unescaped: Option<String> = None;
            let mut search = quoted;
            let (field, tail) = loop {
                let Some((chunk, after)) = search.split_once('"') else {
                    return Err(at(lineno, "unterminated quoted field"));
                };
                if let Some(after_doubled) = after.strip_prefix('"') {
                    let buf = unescaped.get_or_insert_with(String::new);
                    buf.push_str(chunk);
                    buf.push('"');
                    search = after_doubled;
                } else {
                    let field = match unescaped.take() {
                        Some(mut buf) => {
                            buf.push_str(chunk);
                            Cow::Owned(buf)
                        }
                        None => Cow::Borrowed(chunk),
                    };
                    break (field, after);
                }
            };
            fields.push(field);
            if tail.is_empty() {
                return Ok(fields);
            }
            match tail.strip_prefix(';') {
                Some(next) => rest = next,
                None => {
                    return Err(at(
                        lineno,
                        "a closing quote must be followed by `;` or the end of the line",
                    ))
                }
            }
        } else {
            let (field, next) = match rest.split_once(';') {
                Some((field, next)) => (field, Some(next)),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err(at(
                    lineno,
                    format!("`\"` inside an unquoted field: {}", show(field)),
                ));
            }
            fields.push(Cow::Borrowed(field));
            match next {
                Some(next) => rest = next,
                None => return Ok(fields),
            }
        }
    }
}

/// An unsigned decimal integer of ASCII digits only, less than 2^64.
fn parse_uint(s: &str, lineno: usize, what: &str) -> Result<u64, PbError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(at(
            lineno,
            format!(
                "{what} must be an unsigned decimal integer, got {}",
                show(s)
            ),
        ));
    }
    s.bytes()
        .try_fold(0u64, |acc, b| {
            acc.checked_mul(10)?
                .checked_add(u64::from(b.wrapping_sub(b'0')))
        })
        .ok_or_else(|| {
            at(
                lineno,
                format!("{what} must be less than 2^64, got {}", show(s)),
            )
        })
}

/// Moves field `i` out of a row (an empty field if there is none, which the field-count
/// check rules out).
fn take<'a>(fields: &mut [Cow<'a, str>], i: usize) -> Cow<'a, str> {
    fields.get_mut(i).map(std::mem::take).unwrap_or_default()
}

struct MetaRow<'a> {
    key: Cow<'a, str>,
    value: Cow<'a, str>,
    line: usize,
}

#[derive(Default)]
struct Parser<'a> {
    section: Option<Section>,
    header: Option<Header>,
    meta: Vec<MetaRow<'a>>,
    meta_keys: HashSet<Cow<'a, str>>,
    projects: Vec<Project>,
    /// Project id → index into `projects`.
    project_index: HashMap<Cow<'a, str>, u32>,
    /// Per project: its line and its `votes` column, if any.
    project_rows: Vec<(usize, Option<u64>)>,
    /// Per project: the number of ballots approving it.
    approvals: Vec<u64>,
    /// Per project: 1 + the index of the last ballot that approved it (0: none yet), to
    /// find a project named twice in one ballot.
    last_ballot: Vec<usize>,
    ballots: Vec<Ballot>,
    voters: HashSet<Cow<'a, str>>,
}

impl<'a> Parser<'a> {
    fn line(&mut self, line: &'a str, lineno: usize) -> Result<(), PbError> {
        if let Some(marker) = Section::of_marker(line) {
            let expected = Section::after(self.section);
            if expected != Some(marker) {
                let message = match expected {
                    Some(expected) => format!(
                        "section marker {} out of order or repeated (expected {})",
                        marker.name(),
                        expected.name()
                    ),
                    None => format!(
                        "section marker {} after the VOTES section (each section appears once)",
                        marker.name()
                    ),
                };
                return Err(at(lineno, message));
            }
            if let Some(current) = self.section {
                if self.header.is_none() {
                    return Err(at(
                        lineno,
                        format!("the {} section has no header row", current.name()),
                    ));
                }
            }
            self.section = Some(marker);
            self.header = None;
            return Ok(());
        }
        let Some(section) = self.section else {
            return Err(at(lineno, "non-empty line before META"));
        };
        let mut fields = split_fields(line, lineno)?;
        let Some(header) = self.header else {
            self.header = Some(read_header(section, &fields, lineno)?);
            return Ok(());
        };
        if fields.len() != header.width {
            return Err(at(
                lineno,
                format!(
                    "expected {} fields (as in the header), found {}",
                    header.width,
                    fields.len()
                ),
            ));
        }
        match header.columns {
            Columns::Meta => self.meta_row(&mut fields, lineno),
            Columns::Projects {
                id,
                cost,
                votes,
                name,
                selected,
            } => {
                let id = take(&mut fields, id);
                let cost = take(&mut fields, cost);
                let votes = votes.map(|i| take(&mut fields, i));
                let name = name.map(|i| take(&mut fields, i));
                let selected = selected.map(|i| take(&mut fields, i));
                self.project_row(
                    id,
                    &cost,
                    votes.as_deref(),
                    name,
                    selected.as_deref(),
                    lineno,
                )
            }
            Columns::Votes { voter, vote } => {
                let voter = take(&mut fields, voter);
                let vote = take(&mut fields, vote);
                self.vote_row(voter, &vote, lineno)
            }
        }
    }

    fn meta_row(&mut self, fields: &mut [Cow<'a, str>], lineno: usize) -> Result<(), PbError> {
        let key = take(fields, 0);
        let value = take(fields, 1);
        if !self.meta_keys.insert(key.clone()) {
            return Err(at(lineno, format!("duplicate META key {}", show(&key))));
        }
        self.meta.push(MetaRow {
            key,
            value,
            line: lineno,
        });
        Ok(())
    }

    fn project_row(
        &mut self,
        id: Cow<'a, str>,
        cost: &str,
        votes: Option<&str>,
        name: Option<Cow<'a, str>>,
        selected: Option<&str>,
        lineno: usize,
    ) -> Result<(), PbError> {
        if id.is_empty() {
            return Err(at(lineno, "empty project_id"));
        }
        if id.contains(',') {
            return Err(at(
                lineno,
                format!("project_id {} contains a comma", show(&id)),
            ));
        }
        if self.project_index.contains_key(id.as_ref()) {
            return Err(at(lineno, format!("duplicate project_id {}", show(&id))));
        }
        let cost = parse_uint(cost, lineno, "cost")?;
        if cost == 0 {
            return Err(at(
                lineno,
                format!("project {}: cost must be greater than 0", show(&id)),
            ));
        }
        let votes = votes.map(|v| parse_uint(v, lineno, "votes")).transpose()?;
        if let Some(s) = selected {
            if s != "0" && s != "1" {
                return Err(at(
                    lineno,
                    format!("selected must be 0 or 1, got {}", show(s)),
                ));
            }
        }
        let index =
            u32::try_from(self.projects.len()).map_err(|_| at(lineno, "too many projects"))?;
        self.project_index.insert(id.clone(), index);
        self.projects.push(Project {
            id: id.into_owned(),
            cost,
            name: name.map(Cow::into_owned).unwrap_or_default(),
        });
        self.project_rows.push((lineno, votes));
        self.approvals.push(0);
        self.last_ballot.push(0);
        Ok(())
    }

    fn vote_row(&mut self, voter: Cow<'a, str>, vote: &str, lineno: usize) -> Result<(), PbError> {
        if voter.is_empty() {
            return Err(at(lineno, "empty voter_id"));
        }
        if !self.voters.insert(voter.clone()) {
            return Err(at(lineno, format!("duplicate voter_id {}", show(&voter))));
        }
        let stamp = self.ballots.len().saturating_add(1);
        let mut approvals = Vec::new();
        if !vote.is_empty() {
            for id in vote.split(',') {
                let unknown = || at(lineno, format!("unknown project {} in vote", show(id)));
                let index = *self.project_index.get(id).ok_or_else(unknown)?;
                let slot = usize::try_from(index).map_err(|_| unknown())?;
                let (Some(last), Some(count)) =
                    (self.last_ballot.get_mut(slot), self.approvals.get_mut(slot))
                else {
                    return Err(unknown());
                };
                if *last == stamp {
                    return Err(at(
                        lineno,
                        format!("project {} appears twice in one vote", show(id)),
                    ));
                }
                *last = stamp;
                *count = count.saturating_add(1);
                approvals.push(index);
            }
        }
        self.ballots.push(Ballot {
            voter: voter.into_owned(),
            approvals,
        });
        Ok(())
    }

    /// The checks done after the whole file has been read (section 1.5), in a fixed order.
    fn finish(self, last_line: Option<usize>) -> Result<Election, PbError> {
        let ends = |message: String| PbError {
            line: last_line,
            message,
        };
        match self.section {
            Some(Section::Votes) => {}
            current => {
                let missing = Section::after(current).unwrap_or(Section::Votes);
                return Err(ends(format!(
                    "the file ends before the {} section",
                    missing.name()
                )));
            }
        }
        if self.header.is_none() {
            return Err(ends("the VOTES section has no header row".into()));
        }

        let find = |key: &str| self.meta.iter().find(|row| row.key == key);
        let Some(budget_row) = find("budget") else {
            return Err(whole("META lacks the key budget"));
        };
        let budget = parse_uint(&budget_row.value, budget_row.line, "budget")?;
        if budget == 0 {
            return Err(at(budget_row.line, "budget must be greater than 0"));
        }
        match find("vote_type") {
            None => return Err(whole("META lacks the key vote_type")),
            Some(row) if row.value != "approval" => {
                return Err(at(
                    row.line,
                    format!("vote_type must be approval, got {}", show(&row.value)),
                ))
            }
            Some(_) => {}
        }
        for (key, what, rows) in [
            ("num_projects", "PROJECTS", self.projects.len()),
            ("num_votes", "VOTES", self.ballots.len()),
        ] {
            if let Some(row) = find(key) {
                let claimed = parse_uint(&row.value, row.line, key)?;
                if u64::try_from(rows) != Ok(claimed) {
                    return Err(at(
                        row.line,
                        format!("{key} is {claimed} but {what} has {rows} data rows"),
                    ));
                }
            }
        }
        if self.ballots.is_empty() {
            return Err(whole("no voters"));
        }
        for ((project, &(line, column)), &counted) in self
            .projects
            .iter()
            .zip(&self.project_rows)
            .zip(&self.approvals)
        {
            if let Some(column) = column {
                if column != counted {
                    return Err(at(
                        line,
                        format!(
                            "project {}: the votes column says {column} but VOTES has {counted} approvals",
                            show(&project.id)
                        ),
                    ));
                }
            }
        }

        let meta = self
            .meta
            .into_iter()
            .filter(|row| !DERIVED_KEYS.contains(&row.key.as_ref()))
            .map(|row| (row.key.into_owned(), row.value.into_owned()))
            .collect();
        Ok(Election {
            budget,
            projects: self.projects,
            ballots: self.ballots,
            meta,
        })
    }
}

/// Checks a header row and finds the columns the parser reads.
fn read_header(
    section: Section,
    fields: &[Cow<'_, str>],
    lineno: usize,
) -> Result<Header, PbError> {
    let mut names = HashSet::with_capacity(fields.len());
    for name in fields {
        if !names.insert(name.as_ref()) {
            return Err(at(
                lineno,
                format!("duplicate column name {} in the header", show(name)),
            ));
        }
    }
    let column = |name: &str| fields.iter().position(|f| f == name);
    let required = |name: &str| {
        column(name).ok_or_else(|| {
            at(
                lineno,
                format!("the {} header lacks the column {name}", section.name()),
            )
        })
    };
    let columns = match section {
        Section::Meta => {
            if fields != ["key", "value"] {
                return Err(at(lineno, "the META header must be exactly key;value"));
            }
            Columns::Meta
        }
        Section::Projects => Columns::Projects {
            id: required("project_id")?,
            cost: required("cost")?,
            votes: column("votes"),
            name: column("name"),
            selected: column("selected"),
        },
        Section::Votes => Columns::Votes {
            voter: required("voter_id")?,
            vote: required("vote")?,
        },
    };
    Ok(Header {
        width: fields.len(),
        columns,
    })
}

/// Reads a `.pb` file (section 1 of `docs/tally-rules.md`) into an [`Election`].
///
/// Projects and ballots keep their file order; a ballot's approvals keep the order of its
/// `vote` field. [`Election::meta`] holds the META pairs other than `budget`, `vote_type`,
/// `num_projects` and `num_votes`, in file order. The first problem found is reported.
pub fn parse(bytes: &[u8]) -> Result<Election, PbError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        whole(format!(
            "the file is not valid UTF-8 (first bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::default();
    // The number of physical lines: the piece after the last `\n` is a line only if it is
    // not empty (a terminator after the last line is optional).
    let mut lines = 0usize;
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i.saturating_add(1);
        lines = if raw.is_empty() { i } else { lineno };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        parser.line(line, lineno)?;
    }
    let last_line = (lines > 0).then_some(lines);
    parser.finish(last_line)
}

/// Appends one field, quoted if it holds `;` or `"`; `\r` and `\n` become spaces.
fn push_field(out: &mut String, field: &str) {
    let field: Cow<'_, str> = if field.contains(['\r', '\n']) {
        Cow::Owned(field.replace(['\r', '\n'], " "))
    } else {
        Cow::Borrowed(field)
    };
    if field.contains([';', '"']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&field);
    }
}

fn push_row(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        push_field(out, field);
    }
    out.push('\n');
}

/// Writes `election` as a `.pb` file with LF line endings.
///
/// META holds the pairs of [`Election::meta`] in order (skipping the derived keys), then
/// `num_projects`, `num_votes`, `budget` and `vote_type;approval`. PROJECTS has the columns
/// `project_id;cost;votes;name`, where `votes` is the counted approvals; VOTES has
/// `voter_id;vote`. Line breaks cannot be represented in a field and are written as
/// spaces. For every election [`parse`] can return whose strings hold no `\r` or `\n`,
/// `parse(write(e).as_bytes())` gives `e` back. Approvals naming no project are left out.
pub fn write(election: &Election) -> String {
    let mut out = String::new();
    out.push_str("META\nkey;value\n");
    for (key, value) in &election.meta {
        if !DERIVED_KEYS.contains(&key.as_str()) {
            push_row(&mut out, &[key, value]);
        }
    }
    let num_projects = election.projects.len().to_string();
    let num_votes = election.ballots.len().to_string();
    let budget = election.budget.to_string();
    push_row(&mut out, &["num_projects", &num_projects]);
    push_row(&mut out, &["num_votes", &num_votes]);
    push_row(&mut out, &["budget", &budget]);
    push_row(&mut out, &["vote_type", "approval"]);

    let project = |p: u32| {
        usize::try_from(p)
            .ok()
            .and_then(|i| election.projects.get(i))
    };
    let mut counts = vec![0u64; election.projects.len()];
    for ballot in &election.ballots {
        for &p in &ballot.approvals {
            if let Some(count) = usize::try_from(p).ok().and_then(|i| counts.get_mut(i)) {
                *count = count.saturating_add(1);
            }
        }
    }
    out.push_str("PROJECTS\nproject_id;cost;votes;name\n");
    for (p, count) in election.projects.iter().zip(counts) {
        push_row(
            &mut out,
            &[&p.id, &p.cost.to_string(), &count.to_string(), &p.name],
        );
    }

    out.push_str("VOTES\nvoter_id;vote\n");
    let mut vote = String::new();
    for ballot in &election.ballots {
        vote.clear();
        for (i, p) in ballot
            .approvals
            .iter()
            .filter_map(|&p| project(p))
            .enumerate()
        {
            if i > 0 {
                vote.push(',');
            }
            vote.push_str(&p.id);
        }
        push_row(&mut out, &[&ballot.voter, &vote]);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SMALL: &str = "META\nkey;value\nbudget;100\nvote_type;approval\nnum_projects;3\n\
        num_votes;3\ndescription;\"a \"\"small\"\" one\"\nPROJECTS\nproject_id;cost;votes;name;selected\n\
        1;60;2;First;1\n2;50;1;\"Second; with \"\"quotes\"\"\";0\nx;40;1;Third;0\nVOTES\n\
        voter_id;vote\nv1;1,2\nv2;\nv3;x,1\n";

    fn err(text: &str) -> PbError {
        parse(text.as_bytes()).unwrap_err()
    }

    fn fields(line: &str) -> Result<Vec<String>, PbError> {
        split_fields(line, 7).map(|f| f.into_iter().map(Cow::into_owned).collect())
    }

    #[test]
    fn splits_fields() {
        assert_eq!(fields("a;b;c").unwrap(), ["a", "b", "c"]);
        assert_eq!(fields("a;;").unwrap(), ["a", "", ""]);
        assert_eq!(fields(";").unwrap(), ["", ""]);
        assert_eq!(fields(" a ; b").unwrap(), [" a ", " b"]);
        assert_eq!(fields("\"a;b\";c").unwrap(), ["a;b", "c"]);
        assert_eq!(fields("\"\"").unwrap(), [""]);
        assert_eq!(fields("\"\";").unwrap(), ["", ""]);
        assert_eq!(fields("\"x\"\"y\"\"\"").unwrap(), ["x\"y\""]);
        assert_eq!(fields("\"\"\"\"").unwrap(), ["\""]);
        assert_eq!(fields("a;\"b\"").unwrap(), ["a", "b"]);
        assert_eq!(fields("1,2;\"3,4\"").unwrap(), ["1,2", "3,4"]);
        for (line, fragment) in [
            ("\"abc", "unterminated"),
            ("a;\"b\"\"", "unterminated"),
            ("\"", "unterminated"),
            ("\"a\"b", "closing quote"),
            ("\"a\" ;b", "closing quote"),
            ("a\"b", "inside an unquoted field"),
            ("a;b\"", "inside an unquoted field"),
            (" \"a\"", "inside an unquoted field"),
        ] {
            let e = fields(line).unwrap_err();
            assert_eq!(e.line, Some(7), "{line}");
            assert!(e.message.contains(fragment), "{line}: {e}");
        }
    }

    #[test]
    fn parses_unsigned_integers() {
        assert_eq!(parse_uint("0", 1, "x").unwrap(), 0);
        assert_eq!(parse_uint("007", 1, "x").unwrap(), 7);
        assert_eq!(
            parse_uint("18446744073709551615", 1, "x").unwrap(),
            u64::MAX
        );
        assert_eq!(
            parse_uint("0000000000000000000000018446744073709551615", 1, "x").unwrap(),
            u64::MAX
        );
        for bad in ["", "+1", "-1", " 1", "1 ", "1.0", "1e3", "0x10", "١"] {
            let e = parse_uint(bad, 3, "cost").unwrap_err();
            assert_eq!(e.line, Some(3));
            assert!(e.message.contains("unsigned decimal integer"), "{bad}: {e}");
        }
        for big in ["18446744073709551616", "99999999999999999999999999"] {
            let e = parse_uint(big, 3, "cost").unwrap_err();
            assert!(e.message.contains("less than 2^64"), "{big}: {e}");
        }
    }

    #[test]
    fn parses_a_small_file() {
        let e = parse(SMALL.as_bytes()).unwrap();
        assert_eq!(e.budget, 100);
        let ids: Vec<_> = e.projects.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "x"]);
        assert_eq!(e.projects[1].name, "Second; with \"quotes\"");
        assert_eq!(e.projects[2].cost, 40);
        assert_eq!(e.ballots.len(), 3);
        assert_eq!(e.ballots[0].approvals, [0, 1]);
        assert!(e.ballots[1].approvals.is_empty());
        assert_eq!(e.ballots[2].voter, "v3");
        assert_eq!(e.ballots[2].approvals, [2, 0]);
        assert_eq!(
            e.meta,
            [("description".to_string(), "a \"small\" one".to_string())]
        );
        assert_eq!(e.approval_counts(), [2, 1, 1]);
    }

    #[test]
    fn optional_columns_and_meta_keys_may_be_absent() {
        let e = parse(b"META\nkey;value\nvote_type;approval\nbudget;5\nPROJECTS\ncost;project_id\n3;a\nVOTES\nvote;voter_id\na;1\n").unwrap();
        assert_eq!(e.projects[0].name, "");
        assert_eq!(e.projects[0].id, "a");
        assert_eq!(e.projects[0].cost, 3);
        assert_eq!(e.ballots[0].voter, "1");
        assert!(e.meta.is_empty());
    }

    #[test]
    fn line_endings_blank_lines_and_bom() {
        let mixed = SMALL.replacen('\n', "\r\n", 5);
        assert_eq!(parse(mixed.as_bytes()), parse(SMALL.as_bytes()));
        let no_final_newline = SMALL.trim_end_matches('\n');
        assert_eq!(parse(no_final_newline.as_bytes()), parse(SMALL.as_bytes()));
        let blank = SMALL.replace('\n', "\n\r\n\n");
        assert_eq!(parse(blank.as_bytes()), parse(SMALL.as_bytes()));
        let bom = format!("\u{feff}\n\r\n{SMALL}");
        assert_eq!(parse(bom.as_bytes()), parse(SMALL.as_bytes()));
        // Only one CR is removed; a second one belongs to the last field.
        let two_crs = SMALL.replace("Third;0\n", "Third;0\r\r\n");
        assert_eq!(err(&two_crs).line, Some(12));
        // A BOM does not shift line numbers.
        let e = err(&format!("\u{feff}{}", SMALL.replace("v2;", "v1;")));
        assert_eq!(e.line, Some(16));
        // A BOM is skipped only at the very start.
        assert_eq!(err(&format!("\n\u{feff}{SMALL}")).line, Some(2));
    }

    #[test]
    fn values_are_not_trimmed() {
        let e = err(&SMALL.replace("v1;1,2", "v1;1, 2"));
        assert_eq!(e.line, Some(15));
        assert_eq!(e.message, "unknown project \" 2\" in vote");
        assert_eq!(e.to_string(), "line 15: unknown project \" 2\" in vote");
        let spaces = err(&SMALL.replace("v2;\n", "v2;\n   \n"));
        assert_eq!(spaces.line, Some(17));
        assert!(spaces.message.contains("expected 2 fields"), "{spaces}");
        let e = err(&SMALL.replace("budget;100", "budget;100 "));
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn reports_each_error_on_its_line() {
        let cases: &[(&str, &str, Option<usize>, &str)] = &[
            ("META\n", "x\nMETA\n", Some(1), "before META"),
            (
                "PROJECTS\n",
                "META\nPROJECTS\n",
                Some(8),
                "META out of order or repeated",
            ),
            ("PROJECTS\n", "VOTES\n", Some(8), "VOTES out of order"),
            (
                "VOTES\nvoter_id;vote\n",
                "VOTES\nvoter_id;vote\nPROJECTS\n",
                Some(15),
                "after the VOTES",
            ),
            ("VOTES\n", "META\nVOTES\n", Some(13), "out of order"),
            ("key;value\n", "key;value;x\n", Some(2), "exactly key;value"),
            ("key;value\n", "value;key\n", Some(2), "exactly key;value"),
            (
                "name;selected",
                "name;cost",
                Some(9),
                "duplicate column name \"cost\"",
            ),
            (
                "project_id;cost;",
                "id;cost;",
                Some(9),
                "lacks the column project_id",
            ),
            (
                "voter_id;vote",
                "voter;vote",
                Some(14),
                "lacks the column voter_id",
            ),
            (
                "description;",
                "budget;",
                Some(7),
                "duplicate META key \"budget\"",
            ),
            (
                "budget;100",
                "budget;1e2",
                Some(3),
                "budget must be an unsigned",
            ),
            (
                "budget;100",
                "budget;0",
                Some(3),
                "budget must be greater than 0",
            ),
            ("budget;100", "Budget;100", None, "lacks the key budget"),
            (
                "vote_type;approval",
                "vote_type;Approval",
                Some(4),
                "vote_type must be approval",
            ),
            (
                "vote_type;approval",
                "votetype;approval",
                None,
                "lacks the key vote_type",
            ),
            (
                "num_projects;3",
                "num_projects;4",
                Some(5),
                "num_projects is 4 but PROJECTS has 3",
            ),
            (
                "num_projects;3",
                "num_projects;three",
                Some(5),
                "num_projects must be",
            ),
            (
                "num_votes;3",
                "num_votes;2",
                Some(6),
                "num_votes is 2 but VOTES has 3",
            ),
            (
                "1;60;2;First;1",
                ";60;2;First;1",
                Some(10),
                "empty project_id",
            ),
            (
                "1;60;2;First;1",
                "1,5;60;2;First;1",
                Some(10),
                "contains a comma",
            ),
            ("x;40", "1;40", Some(12), "duplicate project_id \"1\""),
            ("x;40", "x;-40", Some(12), "cost must be an unsigned"),
            ("x;40", "x;0", Some(12), "cost must be greater than 0"),
            ("Third;0", "Third;yes", Some(12), "selected must be 0 or 1"),
            ("x;40;1", "x;40;one", Some(12), "votes must be an unsigned"),
            (
                "x;40;1",
                "x;40;2",
                Some(12),
                "votes column says 2 but VOTES has 1",
            ),
            ("v2;", ";", Some(16), "empty voter_id"),
            ("v3;", "v1;", Some(17), "duplicate voter_id \"v1\""),
            (
                "v3;x,1",
                "v3;x,9",
                Some(17),
                "unknown project \"9\" in vote",
            ),
            ("v3;x,1", "v3;x,", Some(17), "unknown project \"\" in vote"),
            (
                "v3;x,1",
                "v3;x,1,x",
                Some(17),
                "project \"x\" appears twice",
            ),
            ("v3;x,1", "v3;x;1", Some(17), "expected 2 fields"),
            ("v3;x,1", "v3;\"x,1\"", None, ""),
            ("First;1", "\"First;1", Some(10), "unterminated"),
            ("First;1", "\"First\"1", Some(10), "closing quote"),
            ("First;1", "Fi\"rst;1", Some(10), "inside an unquoted field"),
        ];
        for &(from, to, line, fragment) in cases {
            assert!(SMALL.contains(from), "{from}");
            let text = SMALL.replacen(from, to, 1);
            if line.is_none() && fragment.is_empty() {
                assert_eq!(parse(text.as_bytes()), parse(SMALL.as_bytes()), "{to}");
                continue;
            }
            let e = err(&text);
            assert_eq!(e.line, line, "{from} -> {to}: {e}");
            assert!(e.message.contains(fragment), "{from} -> {to}: {e}");
        }
    }

    #[test]
    fn errors_at_the_end_of_the_file() {
        for (text, line, fragment) in [
            ("", None, "before the META section"),
            ("PROJECTS\n", Some(1), "PROJECTS out of order"),
            (
                "META\r\n\r\nPROJECTS\r\n",
                Some(3),
                "the META section has no header row",
            ),
            (
                "META\nkey;value\nPROJECTS\n\nVOTES\n",
                Some(5),
                "the PROJECTS section has no header row",
            ),
            ("\u{feff}", None, "before the META section"),
            ("\n\n", Some(2), "before the META section"),
            ("META\nkey;value\n", Some(2), "before the PROJECTS section"),
            (
                "META\nkey;value\nPROJECTS\nproject_id;cost\n\n",
                Some(5),
                "before the VOTES section",
            ),
            (
                "META\nkey;value\nPROJECTS\nproject_id;cost\nVOTES",
                Some(5),
                "VOTES section has no header",
            ),
            (
                "META\nkey;value\nPROJECTS\nproject_id;cost\nVOTES\r\n\r\n",
                Some(6),
                "VOTES section has no header",
            ),
        ] {
            let e = err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(fragment), "{text:?}: {e}");
        }
        let e = err(SMALL.split("v1;").next().unwrap());
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(6), "num_votes is 3 but VOTES has 0 data rows")
        );
        let no_voters = SMALL
            .replace("num_votes;3\n", "")
            .replace("v1;1,2\nv2;\nv3;x,1\n", "");
        assert_eq!(err(&no_voters), whole("no voters"));
        let e = parse(b"META\nkey;value\n\xff\n").unwrap_err();
        assert_eq!(e.line, None);
        assert!(e.message.contains("UTF-8"), "{e}");
    }

    #[test]
    fn messages_are_short() {
        let long = "9".repeat(10_000);
        let e = err(&SMALL.replace("v3;x,1", &format!("v3;x,{long}")));
        assert!(e.message.len() < 100, "{e}");
        assert!(e.message.contains('…'));
    }

    #[test]
    fn writes_and_reads_back() {
        let e = parse(SMALL.as_bytes()).unwrap();
        let text = write(&e);
        assert_eq!(
            text,
            "META\nkey;value\ndescription;\"a \"\"small\"\" one\"\nnum_projects;3\nnum_votes;3\n\
             budget;100\nvote_type;approval\nPROJECTS\nproject_id;cost;votes;name\n1;60;2;First\n\
             2;50;1;\"Second; with \"\"quotes\"\"\"\nx;40;1;Third\nVOTES\nvoter_id;vote\nv1;1,2\n\
             v2;\nv3;x,1\n"
        );
        assert_eq!(parse(text.as_bytes()).unwrap(), e);
    }

    #[test]
    fn writer_derives_meta_and_survives_bad_input() {
        let e = Election {
            budget: 7,
            projects: vec![Project {
                id: "\"p\"".into(),
                cost: 3,
                name: "two\r\nlines\n".into(),
            }],
            ballots: vec![Ballot {
                voter: "a;b".into(),
                approvals: vec![0, 5, u32::MAX],
            }],
            meta: vec![
                ("budget".into(), "99".into()),
                ("num_votes".into(), "0".into()),
                ("rule".into(), "greedy".into()),
            ],
        };
        let text = write(&e);
        assert_eq!(
            text,
            "META\nkey;value\nrule;greedy\nnum_projects;1\nnum_votes;1\nbudget;7\n\
             vote_type;approval\nPROJECTS\nproject_id;cost;votes;name\n\"\"\"p\"\"\";3;1;two  lines \n\
             VOTES\nvoter_id;vote\n\"a;b\";\"\"\"p\"\"\"\n"
        );
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.projects[0].name, "two  lines ");
        assert_eq!(back.ballots[0].approvals, [0]);
        assert_eq!(back.meta, [("rule".to_string(), "greedy".to_string())]);
    }
}
