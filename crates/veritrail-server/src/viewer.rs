//! Viewer tokens: short-lived, scoped, signed permissions to see one tenant's Activity view
//! in an iframe, for a product that embeds it for its own customers.
//!
//! A token is `vtv_` + base64url(JSON claims) + `.` + base64url(HMAC-SHA256 of the claims
//! under a server key made at first start, in `control.redb`). The claims name the tenant,
//! the fixed filters (an actor, a target), the expiry and the token's id. Nothing else is
//! trusted: a changed claim breaks the signature, and the fixed filters replace whatever
//! the URL says, so a token can never be widened. A signed token opens nothing unless its row
//! in the control plane is live too (see [`crate::control::ViewerTokenRow`]): revoking it,
//! or the key that minted it, ends it at once.
//!
//! Its uses are audited by token and minute ([`Uses`]): the first request of a token in a
//! minute writes `veritrail.viewer_token.used` (before it is answered); the others in that
//! minute write nothing, so a busy or hostile embedding page cannot flood the log.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use veritrail_core::webhook::{constant_time_eq, hmac_sha256};

const PREFIX: &str = "vtv_";

/// What a viewer token allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The token's id (named in audit events).
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "t")]
    pub tenant: String,
    /// Only events of this actor, when set.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only events about this target, when set.
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Unix seconds after which the token no longer works.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Why a token does not open the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this server, or changed.
    Invalid,
    /// Past its expiry.
    Expired,
}

/// The minute in which each viewer token's use was last recorded (see the module doc).
#[derive(Debug, Default)]
pub struct Uses {
    recorded: Mutex<HashMap<String, i64>>,
}

/// Past this many tokens, those not used this minute are forgotten.
const USES_KEPT: usize = 4096;

impl Uses {
    /// Whether this is `token_id`'s first use in `minute` (Unix minutes), which must be
    /// recorded; it is marked as recorded.
    pub fn first_in_minute(&self, token_id: &str, minute: i64) -> bool {
        let mut recorded = self.recorded.lock().expect("uses lock poisoned");
        if recorded.len() > USES_KEPT && !recorded.contains_key(token_id) {
            recorded.retain(|_, at| *at >= minute);
        }
        recorded.insert(token_id.to_owned(), minute) != Some(minute)
    }

    /// Unmarks a use whose audit event could not be written: the next use tries again.
    pub fn forget(&self, token_id: &str, minute: i64) {
        let mut recorded = self.recorded.lock().expect("uses lock poisoned");
        if recorded.get(token_id) == Some(&minute) {
            recorded.remove(token_id);
        }
    }
}

/// The token text for `claims`.
pub fn mint(key: &[u8; 32], claims: &Claims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mac = hmac_sha256(key, &[payload.as_bytes()]);
    format!("{PREFIX}{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// The claims of `token` if it is this server's, unchanged and not expired at `now`.
pub fn open(key: &[u8; 32], token: &str, now: i64) -> Result<Claims, TokenError> {
    let (payload, mac) = token
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .ok_or(TokenError::Invalid)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| TokenError::Invalid)?;
    if !constant_time_eq(&mac, &hmac_sha256(key, &[payload.as_bytes()])) {
        return Err(TokenError::Invalid);
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Invalid)?;
    if now >= claims.expires {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            id: "vt_1".into(),
            tenant: "acme".into(),
            actor: Some("u1".into()),
            target: None,
            expires: 1_000,
        }
    }

    #[test]
    fn tokens_open_with_their_key_until_they_expire_and_not_when_changed() {
        let key = [7u8; 32];
        let token = mint(&key, &claims());
        assert_eq!(open(&key, &token, 999), Ok(claims()));
        assert_eq!(open(&key, &token, 1_000), Err(TokenError::Expired));
        assert_eq!(open(&[8u8; 32], &token, 0), Err(TokenError::Invalid));
        // A widened claim (no actor) with the old signature.
        let widened = Claims {
            actor: None,
            ..claims()
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).expect("json"));
        let mac = token.rsplit_once('.').expect("mac").1;
        let forged = format!("{PREFIX}{forged_payload}.{mac}");
        assert_eq!(open(&key, &forged, 0), Err(TokenError::Invalid));
        for junk in ["", "vtv_", "vtv_abc", "vtv_abc.def", "nope"] {
            assert_eq!(open(&key, junk, 0), Err(TokenError::Invalid), "{junk:?}");
        }
    }

    #[test]
    fn a_token_is_recorded_once_a_minute() {
        let uses = Uses::default();
        assert!(uses.first_in_minute("vtk_1", 100));
        assert!(!uses.first_in_minute("vtk_1", 100));
        assert!(uses.first_in_minute("vtk_2", 100), "tokens are apart");
        assert!(uses.first_in_minute("vtk_1", 101), "a new minute");
        uses.forget("vtk_1", 101);
        assert!(
            uses.first_in_minute("vtk_1", 101),
            "a failed record is tried again"
        );
    }
}
