//! The demo tenant of `veritrail serve --demo`: a tenant `demo` with a viewer key, a
//! publisher key and a week of realistic sample events (sign-ins, failures, password,
//! permission and role changes, downloads, users invited into integrations step by step),
//! so that a new user sees a working system at once. The tenant adopts the shared
//! catalogs `privx-audit-events`, `vgs-user-actions` and `cerby-integration-activity`, and its events go through the catalogs as any
//! ingest does, so they carry names, codes and categories. Made once; later starts reuse
//! it.

use serde_json::json;
use veritrail_api::{EventInput, Role};
use veritrail_core::event::{Event, TenantId, Timestamp};

use crate::AppState;
use crate::audit;
use crate::control::Principal;
use crate::error::ApiError;

/// The demo tenant's id.
pub const TENANT: &str = "demo";
/// Sample events made, about (an integration invite's lifecycle, requested to invited or
/// failed, is never cut short).
pub const N_EVENTS: usize = 400;
/// The shared catalogs the demo tenant adopts, in lookup order.
const ADOPTED: [&str; 3] = [
    "privx-audit-events",
    "vgs-user-actions",
    "cerby-integration-activity",
];

/// Keys made for the demo tenant (secrets shown once).
#[derive(Debug)]
pub struct DemoKeys {
    pub viewer: String,
    pub publisher: String,
    /// How many sample events were stored.
    pub events: usize,
}

/// Makes the demo tenant, its keys and its events; `None` when it exists already.
pub async fn set_up(state: &AppState) -> Result<Option<DemoKeys>, ApiError> {
    let tenant = TenantId::parse(TENANT).map_err(ApiError::internal)?;
    if state.control().tenant(TENANT)?.is_some() {
        return Ok(None);
    }
    let admin = Principal::ServerAdmin;
    let (_, owner, _) = state.control().create_tenant(
        &tenant,
        Some("Demo".into()),
        &crate::control::CatalogSettings::for_new_tenants(&state.config().tenants),
    )?;
    audit::record(
        state,
        &tenant,
        audit::tenant_created(&admin, &tenant, &owner)?,
    )
    .await?;
    let mut secrets = Vec::new();
    for role in [Role::Viewer, Role::Publisher] {
        let (key, secret) = state.control().create_key(
            &tenant,
            role,
            Some(format!("demo {role} key")),
            crate::control::SERVER_ADMIN,
        )?;
        audit::record(state, &tenant, audit::key_created(&admin, &key)?).await?;
        secrets.push(secret);
    }
    // The demo's viewer key opens the Activity page too.
    let settings = crate::control::ActivitySettings {
        admit_viewers: true,
    };
    state.control().put_activity_settings(&tenant, &settings)?;
    audit::record(
        state,
        &tenant,
        audit::settings_changed(&admin, &tenant, "activity", "admit_viewers=true")?,
    )
    .await?;
    let settings = crate::control::CatalogSettings {
        adopted: ADOPTED.iter().map(|id| (*id).to_owned()).collect(),
        ..crate::control::CatalogSettings::default()
    };
    state.control().put_catalog_settings(&tenant, &settings)?;
    state.catalogs().invalidate(&tenant);
    audit::record(
        state,
        &tenant,
        audit::settings_changed(
            &admin,
            &tenant,
            "catalog",
            &format!(
                "policy={}; adopted={}",
                settings.policy.as_str(),
                settings.adopted.join(",")
            ),
        )?,
    )
    .await?;
    let events = sample_events(crate::clock::now())?;
    for chunk in events.chunks(100) {
        let catalogued = crate::ingest::apply_catalogs(state, &tenant, chunk.to_vec()).await?;
        state
            .ledger()
            .append_catalogued(tenant.clone(), catalogued)
            .await?;
    }
    let publisher = secrets.pop().unwrap_or_default();
    let viewer = secrets.pop().unwrap_or_default();
    Ok(Some(DemoKeys {
        viewer,
        publisher,
        events: events.len(),
    }))
}

const USERS: &[(&str, &str, &str)] = &[
    ("u_1001", "Ada Lovelace", "ada@example.com"),
    ("u_1002", "Grace Hopper", "grace@example.com"),
    ("u_1003", "Alan Turing", "alan@example.com"),
    ("u_1004", "Katherine Johnson", "katherine@example.com"),
    ("u_1005", "Edsger Dijkstra", "edsger@example.com"),
];

/// A week of events ending at `now`, oldest first, evenly spaced (the steps of an operation
/// a minute apart); deterministic but for the times.
pub fn sample_events(now: Timestamp) -> Result<Vec<Event>, ApiError> {
    const WEEK_NANOS: i64 = 7 * 86_400 * 1_000_000_000;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |bound: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        usize::try_from(rng % bound as u64).unwrap_or(0)
    };
    let step = WEEK_NANOS / N_EVENTS as i64;
    let mut events = Vec::with_capacity(N_EVENTS);
    while events.len() < N_EVENTS {
        let slot = i64::try_from(events.len()).unwrap_or(0) + 1;
        let at = Timestamp::from_unix_nanos(now.unix_nanos() - WEEK_NANOS + step * slot);
        let (user_id, name, email) = USERS[next(USERS.len())];
        let ip = format!("203.0.113.{}", 10 + next(200));
        let actor = json!({"id": user_id, "type": "user", "name": name, "email": email, "ip": ip,
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0"});
        let kind = next(100);
        let user = |id: &str, email: &str| json!([{"id": id, "type": "user", "name": email}]);
        // VGS-style user actions (`vgs-user-actions`) carry the acting user's email and address in `details`.
        let seen_from = json!({"user_email": email, "user_ip": ip});
        let inputs: Vec<serde_json::Value> = if kind < 40 {
            vec![json!({"type": "user.logged_in", "actor": actor,
                "details": {"method": "password", "mfa": true}})]
        } else if kind < 52 {
            vec![json!({"type": "user.login_failed", "actor": actor,
                "details": {"reason": "wrong password"}})]
        } else if kind < 60 {
            vec![json!({"type": "user.mfa_challenge_accepted", "actor": actor})]
        } else if kind < 67 {
            vec![json!({"type": "user.password_updated", "actor": actor,
                "targets": user(user_id, email), "details": seen_from})]
        } else if kind < 74 {
            let (other_id, _, other_email) = USERS[next(USERS.len())];
            vec![json!({"type": "user.permissions_updated", "actor": actor,
                "targets": user(other_id, other_email), "details": seen_from})]
        } else if kind < 79 {
            vec![json!({"type": "user.mfa_created", "actor": actor, "details": seen_from})]
        } else if kind < 84 {
            let role = ["Viewer", "Editor", "Admin"][next(3)];
            vec![json!({"type": "role.modified", "actor": actor,
                "targets": [{"id": format!("role_{}", role.to_lowercase()), "type": "role", "name": role}],
                "details": {"added_permissions": ["reports.read"]}})]
        } else if kind < 90 {
            vec![json!({"type": "file.download", "actor": actor,
                "targets": [{"id": format!("doc_{}", 100 + next(50)), "type": "document", "name": "Quarterly report.pdf"}]})]
        } else {
            // A user invited into an integration step by step, as one operation (the
            // lifecycle of Cerby's integration events): requested, in progress, then invited or failed. The invited user is
            // the first target; the integration the second (`target=int_okta` scopes the page
            // to one integration, as Cerby's Activity tab lives inside an integration's page).
            let integration = ["Slack", "GitHub", "Okta", "Salesforce"][next(4)];
            let correlation = format!("op_{}", next(1_000_000));
            let (invited_id, _, invited_email) = USERS[next(USERS.len())];
            let targets = json!([
                {"id": invited_id, "type": "user", "name": invited_email},
                {"id": format!("int_{}", integration.to_lowercase()), "type": "integration", "name": integration},
            ]);
            let failed = next(4) == 0;
            vec![
                json!({"type": "user_invite.requested", "actor": actor, "targets": targets,
                    "correlation_id": correlation}),
                json!({"type": "user_invite.in_progress", "actor": actor, "targets": targets,
                    "correlation_id": correlation}),
                json!({"type": if failed {"user_invite.failed"} else {"user_invite.invited"},
                    "actor": actor, "targets": targets, "correlation_id": correlation,
                    "details": if failed {json!({"error": format!("{integration} refused the invitation: seat limit reached")})} else {json!({"integration": integration})}}),
            ]
        };
        // The steps of an operation end at `at`, a minute apart.
        let steps = i64::try_from(inputs.len()).unwrap_or(1);
        for (index, mut input) in (0..).zip(inputs) {
            let at = Timestamp::from_unix_nanos(
                at.unix_nanos() - (steps - 1 - index) * 60 * 1_000_000_000,
            );
            input["occurred_at"] = json!(at.to_rfc3339());
            input["id"] = json!(format!("demo-{}", events.len()));
            let input: EventInput = serde_json::from_value(input).map_err(ApiError::internal)?;
            events.push(Event::parse(input).map_err(ApiError::internal)?);
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_sample_week_ends_now_in_order_with_every_operation_whole() {
        let now = Timestamp::from_unix_nanos(1_796_000_000_000_000_000);
        let events = sample_events(now).expect("events");
        assert!(
            (N_EVENTS..N_EVENTS + 3).contains(&events.len()),
            "{}",
            events.len()
        );
        let times: Vec<i64> = events
            .iter()
            .map(|event| event.occurred_at().expect("a time").unix_nanos())
            .collect();
        assert!(
            times.windows(2).all(|pair| pair[0] <= pair[1]),
            "oldest first"
        );
        let week = 7 * 86_400 * 1_000_000_000;
        let step = week / i64::try_from(N_EVENTS).expect("small");
        assert!(times[0] > now.unix_nanos() - week, "within the week");
        let last = *times.last().expect("events");
        assert!(
            last <= now.unix_nanos() && last > now.unix_nanos() - 2 * step,
            "ends now: {} s before",
            (now.unix_nanos() - last) / 1_000_000_000
        );
        // The invite lifecycle (as in `cerby-integration-activity`): requested, in progress, then invited or failed, a minute
        // apart; none cut short.
        let mut operations: BTreeMap<&str, Vec<(&str, i64)>> = BTreeMap::new();
        for (event, time) in events.iter().zip(&times) {
            if let Some(id) = event.correlation_id() {
                operations
                    .entry(id.as_str())
                    .or_default()
                    .push((event.event_type().as_str(), *time));
            }
        }
        assert!(operations.len() > 10, "{} operations", operations.len());
        for (id, steps) in &operations {
            let types: Vec<&str> = steps.iter().map(|(kind, _)| *kind).collect();
            assert!(
                matches!(
                    types.as_slice(),
                    [
                        "user_invite.requested",
                        "user_invite.in_progress",
                        "user_invite.invited" | "user_invite.failed"
                    ]
                ),
                "{id}: {types:?}"
            );
            assert_eq!(steps[1].1 - steps[0].1, 60_000_000_000, "{id}");
            assert_eq!(steps[2].1 - steps[1].1, 60_000_000_000, "{id}");
        }
    }
}
