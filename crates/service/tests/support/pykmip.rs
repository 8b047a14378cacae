//! PyKMIP's server for tests, with a certificate authority of its own:
//! shared by nuage-service's KMIP tests and the platform's (which include
//! this file with `#[path]`). PYKMIP_TEST_PYTHON names a Python that has
//! PyKMIP 0.11: nextest's setup script scripts/ensure-pykmip makes one.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nuage_service::key_provider::kmip::{KmipClient, KmipSettings};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// Long enough for PyKMIP on a busy machine (a call takes milliseconds).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority the test trusts and nothing else does.
pub struct Authority {
    pub cert: Certificate,
    key: KeyPair,
}

impl Authority {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("a P-256 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "nuage-test-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("the CA certificate");
        Self { cert, key }
    }

    /// A P-256 certificate and its PKCS#8 key, both PEM: PyKMIP's TLS 1.2
    /// suites that rustls also speaks are all ECDSA ones.
    pub fn issue(
        &self,
        names: Vec<String>,
        cn: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate().expect("a P-256 key");
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// Settings for a client known to the KMS as `cn` (PyKMIP takes the
    /// certificate's common name for the owner of what it creates).
    pub fn client(&self, endpoint: &str, server_ca: &str, cn: &str) -> KmipSettings {
        let (cert, key) = self.issue(Vec::new(), cn, ExtendedKeyUsagePurpose::ClientAuth);
        KmipSettings {
            endpoint: endpoint.to_owned(),
            server_name: "127.0.0.1".into(),
            ca_pem: server_ca.to_owned(),
            client_cert_pem: cert,
            client_key_pem: key.into(),
            timeout: TIMEOUT,
            // The test's KMS listens on loopback.
            allow_private: true,
        }
    }
}

/// PyKMIP's server, on a port of its own, stopped with its whole process
/// group when dropped: it forks helpers that outlive a killed parent.
pub struct PyKmip {
    server: Child,
    stopped: bool,
    pub endpoint: String,
    pub authority: Authority,
    dir: TempDir,
}

impl PyKmip {
    pub fn start() -> Self {
        let python = std::env::var("PYKMIP_TEST_PYTHON").unwrap_or_else(|_| {
            panic!(
                "PYKMIP_TEST_PYTHON is not set: it names a Python with PyKMIP 0.11. \
                 Run the tests with cargo nextest, whose setup script scripts/ensure-pykmip \
                 makes one, or run that script and export \
                 PYKMIP_TEST_PYTHON=~/.cache/nuage-test/pykmip/bin/python"
            )
        });
        let dir = tempfile::tempdir().expect("a temporary directory");
        let authority = Authority::new();
        let (cert, key) = authority.issue(
            vec!["127.0.0.1".into()],
            "127.0.0.1",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("written");
        };
        write("ca.crt", &authority.cert.pem());
        write("server.crt", &cert);
        write("server.key", &key);
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr.log");
        // From crates/service or crates/nuage alike.
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../service/tests/fixtures/pykmip_server.py"
        );
        let mut server = std::os::unix::process::CommandExt::process_group(
            Command::new(&python)
                .arg(fixture)
                .arg(dir.path())
                .arg("0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(stderr),
            0,
        )
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run PYKMIP_TEST_PYTHON={python}: {e}"));

        // The fixture prints "ready PORT" once it listens; the thread then
        // drains its output so that the server never blocks on a pipe.
        let stdout = server.stdout.take().expect("piped");
        let (ready, said) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = ready.send(lines.next());
            lines.for_each(drop);
        });
        let mut kms = Self {
            server,
            stopped: false,
            endpoint: String::new(),
            authority,
            dir,
        };
        let line = said.recv_timeout(Duration::from_secs(60));
        let port = match &line {
            Ok(Some(Ok(line))) => line
                .strip_prefix("ready ")
                .and_then(|p| p.parse::<u16>().ok()),
            _ => None,
        };
        let Some(port) = port else {
            kms.stop();
            panic!(
                "PyKMIP did not start (first line: {line:?}).\n--- stderr:\n{}\n--- server.log:\n{}",
                kms.read("stderr.log"),
                kms.read("server.log")
            );
        };
        kms.endpoint = format!("127.0.0.1:{port}");
        kms
    }

    pub fn read(&self, name: &str) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(self.dir.path().join(name))
            .and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    pub fn ca_pem(&self) -> String {
        self.authority.cert.pem()
    }

    /// A client of this KMS, known to it as `cn`.
    pub fn client(&self, cn: &str) -> KmipClient {
        KmipClient::new(&self.authority.client(&self.endpoint, &self.ca_pem(), cn))
            .expect("settings")
    }

    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let group = format!("-{}", self.server.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.server.wait();
    }
}

impl Drop for PyKmip {
    fn drop(&mut self) {
        self.stop();
    }
}
