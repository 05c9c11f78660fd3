//! `branchline topology import|export|show`: the office topology on the
//! server, as a spreadsheet or as a tree with its clients.

use std::path::Path;

use anyhow::Context as _;
use branchline_actors::wire::{AdminReply, AdminRequest, TopologyView};

use super::data_dir;
use crate::cli::{NodeLocator, TopologyAction, TopologyArgs};

/// Largest spreadsheet `import` reads (a topology of ~100k offices).
const MAX_SHEET_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `branchline topology`.
pub fn run(args: &TopologyArgs) -> anyhow::Result<()> {
    match &args.action {
        TopologyAction::Import { node, file } => import(node, file),
        TopologyAction::Preview { node, file, json } => preview(node, file, *json),
        TopologyAction::Export { node, file } => export(node, file.as_deref()),
        TopologyAction::Show { node, json } => show(node, *json),
    }
}

fn ask(node: &NodeLocator, request: &AdminRequest) -> anyhow::Result<AdminReply> {
    match super::ask(node, request)? {
        AdminReply::ClientStatus(_) => anyhow::bail!(
            "{} is a client's data directory; topology needs the server's",
            data_dir(node)?.display()
        ),
        AdminReply::Error(e) => anyhow::bail!(e),
        other => Ok(other),
    }
}

/// The spreadsheet in `file`, at most [`MAX_SHEET_BYTES`].
fn read_sheet(file: &Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    anyhow::ensure!(
        size <= MAX_SHEET_BYTES,
        "{} is {size} bytes; a topology spreadsheet may be at most {MAX_SHEET_BYTES}",
        file.display()
    );
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Prints a refused sheet's problems and fails.
fn refused(file: &Path, problems: &[String]) -> anyhow::Result<()> {
    for problem in problems {
        eprintln!("{}: {problem}", file.display());
    }
    anyhow::bail!(
        "{} refused ({} problem(s)); the topology is unchanged",
        file.display(),
        problems.len()
    )
}

fn import(node: &NodeLocator, file: &Path) -> anyhow::Result<()> {
    match ask(node, &AdminRequest::TopologyImport(read_sheet(file)?))? {
        AdminReply::TopologyImported(offices) => {
            eprintln!("imported {}: {offices} offices", file.display());
            Ok(())
        }
        AdminReply::TopologyRefused(problems) => refused(file, &problems),
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}

fn preview(node: &NodeLocator, file: &Path, json: bool) -> anyhow::Result<()> {
    let change = match ask(node, &AdminRequest::TopologyPreview(read_sheet(file)?))? {
        AdminReply::TopologyPreview(change) => change,
        AdminReply::TopologyRefused(problems) => return refused(file, &problems),
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&change)?);
        return Ok(());
    }
    println!("{} would make {} offices:", file.display(), change.offices);
    for (label, names) in [("added", &change.added), ("removed", &change.removed)] {
        if !names.is_empty() {
            println!("  {label}: {}", names.join(", "));
        }
    }
    for office in &change.changed {
        println!("  changed {}: {}", office.office, office.what.join("; "));
    }
    for m in &change.moved {
        println!(
            "  client {} would move from {} to {}",
            m.client, m.from, m.to
        );
    }
    if change.added.is_empty()
        && change.removed.is_empty()
        && change.changed.is_empty()
        && change.moved.is_empty()
    {
        println!("  no change");
    }
    Ok(())
}

fn export(node: &NodeLocator, file: Option<&Path>) -> anyhow::Result<()> {
    let AdminReply::TopologyCsv(csv) = ask(node, &AdminRequest::TopologyExport)? else {
        anyhow::bail!("unexpected answer to export");
    };
    match file {
        Some(path) => {
            let partial = path.with_extension("csv.partial");
            std::fs::write(&partial, &csv)
                .and_then(|()| std::fs::rename(&partial, path))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{csv}"),
    }
    Ok(())
}

fn show(node: &NodeLocator, json: bool) -> anyhow::Result<()> {
    let AdminReply::Topology(view) = ask(node, &AdminRequest::TopologyShow)? else {
        anyhow::bail!("unexpected answer to show");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", tree(&view));
    }
    Ok(())
}

/// The office tree as indented text, one office per line.
fn tree(view: &TopologyView) -> String {
    let mut out = String::new();
    let mut depth: Vec<&str> = Vec::new();
    for office in &view.offices {
        while let Some(last) = depth.last() {
            if Some(*last) == office.parent.as_deref() {
                break;
            }
            depth.pop();
        }
        let indent = "  ".repeat(depth.len());
        let auto = if office.automatic { ", automatic" } else { "" };
        out.push_str(&format!(
            "{indent}{} ({}{auto}) {}\n",
            office.name,
            office.kind,
            if office.blocks.is_empty() {
                "-".to_owned()
            } else {
                office.blocks.join(" ")
            }
        ));
        if !office.clients.is_empty() {
            out.push_str(&format!(
                "{indent}  clients ({}): {}\n",
                office.clients.len(),
                office.clients.join(", ")
            ));
            out.push_str(&format!(
                "{indent}  RVPs: {}\n",
                if office.rvps.is_empty() {
                    "none".to_owned()
                } else {
                    office.rvps.join(", ")
                }
            ));
        }
        depth.push(&office.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use branchline_actors::topology::OfficeKind;
    use branchline_actors::wire::OfficeView;

    use super::*;

    fn office(name: &str, parent: Option<&str>, clients: &[&str]) -> OfficeView {
        OfficeView {
            name: name.into(),
            parent: parent.map(Into::into),
            kind: OfficeKind::Default,
            blocks: vec![],
            automatic: false,
            clients: clients.iter().map(|c| (*c).into()).collect(),
            rvps: clients.iter().take(1).map(|c| (*c).into()).collect(),
        }
    }

    #[test]
    fn the_tree_indents_children_under_their_parents() {
        let view = TopologyView {
            offices: vec![
                office("hq", None, &["s1"]),
                office("a", Some("hq"), &[]),
                office("a-wifi", Some("a"), &["w1", "w2"]),
                office("b", Some("hq"), &[]),
            ],
        };
        assert_eq!(
            tree(&view),
            "hq (Default) -\n  clients (1): s1\n  RVPs: s1\n  a (Default) -\n    a-wifi (Default) -\n      clients (2): w1, w2\n      RVPs: w1\n  b (Default) -\n"
        );
    }
}
