//! The one authorisation point (`Platform::authorize_org`), on a real
//! database of each engine (SQLite, or PostgreSQL when
//! `NUAGE_TEST_DATABASE_URL` names a server) and without a server above it:
//! every surface asks it, so what it answers is what every surface does.

#[path = "../../db/tests/support/test_db.rs"]
mod test_db;

use std::sync::Arc;
use std::time::Duration;

use nuage_domain::ids::OrgId;
use nuage_domain::org::{Permission, Role};
use nuage_service::accounts::{NewOrg, NewUser};
use nuage_service::{
    MailLimits, Mailer, MasterKey, Platform, PlatformSettings, Principal, RequestMeta,
    ServiceError, SystemClock,
};
use test_db::TestDb;

const ROOT: &str = "nuage_root0123456789abcdef0123456789abcdef";

async fn platform(test: &TestDb, dir: &std::path::Path) -> Platform {
    let (key, _) = MasterKey::load_or_generate(&dir.join("master.key")).expect("master key");
    let settings = PlatformSettings {
        data_dir: dir.to_owned(),
        public_url: "http://localhost".into(),
        session_ttl: Duration::from_secs(3600),
        mail_limits: MailLimits {
            per_recipient_per_hour: 5,
            invitations_per_org_per_day: 50,
        },
        clock: Arc::new(SystemClock),
        key_provider: None,
    };
    let (platform, _) = Platform::start(
        test.node().await,
        key,
        Mailer::outbox_only(),
        settings,
        Some(ROOT),
    )
    .await
    .expect("platform started");
    platform
}

fn meta() -> RequestMeta {
    RequestMeta {
        source: "test".into(),
    }
}

async fn org(platform: &Platform, name: &str) -> OrgId {
    let new = NewOrg {
        name: name.into(),
        kind: "company".into(),
        siret: None,
        vat_number: None,
        country: None,
    };
    platform
        .create_org(&Principal::System, &meta(), new)
        .await
        .expect("organisation")
        .id
}

/// A user of `org` with `role`, as the principal its token would give.
async fn member(platform: &Platform, org: OrgId, email: &str, role: Role) -> Principal {
    let new = NewUser {
        email: email.into(),
        password: "correct horse battery staple".into(),
        display_name: None,
    };
    let user = platform
        .create_user(&Principal::System, &meta(), org, new, role)
        .await
        .expect("user");
    Principal::User {
        id: user.id,
        is_operator: false,
    }
}

async fn authorize(
    platform: &Platform,
    who: &Principal,
    org: OrgId,
    permission: Permission,
) -> Result<(), ServiceError> {
    let mut conn = platform.db().acquire().await.expect("connection");
    platform
        .authorize_org(&mut conn, who, org, permission)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_role_acts_within_its_permissions_and_others_see_no_organisation() {
    let test = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let platform = platform(&test, dir.path()).await;
    let (alpha, beta) = (org(&platform, "Alpha").await, org(&platform, "Beta").await);
    let owner = member(&platform, alpha, "owner@alpha.example", Role::Owner).await;
    let plain = member(&platform, alpha, "member@alpha.example", Role::Member).await;
    let billing = member(&platform, alpha, "billing@alpha.example", Role::Billing).await;
    let outsider = member(&platform, beta, "member@beta.example", Role::Member).await;

    for permission in [Permission::Use, Permission::Manage, Permission::Own] {
        assert!(
            authorize(&platform, &owner, alpha, permission)
                .await
                .is_ok()
        );
        assert!(
            authorize(&platform, &Principal::System, alpha, permission)
                .await
                .is_ok()
        );
    }
    assert!(
        authorize(&platform, &plain, alpha, Permission::Use)
            .await
            .is_ok()
    );
    for permission in [
        Permission::Manage,
        Permission::SeeInvoices,
        Permission::Grant(Role::Admin),
    ] {
        assert!(
            matches!(
                authorize(&platform, &plain, alpha, permission).await,
                Err(ServiceError::Forbidden(_))
            ),
            "a member may not {permission:?}"
        );
    }
    assert!(
        authorize(&platform, &billing, alpha, Permission::SeeInvoices)
            .await
            .is_ok()
    );
    assert!(matches!(
        authorize(&platform, &billing, alpha, Permission::RunCalls).await,
        Err(ServiceError::Forbidden(_))
    ));
    // Not a member, and no such organisation, look the same.
    assert!(matches!(
        authorize(&platform, &outsider, alpha, Permission::Use).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        authorize(&platform, &outsider, OrgId::new(), Permission::Use).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        authorize(&platform, &Principal::Anonymous, alpha, Permission::Use).await,
        Err(ServiceError::Unauthenticated(_))
    ));
    platform.db().close().await;
    test.drop_database().await;
}

#[tokio::test]
async fn an_organisation_that_requires_a_second_factor_refuses_members_without_one() {
    let test = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let platform = platform(&test, dir.path()).await;
    let alpha = org(&platform, "Alpha").await;
    let owner = member(&platform, alpha, "owner@alpha.example", Role::Owner).await;
    assert!(
        authorize(&platform, &owner, alpha, Permission::Use)
            .await
            .is_ok()
    );
    let mut conn = platform.db().acquire().await.expect("connection");
    sqlx::query("UPDATE organisations SET require_totp = 1 WHERE id = $1")
        .bind(alpha.to_string())
        .execute(&mut *conn)
        .await
        .expect("policy");
    drop(conn);
    match authorize(&platform, &owner, alpha, Permission::Use).await {
        Err(ServiceError::Forbidden(why)) => assert!(why.contains("second factor"), "{why}"),
        other => panic!("an owner without a second factor got {other:?}"),
    }
    // The operator's own rights do not depend on a member's factor.
    assert!(
        authorize(&platform, &Principal::System, alpha, Permission::Manage)
            .await
            .is_ok()
    );
    platform.db().close().await;
    test.drop_database().await;
}
