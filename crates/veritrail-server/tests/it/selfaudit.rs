//! The service audits itself: tenant creation, key creation and revocation are events of
//! the tenant's own log, with the acting key's id as the actor, and no secret is ever in
//! the log.

use serde_json::Value;
use veritrail_api::Role;
use veritrail_client::KeyScope;

use crate::support::{TestServer, all_records};

const T: &str = "acme";

#[tokio::test]
async fn management_actions_are_events_of_the_tenants_log_without_secrets() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let created = admin
        .create_tenant(T, Some("Acme Inc"))
        .await
        .expect("tenant");
    let owner_secret = created.owner_key.secret.clone();
    let owner_id = created.owner_key.key.id.clone();
    assert_eq!(created.owner_key.key.created_by, "server_admin");
    let owner = server.client(&owner_secret);
    let mut secrets = vec![server.admin_key.clone(), owner_secret.clone()];

    // The owner makes an admin key; the admin makes a viewer; the server admin makes a
    // publisher; then the admin revokes the viewer and the owner the publisher.
    let admin_key = owner
        .create_key(&KeyScope::Own, Role::Admin, Some("ops admin"))
        .await
        .expect("admin key");
    secrets.push(admin_key.secret.clone());
    let tenant_admin = server.client(&admin_key.secret);
    let viewer = tenant_admin
        .create_key(&KeyScope::Own, Role::Viewer, None)
        .await
        .expect("viewer");
    secrets.push(viewer.secret.clone());
    let publisher = admin
        .create_key(
            &KeyScope::Tenant(T.to_owned()),
            Role::Publisher,
            Some("billing"),
        )
        .await
        .expect("publisher");
    secrets.push(publisher.secret.clone());
    assert_eq!(viewer.key.created_by, admin_key.key.id);
    tenant_admin
        .revoke_key(&KeyScope::Own, &viewer.key.id)
        .await
        .expect("revoke viewer");
    owner
        .revoke_key(&KeyScope::Own, &publisher.key.id)
        .await
        .expect("revoke publisher");
    // Revoking again changes nothing, and writes nothing.
    let again = owner
        .revoke_key(&KeyScope::Own, &publisher.key.id)
        .await
        .expect("revoke again");
    assert!(again.revoked_at.is_some());
    let reader = owner
        .create_key(&KeyScope::Own, Role::Viewer, None)
        .await
        .expect("reader");
    secrets.push(reader.secret.clone());
    let reader_id = reader.key.id.clone();

    let records = all_records(&server.client(&reader.secret)).await;
    let audit: Vec<(String, String, String)> = records
        .iter()
        .map(|r| {
            (
                r["type"].as_str().expect("type").to_owned(),
                r["actor"]["id"].as_str().expect("actor").to_owned(),
                r["targets"][0]["id"].as_str().expect("target").to_owned(),
            )
        })
        .collect();
    let s = |text: &str| text.to_owned();
    assert_eq!(
        audit,
        vec![
            (s("veritrail.tenant.created"), s("server_admin"), s(T)),
            (
                s("veritrail.key.created"),
                owner_id.clone(),
                admin_key.key.id.clone()
            ),
            (
                s("veritrail.key.created"),
                admin_key.key.id.clone(),
                viewer.key.id.clone()
            ),
            (
                s("veritrail.key.created"),
                s("server_admin"),
                publisher.key.id.clone()
            ),
            (
                s("veritrail.key.revoked"),
                admin_key.key.id.clone(),
                viewer.key.id.clone()
            ),
            (
                s("veritrail.key.revoked"),
                owner_id.clone(),
                publisher.key.id.clone()
            ),
            (
                s("veritrail.key.created"),
                owner_id.clone(),
                reader_id.clone()
            ),
        ]
    );
    assert_eq!(records[0]["details"]["owner_key_id"], owner_id.as_str());
    assert_eq!(records[1]["details"]["role"], "admin");
    assert_eq!(records[1]["targets"][0]["name"], "ops admin");
    assert_eq!(records[3]["details"]["role"], "publisher");
    assert_eq!(records[3]["actor"]["type"], "server_admin");
    assert_eq!(records[1]["actor"]["type"], "api_key");
    for record in &records {
        assert_eq!(record["tenant"], T);
        assert_eq!(record["outcome"], "success");
        assert_eq!(record["source"]["service"], "veritrail");
    }

    // No secret, nor a secret's tail, anywhere in the log or in any key list.
    let text: String = records.iter().map(Value::to_string).collect();
    let keys = serde_json::to_string(
        &admin
            .list_keys(&KeyScope::Tenant(T.to_owned()))
            .await
            .expect("keys"),
    )
    .expect("json");
    for secret in &secrets {
        let tail = &secret[secret.len() - 20..];
        assert!(!text.contains(tail), "a secret is in the log");
        assert!(!keys.contains(tail), "a secret is in the key list");
    }
    server.stop().await;
}
