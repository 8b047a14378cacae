//! The KMIP client against a real KMS: PyKMIP's server, KMIP 1.4 over TLS
//! 1.2 with client certificates, all made for the test by a CA of its own.
//! PYKMIP_TEST_PYTHON names a Python that has PyKMIP 0.11: nextest's setup
//! script scripts/ensure-pykmip makes one. Without it the tests fail, they
//! do not skip: a key provider nobody tested is not one to ship.

use std::time::Duration;

use nuage_service::key_provider::kmip::{
    KeyState, KmipClient, KmipError, KmipSettings, RevocationReason, result_reason,
};

#[path = "support/pykmip.rs"]
mod pykmip;
use pykmip::{Authority, PyKmip};

const AAD: &[u8] = b"org:0190abcd-0000-7000-8000-000000000001";

fn assert_refused<T: std::fmt::Debug>(result: Result<T, KmipError>, what: &str) -> (u32, String) {
    match result {
        Err(KmipError::Refused { reason, message }) => (reason, message),
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// A new active AES-256 key of the client's.
async fn active_key(client: &KmipClient, name: &str) -> String {
    let uid = client.create_aes_key(name).await.expect("created");
    client.activate(&uid).await.expect("activated");
    uid
}

#[tokio::test]
async fn kmip_key_encrypts_and_decrypts_only_with_its_iv_aad_and_tag() {
    let kms = PyKmip::start();
    let client = kms.client("nuage");
    let data: [u8; 32] = rand::random();
    let iv: [u8; 12] = rand::random();

    let uid = client.create_aes_key("nuage-kek-1").await.expect("created");
    assert_eq!(
        client.state(&uid).await.expect("state"),
        KeyState::PreActive
    );
    // A key not yet activated encrypts nothing.
    assert_refused(
        client.encrypt(&uid, iv, AAD, &data).await,
        "encrypt while pre-active",
    );
    client.activate(&uid).await.expect("activated");
    assert_eq!(client.state(&uid).await.expect("state"), KeyState::Active);

    let (ciphertext, tag) = client
        .encrypt(&uid, iv, AAD, &data)
        .await
        .expect("encrypted");
    assert_eq!(ciphertext.len(), data.len());
    assert_ne!(ciphertext, data);
    let plaintext = client
        .decrypt(&uid, iv, AAD, &ciphertext, tag)
        .await
        .expect("decrypted");
    assert_eq!(plaintext, data);
    // The KMS encrypts with the IV it is given, not one of its own.
    assert_eq!(
        client.encrypt(&uid, iv, AAD, &data).await.expect("again"),
        (ciphertext.clone(), tag)
    );
    let other_iv: [u8; 12] = rand::random();
    let (other, _) = client
        .encrypt(&uid, other_iv, AAD, &data)
        .await
        .expect("other IV");
    assert_ne!(other, ciphertext);

    // Whatever does not authenticate is refused.
    let mut flipped = tag;
    flipped[0] ^= 1;
    let mut damaged = ciphertext.clone();
    damaged[31] ^= 0x80;
    assert_refused(
        client
            .decrypt(&uid, iv, b"org:another", &ciphertext, tag)
            .await,
        "wrong AAD",
    );
    assert_refused(
        client.decrypt(&uid, iv, AAD, &ciphertext, flipped).await,
        "flipped tag",
    );
    assert_refused(
        client.decrypt(&uid, other_iv, AAD, &ciphertext, tag).await,
        "wrong IV",
    );
    assert_refused(
        client.decrypt(&uid, iv, AAD, &damaged, tag).await,
        "damaged ciphertext",
    );
    // Another key of the same client does not decrypt it either.
    let second = active_key(&client, "nuage-kek-2").await;
    assert_refused(
        client.decrypt(&second, iv, AAD, &ciphertext, tag).await,
        "another key",
    );

    let unknown = client.encrypt("no-such-key", iv, AAD, &data).await;
    let (reason, _) = assert_refused(unknown, "an unknown key");
    assert_eq!(reason, result_reason::ITEM_NOT_FOUND);
}

#[tokio::test]
async fn kmip_revoked_keys_strangers_and_foreign_certificates_are_refused() {
    let kms = PyKmip::start();
    let client = kms.client("nuage");
    let data: [u8; 32] = rand::random();
    let iv: [u8; 12] = rand::random();
    let uid = active_key(&client, "nuage-kek-1").await;
    let (ciphertext, tag) = client
        .encrypt(&uid, iv, AAD, &data)
        .await
        .expect("encrypted");

    // Another identity that the same CA vouches for cannot use the key.
    let stranger = kms.client("stranger");
    for (what, result) in [
        (
            "stranger encrypts",
            stranger.encrypt(&uid, iv, AAD, &data).await.map(drop),
        ),
        (
            "stranger decrypts",
            stranger
                .decrypt(&uid, iv, AAD, &ciphertext, tag)
                .await
                .map(drop),
        ),
    ] {
        let (reason, message) = assert_refused(result, what);
        assert!(
            [
                result_reason::PERMISSION_DENIED,
                result_reason::ITEM_NOT_FOUND
            ]
            .contains(&reason),
            "{what}: reason {reason:#x}, {message}"
        );
    }
    // A certificate from another CA (of the same name, with another key)
    // does not get past the handshake.
    let foreign = KmipClient::new(&Authority::new().client(&kms.endpoint, &kms.ca_pem(), "nuage"))
        .expect("settings");
    let refused = foreign.encrypt(&uid, iv, AAD, &data).await;
    assert!(
        matches!(refused, Err(KmipError::Unreachable(_))),
        "{refused:?}"
    );

    // A compromised key leaves use at once.
    client
        .revoke(&uid, RevocationReason::KeyCompromise)
        .await
        .expect("revoked");
    assert_eq!(
        client.state(&uid).await.expect("state"),
        KeyState::Compromised
    );
    assert_refused(
        client.encrypt(&uid, iv, AAD, &data).await,
        "encrypt with a compromised key",
    );
    // A retired one too.
    let retired = active_key(&client, "nuage-kek-2").await;
    client
        .revoke(&retired, RevocationReason::CessationOfOperation)
        .await
        .expect("revoked");
    assert_eq!(
        client.state(&retired).await.expect("state"),
        KeyState::Deactivated
    );
    let error = client
        .encrypt(&retired, iv, AAD, &data)
        .await
        .expect_err("refused");
    assert!(matches!(error, KmipError::Refused { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with("the KMS refused: "),
        "{error}"
    );
}

#[tokio::test]
async fn kmip_kms_that_is_down_or_silent_fails_within_the_timeout() {
    let short = Duration::from_secs(1);
    let mut kms = PyKmip::start();
    let settings = KmipSettings {
        timeout: short,
        ..kms.authority.client(&kms.endpoint, &kms.ca_pem(), "nuage")
    };
    let client = KmipClient::new(&settings).expect("settings");
    let uid = client
        .create_aes_key("nuage-kek-1")
        .await
        .expect("reachable while it runs");
    kms.stop();
    // The client's own timeout must end the call: the outer one is a
    // safety net that fails the test.
    let down = tokio::time::timeout(short * 10, client.state(&uid))
        .await
        .expect("the call ended on its own");
    assert!(matches!(down, Err(KmipError::Unreachable(_))), "{down:?}");
    assert!(format!("{}", down.expect_err("down")).starts_with("the KMS is unreachable: "));

    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let endpoint = silent.local_addr().expect("address").to_string();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            connections.push(connection);
        }
    });
    let client = KmipClient::new(&KmipSettings {
        endpoint,
        ..settings
    })
    .expect("settings");
    let hung = tokio::time::timeout(short * 10, client.state(&uid))
        .await
        .expect("the call ended on its own");
    match hung {
        Err(KmipError::Unreachable(why)) => assert!(why.contains("took longer than"), "{why}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    held.abort();
}

/// An owner names the KMS's endpoint: unless the operator allows private
/// addresses, the client connects to no internal one (here, a listener on
/// loopback that must see no connection).
#[tokio::test]
async fn kmip_client_reaches_no_internal_address_unless_allowed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let port = listener.local_addr().expect("address").port();
    let authority = Authority::new();
    let ca = authority.cert.pem();
    for endpoint in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let client = KmipClient::new(&KmipSettings {
            allow_private: false,
            timeout: Duration::from_secs(2),
            ..authority.client(&endpoint, &ca, "nuage")
        })
        .expect("settings");
        match client.state("1").await {
            Err(KmipError::Unreachable(why)) => {
                assert!(why.contains("internal address"), "{why}")
            }
            other => panic!("{endpoint}: expected a refusal, got {other:?}"),
        }
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "nothing connected");
}
