//! Catalogs over HTTP: each shipped product catalog loads into a tenant, every one of its
//! types is ingested under the strict policy and found by type, code and category; the
//! strict policy refuses what it should, by index and field; the lenient one marks what no
//! catalog defines; changes are versioned audit events; the service's own events use the
//! built-in catalog; a shared catalog adopted under the id it had before it was renamed
//! keeps working and shows under its current id.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};
use veritrail_api::{CountParams, Role, SearchParams};
use veritrail_client::{IngestOptions, Wait};

use crate::support::{TestServer, event};

/// The repository's catalog files.
fn catalog_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../catalogs")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The catalogs modelled on other products' documents, as shipped in `catalogs/`.
const PRODUCT_CATALOGS: [&str; 5] = [
    "perimeter81-monitor-activity",
    "privx-audit-events",
    "thru-mft-audit-api",
    "vgs-user-actions",
    "cerby-integration-activity",
];

async fn put_catalog(
    server: &TestServer,
    key: &str,
    content_type: &str,
    body: &str,
) -> crate::support::Reply {
    server
        .send(
            server
                .request(Method::PUT, "/api/v1/catalog", Some(key))
                .header("content-type", content_type)
                .body(body.to_owned()),
        )
        .await
}

async fn put_settings(server: &TestServer, key: &str, settings: &Value) -> crate::support::Reply {
    server
        .send(
            server
                .request(Method::PUT, "/api/v1/catalog/settings", Some(key))
                .header("content-type", "application/json")
                .body(settings.to_string()),
        )
        .await
}

/// A `details` object with every field the entry declares, of its type.
fn details_for(entry: &Value) -> Value {
    let mut details = serde_json::Map::new();
    for field in entry["details"].as_array().into_iter().flatten() {
        let value = match field["type"].as_str() {
            Some("string") => json!("value"),
            Some("integer") => json!(7),
            Some("number") => json!(2.5),
            Some("boolean") => json!(true),
            Some("object") => json!({"k": "v"}),
            Some("array") => json!(["a"]),
            other => panic!("field type {other:?}"),
        };
        details.insert(field["name"].as_str().expect("name").to_owned(), value);
    }
    Value::Object(details)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_product_catalog_loads_and_each_type_is_found_by_type_code_and_category() {
    let server = TestServer::start().await;
    for (n, catalog) in PRODUCT_CATALOGS.iter().enumerate() {
        let tenant = format!("product{n}");
        let owner = server.tenant(&tenant).await;
        let publisher = server.key(&tenant, Role::Publisher).await;
        let viewer = server.client(&server.key(&tenant, Role::Viewer).await);
        let yaml = catalog_file(catalog);
        let stored = put_catalog(&server, &owner, "application/yaml", &yaml).await;
        stored.expect(200, None);
        let doc = server.get("/api/v1/catalog", Some(&owner)).await.json();
        let entries = doc["catalog"]["events"]
            .as_array()
            .expect("entries")
            .clone();
        assert_eq!(stored.json()["entries"], json!(entries.len()), "{catalog}");
        assert_eq!(doc["version"], json!(1));
        put_settings(&server, &owner, &json!({"policy": "strict"}))
            .await
            .expect(200, None);

        // One event of every type, accepted under the strict policy.
        let events: Vec<_> = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                event(
                    &format!("{catalog}-{i}"),
                    entry["type"].as_str().expect("type"),
                    json!({"actor": {"email": "ann@example.com"}, "details": details_for(entry)}),
                )
            })
            .collect();
        server
            .client(&publisher)
            .send(
                &events,
                IngestOptions {
                    wait: Wait::Searchable,
                    proof: false,
                },
            )
            .await
            .unwrap_or_else(|err| panic!("{catalog}: {err}"));

        let mut per_category: BTreeMap<String, u64> = BTreeMap::new();
        for entry in &entries {
            let event_type = entry["type"].as_str().expect("type");
            let found = viewer
                .search(&SearchParams {
                    event_type: Some(event_type.to_owned()),
                    ..SearchParams::default()
                })
                .await
                .expect("by type");
            assert_eq!(found.events.len(), 1, "{catalog} {event_type}");
            let record = &found.events[0];
            assert_eq!(record["name"], entry["name"], "{catalog} {event_type}");
            assert_eq!(record["category"], entry["category"]);
            assert_eq!(record.get("code"), entry.get("code"));
            assert_eq!(record.get("description"), entry.get("description"));
            if entry.get("summary").is_some() {
                assert!(
                    record["summary"].is_string(),
                    "{catalog} {event_type}: no summary"
                );
            }
            if let Some(code) = entry.get("code") {
                let by_code = viewer
                    .search(&SearchParams {
                        code: Some(code.to_string()),
                        ..SearchParams::default()
                    })
                    .await
                    .expect("by code");
                assert_eq!(by_code.events.len(), 1, "{catalog} code {code}");
                assert_eq!(by_code.events[0]["type"], json!(event_type));
            }
            let by_name = viewer
                .count(&CountParams {
                    name: entry["name"].as_str().map(str::to_owned),
                    ..CountParams::default()
                })
                .await
                .expect("by name");
            assert!(by_name.total >= 1, "{catalog} name {}", entry["name"]);
            *per_category
                .entry(entry["category"].as_str().expect("category").to_owned())
                .or_default() += 1;
        }
        for (category, n) in &per_category {
            let counted = viewer
                .count(&CountParams {
                    category: Some(category.clone()),
                    ..CountParams::default()
                })
                .await
                .expect("by category");
            assert_eq!(counted.total, *n, "{catalog} category {category}");
        }
        // The drop-down endpoint agrees.
        let categories = server
            .get("/api/v1/catalog/categories", Some(&owner))
            .await
            .json();
        for (category, n) in &per_category {
            let listed = categories["categories"]
                .as_array()
                .expect("categories")
                .iter()
                .find(|c| c["category"] == json!(category))
                .unwrap_or_else(|| panic!("{catalog}: {category} not listed"));
            assert_eq!(listed["count"], json!(n), "{catalog} {category}");
        }
    }
    // Perimeter 81's dotted codes: a prefix finds the family.
    let viewer = server.client(&server.key("product0", Role::Viewer).await);
    let logins = viewer
        .count(&CountParams {
            event_type: Some("api.activity.login.*".into()),
            ..CountParams::default()
        })
        .await
        .expect("prefix");
    assert_eq!(logins.total, 2, "login.success and login.fail");
    let authentication = viewer
        .count(&CountParams {
            category: Some("authentication".into()),
            ..CountParams::default()
        })
        .await
        .expect("category, any case");
    assert!(authentication.total >= 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_refuses_by_index_and_field_lenient_marks_uncatalogued() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    put_catalog(
        &server,
        &owner,
        "application/yaml",
        &catalog_file("vgs-user-actions"),
    )
    .await
    .expect(200, None);
    put_settings(&server, &owner, &json!({"policy": "strict"}))
        .await
        .expect(200, None);
    let size = |server: &TestServer| {
        let admin = server.admin();
        async move { admin.tenant("acme").await.expect("tenant").log_size }
    };
    let before = size(&server).await;
    let batch = json!([
        {"type": "user.logged_in", "details": {"user_email": "a@example.com", "user_ip": "192.0.2.1"}},
        {"type": "user.vanished"},
        {"type": "user.logged_in", "details": {"user_ip": 17}},
        {"type": "veritrail.key.created"}
    ]);
    let reply = server
        .post_json("/api/v1/events", Some(&publisher), &batch)
        .await;
    reply.expect(422, Some("rejected_by_catalog"));
    let body = reply.json();
    let refused: Vec<(u64, String, String)> = body["error"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .flat_map(|event| {
            event["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(move |error| {
                    (
                        event["index"].as_u64().expect("index"),
                        error["field"].as_str().expect("field").to_owned(),
                        error["code"].as_str().expect("code").to_owned(),
                    )
                })
        })
        .collect();
    let want = [
        (1, "type", "unknown_type"),
        (2, "details.user_email", "required"),
        (2, "details.user_ip", "invalid_type"),
        (3, "type", "reserved"),
    ];
    let want: Vec<(u64, String, String)> = want
        .iter()
        .map(|(i, f, c)| (*i, (*f).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(refused, want, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("nothing was stored")
    );
    assert_eq!(
        size(&server).await,
        before,
        "nothing of a refused request is stored"
    );

    // Lenient: the unknown type is stored, marked uncatalogued and findable as such; the
    // reserved prefix stays refused.
    put_settings(&server, &owner, &json!({"policy": "lenient"}))
        .await
        .expect(200, None);
    server
        .post_json(
            "/api/v1/events?wait=searchable",
            Some(&publisher),
            &json!({"type": "user.vanished"}),
        )
        .await
        .expect(200, None);
    // The reserved prefix in any case: `Veritrail.key.created` is no way around it.
    for spoof in [
        "veritrail.tenant.created",
        "Veritrail.key.created",
        "VERITRAIL.key.revoked",
        "vEriTrail.anything",
    ] {
        let reply = server
            .post_json("/api/v1/events", Some(&publisher), &json!({"type": spoof}))
            .await;
        reply.expect(422, Some("rejected_by_catalog"));
        assert_eq!(
            reply.json()["error"]["events"][0]["errors"][0]["code"],
            json!("reserved"),
            "{spoof}"
        );
    }
    let viewer = server.client(&server.key("acme", Role::Viewer).await);
    let marked = viewer
        .search(&SearchParams {
            category: Some("uncatalogued".into()),
            ..SearchParams::default()
        })
        .await
        .expect("uncatalogued");
    assert_eq!(marked.events.len(), 1);
    assert_eq!(marked.events[0]["type"], json!("user.vanished"));
    assert_eq!(marked.events[0]["category"], json!("Uncatalogued"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_are_versioned_audited_and_checked_whole() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let viewer = server.key("acme", Role::Viewer).await;
    let publisher = server.key("acme", Role::Publisher).await;
    let v1 = json!({"format": "veritrail-catalog/v1", "id": "acme", "events": [
        {"type": "doc.shared", "code": 1, "name": "Document shared", "category": "Documents",
         "summary": "{actor.email} shared {target.name}"}
    ]});
    put_catalog(&server, &owner, "application/json", &v1.to_string())
        .await
        .expect(200, None);
    // One type at a time.
    server
        .send(
            server
                .request(Method::PUT, "/api/v1/catalog/types/doc.deleted", Some(&owner))
                .header("content-type", "application/json")
                .body(json!({"type": "doc.deleted", "code": 2, "name": "Document deleted", "category": "Documents", "severity": "high"}).to_string()),
        )
        .await
        .expect(200, None);
    let entry = server
        .get("/api/v1/catalog/types/doc.deleted", Some(&viewer))
        .await
        .json();
    assert_eq!(entry["catalog"], json!("acme"));
    assert_eq!(entry["entry"]["severity"], json!("high"));
    assert!(entry.get("ocsf").is_none(), "no default for doc.*: {entry}");
    let builtin = server
        .get("/api/v1/catalog/types/veritrail.key.created", Some(&viewer))
        .await
        .json();
    assert_eq!(builtin["catalog"], json!("veritrail"));
    assert_eq!(builtin["entry"]["code"], json!(9010));
    server
        .send(server.request(
            Method::DELETE,
            "/api/v1/catalog/types/doc.shared",
            Some(&owner),
        ))
        .await
        .expect(200, None);
    let latest = server.get("/api/v1/catalog", Some(&viewer)).await.json();
    assert_eq!(latest["version"], json!(3));
    let types: Vec<&str> = latest["catalog"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["doc.deleted"]);
    // Older versions stay readable; YAML round-trips.
    let first = server
        .get("/api/v1/catalog?version=1", Some(&viewer))
        .await
        .json();
    assert_eq!(first["catalog"]["events"][0]["type"], json!("doc.shared"));
    server
        .get("/api/v1/catalog?version=9", Some(&viewer))
        .await
        .expect(404, Some("not_found"));
    let yaml = server
        .get("/api/v1/catalog?format=yaml", Some(&viewer))
        .await;
    yaml.expect(200, None);
    assert_eq!(
        yaml.header("content-type").as_deref(),
        Some("application/yaml")
    );
    assert!(yaml.text().contains("type: doc.deleted"), "{}", yaml.text());

    // A document with problems changes nothing and names every one.
    let log_before = server
        .admin()
        .tenant("acme")
        .await
        .expect("tenant")
        .log_size;
    let bad = json!({"format": "veritrail-catalog/v1", "id": "acme", "events": [
        {"type": "a.b", "code": 5, "name": "A", "category": "C"},
        {"type": "a.b", "code": 5, "name": "B", "category": "C", "summary": "{nope}"},
        {"type": "veritrail.key.created", "name": "Spoof", "category": "C"},
        {"type": "Veritrail.Key.created", "name": "Spoof", "category": "C"}
    ]});
    let reply = put_catalog(&server, &owner, "application/json", &bad.to_string()).await;
    reply.expect(422, Some("invalid_catalog"));
    let fields: Vec<String> = reply.json()["error"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["field"].as_str().expect("field"),
                e["code"].as_str().expect("code")
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            "events[1].type duplicate",
            "events[1].code duplicate",
            "events[1].summary invalid_format",
            "events[2].type reserved",
            "events[3].type reserved"
        ]
    );
    put_catalog(&server, &owner, "application/json", "{\"format\": 1}")
        .await
        .expect(422, Some("invalid_catalog"));
    put_catalog(&server, &owner, "text/csv", "a,b")
        .await
        .expect(415, Some("unsupported_media_type"));
    put_settings(&server, &owner, &json!({"policy": "paranoid"}))
        .await
        .expect(422, Some("invalid_catalog"));
    put_settings(
        &server,
        &owner,
        &json!({"policy": "strict", "adopted": ["no-such"]}),
    )
    .await
    .expect(422, Some("invalid_catalog"));
    assert_eq!(
        server
            .admin()
            .tenant("acme")
            .await
            .expect("tenant")
            .log_size,
        log_before,
        "refused changes write nothing"
    );
    assert_eq!(
        server.get("/api/v1/catalog", Some(&viewer)).await.json()["version"],
        json!(3)
    );

    // Adopting a shared catalog makes its types known.
    put_settings(
        &server,
        &owner,
        &json!({"policy": "strict", "adopted": ["thru-mft-audit-api"]}),
    )
    .await
    .expect(200, None);
    let shared = server
        .get("/api/v1/catalog/shared", Some(&viewer))
        .await
        .json();
    assert!(shared["catalogs"].as_array().expect("list").len() >= 6);
    server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!({"type": "user_action.login_failed"}),
        )
        .await
        .expect(200, None);

    // Every change is an audit event of the built-in catalog, with its version.
    let log = crate::support::all_records(&server.client(&viewer)).await;
    let changes: Vec<(Value, Value)> = log
        .iter()
        .filter(|r| r["type"] == json!("veritrail.catalog.changed"))
        .map(|r| {
            (
                r["details"]["version"].clone(),
                r["details"]["change"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (json!(1), json!("imported")),
            (json!(2), json!("entry_updated")),
            (json!(3), json!("entry_deleted"))
        ]
    );
    let settings: Vec<&Value> = log
        .iter()
        .filter(|r| r["type"] == json!("veritrail.tenant.settings_changed"))
        .collect();
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0]["category"], json!("Tenants"));
    let adopted = log
        .iter()
        .find(|r| r["type"] == json!("user_action.login_failed"))
        .expect("adopted type stored");
    assert_eq!(adopted["code"], json!(202));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_events_use_the_builtin_catalog() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let viewer = server.key("acme", Role::Viewer).await;
    let log = crate::support::all_records(&server.client(&viewer)).await;
    let created = log
        .iter()
        .find(|r| r["type"] == json!("veritrail.tenant.created"))
        .expect("tenant created");
    assert_eq!(created["code"], json!(9000));
    assert_eq!(created["name"], json!("Tenant created"));
    assert_eq!(created["category"], json!("Tenants"));
    assert!(created["description"].is_string());
    assert!(created["severity"].is_string());
    let key = log
        .iter()
        .find(|r| r["type"] == json!("veritrail.key.created"))
        .expect("key created");
    let summary = key["summary"].as_str().expect("summary");
    assert!(
        summary.contains(key["details"]["key_id"].as_str().expect("key id")),
        "{summary}"
    );
    assert!(!summary.contains('{'), "rendered: {summary}");
    drop(owner);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_catalog_adopted_under_its_old_id_works_and_shows_under_its_new_one() {
    // A tenant that adopted `seed-002-audit-api` before the catalogs were named after their
    // products: its settings in `control.redb` still hold the old id.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path().to_owned(), |_| {}).await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let viewer = server.key("acme", Role::Viewer).await;
    server.stop().await;
    {
        let table: redb::TableDefinition<&str, &[u8]> =
            redb::TableDefinition::new("catalog_settings");
        let db = redb::Database::open(dir.path().join("control.redb")).expect("control.redb");
        let tx = db.begin_write().expect("write");
        tx.open_table(table)
            .expect("table")
            .insert(
                "acme",
                br#"{"policy": "strict", "adopted": ["seed-002-audit-api"]}"#.as_slice(),
            )
            .expect("insert");
        tx.commit().expect("commit");
    }
    let server = TestServer::start_in(dir.path().to_owned(), |_| {}).await;

    // Shown under the new id, and its types are known to the strict policy.
    let settings = server.get("/api/v1/catalog/settings", Some(&viewer)).await;
    settings.expect(200, None);
    assert_eq!(
        settings.json(),
        json!({"policy": "strict", "adopted": ["thru-mft-audit-api"]})
    );
    assert_eq!(
        server.get("/api/v1/catalog", Some(&viewer)).await.json()["adopted"],
        json!(["thru-mft-audit-api"])
    );
    server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!({"type": "user_action.login_failed"}),
        )
        .await
        .expect(200, None);
    let log = crate::support::all_records(&server.client(&viewer)).await;
    let stored = log
        .iter()
        .find(|r| r["type"] == json!("user_action.login_failed"))
        .expect("stored");
    assert_eq!(stored["code"], json!(202));

    // The old id names the catalog in requests; listings give only the new ids.
    let by_old = server
        .get("/api/v1/catalog/shared/seed-002-audit-api", Some(&viewer))
        .await;
    by_old.expect(200, None);
    assert_eq!(by_old.json()["id"], json!("thru-mft-audit-api"));
    let listed = server
        .get("/api/v1/catalog/shared", Some(&viewer))
        .await
        .json();
    let ids: Vec<&str> = listed["catalogs"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "cerby-integration-activity",
            "perimeter81-monitor-activity",
            "privx-audit-events",
            "thru-mft-audit-api",
            "veritrail",
            "vgs-user-actions"
        ]
    );

    // Adopting by an old id is accepted, and answered with the current id; an old and a
    // new id of one catalog count once.
    let answer = put_settings(
        &server,
        &owner,
        &json!({"policy": "lenient", "adopted": ["seed-003-user-actions", "vgs-user-actions", "seed-002-audit-api"]}),
    )
    .await;
    answer.expect(200, None);
    assert_eq!(
        answer.json()["adopted"],
        json!(["vgs-user-actions", "thru-mft-audit-api"])
    );
    assert_eq!(
        server
            .get("/api/v1/catalog/settings", Some(&viewer))
            .await
            .json()["adopted"],
        json!(["vgs-user-actions", "thru-mft-audit-api"])
    );
    server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!({"type": "user.mfa_deleted", "details": {"user_email": "a@example.com", "user_ip": "192.0.2.1"}}),
        )
        .await
        .expect(200, None);
    let log = crate::support::all_records(&server.client(&viewer)).await;
    let mfa = log
        .iter()
        .find(|r| r["type"] == json!("user.mfa_deleted"))
        .expect("stored");
    assert_eq!(mfa["category"], json!("User Management"));
    server.stop().await;
}
