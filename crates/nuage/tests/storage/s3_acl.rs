//! ACLs and Object Ownership as a bucket with ACLs disabled
//! (`BucketOwnerEnforced`, AWS's default) answers them, and the owners
//! listings show, through aws-sdk-s3.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, Grant, Grantee, ObjectCannedAcl, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, Permission, Type,
};

use crate::helpers::{create_bucket, get_bytes, put, s3_code, spawn_app};

fn grant(grantee: Grantee, permission: Permission) -> Grant {
    Grant::builder()
        .grantee(grantee)
        .permission(permission)
        .build()
}

fn user(id: &str) -> Grantee {
    Grantee::builder()
        .r#type(Type::CanonicalUser)
        .id(id)
        .build()
        .expect("grantee")
}

#[tokio::test]
async fn acls_read_as_the_owners_full_control_and_grant_nothing_more() {
    let app = spawn_app().await;
    let t = app.tenant("Owner").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "acl").await;
    put(&s3, "acl", "doc", ByteStream::from_static(b"doc")).await;
    let bucket_acl = s3.get_bucket_acl().bucket("acl").send().await.expect("acl");
    let object_acl = s3
        .get_object_acl()
        .bucket("acl")
        .key("doc")
        .send()
        .await
        .expect("acl");
    for (owner, grants) in [
        (bucket_acl.owner(), bucket_acl.grants()),
        (object_acl.owner(), object_acl.grants()),
    ] {
        assert_eq!(owner.and_then(|o| o.id()), Some(t.org.as_str()));
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].permission(), Some(&Permission::FullControl));
        let grantee = grants[0].grantee().expect("grantee");
        assert_eq!(grantee.r#type(), &Type::CanonicalUser);
        assert_eq!(grantee.id(), Some(t.org.as_str()));
    }
    assert_eq!(
        s3_code(s3.get_object_acl().bucket("acl").key("nope").send().await),
        "NoSuchKey"
    );
    // What grants the owner alone is taken...
    s3.put_bucket_acl()
        .bucket("acl")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .expect("private");
    s3.put_object_acl()
        .bucket("acl")
        .key("doc")
        .access_control_policy(
            AccessControlPolicy::builder()
                .grants(grant(user(&t.org), Permission::FullControl))
                .owner(
                    aws_sdk_s3::types::Owner::builder()
                        .id(t.org.as_str())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("the owner's full control");
    s3.put_object()
        .bucket("acl")
        .key("owned")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("bucket-owner-full-control");
    // ...anything more is refused, and stores nothing.
    assert_eq!(
        s3_code(
            s3.put_bucket_acl()
                .bucket("acl")
                .acl(BucketCannedAcl::PublicRead)
                .send()
                .await
        ),
        "AccessControlListNotSupported"
    );
    let everyone = Grantee::builder()
        .r#type(Type::Group)
        .uri("http://acs.amazonaws.com/groups/global/AllUsers")
        .build()
        .expect("group");
    assert_eq!(
        s3_code(
            s3.put_object_acl()
                .bucket("acl")
                .key("doc")
                .access_control_policy(
                    AccessControlPolicy::builder()
                        .grants(grant(everyone, Permission::Read))
                        .build(),
                )
                .send()
                .await
        ),
        "AccessControlListNotSupported"
    );
    assert_eq!(
        s3_code(
            s3.put_object()
                .bucket("acl")
                .key("public")
                .acl(ObjectCannedAcl::PublicRead)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "AccessControlListNotSupported"
    );
    assert_eq!(
        s3_code(s3.head_object().bucket("acl").key("public").send().await),
        "NotFound"
    );
    assert_eq!(
        s3_code(
            s3.copy_object()
                .bucket("acl")
                .key("copy")
                .copy_source("acl/doc")
                .grant_read("uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")
                .send()
                .await
        ),
        "AccessControlListNotSupported"
    );
    assert_eq!(
        s3_code(
            s3.create_multipart_upload()
                .bucket("acl")
                .key("multi")
                .acl(ObjectCannedAcl::AuthenticatedRead)
                .send()
                .await
        ),
        "AccessControlListNotSupported"
    );
    assert_eq!(
        s3_code(
            s3.create_bucket()
                .bucket("public-bucket")
                .acl(BucketCannedAcl::PublicRead)
                .send()
                .await
        ),
        "InvalidBucketAclWithObjectOwnership"
    );
    assert_eq!(
        s3_code(s3.head_bucket().bucket("public-bucket").send().await),
        "NotFound"
    );
    s3.create_bucket()
        .bucket("granted")
        .grant_full_control(format!("id=\"{}\"", t.org))
        .send()
        .await
        .expect("the owner's full control on create");
    // Another organisation reads no ACL of it.
    let other = app.tenant("Other").await;
    assert_eq!(
        s3_code(
            app.s3_client(&other)
                .get_bucket_acl()
                .bucket("acl")
                .send()
                .await
        ),
        "AccessDenied"
    );
}

/// Sets a bucket's Object Ownership.
async fn set_ownership(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    ownership: ObjectOwnership,
) -> String {
    match s3
        .put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ownership)
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("controls"),
        )
        .send()
        .await
    {
        Ok(_) => "set".into(),
        Err(e) => s3_code::<_, ()>(Err(e)),
    }
}

async fn ownership(s3: &aws_sdk_s3::Client, bucket: &str) -> ObjectOwnership {
    s3.get_bucket_ownership_controls()
        .bucket(bucket)
        .send()
        .await
        .expect("controls")
        .ownership_controls()
        .map(|c| c.rules()[0].object_ownership().clone())
        .expect("a rule")
}

#[tokio::test]
async fn object_ownership_is_bucket_owner_enforced_until_its_owner_enables_acls() {
    let app = spawn_app().await;
    let t = app.tenant("Owner").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "owned").await;
    assert_eq!(
        ownership(&s3, "owned").await,
        ObjectOwnership::BucketOwnerEnforced
    );
    assert_eq!(
        set_ownership(&s3, "owned", ObjectOwnership::BucketOwnerEnforced).await,
        "set"
    );
    assert_eq!(
        set_ownership(&s3, "owned", ObjectOwnership::ObjectWriter).await,
        "set"
    );
    assert_eq!(ownership(&s3, "owned").await, ObjectOwnership::ObjectWriter);
    // Without controls a bucket is ObjectWriter, as on AWS.
    assert_eq!(
        set_ownership(&s3, "owned", ObjectOwnership::BucketOwnerEnforced).await,
        "set"
    );
    s3.delete_bucket_ownership_controls()
        .bucket("owned")
        .send()
        .await
        .expect("deleted");
    assert_eq!(ownership(&s3, "owned").await, ObjectOwnership::ObjectWriter);
}

#[tokio::test]
async fn with_acls_enabled_grants_open_a_bucket_and_its_objects_to_whom_they_name() {
    let app = spawn_app().await;
    let t = app.tenant("Owner").await;
    let partner = app.tenant("Partner").await;
    let stranger = app.tenant("Stranger").await;
    let s3 = app.s3_client(&t);
    let (sp, ss) = (app.s3_client(&partner), app.s3_client(&stranger));
    create_bucket(&s3, "acl-shared").await;
    put(&s3, "acl-shared", "doc", ByteStream::from_static(b"doc")).await;
    let read_by_partner = format!("id=\"{}\"", partner.org);
    // While ACLs are disabled, a grant is refused and stores nothing.
    assert_eq!(
        s3_code(
            s3.put_bucket_acl()
                .bucket("acl-shared")
                .grant_read(&read_by_partner)
                .send()
                .await
        ),
        "AccessControlListNotSupported"
    );
    assert_eq!(
        set_ownership(&s3, "acl-shared", ObjectOwnership::BucketOwnerPreferred).await,
        "set"
    );
    s3.put_bucket_acl()
        .bucket("acl-shared")
        .grant_read(&read_by_partner)
        .send()
        .await
        .expect("bucket grant");
    let acl = s3
        .get_bucket_acl()
        .bucket("acl-shared")
        .send()
        .await
        .expect("acl");
    assert_eq!(
        acl.grants().len(),
        2,
        "the owner's full control and the partner's read"
    );
    // READ on the bucket lists it, and no more.
    let listed = sp
        .list_objects_v2()
        .bucket("acl-shared")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(
        s3_code(ss.list_objects_v2().bucket("acl-shared").send().await),
        "AccessDenied"
    );
    assert_eq!(
        s3_code(sp.get_object().bucket("acl-shared").key("doc").send().await),
        "AccessDenied",
        "reading an object takes a grant on the object"
    );
    assert_eq!(
        s3_code(
            sp.put_object()
                .bucket("acl-shared")
                .key("x")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "AccessDenied"
    );
    // An object's grant, set afterwards or with the write.
    s3.put_object_acl()
        .bucket("acl-shared")
        .key("doc")
        .grant_read(&read_by_partner)
        .send()
        .await
        .expect("object grant");
    assert_eq!(get_bytes(&sp, "acl-shared", "doc").await, &b"doc"[..]);
    s3.put_object()
        .bucket("acl-shared")
        .key("report")
        .grant_read(&read_by_partner)
        .body(ByteStream::from_static(b"report"))
        .send()
        .await
        .expect("put with a grant");
    assert_eq!(get_bytes(&sp, "acl-shared", "report").await, &b"report"[..]);
    let object_acl = s3
        .get_object_acl()
        .bucket("acl-shared")
        .key("report")
        .send()
        .await
        .expect("acl");
    assert!(object_acl.grants().iter().any(|g| {
        g.permission() == Some(&Permission::Read)
            && g.grantee().and_then(|e| e.id()) == Some(partner.org.as_str())
    }));
    assert_eq!(
        s3_code(
            ss.get_object()
                .bucket("acl-shared")
                .key("report")
                .send()
                .await
        ),
        "AccessDenied"
    );
    // Grants name organisations that exist.
    assert_eq!(
        s3_code(
            s3.put_object_acl()
                .bucket("acl-shared")
                .key("doc")
                .grant_read("id=\"0190f1e2-0000-7000-8000-00000000dead\"")
                .send()
                .await
        ),
        "InvalidArgument"
    );
    // ACLs cannot be disabled while the bucket's grants others; once they
    // are, object grants count no more.
    assert_eq!(
        set_ownership(&s3, "acl-shared", ObjectOwnership::BucketOwnerEnforced).await,
        "InvalidBucketAclWithObjectOwnership"
    );
    s3.put_bucket_acl()
        .bucket("acl-shared")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .expect("private again");
    assert_eq!(
        set_ownership(&s3, "acl-shared", ObjectOwnership::BucketOwnerEnforced).await,
        "set"
    );
    assert_eq!(
        s3_code(sp.get_object().bucket("acl-shared").key("doc").send().await),
        "AccessDenied"
    );
    // A bucket created with ACLs enabled and a grant.
    s3.create_bucket()
        .bucket("acl-born")
        .object_ownership(ObjectOwnership::ObjectWriter)
        .grant_read(&read_by_partner)
        .send()
        .await
        .expect("created with a grant");
    sp.list_objects_v2()
        .bucket("acl-born")
        .send()
        .await
        .expect("partner lists");
    // A delete marker has no ACL to read or set, as on AWS.
    s3.put_bucket_versioning()
        .bucket("acl-born")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioned");
    put(&s3, "acl-born", "gone", ByteStream::from_static(b"gone")).await;
    let marker = s3
        .delete_object()
        .bucket("acl-born")
        .key("gone")
        .send()
        .await
        .expect("deleted");
    let marker = marker.version_id().expect("a delete marker");
    let read = s3
        .get_object_acl()
        .bucket("acl-born")
        .key("gone")
        .version_id(marker)
        .send()
        .await;
    assert_eq!(s3_code(read), "MethodNotAllowed");
    let set = s3
        .put_object_acl()
        .bucket("acl-born")
        .key("gone")
        .version_id(marker)
        .grant_read(&read_by_partner)
        .send()
        .await;
    assert_eq!(s3_code(set), "MethodNotAllowed");
}

#[tokio::test]
async fn public_acls_answer_to_block_public_access() {
    let app = spawn_app().await;
    let t = app.tenant("Publisher").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "acl-public").await;
    put(
        &s3,
        "acl-public",
        "page",
        ByteStream::from_static(b"<p>hi</p>"),
    )
    .await;
    assert_eq!(
        set_ownership(&s3, "acl-public", ObjectOwnership::ObjectWriter).await,
        "set"
    );
    let public_read = || {
        s3.put_object_acl()
            .bucket("acl-public")
            .key("page")
            .acl(ObjectCannedAcl::PublicRead)
            .send()
    };
    assert_eq!(
        s3_code(public_read().await),
        "AccessDenied",
        "BlockPublicAcls is on"
    );
    // A public bucket cannot even be created so: its switches start on.
    assert_eq!(
        s3_code(
            s3.create_bucket()
                .bucket("acl-born-public")
                .object_ownership(ObjectOwnership::ObjectWriter)
                .acl(BucketCannedAcl::PublicRead)
                .send()
                .await
        ),
        "AccessDenied"
    );
    assert_eq!(
        s3_code(s3.head_bucket().bucket("acl-born-public").send().await),
        "NotFound"
    );
    let (status, body) = app
        .root(
            reqwest::Method::PUT,
            &format!("/orgs/{}/public-access-block", t.org),
            Some(serde_json::json!({
                "block_public_acls": false, "ignore_public_acls": false,
                "block_public_policy": true, "restrict_public_buckets": true,
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let switches = |ignore: bool| {
        aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
            .block_public_acls(false)
            .ignore_public_acls(ignore)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build()
    };
    s3.put_public_access_block()
        .bucket("acl-public")
        .public_access_block_configuration(switches(false))
        .send()
        .await
        .expect("switches");
    public_read().await.expect("public-read");
    let anonymous = || async {
        reqwest::get(format!("{}/acl-public/page", app.s3))
            .await
            .expect("answer")
            .status()
            .as_u16()
    };
    assert_eq!(anonymous().await, 200);
    // IgnorePublicAcls: the grant stays, and counts no more.
    s3.put_public_access_block()
        .bucket("acl-public")
        .public_access_block_configuration(switches(true))
        .send()
        .await
        .expect("switches");
    assert_eq!(anonymous().await, 403);
}

#[tokio::test]
async fn listings_name_the_owner_as_aws_does() {
    let app = spawn_app().await;
    let t = app.tenant("Owner").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "listed").await;
    put(&s3, "listed", "a", ByteStream::from_static(b"a")).await;
    let plain = s3
        .list_objects_v2()
        .bucket("listed")
        .send()
        .await
        .expect("list");
    assert!(
        plain.contents()[0].owner().is_none(),
        "only with FetchOwner"
    );
    let fetched = s3
        .list_objects_v2()
        .bucket("listed")
        .fetch_owner(true)
        .send()
        .await
        .expect("list");
    assert_eq!(
        fetched.contents()[0].owner().and_then(|o| o.id()),
        Some(t.org.as_str())
    );
    let v1 = s3.list_objects().bucket("listed").send().await.expect("v1");
    assert_eq!(
        v1.contents()[0].owner().and_then(|o| o.id()),
        Some(t.org.as_str())
    );
    let versions = s3
        .list_object_versions()
        .bucket("listed")
        .send()
        .await
        .expect("versions");
    assert_eq!(
        versions.versions()[0].owner().and_then(|o| o.id()),
        Some(t.org.as_str())
    );
    let buckets = s3.list_buckets().send().await.expect("buckets");
    assert_eq!(buckets.owner().and_then(|o| o.id()), Some(t.org.as_str()));
}
