//! A revocation list as a client takes it from the server (DER): put in
//! force only if it parses, is the CA's and is not older.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustls::pki_types::CertificateRevocationListDer;

fuzz_target!(|data: &[u8]| {
    let trust = branchline_fuzz::identity().trust();
    let _ = trust.install(vec![CertificateRevocationListDer::from(data.to_vec())]);
});
