//! Standard Webhooks signatures against the reference library's known answer, rotation,
//! and the `envelope` notifications built from VGS's own documented examples.

use std::sync::Arc;

use serde_json::{Value, json};
use veritrail_core::catalog::{Catalog, CatalogDoc, Catalogs, Policy};
use veritrail_core::event::{Event, EventInput, TenantId, Timestamp};
use veritrail_core::record::Record;
use veritrail_core::webhook::{
    Notification, WebhookSecret, envelope, rfc3339_millis, signature_header, verify,
};

/// A file of `testdata/` (sources and licences in `testdata/README.md`).
fn testdata(path: &str) -> String {
    let full = format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|err| panic!("{full}: {err}"))
}

#[test]
fn the_reference_librarys_signature_is_reproduced() {
    let vector: Value =
        serde_json::from_str(&testdata("vectors/standard-webhooks/sign.json")).expect("vector");
    let secret = WebhookSecret::parse(vector["secret"].as_str().expect("secret")).expect("secret");
    let msg_id = vector["msg_id"].as_str().expect("msg_id");
    let timestamp = vector["timestamp"].as_i64().expect("timestamp");
    let body = vector["body"].as_str().expect("body").as_bytes();
    let expected = vector["expected_signature"].as_str().expect("signature");
    assert_eq!(secret.sign(msg_id, timestamp, body), expected);
    assert!(verify(&secret, msg_id, timestamp, body, expected));
    // Anything changed fails: the body, the id, the timestamp, the key.
    assert!(!verify(
        &secret,
        msg_id,
        timestamp,
        b"{\"test\": 2432232315}",
        expected
    ));
    assert!(!verify(&secret, "msg_other", timestamp, body, expected));
    assert!(!verify(&secret, msg_id, timestamp + 1, body, expected));
    let other = WebhookSecret::from_bytes(vec![7; 32]).expect("secret");
    assert!(!verify(&other, msg_id, timestamp, body, expected));
    // The text form round-trips and is not printed by Debug.
    assert_eq!(
        WebhookSecret::parse(&secret.to_text()).expect("again"),
        secret
    );
    assert!(!format!("{secret:?}").contains("MfKQ"));
}

#[test]
fn during_a_rotation_both_signatures_are_sent_and_either_secret_verifies() {
    let old = WebhookSecret::from_bytes(vec![1; 32]).expect("old");
    let new = WebhookSecret::from_bytes(vec![2; 24]).expect("new");
    let header = signature_header(&[&new, &old], "msg_1", 1_700_000_000, b"{}");
    assert_eq!(header.split(' ').count(), 2);
    assert!(verify(&old, "msg_1", 1_700_000_000, b"{}", &header));
    assert!(verify(&new, "msg_1", 1_700_000_000, b"{}", &header));
    let stranger = WebhookSecret::from_bytes(vec![3; 32]).expect("stranger");
    assert!(!verify(&stranger, "msg_1", 1_700_000_000, b"{}", &header));
}

#[test]
fn secrets_that_are_not_whsec_base64_of_24_to_64_bytes_are_refused() {
    for bad in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_not base64!",
        "whsec_AAAA",
    ] {
        assert!(WebhookSecret::parse(bad).is_err(), "{bad}");
    }
    assert!(WebhookSecret::from_bytes(vec![0; 65]).is_err());
}

/// The JSON examples of VGS's "Monitoring User Actions Programmatically", in order.
fn vgs_examples() -> Vec<Value> {
    let text = testdata("seeds/003-webhook-notifications.txt");
    text.split("```")
        .skip(1)
        .step_by(2)
        .filter_map(|block| serde_json::from_str(block.trim()).ok())
        .collect()
}

#[test]
fn envelopes_match_the_vgs_examples_field_for_field() {
    let examples = vgs_examples();
    assert_eq!(examples.len(), 6, "VGS documents six examples");
    let yaml = std::fs::read_to_string(format!(
        "{}/../../catalogs/vgs-user-actions.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("catalog file");
    let doc: CatalogDoc = serde_yaml_ng::from_str(&yaml).expect("catalog");
    let catalogs = Catalogs {
        catalogs: vec![Arc::new(Catalog::from_doc(&doc).expect("valid"))],
        policy: Policy::Strict,
    };
    let tenant = TenantId::parse("acme").expect("tenant");
    for (seq, example) in examples.iter().enumerate() {
        // The event a product would send for this notification.
        let time =
            Timestamp::parse_rfc3339(example["timestamp"].as_str().expect("time")).expect("time");
        let input: EventInput = serde_json::from_value(json!({
            "type": example["event"],
            "occurred_at": example["timestamp"],
            "actor": {"email": example["producer"]["user_email"]},
            "details": example["details"],
        }))
        .expect("input");
        let (event, fields) = catalogs
            .apply(Event::parse(input).expect("event"))
            .expect("the catalog defines every documented event");
        let record = Record::new(tenant.clone(), seq as u64, time, event, fields);
        let built = envelope(
            &record,
            &Notification {
                id: example["id"].as_str().expect("id"),
                integration_id: example["integration_id"].as_str().expect("integration"),
                grouping: example["grouping"].as_str().expect("grouping"),
                occurrence: example["occurrence"].as_u64().expect("occurrence"),
            },
        );
        let (want, got) = (
            example.as_object().expect("object"),
            built.as_object().expect("object"),
        );
        // The same keys, the same JSON types.
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>(),
            "{}",
            example["event"]
        );
        for (key, value) in want {
            assert_eq!(
                std::mem::discriminant(value),
                std::mem::discriminant(&got[key]),
                "{key} of {}",
                example["event"]
            );
        }
        // Every value that derives from the input. The tenant is ours (the example's org id
        // is not a valid tenant id); VGS's user.mfa_deleted summary repeats the
        // "enabled MFA" of the example before it, which the catalog corrects.
        for key in [
            "id",
            "event",
            "description",
            "details",
            "producer",
            "scope",
            "integration_id",
            "grouping",
            "occurrence",
            "timestamp",
        ] {
            assert_eq!(got[key], want[key], "{key} of {}", example["event"]);
        }
        if example["event"] != "user.mfa_deleted" {
            assert_eq!(
                got["summary"], want["summary"],
                "summary of {}",
                example["event"]
            );
        }
        assert_eq!(got["tenant"], json!("acme"));
        assert_eq!(got["org_id"], json!("acme"));
    }
}

#[test]
fn timestamps_have_exactly_three_fraction_digits_in_utc() {
    let at = |text: &str| rfc3339_millis(Timestamp::parse_rfc3339(text).expect("time"));
    assert_eq!(at("2025-10-23T16:31:39.680Z"), "2025-10-23T16:31:39.680Z");
    assert_eq!(at("2025-10-23T16:31:39.6809Z"), "2025-10-23T16:31:39.680Z");
    assert_eq!(at("2025-10-23T18:31:39+02:00"), "2025-10-23T16:31:39.000Z");
    assert_eq!(at("1969-12-31T23:59:59.9995Z"), "1969-12-31T23:59:59.999Z");
}
