//! The demo tenant of `veritrail serve --demo`: a tenant `demo` with a viewer key, a
//! publisher key and a week of realistic sample events (sign-ins, failures, password and
//! role changes, an integration set up step by step), so that a new user sees a working
//! system at once. Made once; later starts reuse it.

use serde_json::json;
use veritrail_api::{EventInput, Role};
use veritrail_core::event::{Event, TenantId, Timestamp};

use crate::AppState;
use crate::audit;
use crate::control::Principal;
use crate::error::ApiError;

/// The demo tenant's id.
pub const TENANT: &str = "demo";
/// Sample events made.
pub const N_EVENTS: usize = 400;

/// Keys made for the demo tenant (secrets shown once).
#[derive(Debug)]
pub struct DemoKeys {
    pub viewer: String,
    pub publisher: String,
}

/// Makes the demo tenant, its keys and its events; `None` when it exists already.
pub async fn set_up(state: &AppState) -> Result<Option<DemoKeys>, ApiError> {
    let tenant = TenantId::parse(TENANT).map_err(ApiError::internal)?;
    if state.control().tenant(TENANT)?.is_some() {
        return Ok(None);
    }
    let admin = Principal::ServerAdmin;
    let (_, owner, _) = state
        .control()
        .create_tenant(&tenant, Some("Demo".into()))?;
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
    let events = sample_events(crate::clock::now())?;
    for chunk in events.chunks(100) {
        state
            .ledger()
            .append(tenant.clone(), chunk.to_vec())
            .await
            .map_err(ApiError::unavailable)?;
    }
    let publisher = secrets.pop().unwrap_or_default();
    let viewer = secrets.pop().unwrap_or_default();
    Ok(Some(DemoKeys { viewer, publisher }))
}

const USERS: &[(&str, &str, &str)] = &[
    ("u_1001", "Ada Lovelace", "ada@example.com"),
    ("u_1002", "Grace Hopper", "grace@example.com"),
    ("u_1003", "Alan Turing", "alan@example.com"),
    ("u_1004", "Katherine Johnson", "katherine@example.com"),
    ("u_1005", "Edsger Dijkstra", "edsger@example.com"),
];

/// A week of events ending at `now`, oldest first; deterministic but for the times.
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
    let mut i = 0;
    while events.len() < N_EVENTS {
        let at = Timestamp::from_unix_nanos(now.unix_nanos() - WEEK_NANOS + step * i);
        i += 1;
        let (user_id, name, email) = USERS[next(USERS.len())];
        let ip = format!("203.0.113.{}", 10 + next(200));
        let actor = json!({"id": user_id, "type": "user", "name": name, "email": email, "ip": ip,
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0"});
        let kind = next(100);
        let inputs: Vec<serde_json::Value> = if kind < 45 {
            vec![
                json!({"type": "user.login", "actor": actor, "outcome": "success",
                "summary": format!("{email} signed in"), "details": {"method": "password", "mfa": true}}),
            ]
        } else if kind < 60 {
            vec![
                json!({"type": "user.login", "actor": actor, "outcome": "failure",
                "summary": format!("Failed sign-in for {email}"), "details": {"reason": "wrong password"}}),
            ]
        } else if kind < 70 {
            vec![
                json!({"type": "user.logout", "actor": actor, "outcome": "success",
                "summary": format!("{email} signed out")}),
            ]
        } else if kind < 77 {
            vec![
                json!({"type": "user.password_updated", "actor": actor, "outcome": "success",
                "targets": [{"id": user_id, "type": "user", "name": email}],
                "summary": format!("{email} changed their password")}),
            ]
        } else if kind < 84 {
            let (other_id, _, other_email) = USERS[next(USERS.len())];
            let role = ["viewer", "editor", "admin"][next(3)];
            vec![
                json!({"type": "user.role_assigned", "actor": actor, "outcome": "success",
                "targets": [{"id": other_id, "type": "user", "name": other_email}],
                "summary": format!("{email} gave {other_email} the role {role}"), "details": {"role": role}}),
            ]
        } else if kind < 90 {
            vec![
                json!({"type": "document.exported", "actor": actor, "outcome": "success",
                "targets": [{"id": format!("doc_{}", 100 + next(50)), "type": "document", "name": "Quarterly report"}],
                "summary": format!("{email} exported a document"), "details": {"format": "pdf"}}),
            ]
        } else if kind < 95 {
            vec![
                json!({"type": "api_key.created", "actor": actor, "outcome": "success",
                "targets": [{"id": format!("ak_{}", next(10_000)), "type": "api_key"}],
                "summary": format!("{email} created an API key"), "details": {"scopes": ["read"]}}),
            ]
        } else {
            // An integration set up step by step, as one operation (seed 004's lifecycle).
            let integration = ["Slack", "GitHub", "Okta", "Salesforce"][next(4)];
            let correlation = format!("op_{}", next(1_000_000));
            let target = json!([{"id": format!("int_{}", integration.to_lowercase()), "type": "integration", "name": integration}]);
            let failed = next(4) == 0;
            vec![
                json!({"type": "integration.create.requested", "actor": actor, "outcome": "pending", "targets": target,
                    "correlation_id": correlation, "summary": format!("{email} asked to connect {integration}")}),
                json!({"type": "integration.create.in_progress", "actor": actor, "outcome": "pending", "targets": target,
                    "correlation_id": correlation, "summary": format!("Connecting {integration}")}),
                json!({"type": if failed {"integration.create.failed"} else {"integration.create.done"}, "actor": actor,
                    "outcome": if failed {"failure"} else {"success"}, "targets": target, "correlation_id": correlation,
                    "summary": if failed {format!("Connecting {integration} failed")} else {format!("{integration} connected")},
                    "details": if failed {json!({"error": "the OAuth grant was refused"})} else {json!({"scopes": ["read", "write"]})}}),
            ]
        };
        for mut input in inputs {
            input["occurred_at"] = json!(at.to_rfc3339());
            input["id"] = json!(format!("demo-{}", events.len()));
            let input: EventInput = serde_json::from_value(input).map_err(ApiError::internal)?;
            events.push(Event::parse(input).map_err(ApiError::internal)?);
        }
    }
    events.truncate(N_EVENTS);
    Ok(events)
}
