//! The topology as a spreadsheet (CSV, UTF-8) an administrator exports,
//! edits and imports back. Import is all or nothing: every problem found is
//! reported as `line N: what is wrong`, and any problem means no topology.
//!
//! Columns (header row required, any order, names case-insensitive):
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `office` | yes | unique name |
//! | `parent` | yes | parent office; empty for the one top office |
//! | `type` | yes | `Default`, `VPN` or `WiFi` |
//! | `subnets` | yes | CIDR subnets and `a.b.c.d-e.f.g.h` ranges, `;`-separated; may be empty |
//! | `preferred_rvps` | no | client names preferred as RVP, `;`-separated |
//! | `rvp_count` | no | RVPs to elect, 1 to 16 (default 1) |
//! | `origin_direct` | no | `true`: its RVPs may use the origin directly (default false) |
//! | `wan_rate_mbit` | no | cap on the link from the parent, Mbit/s (default none) |
//! | `automatic` | no | `true` for offices the server made for unknown subnets |
//!
//! Blank rows are ignored; a leading UTF-8 byte order mark is accepted.

use std::collections::HashMap;
use std::fmt;

use super::{MAX_RVP_COUNT, Office, OfficeKind, Topology};

/// The columns, in the order export writes them.
pub const COLUMNS: [&str; 9] = [
    "office",
    "parent",
    "type",
    "subnets",
    "preferred_rvps",
    "rvp_count",
    "origin_direct",
    "wan_rate_mbit",
    "automatic",
];
/// Columns every file must have.
const REQUIRED: [&str; 4] = ["office", "parent", "type", "subnets"];
/// Most problems reported from one file.
const MAX_PROBLEMS: usize = 50;

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn at(line: u64, message: impl Into<String>) -> LineError {
    LineError {
        line,
        message: message.into(),
    }
}

/// Parses and validates a spreadsheet. Every problem found is returned.
pub fn import(bytes: &[u8]) -> Result<Topology, Vec<LineError>> {
    let text = utf8(bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(vec![at(
            1,
            format!(
                "the file is empty; expected a header row: {}",
                COLUMNS.join(",")
            ),
        )]);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => return Err(vec![at(1, e.to_string())]),
        None => unreachable!("a non-blank text has a first record"),
    };
    let columns = columns(&header)?;
    let (mut offices, mut lines, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(at(line, e.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != header.len() {
            problems.push(at(
                line,
                format!(
                    "{} fields, but the header has {} columns",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let field = |name: &str| columns.get(name).map_or("", |&i| &record[i]);
        match office(&field) {
            Ok(office) => {
                offices.push(office);
                lines.push(line);
            }
            Err(message) => problems.push(at(line, message)),
        }
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if offices.is_empty() {
        return Err(vec![at(1, "no offices after the header row")]);
    }
    Topology::new(offices).map_err(|(i, e)| vec![at(lines[i], e.to_string())])
}

/// The text of the file, or where its first non-UTF-8 byte is.
fn utf8(bytes: &[u8]) -> Result<&str, Vec<LineError>> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let column = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        vec![at(
            line,
            format!(
                "byte 0x{:02X} at column {column} is not UTF-8 (save the file as \"CSV UTF-8\")",
                bytes[e.valid_up_to()]
            ),
        )]
    })
}

/// Maps column names to positions, refusing unknown, repeated and missing
/// columns.
fn columns(header: &csv::StringRecord) -> Result<HashMap<String, usize>, Vec<LineError>> {
    let mut columns = HashMap::new();
    let mut problems = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if !COLUMNS.contains(&name.as_str()) {
            problems.push(at(
                1,
                format!("unknown column `{name}` (columns: {})", COLUMNS.join(", ")),
            ));
        } else if columns.insert(name.clone(), i).is_some() {
            problems.push(at(1, format!("column `{name}` appears twice")));
        }
    }
    for required in REQUIRED {
        if !columns.contains_key(required) {
            problems.push(at(
                1,
                format!("missing column `{required}` in the header row"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(problems)
    }
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|s| !s.is_empty())
}

fn flag(column: &str, text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => Ok(false),
        "true" | "yes" | "1" => Ok(true),
        _ => Err(format!("{column} is `{text}`; expected true or false")),
    }
}

/// One row as an office.
fn office<'a>(field: &impl Fn(&str) -> &'a str) -> Result<Office, String> {
    let name = field("office");
    if name.is_empty() {
        return Err("the office column is empty".into());
    }
    let parent = Some(field("parent")).filter(|p| !p.is_empty());
    let mut office = Office::new(name, parent);
    office.kind = field("type").parse::<OfficeKind>()?;
    for block in list(field("subnets")) {
        office.blocks.push(
            block
                .parse()
                .map_err(|e| format!("bad subnet or range: {e}"))?,
        );
    }
    office.preferred = list(field("preferred_rvps")).map(str::to_owned).collect();
    let count = field("rvp_count");
    if !count.is_empty() {
        office.rvp_count = count
            .parse()
            .ok()
            .filter(|n| (1..=MAX_RVP_COUNT).contains(n))
            .ok_or_else(|| format!("rvp_count is `{count}`; expected 1 to {MAX_RVP_COUNT}"))?;
    }
    office.origin_direct = flag("origin_direct", field("origin_direct"))?;
    let rate = field("wan_rate_mbit");
    if !rate.is_empty() {
        office.wan_rate_mbit =
            Some(rate.parse().ok().filter(|&n: &u32| n > 0).ok_or_else(|| {
                format!("wan_rate_mbit is `{rate}`; expected a whole number above 0")
            })?);
    }
    office.automatic = flag("automatic", field("automatic"))?;
    Ok(office)
}

/// The topology as a spreadsheet: the header row, then the offices top
/// down, each followed by its children (depth first).
pub fn export(topology: &Topology) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(COLUMNS).expect("writing to memory");
    for office in topology.top_down() {
        let join = |items: Vec<String>| items.join(";");
        writer
            .write_record([
                office.name.clone(),
                office.parent.clone().unwrap_or_default(),
                office.kind.to_string(),
                join(office.blocks.iter().map(ToString::to_string).collect()),
                join(office.preferred.clone()),
                office.rvp_count.to_string(),
                office.origin_direct.to_string(),
                office
                    .wan_rate_mbit
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                office.automatic.to_string(),
            ])
            .expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("writing to memory"))
        .expect("CSV of UTF-8 is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHEET: &str = "office,parent,type,subnets,preferred_rvps,rvp_count,origin_direct,wan_rate_mbit,automatic\n\
        hq,,Default,10.10.1.0/24,,1,false,,false\n\
        branch-a,hq,Default,10.10.2.0/24;10.10.9.1-10.10.9.50,pc-7;pc-9,2,false,20,false\n\
        a-wifi,branch-a,WiFi,10.10.3.0/24,,1,false,,false\n\
        \"Branch B, Lyon\",hq,Default,10.10.4.0/24,,1,true,,false\n\
        vpn,hq,VPN,10.10.5.0/24,,1,false,,false\n";

    fn errors(text: &[u8]) -> Vec<String> {
        import(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_sheet_imports_and_exports_the_same_file_twice() {
        let topology = import(SHEET.as_bytes()).unwrap();
        let branch = topology.office("branch-a").unwrap();
        assert_eq!(branch.blocks.len(), 2);
        assert_eq!(branch.preferred, ["pc-7", "pc-9"]);
        assert_eq!((branch.rvp_count, branch.wan_rate_mbit), (2, Some(20)));
        assert!(topology.office("Branch B, Lyon").unwrap().origin_direct);
        assert_eq!(topology.office("vpn").unwrap().kind, OfficeKind::Vpn);
        let once = export(&topology);
        let twice = export(&import(once.as_bytes()).unwrap());
        assert_eq!(once, twice);
        assert!(once.starts_with("office,parent,type,subnets,"));
        assert!(once.contains("\"Branch B, Lyon\",hq,"));
    }

    #[test]
    fn columns_may_come_in_any_order_and_optional_ones_may_be_missing() {
        let t =
            import(b"\xEF\xBB\xBFSubnets,Type,Parent,Office\r\n10.0.0.0/8,default,,hq\r\n,,,\r\n")
                .unwrap();
        assert_eq!(t.top().name, "hq");
        assert_eq!(t.top().rvp_count, 1);
    }

    #[test]
    fn bad_sheets_are_refused_with_line_numbers() {
        let header = "office,parent,type,subnets\n";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "line 1: the file is empty"),
            (
                b"office,parent,type\nhq,,Default\n".to_vec(),
                "line 1: missing column `subnets`",
            ),
            (
                b"office,parent,type,subnets,colour\n".to_vec(),
                "line 1: unknown column `colour`",
            ),
            (
                b"office,office,parent,type,subnets\n".to_vec(),
                "line 1: column `office` appears twice",
            ),
            (
                header.as_bytes().to_vec(),
                "line 1: no offices after the header row",
            ),
            (
                format!("{header}hq,,Default,10.0.0.0/24\nb,hq,Default\n").into_bytes(),
                "line 3: 3 fields, but the header has 4",
            ),
            (
                format!("{header}hq,,Default,\nb,nowhere,Default,\n").into_bytes(),
                "line 3: office `b` has parent `nowhere`",
            ),
            (
                format!("{header}hq,,Default,\na,b,Default,\nb,a,Default,\n").into_bytes(),
                "line 3: offices form a cycle: a -> b -> a",
            ),
            (
                format!("{header}hq,,Default,\nhq,hq,Default,\n").into_bytes(),
                "line 3: office `hq` is listed twice",
            ),
            (
                format!("{header}hq,,Default,10.0.0.0/24\nb,hq,Default,10.0.0.0/24\n").into_bytes(),
                "line 3: 10.0.0.0/24 of office `b` overlaps 10.0.0.0/24 of office `hq`",
            ),
            (
                format!("{header}hq,,Default,10.0.0.0/33\n").into_bytes(),
                "line 2: bad subnet or range: `10.0.0.0/33` has a bad prefix length",
            ),
            (
                format!("{header}hq,,Default,10.0.0.9-10.0.0.1\n").into_bytes(),
                "line 2: bad subnet or range: `10.0.0.9-10.0.0.1` ends before it starts",
            ),
            (
                format!("{header}hq,,Mesh,\n").into_bytes(),
                "line 2: unknown office type `Mesh`",
            ),
            (
                format!("{header}hq,,Default,\nx,,Default,\n").into_bytes(),
                "line 3: office `x` has no parent, but `hq` is already the top office",
            ),
            (
                format!("{header}a,b,Default,\nb,a,Default,\n").into_bytes(),
                "line 2: offices form a cycle",
            ),
            (
                format!("{header},,Default,\n").into_bytes(),
                "line 2: the office column is empty",
            ),
            (
                b"office,parent,type,subnets\nhq,,Default,\nb\xE9,hq,Default,\n".to_vec(),
                "line 3: byte 0xE9 at column 2 is not UTF-8",
            ),
            (
                b"office,parent,type,subnets,rvp_count\nhq,,Default,,0\n".to_vec(),
                "line 2: rvp_count is `0`; expected 1 to 16",
            ),
            (
                b"office,parent,type,subnets,origin_direct\nhq,,Default,,maybe\n".to_vec(),
                "line 2: origin_direct is `maybe`; expected true or false",
            ),
            (
                b"office,parent,type,subnets,wan_rate_mbit\nhq,,Default,,fast\n".to_vec(),
                "line 2: wan_rate_mbit is `fast`",
            ),
        ];
        for (text, expected) in cases {
            let got = errors(&text);
            assert!(
                got.iter().any(|e| e.starts_with(expected)),
                "for {:?} expected `{expected}`, got {got:?}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn every_bad_row_is_reported_not_just_the_first() {
        let got = errors(b"office,parent,type,subnets\nhq,,Mesh,\nb,hq,Default,300.1.1.1/8\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("line 2:") && got[1].starts_with("line 3:"));
    }
}
