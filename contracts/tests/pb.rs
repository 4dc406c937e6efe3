//! The `.pb` reader and writer on the real Wieliczka 2023 Green Budget file: what it
//! contains, every error of `docs/tally-rules.md` section 1.6 on a mutated copy, line
//! endings and the BOM, write/parse round trips, and properties on random input.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use acta_contracts::tally::pb::{self, PbError};
use acta_contracts::tally::{Ballot, Election, Project};
use proptest::prelude::*;

const WIELICZKA: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/poland_wieliczka_2023_green-budget.pb"
));

fn wieliczka() -> Election {
    pb::parse(WIELICZKA).unwrap()
}

/// The file's lines without their CRLF (the file ends with one).
fn lines() -> Vec<String> {
    let text = std::str::from_utf8(WIELICZKA).unwrap();
    let body = text.strip_suffix("\r\n").unwrap();
    body.split("\r\n").map(str::to_string).collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text.into_bytes()
}

/// The file with physical line `n` (1-based) replaced by `new`.
fn with_line(n: usize, new: &str) -> Vec<u8> {
    let mut l = lines();
    l[n - 1] = new.to_string();
    join(&l)
}

/// The file with line `n` changed by `f`.
fn edit_line(n: usize, f: impl FnOnce(&str) -> String) -> Vec<u8> {
    let l = lines();
    with_line(n, &f(&l[n - 1]))
}

/// The file without the lines `from..=to`.
fn without_lines(from: usize, to: usize) -> Vec<u8> {
    let mut l = lines();
    l.drain(from - 1..to);
    join(&l)
}

/// The file with `new` inserted as line `n`.
fn with_inserted(n: usize, new: &str) -> Vec<u8> {
    let mut l = lines();
    l.insert(n - 1, new.to_string());
    join(&l)
}

fn lf_only(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes()
}

fn with_bom(bytes: &[u8]) -> Vec<u8> {
    let mut v = "\u{feff}".as_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

#[test]
fn the_layout_of_the_file_is_as_the_tests_assume() {
    let l = lines();
    assert_eq!(l.len(), 6672);
    assert_eq!(l[0], "META");
    assert_eq!(l[8], "num_votes;6586");
    assert_eq!(l[9], "budget;1000000");
    assert_eq!(l[18], "PROJECTS");
    assert_eq!(l[19], "project_id;cost;votes;name;selected");
    assert!(l[20].starts_with("24;5000;720;"));
    assert_eq!(l[84], "VOTES");
    assert_eq!(l[85], "voter_id;vote");
    assert_eq!(l[86], "1;70,20,21,25,6");
    assert_eq!(l[87], "2;39,60,74,24,58");
    assert_eq!(l[6671], "6586;88,32,24,8");
    assert_eq!(join(&l), WIELICZKA);
}

#[test]
fn wieliczka_parses() {
    let e = wieliczka();
    assert_eq!(e.budget, 1_000_000);
    assert_eq!(e.projects.len(), 64);
    assert_eq!(e.ballots.len(), 6586);
    let distinct: BTreeSet<BTreeSet<u32>> = e
        .ballots
        .iter()
        .map(|b| b.approvals.iter().copied().collect())
        .collect();
    assert_eq!(distinct.len(), 1190);
    assert_eq!(e.projects.iter().map(|p| p.cost).sum::<u64>(), 3_147_413);

    // Projects and ballots in file order; approvals in the order of the vote field.
    assert_eq!(e.projects[0].id, "24");
    assert_eq!(e.projects[0].cost, 5000);
    assert_eq!(
        e.projects[0].name,
        "Zakup 10 fotopułapek przeciwko śmieciarzom i dzikim wysypiskom"
    );
    assert_eq!(e.projects[63].id, "83");
    assert_eq!(e.ballots[0].voter, "1");
    let first: Vec<&str> = e.ballots[0]
        .approvals
        .iter()
        .map(|&p| e.projects[p as usize].id.as_str())
        .collect();
    assert_eq!(first, ["70", "20", "21", "25", "6"]);
    assert_eq!(e.ballots[6585].voter, "6586");

    // The votes column matches the counted approvals (parse checks it; check it again).
    let l = lines();
    let column: Vec<u64> = l[20..84]
        .iter()
        .map(|row| row.split(';').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(e.approval_counts(), column);
    assert_eq!(column[0], 720);

    // The two quoted names (lines 50 and 57).
    let name = |id: &str| &e.projects.iter().find(|p| p.id == id).unwrap().name;
    assert_eq!(
        name("81"),
        "Sensoryczna ścieżka dla dzieci oraz domki dla zwierząt w Parku \"Stok pod Baranem\" \
         - wykonane z ekologicznych recyklingowanych materiałów"
    );
    assert_eq!(
        name("80"),
        "Drzewne przytulasy i relaksacyjne gniazda w Parku \"Stok pod Baranem\""
    );
    assert_eq!(e.projects[29].id, "81");
    assert_eq!(e.projects[36].id, "80");

    let meta: Vec<(&str, &str)> = e
        .meta
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        meta,
        [
            (
                "description",
                "Municipal PB in Wieliczka, Green Budget (Zielony Milion)"
            ),
            ("country", "Poland"),
            ("unit", "Wieliczka"),
            ("subunit", "Green Budget"),
            ("instance", "2023"),
            ("rule", "equalshares/add1"),
            ("date_begin", "03.04.2023"),
            ("date_end", "21.04.2023"),
            ("min_length", "1"),
            ("edition", "1"),
            ("language", "pl"),
            ("currency", "PLN"),
        ]
    );
}

#[test]
fn wieliczka_parses_fast() {
    let mut best = Duration::MAX;
    for _ in 0..20 {
        let start = Instant::now();
        let e = pb::parse(WIELICZKA).unwrap();
        best = best.min(start.elapsed());
        assert_eq!(e.ballots.len(), 6586);
    }
    eprintln!("Wieliczka: best parse time of 20 runs: {best:?}");
    // Generous, so that a loaded machine or an unoptimised build does not fail it.
    assert!(best < Duration::from_millis(500), "{best:?}");
}

#[test]
fn every_error_of_section_1_6_reports_its_line() {
    let quoted50 = &lines()[49];
    assert!(quoted50.ends_with("materiałów\";0"));
    let cases: Vec<(&str, Vec<u8>, Option<usize>, &str)> = vec![
        // Bytes and sections.
        (
            "invalid UTF-8",
            {
                let mut b = WIELICZKA.to_vec();
                let at = WIELICZKA
                    .windows(2)
                    .position(|w| w == "ł".as_bytes())
                    .unwrap();
                b[at + 1] = b'x';
                b
            },
            None,
            "not valid UTF-8",
        ),
        (
            "a lone 0xFF",
            {
                let mut b = WIELICZKA.to_vec();
                b[40_000] = 0xff;
                b
            },
            None,
            "not valid UTF-8",
        ),
        (
            "row before META",
            with_inserted(1, "hello"),
            Some(1),
            "before META",
        ),
        (
            "spaces before META",
            with_inserted(1, " "),
            Some(1),
            "before META",
        ),
        (
            "PROJECTS repeated",
            with_line(85, "PROJECTS"),
            Some(85),
            "PROJECTS out of order or repeated",
        ),
        (
            "META repeated",
            with_inserted(19, "META"),
            Some(19),
            "META out of order",
        ),
        (
            "VOTES before PROJECTS",
            with_line(19, "VOTES"),
            Some(19),
            "VOTES out of order",
        ),
        (
            "marker after VOTES",
            with_inserted(6000, "VOTES"),
            Some(6000),
            "after the VOTES",
        ),
        (
            "file ends before VOTES",
            without_lines(85, 6672),
            Some(84),
            "ends before the VOTES section",
        ),
        (
            "file ends before PROJECTS",
            without_lines(19, 6672),
            Some(18),
            "ends before the PROJECTS section",
        ),
        (
            "VOTES has no header",
            without_lines(86, 6672),
            Some(85),
            "VOTES section has no header",
        ),
        (
            "missing VOTES marker (blank)",
            with_line(85, ""),
            Some(86),
            "expected 5 fields",
        ),
        (
            "missing VOTES marker (removed)",
            without_lines(85, 85),
            Some(85),
            "expected 5 fields",
        ),
        // Quoting.
        (
            "unterminated quote",
            edit_line(50, |l| l.replace("materiałów\";0", "materiałów;0")),
            Some(50),
            "unterminated quoted field",
        ),
        (
            "text after a closing quote",
            edit_line(57, |l| l.replace("\";0", "\"x;0")),
            Some(57),
            "closing quote",
        ),
        (
            "quote in an unquoted field",
            edit_line(21, |l| l.replace("Zakup 10", "Zakup \"10\"")),
            Some(21),
            "inside an unquoted field",
        ),
        (
            "quote in an unquoted vote",
            with_line(87, "1;70,\"20\""),
            Some(87),
            "inside an unquoted field",
        ),
        // Headers and field counts.
        (
            "META header",
            with_line(2, "key;val"),
            Some(2),
            "exactly key;value",
        ),
        (
            "duplicate column",
            with_line(20, "project_id;cost;votes;name;name"),
            Some(20),
            "duplicate column name \"name\"",
        ),
        (
            "missing cost column",
            with_line(20, "project_id;price;votes;name;selected"),
            Some(20),
            "lacks the column cost",
        ),
        (
            "missing vote column",
            with_line(86, "voter_id;votes"),
            Some(86),
            "lacks the column vote",
        ),
        (
            "field count in META",
            with_line(4, "country;Poland;EU"),
            Some(4),
            "expected 2 fields (as in the header), found 3",
        ),
        (
            "field count in PROJECTS",
            edit_line(30, |l| format!("{l};x")),
            Some(30),
            "expected 5 fields (as in the header), found 6",
        ),
        (
            "field count in VOTES",
            with_line(6000, "5914"),
            Some(6000),
            "expected 2 fields (as in the header), found 1",
        ),
        (
            "spaces-only line",
            with_inserted(6000, "   "),
            Some(6000),
            "expected 2 fields (as in the header), found 1",
        ),
        // META.
        (
            "duplicate META key",
            with_line(12, "country;Polska"),
            Some(12),
            "duplicate META key \"country\"",
        ),
        (
            "budget missing",
            without_lines(10, 10),
            None,
            "lacks the key budget",
        ),
        (
            "budget 0",
            with_line(10, "budget;0"),
            Some(10),
            "budget must be greater than 0",
        ),
        (
            "budget 2^64",
            with_line(10, "budget;18446744073709551616"),
            Some(10),
            "budget must be less than 2^64",
        ),
        (
            "budget with a decimal point",
            with_line(10, "budget;1000000.00"),
            Some(10),
            "budget must be an unsigned decimal integer",
        ),
        (
            "budget with a space",
            with_line(10, "budget; 1000000"),
            Some(10),
            "budget must be an unsigned decimal integer",
        ),
        (
            "vote_type not approval",
            with_line(11, "vote_type;cumulative"),
            Some(11),
            "vote_type must be approval, got \"cumulative\"",
        ),
        (
            "vote_type missing",
            without_lines(11, 11),
            None,
            "lacks the key vote_type",
        ),
        (
            "wrong num_projects",
            with_line(8, "num_projects;65"),
            Some(8),
            "num_projects is 65 but PROJECTS has 64",
        ),
        (
            "wrong num_votes",
            with_line(9, "num_votes;6585"),
            Some(9),
            "num_votes is 6585 but VOTES has 6586",
        ),
        (
            "num_votes 2^64",
            with_line(9, "num_votes;18446744073709551616"),
            Some(9),
            "num_votes must be less than 2^64",
        ),
        (
            "num_votes negative",
            with_line(9, "num_votes;-6586"),
            Some(9),
            "num_votes must be an unsigned",
        ),
        // PROJECTS.
        (
            "non-numeric cost",
            edit_line(21, |l| l.replacen("24;5000;", "24;5 000;", 1)),
            Some(21),
            "cost must be an unsigned decimal integer, got \"5 000\"",
        ),
        (
            "cost 0",
            edit_line(21, |l| l.replacen("24;5000;", "24;0;", 1)),
            Some(21),
            "cost must be greater than 0",
        ),
        (
            "cost 2^64",
            edit_line(21, |l| {
                l.replacen("24;5000;", "24;18446744073709551616;", 1)
            }),
            Some(21),
            "cost must be less than 2^64",
        ),
        (
            "votes 2^64",
            edit_line(21, |l| l.replacen(";720;", ";18446744073709551616;", 1)),
            Some(21),
            "votes must be less than 2^64",
        ),
        (
            "empty project_id",
            edit_line(21, |l| l.replacen("24;", ";", 1)),
            Some(21),
            "empty project_id",
        ),
        (
            "comma in project_id",
            edit_line(21, |l| l.replacen("24;", "24,25;", 1)),
            Some(21),
            "contains a comma",
        ),
        (
            "duplicate project_id",
            edit_line(22, |l| l.replacen("41;", "24;", 1)),
            Some(22),
            "duplicate project_id \"24\"",
        ),
        (
            "selected 2",
            edit_line(21, |l| format!("{}2", l.strip_suffix('1').unwrap())),
            Some(21),
            "selected must be 0 or 1, got \"2\"",
        ),
        (
            "wrong votes column",
            edit_line(21, |l| l.replacen(";720;", ";721;", 1)),
            Some(21),
            "the votes column says 721 but VOTES has 720 approvals",
        ),
        (
            "wrong votes column, last project",
            edit_line(84, |l| l.replacen(";80;", ";0;", 1)),
            Some(84),
            "says 0 but VOTES has 80",
        ),
        // VOTES.
        (
            "unknown project in a vote",
            with_line(87, "1;70,20,21,25,99"),
            Some(87),
            "unknown project \"99\" in vote",
        ),
        (
            "space in a vote",
            with_line(87, "1;70, 20"),
            Some(87),
            "unknown project \" 20\" in vote",
        ),
        (
            "trailing comma in a vote",
            with_line(87, "1;70,20,"),
            Some(87),
            "unknown project \"\" in vote",
        ),
        (
            "repeated project in a vote",
            with_line(6672, "6586;88,32,24,88"),
            Some(6672),
            "project \"88\" appears twice",
        ),
        (
            "duplicate voter",
            with_line(88, "1;39,60,74,24,58"),
            Some(88),
            "duplicate voter_id \"1\"",
        ),
        (
            "empty voter",
            with_line(87, ";70,20,21,25,6"),
            Some(87),
            "empty voter_id",
        ),
        (
            "no voters",
            {
                let mut l = lines();
                l.truncate(86);
                l.remove(8);
                join(&l)
            },
            None,
            "no voters",
        ),
    ];
    for (what, bytes, line, fragment) in cases {
        let e = pb::parse(&bytes).unwrap_err();
        assert_eq!(e.line, line, "{what}: {e}");
        assert!(e.message.contains(fragment), "{what}: {e}");
        // The same error, on the same line, without CRLF or with a BOM.
        if std::str::from_utf8(&bytes).is_ok() {
            assert_eq!(pb::parse(&lf_only(&bytes)).unwrap_err(), e, "{what}");
            assert_eq!(pb::parse(&with_bom(&bytes)).unwrap_err(), e, "{what}");
        }
    }
}

#[test]
fn errors_display_their_line() {
    let e = pb::parse(&with_line(57, "80;75000;188;x;0\r\n1;2;3")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 58: expected 5 fields (as in the header), found 3"
    );
    let e = PbError {
        line: Some(57),
        message: "unknown project \"99\" in vote".into(),
    };
    assert_eq!(e.to_string(), "line 57: unknown project \"99\" in vote");
    let e = pb::parse(&without_lines(10, 10)).unwrap_err();
    assert_eq!(e.to_string(), "META lacks the key budget");
}

#[test]
fn harmless_changes_are_accepted() {
    let e = wieliczka();
    let same = |bytes: Vec<u8>, what: &str| assert_eq!(pb::parse(&bytes).unwrap(), e, "{what}");
    same(lf_only(WIELICZKA), "LF only");
    same(with_bom(WIELICZKA), "BOM");
    same(with_bom(&lf_only(WIELICZKA)), "BOM and LF");
    same(
        WIELICZKA.strip_suffix(b"\r\n").unwrap().to_vec(),
        "no final line terminator",
    );
    same(with_inserted(1, ""), "a blank line before META");
    same(with_inserted(20, ""), "a blank line before a header");
    same(with_inserted(6000, ""), "a blank line among votes");
    same(with_line(8, "num_projects;0064"), "leading zeros");
    same(without_lines(8, 9), "no num_projects or num_votes");
    same(
        edit_line(21, |l| l.replacen(";720;", ";\"720\";", 1)),
        "a quoted number",
    );
    let mut mixed = Vec::new();
    for (i, line) in lines().iter().enumerate() {
        mixed.extend_from_slice(line.as_bytes());
        mixed.extend_from_slice(if i % 3 == 0 { b"\n" } else { b"\r\n" });
    }
    same(mixed, "mixed line endings");
    // Reordered columns and no votes/selected columns.
    let mut l = lines();
    for row in &mut l[19..84] {
        let f: Vec<&str> = row.splitn(4, ';').collect();
        let name_selected = f[3];
        *row = format!("{name_selected};{};{}", f[1], f[0]);
    }
    l[19] = "name;selected;cost;project_id".into();
    same(join(&l), "reordered columns");
}

#[test]
fn wieliczka_round_trips() {
    let e = wieliczka();
    let text = pb::write(&e);
    assert!(text.starts_with("META\nkey;value\ndescription;Municipal PB"));
    assert!(!text.contains('\r'));
    assert!(text.ends_with("\n6586;88,32,24,8\n"));
    assert!(text.contains(
        "\n80;75000;188;\"Drzewne przytulasy i relaksacyjne gniazda w Parku \"\"Stok pod Baranem\"\"\"\n"
    ));
    assert!(
        text.contains("\nnum_projects;64\nnum_votes;6586\nbudget;1000000\nvote_type;approval\n")
    );
    assert_eq!(text.matches("budget;").count(), 1);
    assert_eq!(pb::parse(text.as_bytes()).unwrap(), e);
    assert_eq!(pb::write(&pb::parse(text.as_bytes()).unwrap()), text);
    // Same rows as the file (without its `selected` column), LF instead of CRLF.
    let original = lf_only(WIELICZKA);
    let original = std::str::from_utf8(&original).unwrap();
    let votes_section = &original[original.find("\nVOTES\n").unwrap()..];
    assert!(text.ends_with(votes_section));
}

fn awkward() -> Election {
    let project = |id: &str, cost, name: &str| Project {
        id: id.into(),
        cost,
        name: name.into(),
    };
    let ballot = |voter: &str, approvals: &[u32]| Ballot {
        voter: voter.into(),
        approvals: approvals.to_vec(),
    };
    Election {
        budget: u64::MAX,
        projects: vec![
            project("1", 10, "semi;colon"),
            project("\"q\"", u64::MAX, "\"Quoted\" at the start"),
            project("a;b", 1, "ends with a quote\""),
            project(" spaced ", 2, ""),
            project("ünï", 3, "\"\""),
            project("x", 4, "  "),
            project("META", 5, "PROJECTS"),
        ],
        ballots: vec![
            ballot("v;1", &[2, 0, 1]),
            ballot("\"", &[]),
            ballot(" ", &[6, 5, 4, 3]),
            ballot("VOTES", &[1]),
        ],
        meta: vec![
            ("description".into(), "a;b \"c\" d".into()),
            ("".into(), "".into()),
            ("\"k\"".into(), ";".into()),
            ("rule".into(), "greedy".into()),
        ],
    }
}

#[test]
fn awkward_names_round_trip() {
    let e = awkward();
    let text = pb::write(&e);
    assert!(text.contains("\n1;10;1;\"semi;colon\"\n"), "{text}");
    assert!(
        text.contains("\n\"\"\"q\"\"\";18446744073709551615;2;\"\"\"Quoted\"\" at the start\"\n"),
        "{text}"
    );
    assert!(text.contains("\n\"v;1\";\"a;b,1,\"\"q\"\"\"\n"), "{text}");
    assert!(text.contains("\n\"\"\"\";\n"), "{text}");
    assert_eq!(pb::parse(text.as_bytes()).unwrap(), e);
}

#[test]
fn writing_replaces_line_breaks() {
    let mut e = awkward();
    e.projects[0].name = "two\nlines\r\nhere\r".into();
    e.meta[0].1 = "x\ny".into();
    let back = pb::parse(pb::write(&e).as_bytes()).unwrap();
    assert_eq!(back.projects[0].name, "two lines  here ");
    assert_eq!(back.meta[0].1, "x y");
    e.projects[0].name = back.projects[0].name.clone();
    e.meta[0].1 = back.meta[0].1.clone();
    assert_eq!(back, e);
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

const SMALL: &str = "META\r\nkey;value\r\nbudget;100\r\nvote_type;approval\r\nnum_projects;3\r\n\
    num_votes;3\r\nname;\"x;\"\"y\"\"\"\r\nPROJECTS\r\nproject_id;cost;votes;name;selected\r\n\
    1;60;2;First;1\r\n2;50;1;\"Se;cond\";0\r\nx;40;1;Third;0\r\nVOTES\r\nvoter_id;vote\r\n\
    v1;1,2\r\nv2;\r\nv3;x,1\r\n";

fn has_line_break(e: &Election) -> bool {
    let br = |s: &str| s.contains(['\r', '\n']);
    e.meta.iter().any(|(k, v)| br(k) || br(v))
        || e.projects.iter().any(|p| br(&p.id) || br(&p.name))
        || e.ballots.iter().any(|b| br(&b.voter))
}

/// Parses `bytes` (which must not panic) and, if it is accepted, checks the round trip.
fn check_parse(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(e) = pb::parse(bytes) {
        let text = pb::write(&e);
        prop_assert!(!text.contains('\r'));
        if !has_line_break(&e) {
            prop_assert_eq!(pb::parse(text.as_bytes()), Ok(e));
        }
    }
    Ok(())
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b';'),
        Just(b'"'),
        Just(b','),
        Just(b'\n'),
        Just(b'\r'),
        Just(b'0'),
        Just(b'1'),
        Just(b'x'),
        Just(b' '),
        Just(0xef),
        Just(0xc3),
        any::<u8>(),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(base: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in mutations {
        let len = b.len();
        match *m {
            Mutation::Set(i, x) if len > 0 => b[i % len] = x,
            Mutation::Insert(i, x) => b.insert(i % (len + 1), x),
            Mutation::Remove(i) if len > 0 => {
                b.remove(i % len);
            }
            Mutation::Truncate(i) => b.truncate(i % (len + 1)),
            _ => {}
        }
    }
    b
}

/// Text built from the pieces a `.pb` file is made of, so that random input gets past the
/// first checks more often than random bytes do.
fn pb_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("META"),
        Just("PROJECTS"),
        Just("VOTES"),
        Just("key;value"),
        Just("budget;10"),
        Just("vote_type;approval"),
        Just("num_votes;1"),
        Just("project_id;cost"),
        Just("project_id;cost;votes"),
        Just("voter_id;vote"),
        Just("1;5"),
        Just("2;5;1"),
        Just("a;1,2"),
        Just("b;"),
        Just("\""),
        Just(";"),
        Just(","),
        Just("\n"),
        Just("\r\n"),
        Just("\u{feff}"),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat().into_bytes())
}

fn text() -> impl Strategy<Value = String> {
    "[a-zé ;\",#]{0,6}"
}

/// Elections that `parse` could return: unique non-empty ids without `,`, costs and a
/// budget above zero, at least one ballot, distinct approvals, no reserved META key.
fn election() -> impl Strategy<Value = Election> {
    let projects = prop::collection::vec(("[a-z;\" é]{0,4}", 1..=u64::MAX, text()), 1..8);
    let meta = prop::collection::vec((text(), text()), 0..4);
    (1..=u64::MAX, projects, meta)
        .prop_flat_map(|(budget, projects, meta)| {
            let n = projects.len() as u32;
            let ballots =
                prop::collection::vec((text(), prop::collection::vec(0..n, 0..10)), 1..10);
            (Just(budget), Just(projects), Just(meta), ballots)
        })
        .prop_map(|(budget, projects, meta, ballots)| Election {
            budget,
            projects: projects
                .into_iter()
                .enumerate()
                .map(|(i, (id, cost, name))| Project {
                    id: format!("{id}#{i}"),
                    cost,
                    name,
                })
                .collect(),
            ballots: ballots
                .into_iter()
                .enumerate()
                .map(|(i, (voter, picks))| {
                    let mut seen = BTreeSet::new();
                    Ballot {
                        voter: format!("{voter}#{i}"),
                        approvals: picks.into_iter().filter(|&p| seen.insert(p)).collect(),
                    }
                })
                .collect(),
            meta: meta
                .into_iter()
                .enumerate()
                .map(|(i, (k, v))| (format!("{k}#{i}"), v))
                .collect(),
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_parse(&bytes)?;
    }

    #[test]
    fn pb_like_text_never_panics(bytes in pb_like()) {
        check_parse(&bytes)?;
    }

    #[test]
    fn mutations_of_a_small_file_never_panic(
        mutations in prop::collection::vec(mutation(), 1..6)
    ) {
        prop_assert!(pb::parse(SMALL.as_bytes()).is_ok());
        check_parse(&mutate(SMALL.as_bytes(), &mutations))?;
    }

    #[test]
    fn written_elections_read_back(e in election()) {
        let text = pb::write(&e);
        prop_assert_eq!(pb::parse(text.as_bytes()), Ok(e));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn mutations_of_wieliczka_never_panic(
        mutations in prop::collection::vec(mutation(), 1..4)
    ) {
        check_parse(&mutate(WIELICZKA, &mutations))?;
    }
}
