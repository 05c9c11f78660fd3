//! The topology spreadsheet, whole: parsing, every cap and the overlap
//! check. Run with `-timeout=2` so a slow (quadratic) input is a finding.
#![no_main]
use branchline_actors::topology::spreadsheet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(topology) = spreadsheet::import(data) {
        // What imports exports and imports again.
        let again = spreadsheet::export(&topology);
        assert!(spreadsheet::import(again.as_bytes()).is_ok());
    }
});
