//! A record as an OCSF 1.8 event: the class and activity its catalog entry maps it to
//! ([`crate::catalog::Entry::effective_ocsf`]), or the Base Event class when none does; the
//! event's time, severity, status, actor (with the `host` profile it comes from), source
//! endpoint, user agent and message in OCSF's fields where the class has them; what each
//! class requires (the `user` of Authentication and Account Change, the `group` of Group
//! Management, the `api` of API Activity, the `entity`, `job`, `app`, `file`...); and the
//! whole record JSON in `unmapped`, so nothing is lost.

use serde_json::{Map, Value, json};

use crate::catalog::Ocsf;
use crate::event::{Actor, Outcome, Target};
use crate::record::Record;

/// The OCSF schema version the events claim.
pub const OCSF_VERSION: &str = "1.8.0";

/// The class of a record no catalog entry maps: OCSF's Base Event.
const BASE_EVENT: (u32, &str) = (0, "Base Event");

/// The record as an OCSF event of `mapping`'s class and activity (Base Event, activity
/// Other, when `None`); `product_version` is this service's.
#[must_use]
pub fn to_ocsf(record: &Record, mapping: Option<&Ocsf>, product_version: &str) -> Value {
    let event = record.event();
    let catalog = record.catalog();
    let (class_uid, class_name, activity_id, activity_name) = match mapping {
        Some(mapping) => (
            mapping.class_uid,
            mapping
                .class_name
                .clone()
                .unwrap_or_else(|| format!("Class {}", mapping.class_uid)),
            mapping.activity_id,
            mapping
                .activity_name
                .clone()
                .unwrap_or_else(|| format!("Activity {}", mapping.activity_id)),
        ),
        None => (
            BASE_EVENT.0,
            BASE_EVENT.1.to_owned(),
            99,
            "Other".to_owned(),
        ),
    };
    let category_uid = class_uid / 1000;
    let time = event.occurred_at().unwrap_or_else(|| record.received_at());
    let mut out = Map::new();
    out.insert("metadata".into(), metadata(record, product_version));
    out.insert("category_uid".into(), json!(category_uid));
    out.insert("category_name".into(), json!(category_name(category_uid)));
    out.insert("class_uid".into(), json!(class_uid));
    out.insert("class_name".into(), json!(class_name));
    out.insert("activity_id".into(), json!(activity_id));
    out.insert("activity_name".into(), json!(activity_name));
    out.insert(
        "type_uid".into(),
        json!(u64::from(class_uid) * 100 + u64::from(activity_id)),
    );
    out.insert(
        "type_name".into(),
        json!(format!("{class_name}: {activity_name}")),
    );
    out.insert("time".into(), json!(millis(time.unix_nanos())));
    let (severity_id, severity) = severity(catalog.severity.as_ref().map(AsRef::as_ref));
    out.insert("severity_id".into(), json!(severity_id));
    out.insert("severity".into(), json!(severity));
    let (status_id, status) = status(event.outcome());
    out.insert("status_id".into(), json!(status_id));
    out.insert("status".into(), json!(status));
    if let Some(summary) = event.summary() {
        out.insert("message".into(), json!(summary.as_ref() as &str));
    }
    if let Some(actor) = event.actor() {
        let mut object = Map::new();
        if let Some(user) = user_of_actor(actor) {
            object.insert("user".into(), user);
        }
        if let Some(service) = event.source().and_then(|source| source.service()) {
            object.insert("app_name".into(), json!(service.as_ref() as &str));
        }
        out.insert("actor".into(), Value::Object(object));
        if let Some(agent) = actor.user_agent().filter(|_| has_http_request(class_uid)) {
            out.insert(
                "http_request".into(),
                json!({"user_agent": agent.as_ref() as &str}),
            );
        }
    }
    let src_ip = event
        .actor()
        .and_then(Actor::ip)
        .or_else(|| event.source().and_then(|source| source.ip()));
    if let Some(ip) = src_ip.filter(|_| has_src_endpoint(class_uid)) {
        out.insert("src_endpoint".into(), json!({"ip": ip.as_str()}));
    }
    class_fields(class_uid, record, &mut out);
    if out.contains_key("actor") {
        // `actor` is an attribute of the `host` profile in most classes.
        out["metadata"]["profiles"] = json!(["host"]);
    }
    out.insert("unmapped".into(), record.to_json());
    Value::Object(out)
}

/// Whether OCSF's class has `src_endpoint`: the Identity & Access Management and Network
/// Activity classes, Event Log, Web Resources, API and File Hosting Activity.
fn has_src_endpoint(class_uid: u32) -> bool {
    matches!(class_uid / 1000, 3 | 4) || matches!(class_uid, 1008 | 6001 | 6003 | 6006)
}

/// Whether OCSF's class has `http_request`: the Identity & Access Management classes, Web
/// Resources, API and File Hosting Activity.
fn has_http_request(class_uid: u32) -> bool {
    class_uid / 1000 == 3 || matches!(class_uid, 6001 | 6003 | 6006)
}

fn metadata(record: &Record, product_version: &str) -> Value {
    let event = record.event();
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "product": {"name": "veritrail", "vendor_name": "veritrail", "version": product_version},
        "log_name": record.tenant().as_str(),
        "tenant_uid": record.tenant().as_str(),
        "sequence": record.seq(),
        "logged_time": millis(record.received_at().unix_nanos()),
    });
    let uid = event.id().map_or_else(
        || format!("{}/{}", record.tenant().as_str(), record.seq()),
        |id| id.as_ref().to_owned(),
    );
    metadata["uid"] = json!(uid);
    if let Some(code) = record.catalog().code {
        metadata["event_code"] = json!(code.to_string());
    }
    if let Some(correlation) = event.correlation_id() {
        metadata["correlation_uid"] = json!(correlation.as_ref() as &str);
    }
    metadata
}

/// What a class requires besides the base fields: the user an Authentication, Account
/// Change or User Access Management is about (a target of type `user`, else the actor), the
/// group of a Group Management, the entity of an Entity Management, the API operation of
/// an API Activity, the job of a Scheduled Job, the application of an Application
/// Lifecycle, the file of a File Hosting Activity (each from the first fitting target, else
/// the event type), with the source endpoint where the class requires one, and the device
/// of a System Activity.
fn class_fields(class_uid: u32, record: &Record, out: &mut Map<String, Value>) {
    let event = record.event();
    let event_type = event.event_type().as_str();
    let target_of = |kinds: &[&str]| -> Option<&Target> {
        event.targets().iter().find(|target| {
            target
                .target_type()
                .is_some_and(|kind| kinds.contains(&kind.as_ref()))
        })
    };
    let first_target = event.targets().first();
    let name_of = |target: Option<&Target>| -> String {
        target
            .and_then(|target| target.name().map(|name| name.as_ref().to_owned()))
            .or_else(|| target.and_then(|target| target.id().map(|id| id.as_ref().to_owned())))
            .unwrap_or_else(|| event_type.to_owned())
    };
    let target_user = target_of(&["user", "account", "member"]).map(user_of_target);
    let actor_user = event.actor().and_then(user_of_actor);
    let user = || {
        target_user
            .clone()
            .or_else(|| actor_user.clone())
            .unwrap_or_else(|| json!({"name": "unknown"}))
    };
    let service = event
        .source()
        .and_then(|source| source.service())
        .map(|service| service.as_ref().to_owned());
    match class_uid {
        3001 | 3002 => {
            out.insert("user".into(), user());
        }
        3005 => {
            out.insert("user".into(), user());
            let privilege = name_of(target_of(&["role", "privilege", "permission"]));
            out.insert("privileges".into(), json!([privilege]));
        }
        3004 => {
            let mut entity = Map::new();
            if let Some(target) = first_target {
                if let Some(id) = target.id() {
                    entity.insert("uid".into(), json!(id.as_ref() as &str));
                }
                if let Some(kind) = target.target_type() {
                    entity.insert("type".into(), json!(kind.as_ref() as &str));
                }
            }
            entity.insert("name".into(), json!(name_of(first_target)));
            out.insert("entity".into(), Value::Object(entity));
        }
        3006 => {
            let group = target_of(&["group", "team", "role"]);
            let mut object = Map::new();
            if let Some(id) = group.and_then(Target::id) {
                object.insert("uid".into(), json!(id.as_ref() as &str));
            }
            object.insert(
                "name".into(),
                json!(group.map_or_else(|| "unknown".to_owned(), |_| name_of(group))),
            );
            out.insert("group".into(), Value::Object(object));
            if let Some(user) = target_user {
                out.insert("user".into(), user);
            }
        }
        1006 => {
            out.insert("job".into(), json!({"name": name_of(first_target)}));
        }
        4009 => {
            out.insert("direction_id".into(), json!(0));
            out.insert("email".into(), json!({}));
        }
        6002 => {
            let name = service.clone().unwrap_or_else(|| name_of(first_target));
            out.insert("app".into(), json!({"name": name}));
        }
        6003 => {
            let mut api = json!({"operation": event_type});
            if let Some(service) = &service {
                api["service"] = json!({"name": service});
            }
            out.insert("api".into(), api);
            out.entry("actor").or_insert_with(|| json!({}));
            out.entry("src_endpoint").or_insert_with(|| json!({}));
        }
        6006 => {
            out.insert(
                "file".into(),
                json!({"name": name_of(first_target), "type_id": 0}),
            );
            out.entry("actor").or_insert_with(|| json!({}));
            out.entry("src_endpoint").or_insert_with(|| json!({}));
        }
        _ => {}
    }
    // The System Activity classes are about a device: the one the event came from, of
    // unknown type (its service's name, when it has one).
    if matches!(class_uid, 1001..=1007 | 1009 | 1010) {
        let mut device = json!({"type_id": 0});
        if let Some(service) = &service {
            device["name"] = json!(service);
        }
        out.insert("device".into(), device);
    }
}

fn user_of_actor(actor: &Actor) -> Option<Value> {
    let mut user = Map::new();
    if let Some(id) = actor.id() {
        user.insert("uid".into(), json!(id.as_ref() as &str));
    }
    if let Some(name) = actor.name() {
        user.insert("name".into(), json!(name.as_ref() as &str));
    }
    if let Some(email) = actor.email() {
        user.insert("email_addr".into(), json!(email.as_ref() as &str));
    }
    if let Some(kind) = actor.actor_type() {
        user.insert("type".into(), json!(kind.as_ref() as &str));
    }
    (!user.is_empty()).then_some(Value::Object(user))
}

fn user_of_target(target: &Target) -> Value {
    let mut user = Map::new();
    if let Some(id) = target.id() {
        user.insert("uid".into(), json!(id.as_ref() as &str));
    }
    if let Some(name) = target.name() {
        user.insert("name".into(), json!(name.as_ref() as &str));
    }
    Value::Object(user)
}

fn millis(nanos: i64) -> i64 {
    nanos.div_euclid(1_000_000)
}

fn category_name(category_uid: u32) -> &'static str {
    match category_uid {
        1 => "System Activity",
        2 => "Findings",
        3 => "Identity & Access Management",
        4 => "Network Activity",
        5 => "Discovery",
        6 => "Application Activity",
        7 => "Remediation",
        _ => "Uncategorized",
    }
}

/// OCSF's `severity_id` and `severity` of a catalog severity.
fn severity(severity: Option<&str>) -> (u32, &'static str) {
    match severity {
        Some("info") | None => (1, "Informational"),
        Some("low") => (2, "Low"),
        Some("medium") => (3, "Medium"),
        Some("high") => (4, "High"),
        Some("critical") => (5, "Critical"),
        Some(_) => (0, "Unknown"),
    }
}

/// OCSF's `status_id` and `status` of an outcome.
fn status(outcome: Option<Outcome>) -> (u32, &'static str) {
    match outcome {
        Some(Outcome::Success) => (1, "Success"),
        Some(Outcome::Failure) => (2, "Failure"),
        Some(_) | None => (0, "Unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::default_ocsf;
    use crate::event::{Event, EventInput, TenantId, Timestamp};
    use crate::record::CatalogFields;

    fn record(input: serde_json::Value) -> Record {
        let input: EventInput = serde_json::from_value(input).expect("input");
        Record::new(
            TenantId::parse("acme").expect("tenant"),
            41,
            Timestamp::from_unix_nanos(1_700_000_000_123_456_789),
            Event::parse(input).expect("event"),
            CatalogFields::default(),
        )
    }

    #[test]
    fn a_login_is_an_authentication_logon_of_its_user() {
        let record = record(json!({
            "id": "evt-1", "type": "user.login", "outcome": "failure",
            "occurred_at": "2023-11-14T22:13:19.5Z",
            "actor": {"id": "u_1", "email": "ada@example.com", "ip": "192.0.2.1"},
            "summary": "Ada failed to sign in",
        }));
        let event = to_ocsf(&record, default_ocsf("user.login").as_ref(), "0.1.0");
        assert_eq!(event["class_uid"], 3002);
        assert_eq!(event["category_uid"], 3);
        assert_eq!(event["activity_id"], 1);
        assert_eq!(event["type_uid"], 300_201);
        assert_eq!(event["type_name"], "Authentication: Logon");
        assert_eq!(event["time"], 1_699_999_999_500_i64);
        assert_eq!(event["status_id"], 2);
        assert_eq!(event["status"], "Failure");
        assert_eq!(event["severity_id"], 1);
        assert_eq!(event["message"], "Ada failed to sign in");
        assert_eq!(event["user"]["uid"], "u_1", "the actor when no user target");
        assert_eq!(event["actor"]["user"]["email_addr"], "ada@example.com");
        assert_eq!(event["src_endpoint"]["ip"], "192.0.2.1");
        assert_eq!(event["metadata"]["uid"], "evt-1");
        assert_eq!(event["metadata"]["sequence"], 41);
        assert_eq!(event["metadata"]["logged_time"], 1_700_000_000_123_i64);
        assert_eq!(event["unmapped"], record.to_json());
    }

    #[test]
    fn an_unmapped_type_is_a_base_event_and_api_activity_names_its_operation() {
        let record = record(json!({"type": "invoice.paid"}));
        let event = to_ocsf(&record, None, "0.1.0");
        assert_eq!(event["class_uid"], 0);
        assert_eq!(event["class_name"], "Base Event");
        assert_eq!(event["category_name"], "Uncategorized");
        assert_eq!(event["activity_id"], 99);
        assert_eq!(event["metadata"]["uid"], "acme/41");
        assert!(event.get("actor").is_none());
        let api = Ocsf {
            class_uid: 6003,
            class_name: Some("API Activity".into()),
            activity_id: 1,
            activity_name: Some("Create".into()),
        };
        let event = to_ocsf(&record, Some(&api), "0.1.0");
        assert_eq!(event["api"]["operation"], "invoice.paid");
        assert_eq!(event["actor"], json!({}));
        assert_eq!(event["src_endpoint"], json!({}));
    }
}
