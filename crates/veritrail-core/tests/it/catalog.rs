//! Catalogs: documents checked whole with every problem by path, templates that render only
//! what the event holds, and the strict and lenient policies.

use std::sync::Arc;

use serde_json::json;
use veritrail_core::catalog::{
    Catalog, CatalogDoc, Catalogs, MISSING_VALUE, Policy, Template, UNCATALOGUED,
};
use veritrail_core::event::{Event, EventInput, Outcome};

fn doc(value: serde_json::Value) -> CatalogDoc {
    serde_json::from_value(value).expect("catalog document")
}

fn event(value: serde_json::Value) -> Event {
    let input: EventInput = serde_json::from_value(value).expect("event input");
    Event::parse(input).expect("valid event")
}

fn login_catalog() -> Catalog {
    Catalog::from_doc(&doc(json!({
        "format": "veritrail-catalog/v1",
        "id": "acme",
        "events": [
            {
                "type": "user.logged_in", "code": 100, "name": "User logged in",
                "category": "Authentication", "description": "A user logged in.",
                "severity": "info", "default_outcome": "success",
                "summary": "User \"{actor.email}\" logged in from {source.ip} ({details.method})",
                "details": [
                    {"name": "method", "type": "string", "required": true},
                    {"name": "attempts", "type": "integer"}
                ]
            },
            {"type": "user.logged_out", "code": 101, "name": "User logged out", "category": "Authentication"}
        ]
    })))
    .expect("valid catalog")
}

fn catalogs(policy: Policy) -> Catalogs {
    Catalogs {
        catalogs: vec![Arc::new(login_catalog())],
        policy,
    }
}

#[test]
fn every_problem_of_a_document_is_reported_by_path() {
    let errors = Catalog::from_doc(&doc(json!({
        "format": "veritrail-catalog/v2",
        "id": "Not Valid",
        "events": [
            {"type": "a.b", "code": 7, "name": "A", "category": "C"},
            {"type": "a.b", "code": 7, "name": "", "category": "uncatalogued", "severity": "urgent",
             "default_outcome": "maybe", "summary": "{actor.password}",
             "details": [{"name": "x", "type": "string"}, {"name": "x", "type": "integer"}]},
            {"type": "bad type!", "name": "B", "category": "C", "summary": "{unclosed"}
        ]
    })))
    .expect_err("invalid");
    let found: Vec<(String, &str)> = errors
        .iter()
        .map(|error| (error.field.clone(), error.code))
        .collect();
    let want = [
        ("format", "invalid_format"),
        ("id", "invalid_format"),
        ("events[1].type", "duplicate"),
        ("events[1].code", "duplicate"),
        ("events[1].name", "empty"),
        ("events[1].category", "invalid_format"),
        ("events[1].severity", "invalid_format"),
        ("events[1].default_outcome", "invalid_outcome"),
        ("events[1].summary", "invalid_format"),
        ("events[1].details[1].name", "duplicate"),
        ("events[2].type", "invalid_format"),
        ("events[2].summary", "invalid_format"),
    ];
    for (field, code) in want {
        assert!(
            found.iter().any(|(f, c)| f == field && *c == code),
            "missing {field} {code} in {found:?}"
        );
    }
    assert_eq!(found.len(), want.len(), "{found:?}");
    // The messages say what is wrong, for people.
    let summary = errors
        .iter()
        .find(|e| e.field == "events[1].summary")
        .expect("summary error");
    assert!(
        summary.message.contains("actor.password"),
        "{}",
        summary.message
    );
}

#[test]
fn a_document_round_trips_through_its_checked_form() {
    let catalog = login_catalog().with_version(3);
    let doc = catalog.to_doc();
    assert_eq!(doc.version, 3);
    let again = Catalog::from_doc(&doc).expect("valid").with_version(3);
    assert_eq!(again, catalog);
    assert_eq!(
        catalog.get("user.logged_out").and_then(|e| e.code),
        Some(101)
    );
    assert!(catalog.get("user.nope").is_none());
}

#[test]
fn templates_render_only_the_event_and_mark_what_it_lacks() {
    let template = Template::parse(
        "{{literal}} {type}: {actor.name} -> {target.name} {details.n} {details.obj}",
    )
    .expect("template");
    let full = event(json!({
        "type": "doc.shared",
        "actor": {"name": "Ann Lee"},
        "targets": [{"id": "d1", "name": "Plan"}],
        "details": {"n": "3\tpages", "obj": {"k": [1, 2]}}
    }));
    // Control characters from values become spaces; non-strings render as JSON.
    assert_eq!(
        template.render(&full).expect("summary").as_str(),
        "{literal} doc.shared: Ann Lee -> Plan 3 pages {\"k\":[1,2]}"
    );
    let bare = event(json!({"type": "doc.shared"}));
    assert_eq!(
        template.render(&bare).expect("summary").as_str(),
        format!(
            "{{literal}} doc.shared: {MISSING_VALUE} -> {MISSING_VALUE} {MISSING_VALUE} {MISSING_VALUE}"
        )
    );
    for bad in ["{", "}", "{nope}", "{details.}", "{details.a.b}", "a } b"] {
        assert!(Template::parse(bad).is_err(), "{bad:?} parsed");
    }
    // A long value is cut to the summary's limit, on a character boundary.
    let long = event(json!({"type": "t.x", "details": {"v": "é".repeat(2000)}}));
    let rendered = Template::parse("{details.v}")
        .expect("template")
        .render(&long)
        .expect("summary");
    assert!(rendered.as_str().len() <= 1024 && rendered.as_str().len() >= 1022);
}

#[test]
fn applying_a_catalog_fills_the_record_and_defaults() {
    let (applied, fields) = catalogs(Policy::Strict)
        .apply(event(json!({
            "type": "user.logged_in",
            "actor": {"email": "ann@example.com"},
            "source": {"ip": "192.0.2.7"},
            "details": {"method": "sso"}
        })))
        .expect("accepted");
    assert_eq!(fields.code, Some(100));
    assert_eq!(fields.name.expect("name").as_str(), "User logged in");
    assert_eq!(
        fields.category.expect("category").as_str(),
        "Authentication"
    );
    assert_eq!(fields.severity.expect("severity").as_str(), "info");
    assert_eq!(
        fields.description.expect("description").as_str(),
        "A user logged in."
    );
    assert_eq!(applied.outcome(), Some(Outcome::Success));
    assert_eq!(
        applied.summary().expect("summary").as_str(),
        "User \"ann@example.com\" logged in from 192.0.2.7 (sso)"
    );
    // What the client sent wins over the catalog's defaults.
    let (applied, _) = catalogs(Policy::Strict)
        .apply(event(json!({
            "type": "user.logged_in", "outcome": "failure", "summary": "mine",
            "details": {"method": "password"}
        })))
        .expect("accepted");
    assert_eq!(applied.outcome(), Some(Outcome::Failure));
    assert_eq!(applied.summary().expect("summary").as_str(), "mine");
}

#[test]
fn strict_refuses_unknown_types_and_misfit_details_lenient_marks_them() {
    let strict = catalogs(Policy::Strict);
    let errors = strict
        .apply(event(json!({"type": "user.deleted"})))
        .expect_err("unknown type");
    assert_eq!(
        (errors[0].field.as_str(), errors[0].code),
        ("type", "unknown_type")
    );
    assert!(errors[0].message.contains("user.deleted"));
    let errors = strict
        .apply(event(
            json!({"type": "user.logged_in", "details": {"attempts": "two"}}),
        ))
        .expect_err("misfit details");
    let found: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        found,
        [
            ("details.method", "required"),
            ("details.attempts", "invalid_type")
        ]
    );
    let lenient = catalogs(Policy::Lenient);
    let (_, fields) = lenient
        .apply(event(json!({"type": "user.deleted"})))
        .expect("accepted");
    assert_eq!(fields.category.expect("category").as_str(), UNCATALOGUED);
    assert!(fields.name.is_none() && fields.code.is_none());
    // Lenient stores defined types with misfit details as sent.
    let (_, fields) = lenient
        .apply(event(json!({"type": "user.logged_in"})))
        .expect("accepted");
    assert_eq!(fields.code, Some(100));
}

#[test]
fn the_first_catalog_that_defines_a_type_wins() {
    let other = Catalog::from_doc(&doc(json!({
        "format": "veritrail-catalog/v1", "id": "shared",
        "events": [
            {"type": "user.logged_in", "code": 1, "name": "Other", "category": "Other"},
            {"type": "file.read", "code": 2, "name": "File read", "category": "Files"}
        ]
    })))
    .expect("valid");
    let set = Catalogs {
        catalogs: vec![Arc::new(login_catalog()), Arc::new(other)],
        policy: Policy::Strict,
    };
    assert_eq!(set.lookup("user.logged_in").expect("found").0.id(), "acme");
    assert_eq!(set.lookup("file.read").expect("found").0.id(), "shared");
}

#[test]
fn common_families_get_an_ocsf_default_and_an_entry_overrides_it() {
    use veritrail_core::catalog::default_ocsf;
    let ids = |event_type: &str| default_ocsf(event_type).map(|o| (o.class_uid, o.activity_id));
    assert_eq!(ids("user.logged_in"), Some((3002, 1)));
    assert_eq!(ids("api.activity.login.success"), Some((3002, 1)));
    assert_eq!(ids("session.sign_out"), Some((3002, 2)));
    assert_eq!(ids("user.mfa_created"), Some((3001, 10)));
    assert_eq!(ids("user.mfa_deleted"), Some((3001, 11)));
    assert_eq!(ids("user.password_updated"), Some((3001, 3)));
    assert_eq!(ids("account.password_reset"), Some((3001, 4)));
    assert_eq!(ids("user.created"), Some((3001, 1)));
    assert_eq!(ids("user.deleted"), Some((3001, 6)));
    assert_eq!(ids("user.locked"), Some((3001, 9)));
    assert_eq!(ids("group.member_added"), Some((3006, 3)));
    assert_eq!(ids("group.deleted"), Some((3006, 5)));
    assert_eq!(ids("api.key.created"), Some((6003, 1)));
    assert_eq!(ids("billing.invoice_paid"), None);
    assert_eq!(ids("user.renamed"), None);
    let catalog = login_catalog();
    let entry = catalog.get("user.logged_out").expect("entry");
    assert_eq!(entry.effective_ocsf().map(|o| o.activity_id), Some(2));
    let explicit = Catalog::from_doc(&doc(json!({
        "format": "veritrail-catalog/v1", "id": "x",
        "events": [{"type": "user.logged_in", "name": "In", "category": "C",
                    "ocsf": {"class_uid": 6003, "activity_id": 99}}]
    })))
    .expect("valid");
    let entry = explicit.get("user.logged_in").expect("entry");
    assert_eq!(entry.effective_ocsf().map(|o| o.class_uid), Some(6003));
}
