//! ACLs and Object Ownership as a bucket with ACLs disabled
//! (`BucketOwnerEnforced`, AWS's default) answers them, and the owners
//! listings show, through aws-sdk-s3.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, Grant, Grantee, ObjectCannedAcl, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, Permission, Type,
};

use crate::helpers::{create_bucket, put, s3_code, spawn_app};

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

#[tokio::test]
async fn object_ownership_is_bucket_owner_enforced() {
    let app = spawn_app().await;
    let t = app.tenant("Owner").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "owned").await;
    let controls = s3
        .get_bucket_ownership_controls()
        .bucket("owned")
        .send()
        .await
        .expect("controls");
    let rules = controls
        .ownership_controls()
        .map(|c| c.rules().to_vec())
        .unwrap_or_default();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );
    let set = |ownership: ObjectOwnership| {
        s3.put_bucket_ownership_controls()
            .bucket("owned")
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
    };
    set(ObjectOwnership::BucketOwnerEnforced)
        .await
        .expect("the one mode offered");
    assert_eq!(
        s3_code(set(ObjectOwnership::ObjectWriter).await),
        "NotImplemented"
    );
    assert_eq!(
        s3_code(
            s3.delete_bucket_ownership_controls()
                .bucket("owned")
                .send()
                .await
        ),
        "NotImplemented"
    );
    assert_eq!(
        s3_code(
            s3.create_bucket()
                .bucket("writer")
                .object_ownership(ObjectOwnership::BucketOwnerPreferred)
                .send()
                .await
        ),
        "NotImplemented"
    );
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
