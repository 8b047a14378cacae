//! E-mail: through an SMTP relay when configured (a local sink here), into the
//! outbox otherwise; the password-reset journey end to end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::{PASSWORD, Spawn, spawn, spawn_app};

/// A minimal SMTP server that accepts every message and keeps it.
pub(crate) struct SmtpSink {
    pub(crate) port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().expect("addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = data.as_mut() {
                            if line == "." {
                                store.lock().expect("lock").push(std::mem::take(body));
                                data = None;
                                let _ = write.write_all(b"250 queued\r\n").await;
                            } else {
                                body.push_str(&line);
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 sink\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 end with .\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = write.write_all(reply).await;
                    }
                });
            }
        });
        Self { port, messages }
    }

    pub(crate) async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(m) = self
                .messages
                .lock()
                .expect("lock")
                .iter()
                .find(|m| m.contains(needle))
            {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message containing {needle:?} reached the SMTP sink");
    }
}

/// Undoes quoted-printable soft line breaks and escapes.
fn unfold(message: &str) -> String {
    message.replace("=\n", "").replace("=3D", "=")
}

fn reset_token(message: &str) -> String {
    let text = unfold(message);
    let start = text.find("/password-reset/").expect("a reset link") + "/password-reset/".len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

#[tokio::test]
async fn password_reset_through_an_smtp_relay() {
    let sink = SmtpSink::start().await;
    let app = spawn(Spawn {
        env: vec![
            ("NUAGE_MAIL__SMTP_HOST".into(), "127.0.0.1".into()),
            ("NUAGE_MAIL__SMTP_PORT".into(), sink.port.to_string()),
            ("NUAGE_MAIL__FROM".into(), "nuage@localhost.test".into()),
        ],
        ..Spawn::default()
    })
    .await;
    let org = app.create_org("Reset").await;
    let (_, old_token) = app.create_user(&org, "forgetful@reset.fr", "owner").await;
    // An app password made before the reset, in use over WebDAV.
    let (status, made) = app
        .call(
            Method::POST,
            "/app-passwords",
            &old_token,
            Some(json!({"name": "laptop", "org_id": org})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let app_password = made["secret"].as_str().expect("secret").to_owned();
    let webdav = || {
        app.http
            .request(
                Method::from_bytes(b"PROPFIND").expect("method"),
                format!("{}/dav/", app.console),
            )
            .header("Depth", "0")
            .basic_auth("forgetful@reset.fr", Some(&app_password))
            .send()
    };
    assert_eq!(webdav().await.expect("sent").status(), 207);

    // Unknown addresses get the same answer and no mail.
    let r = app
        .http
        .post(app.url("/password-reset"))
        .json(&json!({"email": "nobody@reset.fr"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 202);
    let r = app
        .http
        .post(app.url("/password-reset"))
        .json(&json!({"email": "forgetful@reset.fr"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 202);
    let message = sink.wait_for("forgetful@reset.fr").await;
    assert!(
        !sink
            .messages
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m.contains("nobody@reset.fr"))
    );
    let token = reset_token(&message);
    assert!(token.len() >= 40, "{token}");

    // Opening the link in the console does not write its secret to the log.
    app.http
        .get(format!("{}/password-reset/{token}", app.console))
        .send()
        .await
        .expect("sent");
    assert!(
        !app.log().contains(&token),
        "the reset token must not be logged"
    );

    let new_password = "a brand new passphrase";
    let r = app
        .http
        .post(app.url("/password-reset/confirm"))
        .json(&json!({"token": token, "password": "short"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        r.status(),
        400,
        "a weak password is refused and the link stays usable"
    );
    let r = app
        .http
        .post(app.url("/password-reset/confirm"))
        .json(&json!({"token": token, "password": new_password}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    let r = app
        .http
        .post(app.url("/password-reset/confirm"))
        .json(&json!({"token": token, "password": new_password}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400, "a link works once");

    let old = app
        .http
        .post(app.url("/auth/token"))
        .json(&json!({"email": "forgetful@reset.fr", "password": PASSWORD, "name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(old.status(), 401);
    let new = app
        .http
        .post(app.url("/auth/token"))
        .json(&json!({"email": "forgetful@reset.fr", "password": new_password, "name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(new.status(), 201);
    let mut db = app.database().await;
    let (sent,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(sent, 1, "the outbox records the delivery");
    let bodies: Vec<(String,)> = sqlx::query_as("SELECT body FROM outbox")
        .fetch_all(&mut db)
        .await
        .expect("bodies");
    assert!(
        bodies.iter().all(|(b,)| !b.contains(&token)),
        "a delivered link is not kept in the outbox"
    );
    let (status, _) = app.call(Method::GET, "/me", &old_token, None).await;
    assert_eq!(
        status, 401,
        "a password reset revokes the API tokens made before it"
    );
    assert_eq!(
        webdav().await.expect("sent").status(),
        401,
        "a password reset revokes the app passwords made before it"
    );
    // What is left to review: the new token, no session, no app password.
    let new_token: serde_json::Value = new.json().await.expect("json");
    let new_token = new_token["secret"].as_str().expect("secret");
    let (_, sessions) = app.call(Method::GET, "/me/sessions", new_token, None).await;
    assert_eq!(sessions, json!([]));
    let (_, passwords) = app
        .call(Method::GET, "/app-passwords", new_token, None)
        .await;
    assert_eq!(passwords, json!([]), "the live app passwords listed");
}

#[tokio::test]
async fn without_a_relay_mail_lands_in_the_outbox() {
    let app = spawn_app().await;
    let org = app.create_org("Outbox").await;
    let (_, owner) = app.create_user(&org, "owner@outbox.fr", "owner").await;
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/orgs/{org}/members"),
            &owner,
            Some(json!({"email": "invitee@elsewhere.fr", "role": "member"})),
        )
        .await;
    assert_eq!(s, 202);
    let mut db = app.database().await;
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT recipient, body, sent_at FROM outbox")
            .fetch_all(&mut db)
            .await
            .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "invitee@elsewhere.fr");
    assert!(rows[0].1.contains("Outbox"), "{}", rows[0].1);
    assert!(rows[0].2.is_none(), "not delivered: no relay");
    // Its link leads to the console, where the invitation is answered.
    let link = rows[0]
        .1
        .split("accept the invitation: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a link in the invitation");
    let page = app.http.get(link).send().await.expect("link");
    assert_eq!(page.status(), 200, "{link}");
}

#[tokio::test]
async fn nobody_floods_an_inbox_through_the_platform() {
    let app = spawn_app().await;
    let org = app.create_org("Boîte").await;
    app.create_user(&org, "victim@boite.fr", "owner").await;
    for _ in 0..8 {
        let r = app
            .http
            .post(app.url("/password-reset"))
            .json(&json!({"email": "victim@boite.fr"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 202, "answered the same every time");
    }
    let mut db = app.database().await;
    let (sent,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = 'victim@boite.fr'")
            .fetch_one(&mut db)
            .await
            .expect("count");
    assert_eq!(sent, 5, "five messages an hour to one address, no more");
}
