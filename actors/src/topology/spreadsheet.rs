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
//! | `bg_yielding` | no | `false`: the office above sends into this office with CUBIC, not the yielding controller (default: the sending client's `[background] yielding`) |
//! | `bg_target_delay_ms` | no | queuing delay the sending controller aims at on this link, 1 to 1000 ms (default: the sending client's `target_delay_ms`) |
//! | `wan_min_rate_mbit` | no | rate that still flows from the parent while the busy pause holds, Mbit/s, at most `wan_rate_mbit` (default none: the pause stops it) |
//! | `bg_pause` | no | `false`: downloads from the parent never pause (default: the client's `[background] pause`) |
//! | `bg_pause_delay_ms` | no | queuing delay (median) that makes the link busy, 1 to 10000 ms (default: the client's `pause_delay_ms`) |
//! | `bg_pause_after_secs` | no | how long busy before the pause, 1 to 3600 s (default: the client's) |
//! | `bg_resume_after_secs` | no | how long not busy before resuming, 1 to 3600 s (default: the client's) |
//! | `automatic` | no | `true` for offices the server made for unknown subnets |
//!
//! Blank rows are ignored; a leading UTF-8 byte order mark is accepted.
//!
//! **Caps**, each refused with the line and the cap: the file at most
//! [`MAX_SHEET_BYTES`], [`MAX_OFFICES`] offices, [`MAX_FIELD_BYTES`] per
//! field ([`MAX_LIST_BYTES`] for `subnets` and `preferred_rvps`),
//! [`MAX_SUBNETS_PER_OFFICE`] blocks in one office, [`MAX_SUBNETS`] in all
//! and [`MAX_PREFERRED`] preferred RVPs per office.

use std::collections::HashMap;
use std::fmt;

use super::{LinkSettings, MAX_RVP_COUNT, Office, OfficeKind, Topology};

/// The columns, in the order export writes them.
pub const COLUMNS: [&str; 16] = [
    "office",
    "parent",
    "type",
    "subnets",
    "preferred_rvps",
    "rvp_count",
    "origin_direct",
    "wan_rate_mbit",
    "automatic",
    "bg_yielding",
    "bg_target_delay_ms",
    "wan_min_rate_mbit",
    "bg_pause",
    "bg_pause_delay_ms",
    "bg_pause_after_secs",
    "bg_resume_after_secs",
];
/// Columns every file must have.
const REQUIRED: [&str; 4] = ["office", "parent", "type", "subnets"];
/// Most problems reported from one file.
const MAX_PROBLEMS: usize = 50;
/// The largest sheet imported.
pub const MAX_SHEET_BYTES: usize = 16 * 1024 * 1024;
/// The most offices (rows) in a sheet.
pub const MAX_OFFICES: usize = 20_000;
/// The longest field, but for the lists.
pub const MAX_FIELD_BYTES: usize = 256;
/// The longest `subnets` or `preferred_rvps` field.
pub const MAX_LIST_BYTES: usize = 256 * 1024;
/// The most subnets and ranges in one office.
pub const MAX_SUBNETS_PER_OFFICE: usize = 4096;
/// The most subnets and ranges in the whole sheet.
pub const MAX_SUBNETS: usize = 100_000;
/// The most preferred RVPs of one office.
pub const MAX_PREFERRED: usize = 64;

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
    let text = sheet_text(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => return Err(vec![at(1, e.to_string())]),
        // The csv reader drops a second byte-order mark and blank lines:
        // nothing may be left of a text that was not blank.
        None => return Err(vec![empty_sheet()]),
    };
    let columns = columns(&header)?;
    let (offices, lines) = rows(records, &header, &columns)?;
    if offices.is_empty() {
        return Err(vec![at(1, "no offices after the header row")]);
    }
    let mut subnets = 0;
    for (office, &line) in offices.iter().zip(&lines) {
        subnets += office.blocks.len();
        if subnets > MAX_SUBNETS {
            return Err(vec![at(
                line,
                format!("more than {MAX_SUBNETS} subnets and ranges in the sheet (the cap)"),
            )]);
        }
    }
    Topology::new(offices).map_err(|(i, e)| vec![at(lines[i], e.to_string())])
}

/// The sheet as text: under the size cap, UTF-8 (a byte-order mark
/// dropped) and not blank.
fn sheet_text(bytes: &[u8]) -> Result<&str, Vec<LineError>> {
    if bytes.len() > MAX_SHEET_BYTES {
        return Err(vec![at(
            1,
            format!(
                "the file is {} bytes, over the cap of {MAX_SHEET_BYTES} bytes",
                bytes.len()
            ),
        )]);
    }
    let text = utf8(bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(vec![empty_sheet()]);
    }
    Ok(text)
}

/// The error for a sheet with nothing in it.
fn empty_sheet() -> LineError {
    at(
        1,
        format!(
            "the file is empty; expected a header row: {}",
            COLUMNS.join(",")
        ),
    )
}

/// Every office row after the header, with its line; blank rows are
/// skipped, and every bad row is named (up to [`MAX_PROBLEMS`]).
fn rows(
    records: csv::StringRecordsIter<'_, &[u8]>,
    header: &csv::StringRecord,
    columns: &HashMap<String, usize>,
) -> Result<(Vec<Office>, Vec<u64>), Vec<LineError>> {
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
        if offices.len() >= MAX_OFFICES {
            problems.push(at(
                line,
                format!("more than {MAX_OFFICES} offices (the cap)"),
            ));
            break;
        }
        if let Some(long) = too_long(columns, &record) {
            problems.push(at(line, long));
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
    if problems.is_empty() {
        Ok((offices, lines))
    } else {
        Err(problems)
    }
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

/// A field over its cap, named.
fn too_long(columns: &HashMap<String, usize>, record: &csv::StringRecord) -> Option<String> {
    columns.iter().find_map(|(name, &i)| {
        let cap = match name.as_str() {
            "subnets" | "preferred_rvps" => MAX_LIST_BYTES,
            _ => MAX_FIELD_BYTES,
        };
        let len = record.get(i).map_or(0, str::len);
        (len > cap).then(|| format!("the {name} field is {len} bytes, over the cap of {cap}"))
    })
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
        if office.blocks.len() == MAX_SUBNETS_PER_OFFICE {
            return Err(format!(
                "more than {MAX_SUBNETS_PER_OFFICE} subnets and ranges in one office (the cap)"
            ));
        }
        office.blocks.push(
            block
                .parse()
                .map_err(|e| format!("bad subnet or range: {e}"))?,
        );
    }
    office.preferred = list(field("preferred_rvps")).map(str::to_owned).collect();
    if office.preferred.len() > MAX_PREFERRED {
        return Err(format!(
            "{} preferred RVPs, over the cap of {MAX_PREFERRED}",
            office.preferred.len()
        ));
    }
    let count = field("rvp_count");
    if !count.is_empty() {
        office.rvp_count = count
            .parse()
            .ok()
            .filter(|n| (1..=MAX_RVP_COUNT).contains(n))
            .ok_or_else(|| format!("rvp_count is `{count}`; expected 1 to {MAX_RVP_COUNT}"))?;
    }
    office.origin_direct = flag("origin_direct", field("origin_direct"))?;
    office.wan_rate_mbit = number(field, "wan_rate_mbit", u32::MAX)?;
    office.automatic = flag("automatic", field("automatic"))?;
    office.link = link(field)?;
    if let (Some(min), Some(max)) = (office.link.min_rate_mbit, office.wan_rate_mbit)
        && min > max
    {
        return Err(format!(
            "wan_min_rate_mbit is {min}, above wan_rate_mbit {max}"
        ));
    }
    Ok(office)
}

/// A whole number from 1 to `max` in `column`; `None` when empty.
fn number<'a>(
    field: &impl Fn(&str) -> &'a str,
    column: &str,
    max: u32,
) -> Result<Option<u32>, String> {
    let text = field(column);
    if text.is_empty() {
        return Ok(None);
    }
    let bound = if max == u32::MAX {
        "above 0".to_owned()
    } else {
        format!("from 1 to {max}")
    };
    text.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .map(Some)
        .ok_or_else(|| format!("{column} is `{text}`; expected a whole number {bound}"))
}

/// A true or false in `column`; `None` when empty.
fn optional_flag<'a>(
    field: &impl Fn(&str) -> &'a str,
    column: &str,
) -> Result<Option<bool>, String> {
    let text = field(column);
    (!text.is_empty()).then(|| flag(column, text)).transpose()
}

/// The background link settings of one row.
fn link<'a>(field: &impl Fn(&str) -> &'a str) -> Result<LinkSettings, String> {
    let link = LinkSettings {
        yielding: optional_flag(field, "bg_yielding")?,
        target_delay_ms: number(field, "bg_target_delay_ms", 1_000)?,
        min_rate_mbit: number(field, "wan_min_rate_mbit", u32::MAX)?,
        pause: optional_flag(field, "bg_pause")?,
        pause_delay_ms: number(field, "bg_pause_delay_ms", 10_000)?,
        pause_after_secs: number(field, "bg_pause_after_secs", 3_600)?,
        resume_after_secs: number(field, "bg_resume_after_secs", 3_600)?,
    };
    if let (Some(target), Some(pause)) = (link.target_delay_ms, link.pause_delay_ms)
        && pause <= target
    {
        return Err(format!(
            "bg_pause_delay_ms is {pause}, not above bg_target_delay_ms {target}: the link would pause at the delay it aims at"
        ));
    }
    Ok(link)
}

/// An optional setting as a cell: empty when unset.
fn text(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
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
                text(office.wan_rate_mbit),
                office.automatic.to_string(),
                text(office.link.yielding),
                text(office.link.target_delay_ms),
                text(office.link.min_rate_mbit),
                text(office.link.pause),
                text(office.link.pause_delay_ms),
                text(office.link.pause_after_secs),
                text(office.link.resume_after_secs),
            ])
            .expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("writing to memory"))
        .expect("CSV of UTF-8 is UTF-8")
}

#[cfg(test)]
mod tests;
