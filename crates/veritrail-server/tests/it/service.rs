//! Service keys over real HTTP: one deployment-level key writing to many tenants (mixed
//! batches, the tenant in the path), tenants created on first write, scopes, the per-tenant
//! share of a key, the embedder, and revocation.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use veritrail_api::Role;

use crate::support::{Reply, TestServer, all_records, open_checkpoint, wait_indexed};

/// Creates a service key; returns its secret and id.
async fn service_key(server: &TestServer, body: Value) -> (String, String) {
    let reply = server
        .post_json("/api/v1/service-keys", Some(&server.admin_key), &body)
        .await;
    reply.expect(201, None);
    let made = reply.json();
    (
        made["secret"].as_str().expect("secret").to_owned(),
        made["key"]["id"].as_str().expect("id").to_owned(),
    )
}

fn ev(tenant: &str, id: &str) -> Value {
    json!({"tenant": tenant, "id": id, "type": "user.login", "actor": {"id": format!("{tenant}-user")}})
}

async fn log_size(server: &TestServer, tenant: &str) -> u64 {
    server
        .admin()
        .tenant(tenant)
        .await
        .expect("tenant")
        .log_size
}

async fn verifier_key(server: &TestServer, owner: &str) -> String {
    server.get("/api/v1/log/key", Some(owner)).await.json()["verifier_key"]
        .as_str()
        .expect("verifier key")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_batch_goes_to_each_tenants_own_log_with_its_checkpoint_or_not_at_all() {
    let server = TestServer::start().await;
    let owner_a = server.tenant("cust-a").await;
    let owner_b = server.tenant("cust-b").await;
    let (key, key_id) = service_key(&server, json!({"role": "service_publisher"})).await;
    let vkey = verifier_key(&server, &owner_a).await;

    // Interleaved: a, b, a, b, a.
    let batch = json!([
        ev("cust-a", "e1"),
        ev("cust-b", "e1"),
        ev("cust-a", "e2"),
        ev("cust-b", "e2"),
        ev("cust-a", "e3"),
    ]);
    let reply = server
        .post_json("/api/v1/events?proof=true", Some(&key), &batch)
        .await;
    reply.expect(200, None);
    let body: veritrail_api::MixedIngestResponse =
        serde_json::from_value(reply.json()).expect("a mixed reply");
    let got: Vec<(String, u64)> = body
        .receipts
        .iter()
        .map(|receipt| (receipt.tenant.clone().expect("tenant"), receipt.seq))
        .collect();
    // Each log starts with its creation event (by the server admin): seq 0.
    let want: Vec<(String, u64)> = [
        ("cust-a", 1),
        ("cust-b", 1),
        ("cust-a", 2),
        ("cust-b", 2),
        ("cust-a", 3),
    ]
    .iter()
    .map(|(tenant, seq)| ((*tenant).to_owned(), *seq))
    .collect();
    assert_eq!(got, want);
    let logs: BTreeMap<String, &veritrail_api::LogCheckpointBody> = body
        .logs
        .iter()
        .map(|log| (log.tenant.clone(), log))
        .collect();
    assert_eq!(
        body.logs
            .iter()
            .map(|log| log.tenant.as_str())
            .collect::<Vec<_>>(),
        ["cust-a", "cust-b"],
        "in the order of first appearance"
    );
    for receipt in &body.receipts {
        let tenant = receipt.tenant.as_deref().expect("tenant");
        let checkpoint = open_checkpoint(&logs[tenant].checkpoint, &vkey);
        assert_eq!(checkpoint.origin(), format!("veritrail.local/{tenant}"));
        assert_eq!(checkpoint.size(), logs[tenant].tree_size);
        crate::support::verify_receipt(receipt, &checkpoint).expect("proof in its own log");
    }
    assert_eq!(logs["cust-a"].tree_size, 4);
    assert_eq!(logs["cust-b"].tree_size, 3);

    // Each record names the service key that published it; ids are per tenant.
    for (tenant, owner) in [("cust-a", &owner_a), ("cust-b", &owner_b)] {
        let viewer = server.client(owner);
        wait_indexed(&viewer, log_size(&server, tenant).await).await;
        let records = all_records(&viewer).await;
        let published: Vec<&Value> = records
            .iter()
            .filter(|record| record["type"] == "user.login")
            .collect();
        assert!(!published.is_empty());
        for record in &published {
            assert_eq!(record["tenant"], tenant);
            assert_eq!(record["published_by"], json!(key_id));
            assert_eq!(record["actor"]["id"], format!("{tenant}-user"));
        }
    }

    // The same batch again: every event a duplicate of its own tenant's record.
    let again = server.post_json("/api/v1/events", Some(&key), &batch).await;
    again.expect(200, None);
    let again: veritrail_api::MixedIngestResponse =
        serde_json::from_value(again.json()).expect("a mixed reply");
    assert!(again.receipts.iter().all(|receipt| receipt.duplicate));
    assert_eq!(
        again
            .receipts
            .iter()
            .map(|receipt| (receipt.tenant.clone().expect("tenant"), receipt.seq))
            .collect::<Vec<_>>(),
        want
    );

    // One invalid event (the third) refuses the whole request: nothing in either log.
    let before = (
        log_size(&server, "cust-a").await,
        log_size(&server, "cust-b").await,
    );
    let bad = json!([ev("cust-a", "f1"), ev("cust-b", "f1"), {"tenant": "cust-a", "type": ""}]);
    let refused = server.post_json("/api/v1/events", Some(&key), &bad).await;
    refused.expect(400, Some("invalid_events"));
    assert_eq!(refused.json()["error"]["events"][0]["index"], 2);
    // An event that names no tenant; one with a malformed tenant id.
    for (batch, index) in [
        (
            json!([ev("cust-a", "g1"), {"id": "g2", "type": "user.login"}]),
            1,
        ),
        (json!([ev("cust-a", "g1"), ev("Not A Tenant", "g3")]), 1),
    ] {
        let refused = server.post_json("/api/v1/events", Some(&key), &batch).await;
        refused.expect(400, Some("invalid_events"));
        let event = &refused.json()["error"]["events"][0];
        assert_eq!(event["index"], index);
        assert_eq!(event["errors"][0]["field"], "tenant");
    }
    // A tenant that does not exist, with a key that may not create tenants: 404, nothing.
    let unknown = json!([ev("cust-a", "h1"), ev("cust-zz", "h1")]);
    let refused = server
        .post_json("/api/v1/events", Some(&key), &unknown)
        .await;
    refused.expect(404, Some("not_found"));
    assert!(refused.text().contains("cust-zz"));
    // The catalog's refusal of one tenant's event refuses every tenant's, by request index.
    server
        .client(&owner_b)
        .put_catalog_settings(&veritrail_api::CatalogSettingsBody {
            policy: "strict".to_owned(),
            adopted: Vec::new(),
        })
        .await
        .expect("strict b");
    let strict = json!([ev("cust-a", "i1"), ev("cust-b", "i1")]);
    let refused = server
        .post_json("/api/v1/events", Some(&key), &strict)
        .await;
    refused.expect(422, Some("rejected_by_catalog"));
    assert_eq!(refused.json()["error"]["events"][0]["index"], 1);
    let after = (
        log_size(&server, "cust-a").await,
        log_size(&server, "cust-b").await,
    );
    // Only the settings change's audit event was added to b.
    assert_eq!(
        after,
        (before.0, before.1 + 1),
        "nothing of a refused request is stored"
    );
    assert!(
        server.admin().tenant("cust-zz").await.is_err(),
        "not created"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_created_once_on_concurrent_first_writes_with_the_configured_defaults() {
    let server = TestServer::start_with(|config| {
        config.tenants.default_catalogs = vec!["vgs-user-actions".to_owned()];
    })
    .await;
    let (key, key_id) = service_key(
        &server,
        json!({"role": "service_publisher", "tenant_prefix": "new-", "create_tenants": true}),
    )
    .await;
    let tenants: Vec<String> = (0..6).map(|i| format!("new-{i}")).collect();
    // Eight writers at once, each naming every new tenant (and the path route too).
    let mut writers = Vec::new();
    for writer in 0..8 {
        let batch: Vec<Value> = tenants
            .iter()
            .map(|tenant| ev(tenant, &format!("w{writer}")))
            .collect();
        let http = server.http();
        let url = format!("{}/api/v1/events", server.url);
        let single = format!("{}/api/v1/tenants/new-0/events", server.url);
        let key = key.clone();
        writers.push(tokio::spawn(async move {
            let mixed = http
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&batch).expect("json"))
                .send()
                .await
                .expect("send");
            let one = http
                .post(&single)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(json!({"id": format!("p{writer}"), "type": "user.login"}).to_string())
                .send()
                .await
                .expect("send");
            (mixed.status().as_u16(), one.status().as_u16())
        }));
    }
    for writer in writers {
        assert_eq!(writer.await.expect("writer"), (200, 200));
    }
    let (reader, _) = service_key(&server, json!({"role": "service_embedder"})).await;
    for tenant in &tenants {
        let size = log_size(&server, tenant).await;
        let extra = if tenant == "new-0" { 8 } else { 0 };
        assert_eq!(
            size,
            1 + 8 + extra,
            "{tenant}: its creation and every event"
        );
        // The first record is the creation, by the service key; there is one.
        let owner = server.key(tenant, Role::Owner).await;
        let viewer = server.client(&owner);
        wait_indexed(&viewer, log_size(&server, tenant).await).await;
        let records = all_records(&viewer).await;
        let first = records
            .iter()
            .find(|record| record["seq"] == 0)
            .expect("seq 0");
        assert_eq!(first["type"], "veritrail.tenant.created");
        assert_eq!(first["actor"], json!({"id": key_id, "type": "service_key"}));
        assert_eq!(
            records
                .iter()
                .filter(|record| record["type"] == "veritrail.tenant.created")
                .count(),
            1
        );
        // The configured defaults were adopted.
        let catalog = server
            .get(&format!("/api/v1/tenants/{tenant}/catalog"), Some(&reader))
            .await;
        catalog.expect(200, None);
        assert_eq!(catalog.json()["adopted"], json!(["vgs-user-actions"]));
    }
    // Outside the prefix: 403, and nothing is created.
    let reply = server
        .post_json("/api/v1/events", Some(&key), &json!([ev("other-1", "x")]))
        .await;
    reply.expect(403, Some("forbidden"));
    assert!(server.admin().tenant("other-1").await.is_err());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_limit_a_key_to_its_tenants_and_a_tenant_key_to_its_own() {
    let server = TestServer::start().await;
    for tenant in ["acme", "globex", "initech"] {
        server.tenant(tenant).await;
    }
    let (listed, _) = service_key(
        &server,
        json!({"role": "service_publisher", "tenants": ["acme", "globex"]}),
    )
    .await;
    let one = |tenant: &str| json!({"id": format!("{tenant}-1"), "type": "user.login"});
    for (tenant, status) in [
        ("acme", 200),
        ("globex", 200),
        ("initech", 403),
        ("nobody", 403),
    ] {
        let reply = server
            .post_json(
                &format!("/api/v1/tenants/{tenant}/events"),
                Some(&listed),
                &one(tenant),
            )
            .await;
        assert_eq!(reply.status, status, "{tenant}: {}", reply.text());
    }
    // A malformed tenant id is no tenant (404), after what the caller may never do (403).
    let (embedder, _) = service_key(&server, json!({"role": "service_embedder"})).await;
    let acme_publisher = server.key("acme", Role::Publisher).await;
    for (key, status) in [
        (&listed, 404),
        (&embedder, 403),
        (&acme_publisher, 403),
        (&server.admin_key, 403),
    ] {
        let reply = server
            .post_json(
                "/api/v1/tenants/Not%20A%20Tenant/events",
                Some(key),
                &one("m"),
            )
            .await;
        assert_eq!(reply.status, status, "{}", reply.text());
    }
    // A mixed batch with one tenant outside the list is refused whole.
    let before = log_size(&server, "acme").await;
    let reply = server
        .post_json(
            "/api/v1/events",
            Some(&listed),
            &json!([ev("acme", "m1"), ev("initech", "m1")]),
        )
        .await;
    reply.expect(403, Some("forbidden"));
    assert!(reply.text().contains("initech"));
    assert_eq!(log_size(&server, "acme").await, before);
    // An event may not name another tenant than the path's.
    let reply = server
        .post_json(
            "/api/v1/tenants/acme/events",
            Some(&listed),
            &ev("globex", "n1"),
        )
        .await;
    reply.expect(403, Some("forbidden"));
    // A tenant key names only its own tenant, in the body or the path.
    let publisher = server.key("acme", Role::Publisher).await;
    server
        .post_json("/api/v1/events", Some(&publisher), &ev("acme", "own"))
        .await
        .expect(200, None);
    server
        .post_json("/api/v1/events", Some(&publisher), &ev("globex", "theirs"))
        .await
        .expect(403, Some("forbidden"));
    server
        .post_json(
            "/api/v1/tenants/acme/events",
            Some(&publisher),
            &one("acme2"),
        )
        .await
        .expect(200, None);
    server
        .post_json("/api/v1/tenants/globex/events", Some(&publisher), &one("x"))
        .await
        .expect(403, Some("forbidden"));
    // Records a tenant key sends name no service key.
    let record = server
        .get(
            "/api/v1/events?id=own",
            Some(&server.key("acme", Role::Viewer).await),
        )
        .await
        .json();
    assert!(
        record["events"][0].get("published_by").is_none(),
        "{record}"
    );
    // A service key reads no events and manages no keys.
    for path in ["/api/v1/events", "/api/v1/keys", "/api/v1/log/checkpoint"] {
        server
            .get(path, Some(&listed))
            .await
            .expect(403, Some("forbidden"));
    }
    // Creating keys: both a list and a prefix, a bad id, an embedder that creates tenants.
    for body in [
        json!({"role": "service_publisher", "tenants": ["a"], "tenant_prefix": "b"}),
        json!({"role": "service_publisher", "tenants": ["Bad Id"]}),
        json!({"role": "service_publisher", "tenant_prefix": "UPPER"}),
        json!({"role": "service_embedder", "create_tenants": true}),
    ] {
        server
            .post_json("/api/v1/service-keys", Some(&server.admin_key), &body)
            .await
            .expect(400, Some("invalid_parameter"));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_noisy_tenant_is_limited_without_using_up_the_key_for_the_others() {
    let server = TestServer::start_with(|config| {
        config.rate_limit.tenant_events_per_second = 10;
        config.rate_limit.tenant_events_burst = 50;
    })
    .await;
    server.tenant("noisy").await;
    server.tenant("quiet").await;
    let (key, _) = service_key(&server, json!({"role": "service_publisher"})).await;
    let batch = |tenant: &str, from: usize, n: usize| -> Value {
        Value::Array(
            (from..from + n)
                .map(|i| ev(tenant, &format!("{tenant}-{i}")))
                .collect(),
        )
    };
    server
        .post_json("/api/v1/events", Some(&key), &batch("noisy", 0, 50))
        .await
        .expect(200, None);
    let before = log_size(&server, "quiet").await;
    let limited: Reply = server
        .post_json(
            "/api/v1/events",
            Some(&key),
            &Value::Array(
                [batch("quiet", 0, 2), batch("noisy", 50, 20)]
                    .into_iter()
                    .flat_map(|part| part.as_array().cloned().unwrap_or_default())
                    .collect(),
            ),
        )
        .await;
    limited.expect(429, Some("rate_limited"));
    assert!(
        limited.text().contains("tenant noisy"),
        "{}",
        limited.text()
    );
    assert!(limited.header("retry-after").is_some());
    assert_eq!(log_size(&server, "quiet").await, before, "all or nothing");
    // The quiet tenant, through the same key, is not held back.
    for round in 0..5 {
        server
            .post_json(
                "/api/v1/events",
                Some(&key),
                &batch("quiet", 10 * round, 10),
            )
            .await
            .expect(200, None);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_embedder_mints_any_tenants_view_and_revoking_it_ends_everything_it_made() {
    let server = TestServer::start().await;
    let owner = server.tenant("cust-a").await;
    let publisher = server.key("cust-a", Role::Publisher).await;
    let events: Vec<Value> = ["alice", "bob"]
        .iter()
        .map(|who| json!({"id": format!("{who}-1"), "type": "user.login", "actor": {"id": who}}))
        .collect();
    server
        .post_json("/api/v1/events", Some(&publisher), &json!(events))
        .await
        .expect(200, None);
    let (embedder, embedder_id) = service_key(
        &server,
        json!({"role": "service_embedder", "tenant_prefix": "cust-"}),
    )
    .await;
    let minted = server
        .post_json(
            "/api/v1/tenants/cust-a/viewer-tokens",
            Some(&embedder),
            &json!({"actor": "alice", "ttl_seconds": 600}),
        )
        .await;
    minted.expect(201, None);
    let path = minted.json()["embed_path"]
        .as_str()
        .expect("path")
        .to_owned();
    let token_id = minted.json()["token_id"].as_str().expect("id").to_owned();
    wait_indexed(&server.client(&owner), log_size(&server, "cust-a").await).await;
    let page = server.get(&path, None).await;
    page.expect(200, None);
    assert!(page.text().contains("alice") && !page.text().contains("bob-1"));
    // Listed for the tenant, minted by the service key; its audit event names it.
    let listed = server
        .get("/api/v1/tenants/cust-a/viewer-tokens", Some(&embedder))
        .await
        .json();
    assert_eq!(listed["tokens"][0]["token_id"], json!(token_id));
    assert_eq!(listed["tokens"][0]["created_by"], json!(embedder_id));
    let records = all_records(&server.client(&owner)).await;
    let minted_event = records
        .iter()
        .find(|record| record["type"] == "veritrail.viewer_token.minted")
        .expect("minted event");
    assert_eq!(
        minted_event["actor"],
        json!({"id": embedder_id, "type": "service_key"})
    );
    // Its reads are recorded too, once per read and minute.
    let reads: Vec<&Value> = records
        .iter()
        .filter(|record| record["type"] == "veritrail.service_key.read")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["details"]["read"], "viewer_tokens");
    assert_eq!(reads[0]["actor"]["id"], json!(embedder_id));
    // Two listings back to back (the first may open a new minute): the second adds nothing.
    server
        .get("/api/v1/tenants/cust-a/viewer-tokens", Some(&embedder))
        .await
        .expect(200, None);
    let size = log_size(&server, "cust-a").await;
    server
        .get("/api/v1/tenants/cust-a/viewer-tokens", Some(&embedder))
        .await
        .expect(200, None);
    assert_eq!(
        log_size(&server, "cust-a").await,
        size,
        "a second listing in the same minute adds nothing"
    );
    // Not for a tenant outside its prefix, nor one that does not exist.
    server
        .post_json(
            "/api/v1/tenants/other/viewer-tokens",
            Some(&embedder),
            &json!({}),
        )
        .await
        .expect(403, Some("forbidden"));
    server
        .post_json(
            "/api/v1/tenants/cust-zz/viewer-tokens",
            Some(&embedder),
            &json!({}),
        )
        .await
        .expect(404, Some("not_found"));
    // Revoking the service key: it authenticates nothing, and its token stops working.
    let revoked = server
        .send(server.request(
            reqwest::Method::DELETE,
            &format!("/api/v1/service-keys/{embedder_id}"),
            Some(&server.admin_key),
        ))
        .await;
    revoked.expect(200, None);
    assert!(revoked.json()["revoked_at"].is_string());
    server
        .get("/api/v1/me", Some(&embedder))
        .await
        .expect(401, Some("unauthenticated"));
    let page = server.get(&path, None).await;
    assert!(
        page.status >= 400,
        "the token ends with its key: {}",
        page.status
    );
    let keys = server
        .get("/api/v1/service-keys", Some(&server.admin_key))
        .await
        .json();
    assert!(
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|key| key.get("secret").is_none() && key.get("secret_sha256").is_none())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_sends_for_any_tenant_and_embeds_its_view_with_service_keys() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let publisher = admin
        .create_service_key(&veritrail_api::CreateServiceKey {
            role: veritrail_api::ServiceRole::ServicePublisher,
            name: Some("backend".to_owned()),
            tenants: None,
            tenant_prefix: Some("org-".to_owned()),
            create_tenants: true,
        })
        .await
        .expect("publisher");
    let embedder = admin
        .create_service_key(&veritrail_api::CreateServiceKey {
            role: veritrail_api::ServiceRole::ServiceEmbedder,
            name: None,
            tenants: None,
            tenant_prefix: Some("org-".to_owned()),
            create_tenants: false,
        })
        .await
        .expect("embedder");
    let service = server.client(&publisher.secret);
    let events: Vec<veritrail_api::EventInput> = (0..4)
        .map(|i| {
            serde_json::from_value(ev(&format!("org-{}", i % 2), &format!("s{i}"))).expect("event")
        })
        .collect();
    let mixed = service
        .send_mixed(&events, veritrail_client::IngestOptions::default())
        .await
        .expect("mixed");
    assert_eq!(mixed.logs.len(), 2);
    let one = service
        .for_tenant("org-1")
        .send(&events[1..2], veritrail_client::IngestOptions::default())
        .await
        .expect("one tenant");
    assert!(one.receipts[0].duplicate, "the same id in the same tenant");
    let unnamed: Vec<veritrail_api::EventInput> =
        vec![serde_json::from_value(json!({"id": "u", "type": "user.login"})).expect("event")];
    assert!(matches!(
        service
            .send_mixed(&unnamed, veritrail_client::IngestOptions::default())
            .await,
        Err(veritrail_client::ClientError::InvalidRequest(_))
    ));
    let embed = server.client(&embedder.secret).for_tenant("org-0");
    assert_eq!(embed.acting_tenant(), Some("org-0"));
    let token = embed
        .mint_viewer_token(&veritrail_api::ViewerTokenInput {
            actor: Some("org-0-user".to_owned()),
            ..Default::default()
        })
        .await
        .expect("token");
    assert_eq!(embed.viewer_tokens().await.expect("list").tokens.len(), 1);
    assert_eq!(embed.catalog(None).await.expect("catalog").tenant, "org-0");
    embed
        .revoke_viewer_token(&token.token_id)
        .await
        .expect("revoked");
    let me = server.client(&embedder.secret).me().await.expect("me");
    assert_eq!(
        me.service.expect("service").role,
        veritrail_api::ServiceRole::ServiceEmbedder
    );
    let keys = admin.service_keys().await.expect("keys").keys;
    assert_eq!(keys.len(), 2);
    let revoked = admin
        .revoke_service_key(&publisher.key.id)
        .await
        .expect("revoked");
    assert!(revoked.revoked_at.is_some());
    assert!(service.me().await.is_err());
    server.stop().await;
}
