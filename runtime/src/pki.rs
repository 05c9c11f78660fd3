//! The cluster PKI: a certificate authority of the enterprise's own, made
//! once with `branchline pki init DIR`, and node certificates it issues
//! with `branchline pki issue` (decision: issued by the administrator from
//! the CA directory, not at enrollment with a token; the CA key never
//! leaves that directory).
//!
//! `branchline pki revoke` adds a node's certificate to the CA's
//! revocation list (`crl.pem`), which every node given it (`tls.crl`)
//! checks peers against.
//!
//! Every certificate names the cluster (`branchline`) and the node's role
//! (`server.branchline` or `client.branchline`) as DNS names: every node
//! checks its peers against the first, and clients check the server they
//! register with against the second, so a client certificate cannot pose
//! as the server.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use branchline_storage::hex_id::{hex, parse_hex};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};

/// The CA certificate's file in the CA directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA key's file in the CA directory (mode 0600).
pub const CA_KEY: &str = "ca.key";
/// The DNS name every node certificate carries.
pub const CLUSTER_NAME: &str = "branchline";
/// The revocation list in the CA directory.
pub const CRL: &str = "crl.pem";
/// Where `issue` records each node's serial number: `issued/NAME.serial`.
const ISSUED: &str = "issued";
/// The revoked nodes, one `NAME SERIAL` per line.
const REVOKED: &str = "revoked.txt";
/// How long a revocation list is valid; `revoke` writes a new one.
const CRL_VALID: time::Duration = time::Duration::days(365);

/// A node's role, named in its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The server: registry, control endpoint.
    Server,
    /// A client: cache, peers.
    Client,
}

impl Role {
    /// The DNS name that marks the role.
    pub fn dns_name(self) -> &'static str {
        match self {
            Role::Server => "server.branchline",
            Role::Client => "client.branchline",
        }
    }
}

/// Why a PKI command failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A CA is there already.
    #[error(
        "{0} already holds a CA key; refusing to overwrite it (a new CA would lock out every node it issued)"
    )]
    Exists(PathBuf),
    /// No CA in the directory.
    #[error("{0} holds no CA key ({CA_KEY}); make one with `branchline pki init`")]
    NoCa(PathBuf),
    /// A certificate for this name was issued into the directory already.
    #[error("{0} exists; refusing to overwrite it")]
    NodeExists(PathBuf),
    /// A name that cannot be a file name.
    #[error(
        "node name `{0}` must be 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`"
    )]
    BadName(String),
    /// Making or reading a certificate or key failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// No certificate was issued to this name from this CA.
    #[error("no certificate was issued to `{0}` from this CA (no issued/{0}.serial)")]
    NotIssued(String),
    /// No randomness for a serial number.
    #[error("no random bytes for a serial number: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to a new file at `path` with `mode`; fails if it exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => PkiError::NodeExists(path.to_owned()),
            _ => PkiError::Io {
                path: path.to_owned(),
                source: e,
            },
        })?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// The CA's parameters: the same every time, so an issuer rebuilt from
/// them and the CA key signs certificates that chain to the CA made by
/// [`init`].
fn ca_params() -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Branchline");
    dn.push(DnType::CommonName, "Branchline cluster CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Makes the cluster CA in `dir` (created, mode 0700): `ca.pem` to give
/// every node, `ca.key` to keep, and its revocation list `crl.pem`, empty
/// for now (so every node's config can name it from the start). Refuses a
/// directory that has a CA.
pub fn init(dir: &Path) -> Result<PathBuf, PkiError> {
    // Refused before anything changes: not even the directory's mode.
    let key_path = dir.join(CA_KEY);
    if key_path.exists() {
        return Err(PkiError::Exists(dir.to_owned()));
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    let cert_path = dir.join(CA_CERT);
    write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write_crl(dir, "")?;
    Ok(cert_path)
}

/// Issues a certificate for node `name` with `role` from the CA in
/// `ca_dir`, into `out` as `NAME.pem` (the certificate, then the CA's, so
/// a peer that knows only the CA's fingerprint can check it) and
/// `NAME.key` (mode 0600). Returns both paths.
pub fn issue(
    ca_dir: &Path,
    role: Role,
    name: &str,
    out: &Path,
) -> Result<(PathBuf, PathBuf), PkiError> {
    check_name(name)?;
    let (cert_path, key_path) = (
        out.join(format!("{name}.pem")),
        out.join(format!("{name}.key")),
    );
    if cert_path.exists() || key_path.exists() {
        return Err(PkiError::NodeExists(cert_path));
    }
    let key = KeyPair::generate()?;
    let cert = certify(ca_dir, role, name, &key)?;
    fs::create_dir_all(out).map_err(io(out))?;
    let ca_pem = fs::read_to_string(ca_dir.join(CA_CERT)).map_err(io(&ca_dir.join(CA_CERT)))?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(
        &cert_path,
        format!("{}{ca_pem}", cert.pem()).as_bytes(),
        0o644,
    )?;
    Ok((cert_path, key_path))
}

/// Node names: what a certificate's name and its record's file name may
/// be.
fn check_name(name: &str) -> Result<(), PkiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match valid {
        true => Ok(()),
        false => Err(PkiError::BadName(name.to_owned())),
    }
}

/// Certifies `public_key` as node `name` with `role`, signed by the CA in
/// `ca_dir`, and records its serial number (`issued/NAME.serial`, so it
/// can be revoked by name). Refuses a name issued before.
pub fn certify(
    ca_dir: &Path,
    role: Role,
    name: &str,
    public_key: &impl rcgen::PublicKeyData,
) -> Result<rcgen::Certificate, PkiError> {
    check_name(name)?;
    let issuer = ca_issuer(ca_dir)?;
    let mut params =
        CertificateParams::new(vec![CLUSTER_NAME.to_owned(), role.dns_name().to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let serial = random_serial()?;
    params.serial_number = Some(SerialNumber::from(serial.to_vec()));
    let cert = params.signed_by(public_key, &issuer)?;
    let issued = ca_dir.join(ISSUED);
    fs::create_dir_all(&issued).map_err(io(&issued))?;
    write_new(
        &issued.join(format!("{name}.serial")),
        hex(&serial).as_bytes(),
        0o644,
    )?;
    Ok(cert)
}

/// How long a web certificate ([`web_certificate`]) is valid.
const WEB_VALID: time::Duration = time::Duration::days(365);

/// A certificate for a web server of the cluster (the console), signed by
/// the CA in `ca_dir`: `names` (host names and IP addresses) as its
/// subject's alternative names, server authentication only, valid a year.
/// It names neither the cluster nor a role, so it cannot pass for a node
/// ([`certify`]); it is not recorded in `issued/`, since the server makes
/// a new one at each start.
pub fn web_certificate(
    ca_dir: &Path,
    names: &[String],
    key: &KeyPair,
) -> Result<rcgen::Certificate, PkiError> {
    let issuer = ca_issuer(ca_dir)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Branchline console");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + WEB_VALID;
    params.serial_number = Some(SerialNumber::from(random_serial()?.to_vec()));
    Ok(params.signed_by(key, &issuer)?)
}

/// A fresh serial number: 16 random bytes, positive.
fn random_serial() -> Result<[u8; 16], PkiError> {
    let mut serial = [0u8; 16];
    getrandom::getrandom(&mut serial).map_err(|e| PkiError::Random(e.to_string()))?;
    serial[0] &= 0x7f;
    Ok(serial)
}

/// Revokes the certificate issued to `name` from the CA in `ca_dir`, and
/// writes the CA's revocation list anew (`crl.pem`, every node revoked so
/// far). Returns its path.
pub fn revoke(ca_dir: &Path, name: &str) -> Result<PathBuf, PkiError> {
    if !ca_dir.join(CA_KEY).exists() {
        return Err(PkiError::NoCa(ca_dir.to_owned()));
    }
    let serial_path = ca_dir.join(ISSUED).join(format!("{name}.serial"));
    let serial = fs::read_to_string(&serial_path)
        .map_err(|_| PkiError::NotIssued(name.to_owned()))?
        .trim()
        .to_owned();
    let revoked_path = ca_dir.join(REVOKED);
    let mut revoked = match fs::read_to_string(&revoked_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(&revoked_path)(e)),
    };
    if !revoked
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(serial.as_str()))
    {
        revoked.push_str(&format!("{name} {serial}\n"));
    }
    // The list first, then the record: a crash between leaves a list that
    // already names the node, and the next revoke writes both again.
    let crl_path = write_crl(ca_dir, &revoked)?;
    replace(&revoked_path, revoked.as_bytes())?;
    Ok(crl_path)
}

/// Writes the CA's signed revocation list naming every serial in `revoked`
/// (lines `NAME SERIAL`); returns its path.
fn write_crl(ca_dir: &Path, revoked: &str) -> Result<PathBuf, PkiError> {
    let issuer = ca_issuer(ca_dir)?;
    let now = time::OffsetDateTime::now_utc();
    let revoked_certs = revoked
        .lines()
        .filter_map(|l| parse_hex::<16>(l.split_whitespace().nth(1)?))
        .map(|serial| RevokedCertParams {
            serial_number: SerialNumber::from(serial.to_vec()),
            revocation_time: now,
            reason_code: Some(RevocationReason::Unspecified),
            invalidity_date: None,
        })
        .collect::<Vec<_>>();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + CRL_VALID,
        crl_number: SerialNumber::from(u64::try_from(revoked_certs.len()).unwrap_or(u64::MAX)),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: ca_params()?.key_identifier_method,
    }
    .signed_by(&issuer)?;
    let crl_path = ca_dir.join(CRL);
    replace(&crl_path, crl.pem()?.as_bytes())?;
    Ok(crl_path)
}

/// The CA in `ca_dir` as an issuer: its key, with its parameters rebuilt
/// (see [`ca_params`]).
fn ca_issuer(ca_dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key_path = ca_dir.join(CA_KEY);
    if !key_path.exists() {
        return Err(PkiError::NoCa(ca_dir.to_owned()));
    }
    let key = KeyPair::from_pem(&fs::read_to_string(&key_path).map_err(io(&key_path))?)?;
    Ok(Issuer::new(ca_params()?, key))
}

/// Replaces the file at `path` with `bytes` (mode 0644): written beside it
/// as `PATH.new`, then renamed over it.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    let _ = fs::remove_file(&staged);
    write_new(&staged, bytes, 0o644)?;
    fs::rename(&staged, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_missing_cas_repeats_and_unknown_revocations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let nowhere = dir.path().join("nowhere");
        assert_eq!(
            issue(&nowhere, Role::Client, "a", dir.path())
                .unwrap_err()
                .to_string(),
            format!(
                "{} holds no CA key (ca.key); make one with `branchline pki init`",
                nowhere.display()
            )
        );
        init(&ca).unwrap();
        fs::set_permissions(&ca, fs::Permissions::from_mode(0o750)).unwrap();
        let files = |dir: &Path| {
            let mut names: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let before = (files(&ca), fs::read(ca.join(CA_KEY)).unwrap());
        assert!(matches!(init(&ca), Err(PkiError::Exists(_))));
        assert_eq!((files(&ca), fs::read(ca.join(CA_KEY)).unwrap()), before);
        assert_eq!(
            fs::metadata(&ca).unwrap().permissions().mode() & 0o777,
            0o750,
            "a refused init changes nothing, not even the mode"
        );
        for bad in ["", ".hidden", "a/b", "x y", &"n".repeat(65)] {
            assert!(
                matches!(
                    issue(&ca, Role::Client, bad, dir.path()),
                    Err(PkiError::BadName(_))
                ),
                "{bad:?}"
            );
        }
        let (cert, key) = issue(&ca, Role::Server, "srv", dir.path()).unwrap();
        let before = (fs::read(&cert).unwrap(), fs::read(&key).unwrap());
        let again = issue(&ca, Role::Server, "srv", dir.path()).unwrap_err();
        assert!(
            again
                .to_string()
                .ends_with("exists; refusing to overwrite it"),
            "{again}"
        );
        assert_eq!(
            (fs::read(&cert).unwrap(), fs::read(&key).unwrap()),
            before,
            "the first certificate and key are untouched"
        );
        assert_eq!(
            revoke(&ca, "nobody").unwrap_err().to_string(),
            "no certificate was issued to `nobody` from this CA (no issued/nobody.serial)"
        );
        let crl = revoke(&ca, "srv").unwrap();
        let first = fs::read(&crl).unwrap();
        revoke(&ca, "srv").unwrap();
        let listed = fs::read_to_string(ca.join(REVOKED)).unwrap();
        assert_eq!(listed.lines().count(), 1, "revoked once: {listed}");
        assert!(!first.is_empty());
    }
}
