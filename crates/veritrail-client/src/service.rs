//! What a SaaS backend does with one service key: send events for any customer (each
//! customer a tenant), mixed in one batch or one tenant at a time through
//! [`Client::for_tenant`], and mint each customer's embeddable Activity view. Also the
//! viewer tokens of a tenant, and the server admin's management of service keys.
//!
//! ```no_run
//! # async fn example() -> Result<(), veritrail_client::ClientError> {
//! use veritrail_client::{Client, IngestOptions};
//! use veritrail_api::{EventInput, ViewerTokenInput};
//!
//! let service = Client::new("http://127.0.0.1:8080", "vt_...")?;
//! // Events of two customers in one request: each goes to its own tenant's log.
//! let events: Vec<EventInput> = serde_json::from_value(serde_json::json!([
//!     {"tenant": "acme", "id": "evt-1", "type": "user.login"},
//!     {"tenant": "globex", "id": "evt-2", "type": "user.login"},
//! ])).expect("events");
//! let reply = service.send_mixed(&events, IngestOptions::default()).await?;
//! assert_eq!(reply.logs.len(), 2);
//! // One customer's Activity view, for one of its users (a service embedder key).
//! let token = service
//!     .for_tenant("acme")
//!     .mint_viewer_token(&ViewerTokenInput { actor: Some("user-1".into()), ..Default::default() })
//!     .await?;
//! println!("embed {}", token.embed_path);
//! # Ok(()) }
//! ```

use reqwest::Method;
use veritrail_api::{
    CreateServiceKey, EventInput, IngestReply, MixedIngestResponse, ServiceKeyBody,
    ServiceKeyCreated, ServiceKeyList, ViewerTokenBody, ViewerTokenInput, ViewerTokenList, paths,
};

use crate::client::{Client, IngestOptions, RetryMode, decode, fill};
use crate::error::ClientError;

impl Client {
    /// This client acting on `tenant`: with a service key (or that tenant's own key),
    /// [`Client::send`] writes to `tenant`'s log, and [`Client::catalog`] and the viewer
    /// token methods act on `tenant`. Other methods are unchanged.
    #[must_use]
    pub fn for_tenant(&self, tenant: &str) -> Client {
        let mut client = self.clone();
        client.tenant = Some(tenant.to_owned());
        client
    }

    /// The tenant [`Client::for_tenant`] named, if any.
    #[must_use]
    pub fn acting_tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// `own` (a route of the key's own tenant), or `named` with this client's tenant.
    pub(crate) fn tenant_path(&self, own: &str, named: &str) -> String {
        match &self.tenant {
            Some(tenant) => fill(named, &[("tenant", tenant)]),
            None => own.to_owned(),
        }
    }

    /// Sends events that each name their `tenant` (`POST /api/v1/events` with a service
    /// publisher key): each tenant's events go to its own log, all in one commit, and the
    /// reply has a receipt per event (naming its tenant) and a signed checkpoint per tenant.
    /// Retried as [`Client::send`] is: safely when every event has an `id`.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRequest`] for no events, too many, or one that names no tenant;
    /// otherwise as the request ends (`forbidden` for a tenant the key may not write to,
    /// `not_found` for one that does not exist, `rate_limited` naming a tenant over its
    /// share of the key).
    pub async fn send_mixed(
        &self,
        events: &[EventInput],
        options: IngestOptions,
    ) -> Result<MixedIngestResponse, ClientError> {
        if let Some(index) = events.iter().position(|event| event.tenant.is_none()) {
            return Err(ClientError::InvalidRequest(format!(
                "event {index} names no tenant; a mixed batch names each event's tenant"
            )));
        }
        // To POST /api/v1/events, whatever tenant this client acts on.
        let mut client = self.clone();
        client.tenant = None;
        match client.send_events(events, options).await? {
            IngestReply::Mixed(reply) => Ok(reply),
            IngestReply::Tenant(_) => Err(ClientError::InvalidRequest(
                "the server stored the events in one tenant's log (the key is a tenant key): use send".into(),
            )),
        }
    }

    /// Mints a viewer token for the tenant's embeddable Activity view, fixed to `input`'s
    /// actor or target (`POST /api/v1/viewer-tokens`, or the tenant's route for a client
    /// [`Client::for_tenant`]). Not retried: a repeat would mint a second token.
    ///
    /// # Errors
    ///
    /// `forbidden`, `not_found` (no such tenant), `invalid_parameter`; otherwise as the
    /// request ends.
    pub async fn mint_viewer_token(
        &self,
        input: &ViewerTokenInput,
    ) -> Result<ViewerTokenBody, ClientError> {
        let path = self.tenant_path(paths::VIEWER_TOKENS, paths::TENANT_VIEWER_TOKENS);
        self.send_body(Method::POST, &path, input).await
    }

    /// The tenant's viewer tokens that have not expired, newest first (never their texts).
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn viewer_tokens(&self) -> Result<ViewerTokenList, ClientError> {
        let path = self.tenant_path(paths::VIEWER_TOKENS, paths::TENANT_VIEWER_TOKENS);
        self.get_json(&path, &[]).await
    }

    /// Revokes a viewer token of the tenant: every page it opens is refused from now on.
    ///
    /// # Errors
    ///
    /// `not_found` for a token the tenant does not have; otherwise as the request ends.
    pub async fn revoke_viewer_token(&self, token_id: &str) -> Result<(), ClientError> {
        let path = match &self.tenant {
            Some(tenant) => fill(
                paths::TENANT_VIEWER_TOKEN,
                &[("tenant", tenant), ("token_id", token_id)],
            ),
            None => fill(paths::VIEWER_TOKEN, &[("token_id", token_id)]),
        };
        let url = self.url(&path);
        // Revoking twice revokes once.
        self.execute(RetryMode::Idempotent, || self.http().delete(&url))
            .await?;
        Ok(())
    }

    /// Creates a service key (server admin); the reply holds its secret, shown only here.
    /// Not retried: a repeat would create a second key.
    ///
    /// # Errors
    ///
    /// `invalid_parameter` for a bad scope, `forbidden` for any key but the server admin's;
    /// otherwise as the request ends.
    pub async fn create_service_key(
        &self,
        input: &CreateServiceKey,
    ) -> Result<ServiceKeyCreated, ClientError> {
        self.send_body(Method::POST, paths::SERVICE_KEYS, input)
            .await
    }

    /// Every service key, active and revoked (server admin).
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn service_keys(&self) -> Result<ServiceKeyList, ClientError> {
        self.get_json(paths::SERVICE_KEYS, &[]).await
    }

    /// Revokes a service key (server admin) and returns it with `revoked_at` set: it
    /// authenticates nothing from now on, and the viewer tokens it minted stop working.
    ///
    /// # Errors
    ///
    /// `not_found`; otherwise as the request ends.
    pub async fn revoke_service_key(&self, key_id: &str) -> Result<ServiceKeyBody, ClientError> {
        let path = fill(paths::SERVICE_KEY, &[("key_id", key_id)]);
        let url = self.url(&path);
        let response = self
            .execute(RetryMode::Idempotent, || self.http().delete(&url))
            .await?;
        decode(response, &format!("DELETE {path}")).await
    }
}
