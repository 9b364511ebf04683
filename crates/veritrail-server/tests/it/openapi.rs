//! The OpenAPI spec and Swagger UI at the paths Thru MFT's Audit API uses: the spec is OpenAPI 3, documents
//! exactly the routes the server mounts with their methods, each operation with the
//! statuses it can answer and the search and count parameters; the UI page and every
//! file it links are served from the binary, with no external URL.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::TestServer;

/// Every route of `routes::table`, with its method, and the statuses each operation is
/// seen to answer in this test suite (429 aside: see
/// `every_keyed_operation_documents_the_rate_limit`). The test checks that this list, the
/// router and the spec name the same operations.
const OPERATIONS: &[(&str, &str, &[u16])] = &[
    (
        "/api/v1/events",
        "post",
        &[200, 400, 401, 403, 404, 413, 415, 422],
    ),
    (
        "/api/v1/tenants/{tenant}/events",
        "post",
        &[200, 400, 401, 403, 404, 413, 415, 422],
    ),
    (
        "/api/v1/tenants/{tenant}/catalog",
        "get",
        &[200, 400, 401, 403, 404],
    ),
    (
        "/api/v1/tenants/{tenant}/viewer-tokens",
        "get",
        &[200, 401, 403, 404],
    ),
    (
        "/api/v1/tenants/{tenant}/viewer-tokens",
        "post",
        &[201, 400, 401, 403, 404, 422],
    ),
    (
        "/api/v1/tenants/{tenant}/viewer-tokens/{token_id}",
        "delete",
        &[204, 401, 403, 404],
    ),
    ("/api/v1/service-keys", "get", &[200, 401, 403]),
    ("/api/v1/service-keys", "post", &[201, 400, 401, 403, 409]),
    (
        "/api/v1/service-keys/{key_id}",
        "delete",
        &[200, 401, 403, 404],
    ),
    ("/api/v1/events", "get", &[200, 400, 401, 403]),
    ("/api/v1/events/count", "get", &[200, 400, 401, 403]),
    ("/api/v1/events/export", "get", &[200, 400, 401, 403, 429]),
    ("/api/v1/events/stream", "get", &[200, 400, 401, 403]),
    (
        "/api/v1/events/{seq}",
        "get",
        &[200, 400, 401, 403, 404, 410],
    ),
    ("/api/v1/log/checkpoint", "get", &[200, 401, 403, 404]),
    ("/api/v1/log/key", "get", &[200, 401, 403]),
    (
        "/api/v1/log/proof/inclusion",
        "get",
        &[200, 400, 401, 403, 404, 410],
    ),
    (
        "/api/v1/log/proof/consistency",
        "get",
        &[200, 400, 401, 403],
    ),
    ("/api/v1/log/export", "get", &[200, 400, 401, 403]),
    ("/api/v1/log/integrity", "get", &[200, 401, 403]),
    ("/api/v1/me", "get", &[200, 401]),
    ("/api/v1/keys", "get", &[200, 401, 403]),
    ("/api/v1/keys", "post", &[201, 400, 401, 403]),
    ("/api/v1/keys/{key_id}", "delete", &[200, 401, 403, 404]),
    ("/api/v1/tenants", "get", &[200, 401, 403]),
    ("/api/v1/tenants", "post", &[201, 400, 401, 403, 409]),
    ("/api/v1/tenants/{tenant}", "get", &[200, 401, 403, 404]),
    (
        "/api/v1/tenants/{tenant}/keys",
        "get",
        &[200, 401, 403, 404],
    ),
    (
        "/api/v1/tenants/{tenant}/keys",
        "post",
        &[201, 400, 401, 403, 404],
    ),
    (
        "/api/v1/tenants/{tenant}/keys/{key_id}",
        "delete",
        &[200, 401, 403, 404],
    ),
    ("/api/v1/catalog", "get", &[200, 400, 401, 403, 404]),
    ("/api/v1/catalog", "put", &[200, 401, 403, 415, 422]),
    (
        "/api/v1/catalog/types/{event_type}",
        "get",
        &[200, 401, 403, 404],
    ),
    (
        "/api/v1/catalog/types/{event_type}",
        "put",
        &[200, 401, 403, 422],
    ),
    (
        "/api/v1/catalog/types/{event_type}",
        "delete",
        &[200, 401, 403, 404],
    ),
    ("/api/v1/catalog/categories", "get", &[200, 401, 403]),
    ("/api/v1/catalog/settings", "get", &[200, 401, 403]),
    ("/api/v1/catalog/settings", "put", &[200, 401, 403, 422]),
    ("/api/v1/catalog/shared", "get", &[200, 401, 403]),
    (
        "/api/v1/catalog/shared/{catalog_id}",
        "get",
        &[200, 401, 403, 404],
    ),
    ("/api/v1/activity/settings", "get", &[200, 401, 403]),
    (
        "/api/v1/viewer-tokens",
        "post",
        &[201, 400, 401, 403, 415, 422],
    ),
    ("/api/v1/viewer-tokens", "get", &[200, 401, 403]),
    (
        "/api/v1/viewer-tokens/{token_id}",
        "delete",
        &[204, 401, 403, 404],
    ),
    (
        "/api/v1/activity/settings",
        "put",
        &[200, 400, 401, 403, 415],
    ),
    ("/api/v1/webhooks", "get", &[200, 401, 403]),
    (
        "/api/v1/webhooks",
        "post",
        &[201, 400, 401, 403, 409, 415, 422],
    ),
    (
        "/api/v1/webhooks/{webhook_id}",
        "get",
        &[200, 401, 403, 404],
    ),
    (
        "/api/v1/webhooks/{webhook_id}",
        "patch",
        &[200, 400, 401, 403, 404, 415, 422],
    ),
    (
        "/api/v1/webhooks/{webhook_id}",
        "delete",
        &[204, 401, 403, 404],
    ),
    (
        "/api/v1/webhooks/{webhook_id}/rotate",
        "post",
        &[200, 401, 403, 404, 415, 422],
    ),
    (
        "/api/v1/webhooks/{webhook_id}/attempts",
        "get",
        &[200, 400, 401, 403, 404],
    ),
    (
        "/api/v1/webhooks/{webhook_id}/redeliver",
        "post",
        &[202, 400, 401, 403, 404, 409, 415, 422],
    ),
    (
        "/api/v1/webhooks/{webhook_id}/ping",
        "post",
        &[200, 401, 403, 404],
    ),
    ("/api/v1/retention", "get", &[200, 401, 403]),
    ("/api/v1/retention", "put", &[200, 400, 401, 403]),
    ("/api/v1/retention", "delete", &[200, 401, 403]),
    ("/api/v1/retention/run", "post", &[200, 401, 403]),
    ("/api/v1/erasures", "post", &[200, 400, 401, 403, 409]),
    ("/api/v1/holds", "get", &[200, 401, 403]),
    ("/api/v1/holds", "post", &[201, 400, 401, 403, 409]),
    ("/api/v1/holds/{hold_id}", "delete", &[200, 401, 403, 404]),
    ("/healthz", "get", &[200]),
    ("/readyz", "get", &[200, 503]),
    ("/metrics", "get", &[200]),
];

const SEARCH_FILTERS: [&str; 12] = [
    "type",
    "category",
    "code",
    "name",
    "actor",
    "target",
    "outcome",
    "correlation_id",
    "id",
    "from",
    "to",
    "q",
];

async fn spec(server: &TestServer) -> Value {
    let reply = server.get("/api/audit/swagger/v1/swagger.json", None).await;
    reply.expect(200, None);
    assert!(
        reply
            .header("content-type")
            .expect("type")
            .starts_with("application/json")
    );
    reply.json()
}

fn query_params(operation: &Value) -> BTreeSet<String> {
    operation["parameters"]
        .as_array()
        .map(|params| {
            params
                .iter()
                .filter(|param| param["in"] == "query")
                .map(|param| param["name"].as_str().expect("name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_spec_documents_every_route_method_status_and_parameter() {
    let server = TestServer::start().await;
    let spec = spec(&server).await;
    assert!(
        spec["openapi"].as_str().expect("openapi").starts_with("3."),
        "{}",
        spec["openapi"]
    );
    assert!(spec["info"]["title"].is_string());
    assert!(spec["components"]["securitySchemes"]["api_key"].is_object());

    let methods = ["get", "post", "put", "patch", "delete", "head", "options"];
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            methods
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| (path.clone(), (*method).to_owned()))
        })
        .collect();
    // The router is built from `routes::table`: the spec documents exactly its routes,
    // and this test lists the statuses of each (a new route fails here until it does).
    let routed: BTreeSet<(String, String)> = veritrail_server::routes::route_list()
        .into_iter()
        .map(|(method, path)| (path.to_owned(), method.as_str().to_lowercase()))
        .collect();
    assert_eq!(documented, routed, "the spec and the router");
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(path, method, _)| ((*path).to_owned(), (*method).to_owned()))
        .collect();
    assert_eq!(routed, expected, "OPERATIONS lists every route");

    for (path, method, statuses) in OPERATIONS {
        let operation = &spec["paths"][*path][*method];
        let responses: BTreeSet<u16> = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has no responses"))
            .keys()
            .map(|status| status.parse().expect("a status"))
            .collect();
        for status in *statuses {
            assert!(
                responses.contains(status),
                "{method} {path} does not document {status}: {responses:?}"
            );
        }
        for status in &responses {
            assert!(
                operation["responses"][status.to_string()]["description"]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{method} {path} {status}: no description"
            );
        }
        // Keyed routes say so; the operations endpoints are open.
        let keyed = path.starts_with("/api/");
        assert_eq!(
            operation["security"].is_array(),
            keyed,
            "{method} {path} security"
        );
        // Path parameters are described.
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let params = operation["parameters"].as_array().expect("parameters");
                assert!(
                    params
                        .iter()
                        .any(|param| param["name"] == name && param["in"] == "path"),
                    "{method} {path}: {name}"
                );
            }
        }
    }

    let mut search: BTreeSet<String> = SEARCH_FILTERS.iter().map(|s| (*s).to_owned()).collect();
    let mut count = search.clone();
    search.extend(["order", "limit", "cursor"].map(str::to_owned));
    count.extend(["group_by", "interval"].map(str::to_owned));
    assert_eq!(
        query_params(&spec["paths"]["/api/v1/events"]["get"]),
        search
    );
    assert_eq!(
        query_params(&spec["paths"]["/api/v1/events/count"]["get"]),
        count
    );
    assert_eq!(
        query_params(&spec["paths"]["/api/v1/events"]["post"]),
        ["wait", "proof"].map(str::to_owned).into_iter().collect()
    );
    assert_eq!(
        query_params(&spec["paths"]["/api/v1/log/proof/inclusion"]["get"]),
        ["seq", "id", "tree_size"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );
    assert_eq!(
        query_params(&spec["paths"]["/api/v1/log/proof/consistency"]["get"]),
        ["from", "to"].map(str::to_owned).into_iter().collect()
    );
    // Every schema a response or body refers to exists.
    let text = spec.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().expect("name");
        assert!(
            spec["components"]["schemas"][name].is_object(),
            "missing schema {name}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn every_keyed_operation_documents_the_rate_limit() {
    let server = TestServer::start().await;
    let spec = spec(&server).await;
    let mut missing = Vec::new();
    for (path, method, _) in OPERATIONS {
        if path.starts_with("/api/")
            && spec["paths"][*path][*method]["responses"]
                .get("429")
                .is_none()
        {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "no 429 documented: {missing:?}");
    server.stop().await;
}

/// The values of `attribute="..."` in `html`.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"");
    html.split(needle.as_str())
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn swagger_ui_and_its_files_are_served_offline() {
    let server = TestServer::start().await;
    let page = server.get("/api/audit/swagger/", None).await;
    page.expect(200, None);
    assert!(
        page.header("content-type")
            .expect("type")
            .starts_with("text/html")
    );
    let html = page.text();
    assert!(html.to_lowercase().contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "{html}"
    );

    let links: Vec<String> = attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
        .filter(|link| !link.is_empty() && !link.starts_with('#') && !link.starts_with("data:"))
        .collect();
    assert!(links.iter().any(|l| l.ends_with(".js")), "{links:?}");
    assert!(links.iter().any(|l| l.ends_with(".css")), "{links:?}");
    let mut initializer = String::new();
    for link in &links {
        let path = if link.starts_with('/') {
            link.clone()
        } else {
            format!("/api/audit/swagger/{}", link.trim_start_matches("./"))
        };
        let reply = server.get(&path, None).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(!reply.body.is_empty(), "{path}");
        if path.ends_with(".js") {
            assert!(
                reply
                    .header("content-type")
                    .expect("type")
                    .contains("javascript"),
                "{path}"
            );
        }
        if path.ends_with(".css") {
            assert!(
                reply
                    .header("content-type")
                    .expect("type")
                    .starts_with("text/css"),
                "{path}"
            );
        }
        if path.contains("initializer") {
            initializer = reply.text();
        }
    }
    // The page loads the spec from this server.
    assert!(
        initializer.contains("/api/audit/swagger/v1/swagger.json"),
        "{initializer}"
    );
    assert!(!initializer.contains("petstore"), "{initializer}");
    server.stop().await;
}
