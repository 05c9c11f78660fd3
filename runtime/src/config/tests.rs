//! Tests of `config`.

use super::*;

fn client(text: &str) -> Result<ClientConfig, ConfigError> {
    parse(text, Path::new("client.toml"))
}

#[test]
fn the_example_configs_parse_and_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let c: ClientConfig = load(&root.join("client.toml")).unwrap();
    c.validate().unwrap();
    let s: ServerConfig = load(&root.join("server.toml")).unwrap();
    s.validate().unwrap();
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let err = client("server = \"127.0.0.1:1\"\n\n[cache]\nquota_gib = 3\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid config client.toml line 4: unknown field `quota_gib`"),
        "{err}"
    );
    assert!(!err.contains('\n'));
}

#[test]
fn a_bad_value_is_named() {
    let err = client("server = \"nowhere\"\n").unwrap_err().to_string();
    assert!(
        err.starts_with("invalid config client.toml line 1: invalid socket address"),
        "{err}"
    );
    let err = client("[transfer]\nper_peer = -1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn a_tls_section_needs_all_three_files_and_names_the_bad_one() {
    let none = TlsSection::default();
    assert!(
        none.identity().unwrap().is_none(),
        "no section: no identity"
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let partial = TlsSection {
        ca: Some(missing.clone()),
        ..TlsSection::default()
    };
    assert_eq!(
        partial.identity().unwrap_err().to_string(),
        "invalid config: tls.ca, tls.cert and tls.key go together: give all three or none"
    );
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let ca = crate::pki::init(&dir.path().join("ca")).unwrap();
    let (cert, key) = crate::pki::issue(
        &dir.path().join("ca"),
        crate::pki::Role::Client,
        "n1",
        dir.path(),
    )
    .unwrap();
    let with = |ca: &Path, cert: &Path, key: &Path, crl: Option<&Path>| TlsSection {
        ca: Some(ca.to_owned()),
        cert: Some(cert.to_owned()),
        key: Some(key.to_owned()),
        crl: crl.map(Path::to_owned),
    };
    assert!(with(&ca, &cert, &key, None).identity().unwrap().is_some());
    for (section, named) in [
        (with(&missing, &cert, &key, None), &missing),
        (with(&junk, &cert, &key, None), &junk),
        (with(&ca, &junk, &key, None), &junk),
        (with(&ca, &cert, &missing, None), &missing),
        (with(&ca, &cert, &key, Some(&missing)), &missing),
    ] {
        let err = section.identity().unwrap_err().to_string();
        assert!(
            err.starts_with("invalid config: tls: ") && err.contains(&named.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn values_out_of_range_and_missing_keys_are_refused() {
    let mut c = client("data_dir = \"/d\"\nserver = \"127.0.0.1:1\"\n").unwrap();
    c.validate().unwrap();
    c.transfer.max_in_flight = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: transfer.max_in_flight must be greater than 0"
    );
    c.transfer.max_in_flight = 16;
    c.transfer.ban_after_strikes = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: transfer.ban_after_strikes must be greater than 0"
    );
    c.transfer.ban_after_strikes = 2;
    c.limits.connections_per_peer = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: limits.connections_per_peer must be greater than 0"
    );
    c.limits.connections_per_peer = 16;
    c.limits.requests_per_sec = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: limits.requests_per_sec must be greater than 0"
    );
    let c = client("server = \"127.0.0.1:1\"\n").unwrap();
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: data_dir is not set (in the config file or with --data-dir)"
    );
    let mut s = ServerConfig::empty();
    s.data_dir = Some("/d".into());
    s.file_storage.enabled = true;
    s.file_storage.dir = Some("/srv".into());
    let err = s.validate().unwrap_err().to_string();
    assert!(err.contains("set file_storage.base_url"), "{err}");
}

#[test]
fn bad_values_in_the_b2_and_b3_sections_are_named() {
    let err = |text: &str| client(text).unwrap_err().to_string();
    let e = err("[election]\nchassis = \"tablet\"\n");
    assert!(
        e.starts_with("invalid config client.toml line 2: unknown variant `tablet`"),
        "{e}"
    );
    let e = err("[discovery]\nport = 70000\n");
    assert!(e.starts_with("invalid config client.toml line 2:"), "{e}");
    let e = err("[metrics]\nlisten = \"nowhere\"\n");
    assert!(
        e.starts_with("invalid config client.toml line 2: invalid socket address"),
        "{e}"
    );
    let e = err("background_listen = \"nowhere\"\n");
    assert!(
        e.starts_with("invalid config client.toml line 1: invalid socket address"),
        "{e}"
    );

    let mut c = client("data_dir = \"/d\"\nserver = \"127.0.0.1:1\"\n").unwrap();
    c.discovery.wait_ms = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: discovery.wait_ms must be greater than 0"
    );
    c.discovery.wait_ms = 500;
    c.background.target_delay_ms = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: background.target_delay_ms must be greater than 0"
    );
    c.background.target_delay_ms = 5000;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: background.target_delay_ms (5000) must be at most 1000"
    );
    c.background.target_delay_ms = 25;
    c.background.pause_after_secs = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: background.pause_after_secs must be greater than 0"
    );
    c.background.pause_after_secs = 5;
    c.background.pause_delay_ms = 20;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config: background.pause_delay_ms (20) must be above \
         background.target_delay_ms (25): the controller itself keeps about the target"
    );
    let e = err("[background]\npause_delay_ms = -3\n");
    assert!(e.contains("line 2"), "{e}");
    let e = err("[background]\nyielding = \"yes\"\n");
    assert!(e.contains("line 2") && e.contains("boolean"), "{e}");
    let mut s = ServerConfig::empty();
    s.data_dir = Some("/d".into());
    s.registry.rvp_patience_secs = 0;
    assert_eq!(
        s.validate().unwrap_err().to_string(),
        "invalid config: registry.rvp_patience_secs must be greater than 0"
    );
}

#[test]
fn a_metrics_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let section = MetricsSection {
        enabled: true,
        listen: taken.local_addr().unwrap(),
    };
    let err = metrics_listener(&section).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "invalid config: cannot listen on {} for metrics:",
            section.listen
        )),
        "{err}"
    );
    let off = MetricsSection::default();
    assert!(
        metrics_listener(&off).unwrap().is_none(),
        "off unless enabled"
    );
}

#[test]
fn the_console_listens_beside_the_control_endpoint_and_bad_settings_are_named() {
    let server = |text: &str| parse::<ServerConfig>(text, Path::new("server.toml"));
    let s = server("data_dir = \"/d\"\nlisten = \"127.9.0.1:34323\"\n").unwrap();
    assert!(s.console.enabled);
    assert_eq!(
        s.console.listen(s.listen),
        "127.9.0.1:34390".parse().unwrap()
    );
    let s = server("data_dir = \"/d\"\n[console]\nlisten = \"0.0.0.0:8443\"\n").unwrap();
    assert_eq!(s.console.listen(s.listen).port(), 8443);
    for (text, expected) in [
        (
            "data_dir = \"/d\"\n[console]\ncert = \"/c.pem\"\n",
            "console.cert and console.key go together",
        ),
        (
            "data_dir = \"/d\"\n[console]\nsession_idle_mins = 0\n",
            "console.session_idle_mins",
        ),
    ] {
        let err = server(text).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    let err = server("[console]\nport = 1\n").unwrap_err().to_string();
    assert!(err.contains("line 2: unknown field `port`"), "{err}");
}
