//! Tests of `spreadsheet`.

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

/// `n` /32 subnets from 10.0.0.0 up, `;`-separated.
fn subnets(n: usize, from: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{}/32",
                std::net::Ipv4Addr::from(0x0a00_0000 + from + u32::try_from(i).unwrap())
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[test]
fn every_cap_is_refused_with_its_line_and_its_size() {
    let header = "office,parent,type,subnets,preferred_rvps\n";
    let big = vec![b'x'; MAX_SHEET_BYTES + 1];
    assert_eq!(
        errors(&big),
        [format!(
            "line 1: the file is {} bytes, over the cap of {MAX_SHEET_BYTES} bytes",
            MAX_SHEET_BYTES + 1
        )]
    );
    let long_name = format!("{header}hq,,Default,,\n{},hq,Default,,\n", "n".repeat(300));
    assert_eq!(
        errors(long_name.as_bytes()),
        ["line 3: the office field is 300 bytes, over the cap of 256"]
    );
    let crowded = format!(
        "{header}hq,,Default,{},\n",
        subnets(MAX_SUBNETS_PER_OFFICE + 1, 0)
    );
    assert_eq!(
        errors(crowded.as_bytes()),
        [format!(
            "line 2: more than {MAX_SUBNETS_PER_OFFICE} subnets and ranges in one office (the cap)"
        )]
    );
    let fans: String = (0..=MAX_PREFERRED).map(|i| format!("pc-{i};")).collect();
    let preferring = format!("{header}hq,,Default,,{fans}\n");
    assert_eq!(
        errors(preferring.as_bytes()),
        [format!(
            "line 2: {} preferred RVPs, over the cap of {MAX_PREFERRED}",
            MAX_PREFERRED + 1
        )]
    );
    let mut many = format!("{header}hq,,Default,,\n");
    for i in 0..MAX_OFFICES {
        many.push_str(&format!("o{i},hq,Default,,\n"));
    }
    assert_eq!(
        errors(many.as_bytes()),
        [format!(
            "line {}: more than {MAX_OFFICES} offices (the cap)",
            MAX_OFFICES + 2
        )]
    );
    let mut wide = header.to_owned();
    let per = MAX_SUBNETS_PER_OFFICE;
    for i in 0..=(MAX_SUBNETS / per) {
        let parent = if i == 0 { "" } else { "o0" };
        wide.push_str(&format!(
            "o{i},{parent},Default,{},\n",
            subnets(per, u32::try_from(i * per).unwrap())
        ));
    }
    let err = errors(wide.as_bytes());
    assert_eq!(err.len(), 1);
    assert!(
        err[0].ends_with(&format!(
            "more than {MAX_SUBNETS} subnets and ranges in the sheet (the cap)"
        )),
        "{err:?}"
    );
}

#[test]
fn a_sheet_at_the_caps_imports_and_checks_its_overlaps_quickly() {
    // 24 offices of 4,096 subnets each (98,304): pairwise, this took
    // minutes; the sweep takes well under a second in a release build.
    let mut sheet = "office,parent,type,subnets\n".to_owned();
    for i in 0..24 {
        let parent = if i == 0 { "" } else { "o0" };
        sheet.push_str(&format!(
            "o{i},{parent},Default,{}\n",
            subnets(4096, i * 4096)
        ));
    }
    let topology = import(sheet.as_bytes()).unwrap();
    assert_eq!(topology.office("o23").unwrap().blocks.len(), 4096);
}

#[test]
fn the_example_sheet_in_configs_imports() {
    let example = include_str!("../../../../configs/topology.csv");
    let topology = import(example.as_bytes()).unwrap();
    assert_eq!(topology.offices().len(), 4);
    assert_eq!(topology.office("a-wifi").unwrap().kind, OfficeKind::Wifi);
    assert_eq!(topology.office("branch-b").unwrap().rvp_count, 2);
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
fn link_settings_import_export_and_empty_cells_are_unset() {
    let sheet = "office,parent,type,subnets,wan_rate_mbit,wan_min_rate_mbit,bg_pause,bg_pause_delay_ms,bg_pause_after_secs,bg_resume_after_secs,bg_yielding,bg_target_delay_ms\n\
        hq,,Default,,,,,,,,,\n\
        b,hq,Default,,20,2,true,45,8,12,true,40\n\
        c,hq,Default,,,,false,,,,false,\n";
    let topology = import(sheet.as_bytes()).unwrap();
    assert!(topology.office("hq").unwrap().link.is_default());
    let b = topology.office("b").unwrap().link;
    assert_eq!(
        b,
        LinkSettings {
            yielding: Some(true),
            target_delay_ms: Some(40),
            min_rate_mbit: Some(2),
            pause: Some(true),
            pause_delay_ms: Some(45),
            pause_after_secs: Some(8),
            resume_after_secs: Some(12),
        }
    );
    let c = topology.office("c").unwrap().link;
    assert_eq!((c.pause, c.pause_delay_ms), (Some(false), None));
    assert_eq!((c.yielding, c.target_delay_ms), (Some(false), None));
    let again = import(export(&topology).as_bytes()).unwrap();
    assert_eq!(again, topology);
}

#[test]
fn columns_may_come_in_any_order_and_optional_ones_may_be_missing() {
    let t = import(b"\xEF\xBB\xBFSubnets,Type,Parent,Office\r\n10.0.0.0/8,default,,hq\r\n,,,\r\n")
        .unwrap();
    assert_eq!(t.top().name, "hq");
    assert_eq!(t.top().rvp_count, 1);
}

#[test]
fn bad_files_and_headers_are_refused_with_line_numbers() {
    let header = "office,parent,type,subnets\n";
    refused(vec![
        (b"".to_vec(), "line 1: the file is empty"),
        // Found by the fuzzer: two byte-order marks and carriage returns
        // (the csv reader drops the second mark) once panicked.
        (
            b"\xef\xbb\xbf\xef\xbb\xbf\r\r\r\r".to_vec(),
            "line 1: the file is empty",
        ),
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
    ]);
}

#[test]
fn bad_offices_and_subnets_are_refused_with_line_numbers() {
    let header = "office,parent,type,subnets\n";
    refused(vec![
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
    ]);
}

#[test]
fn bad_column_values_are_refused_with_line_numbers() {
    refused(vec![
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
        (
            b"office,parent,type,subnets,wan_rate_mbit,wan_min_rate_mbit\nhq,,Default,,10,20\n"
                .to_vec(),
            "line 2: wan_min_rate_mbit is 20, above wan_rate_mbit 10",
        ),
        (
            b"office,parent,type,subnets,bg_pause_delay_ms\nhq,,Default,,0\n".to_vec(),
            "line 2: bg_pause_delay_ms is `0`; expected a whole number from 1 to 10000",
        ),
        (
            b"office,parent,type,subnets,bg_resume_after_secs\nhq,,Default,,3601\n".to_vec(),
            "line 2: bg_resume_after_secs is `3601`; expected a whole number from 1 to 3600",
        ),
        (
            b"office,parent,type,subnets,bg_pause\nhq,,Default,,often\n".to_vec(),
            "line 2: bg_pause is `often`; expected true or false",
        ),
        (
            b"office,parent,type,subnets,bg_target_delay_ms\nhq,,Default,,1001\n".to_vec(),
            "line 2: bg_target_delay_ms is `1001`; expected a whole number from 1 to 1000",
        ),
        (
            b"office,parent,type,subnets,bg_target_delay_ms,bg_pause_delay_ms\nhq,,Default,,40,40\n"
                .to_vec(),
            "line 2: bg_pause_delay_ms is 40, not above bg_target_delay_ms 40",
        ),

    ]);
}

/// Each sheet is refused with an error that starts with its text.
fn refused(cases: Vec<(Vec<u8>, &str)>) {
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
