//! The command-line contract that operators script against.

use crate::helpers::{NUAGE, PASSWORD, spawn_app};

#[tokio::test]
async fn operators_script_organisations_users_and_keys() {
    let app = spawn_app().await;
    let org = app.cli(
        &[
            "admin",
            "org",
            "create",
            "--name",
            "Ville de Lyon",
            "--kind",
            "public",
            "--siret",
            "21690123100011",
            "--json",
        ],
        None,
    );
    assert_eq!(org.code, 0, "{}", org.stderr);
    let org = org.json();
    let id = org["id"].as_str().expect("id");
    assert_eq!(org["kind"], "public");
    assert_eq!(org["siret"], "21690123100011");

    let user = app.cli(
        &[
            "admin",
            "user",
            "create",
            "--org",
            id,
            "--email",
            "maire@lyon.fr",
            "--password-stdin",
            "--role",
            "owner",
            "--json",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(user.code, 0, "{}", user.stderr);
    assert_eq!(user.json()["email"], "maire@lyon.fr");
    // The password read from stdin is the one that works.
    app.token_for("maire@lyon.fr", None).await;

    let operator = app.cli(
        &[
            "admin",
            "user",
            "create",
            "--operator",
            "--email",
            "ops@lyon.fr",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    );
    assert_eq!(operator.code, 0, "{}", operator.stderr);
    assert_eq!(operator.json()["is_operator"], true);
    let ops_token = app.token_for("ops@lyon.fr", None).await;
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{id}"),
            &ops_token,
            None,
        )
        .await;
    assert_eq!(status, 200, "an operator sees every organisation");

    let key = app.cli(&["admin", "s3-key", "create", "--org", id, "--json"], None);
    assert_eq!(key.code, 0, "{}", key.stderr);
    let key = key.json();
    let access = key["access_key_id"].as_str().expect("access key");
    assert!(
        key["secret_access_key"]
            .as_str()
            .is_some_and(|s| s.len() >= 40)
    );

    let revoked = app.cli(&["admin", "s3-key", "revoke", access], None);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    let again = app.cli(&["admin", "s3-key", "revoke", access], None);
    assert_eq!(again.code, 1, "revoking twice is refused: {}", again.stdout);
}

#[tokio::test]
async fn mistakes_get_clear_messages_and_exit_codes() {
    let app = spawn_app().await;
    let bad = app.cli(
        &[
            "admin",
            "org",
            "create",
            "--name",
            "X",
            "--kind",
            "public",
            "--siret",
            "21690123100012",
            "--json",
        ],
        None,
    );
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("check digit"), "{}", bad.stderr);
    let kind = app.cli(
        &["admin", "org", "create", "--name", "X", "--kind", "empire"],
        None,
    );
    assert_eq!(kind.code, 1, "{}", kind.stderr);
    let wrong_token =
        crate::helpers::run_cli(&app.console, "nuage_wrong", &["admin", "org", "list"], None);
    assert_eq!(wrong_token.code, 2);
    assert!(wrong_token.stderr.contains("401"), "{}", wrong_token.stderr);
    let short = app.cli(
        &[
            "admin",
            "user",
            "create",
            "--org",
            "x",
            "--email",
            "a@b.fr",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_eq!(short.code, 1);
}

#[tokio::test]
async fn client_flags_come_from_the_environment_too() {
    let app = spawn_app().await;
    let out = std::process::Command::new(NUAGE)
        .args([
            "admin", "org", "create", "--name", "Env SAS", "--kind", "company", "--json",
        ])
        .env("NUAGE_CLI_SERVER", &app.console)
        .env("NUAGE_CLI_TOKEN", &app.root_token)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let org: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(org["name"], "Env SAS");
    let none = std::process::Command::new(NUAGE)
        .args(["admin", "org", "list"])
        .env_remove("NUAGE_CLI_SERVER")
        .env_remove("NUAGE_CLI_TOKEN")
        .output()
        .expect("run");
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--server"));
}
