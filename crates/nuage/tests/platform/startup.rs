//! Starting, restarting and stopping the server; keys, TLS and configuration.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{NUAGE, Spawn, output_within_a_minute, random_root_token, spawn};

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn first_start_creates_private_key_token_and_addresses_files() {
    // `nuage serve` as it starts for an operator: its files come from `main`.
    let app = spawn(Spawn {
        root_token: None,
        process: true,
        ..Spawn::default()
    })
    .await;
    let token_file = app.data_dir.join("root-token");
    assert!(
        app.root_token.starts_with("nuage_"),
        "the generated root token was written"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&app.data_dir.join("master.key")), 0o600);
        assert_eq!(mode(&token_file), 0o600);
    }
    let addresses: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(app.data_dir.join("addresses.json")).expect("addresses.json"),
    )
    .expect("json");
    assert_eq!(addresses["console"], app.console.as_str());
    assert_eq!(addresses["api"], format!("{}/api/v1", app.console));
    assert_eq!(addresses["s3"], app.s3.as_str());
    assert!(
        app.log().contains("BACK UP THIS FILE"),
        "the log says where the key is and to back it up"
    );
    assert!(
        !app.log().contains(&app.root_token),
        "the root token is not logged"
    );
    app.create_org("Works").await;
}

#[tokio::test]
async fn restart_keeps_everything_and_another_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let token = random_root_token();
    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        ..Spawn::default()
    })
    .await;
    let org = app.create_org("Persistent").await;
    let database_url = app.database_url.clone();
    drop(app);

    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        database_url: Some(database_url.clone()),
        ..Spawn::default()
    })
    .await;
    let (status, body) = app
        .root(reqwest::Method::GET, &format!("/orgs/{org}"), None)
        .await;
    assert_eq!((status, body["name"].as_str()), (200, Some("Persistent")));
    drop(app);

    // A node holding another master key must not join this database.
    let other = dir.path().join("other");
    let out = output_within_a_minute(
        Command::new(NUAGE)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--s3-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&other)
            .env("NUAGE_DATABASE__URL", &database_url)
            .env("NUAGE_ROOT_TOKEN", &token),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another master key"), "{stderr}");
}

#[tokio::test]
async fn exposed_plain_http_and_bad_configuration_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = output_within_a_minute(
        Command::new(NUAGE)
            .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path()),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without TLS"));
    let out = output_within_a_minute(Command::new(NUAGE).args([
        "serve",
        "--config",
        "/nonexistent/nuage.toml",
    ]));
    assert_eq!(out.status.code(), Some(2));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"not an address\"\n").expect("write");
    let out = output_within_a_minute(Command::new(NUAGE).args(["serve", "--config"]).arg(&bad));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server with a self-signed certificate for `localhost` and 127.0.0.1,
/// written in `dir`: (the certificate, its file, the server).
async fn spawn_with_tls(
    dir: &tempfile::TempDir,
) -> (
    rcgen::CertifiedKey,
    std::path::PathBuf,
    crate::helpers::TestApp,
) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let app = spawn(Spawn {
        args: vec![
            "--tls-cert".into(),
            cert_path.display().to_string(),
            "--tls-key".into(),
            key_path.display().to_string(),
        ],
        ..Spawn::default()
    })
    .await;
    (cert, cert_path, app)
}

#[tokio::test]
async fn serves_over_tls_with_the_operators_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, cert_path, app) = spawn_with_tls(&dir).await;
    assert!(app.console.starts_with("https://"), "{}", app.console);
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");
    let r = client
        .get(format!("{}/healthz", app.console))
        .send()
        .await
        .expect("TLS request");
    assert_eq!(r.status(), 200);
    let plain = app.console.replace("https://", "http://");
    assert!(
        reqwest::get(format!("{plain}/healthz")).await.is_err(),
        "no plain HTTP on the TLS listener"
    );
    // The website listener speaks TLS too, and HTTP/2 to clients that ask.
    assert!(app.web.starts_with("https://"), "{}", app.web);
    let port = app.web.rsplit(':').next().expect("port");
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--http2",
        ])
        .arg("--cacert")
        .arg(&cert_path)
        .arg(format!("https://127.0.0.1:{port}/"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 404", "{out:?}");
    let org = crate::helpers::run_cli(
        &app.console,
        &app.root_token,
        &[
            "--ca-cert",
            &cert_path.display().to_string(),
            "admin",
            "org",
            "create",
            "--name",
            "TLS",
            "--kind",
            "company",
            "--json",
        ],
        None,
    );
    assert_eq!(org.code, 0, "{}", org.stderr);
}

#[tokio::test]
async fn any_root_token_the_operator_chooses_works() {
    let token = "0123456789abcdef0123456789abcdef01234567".to_owned();
    let app = spawn(Spawn {
        root_token: Some(token.clone()),
        ..Spawn::default()
    })
    .await;
    let (status, body) = app.call(reqwest::Method::GET, "/orgs", &token, None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let mut app = spawn(Spawn {
        process: true,
        ..Spawn::default()
    })
    .await;
    app.create_org("Before stop").await;
    let status = Command::new("kill")
        .args(["-TERM", &app.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = app
        .wait_exit(Duration::from_secs(30))
        .expect("the server stops on SIGTERM");
    assert!(exit.success(), "a clean exit: {exit:?}\n{}", app.log());
    assert!(app.log().contains("stopped"));
}

/// A TLS handshake with the console, with a client of the given provider;
/// the key exchange group it negotiated.
fn negotiated_group(
    console: &str,
    cert_pem: &str,
    provider: rustls::crypto::CryptoProvider,
) -> Option<rustls::NamedGroup> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let address = console.trim_start_matches("https://");
    let mut tcp = std::net::TcpStream::connect(address).expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).expect("handshake");
    }
    tls.negotiated_key_exchange_group().map(|g| g.name())
}

#[tokio::test]
async fn tls_prefers_a_post_quantum_key_exchange_and_still_speaks_to_classical_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _, app) = spawn_with_tls(&dir).await;
    let pem = cert.cert.pem();
    let console = app.console.clone();
    let (hybrid, classical) = tokio::task::spawn_blocking(move || {
        (
            negotiated_group(
                &console,
                &pem,
                rustls::crypto::aws_lc_rs::default_provider(),
            ),
            negotiated_group(&console, &pem, rustls::crypto::ring::default_provider()),
        )
    })
    .await
    .expect("handshakes");
    assert_eq!(hybrid, Some(rustls::NamedGroup::X25519MLKEM768));
    assert_eq!(classical, Some(rustls::NamedGroup::X25519));
    // Over TLS the console's cookies are __Host- ones, and HSTS is sent.
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");
    let r = client
        .get(format!(
            "{}/login",
            app.console.replace("127.0.0.1", "localhost")
        ))
        .send()
        .await
        .expect("login page");
    assert!(r.headers().contains_key("strict-transport-security"));
    let cookie = r.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cookie.starts_with("__Host-nuage_csrf="), "{cookie}");
}
