//! Integration tests of veritrail-client, one binary: `export` verifies real bundles built
//! here and mutated; `client` and `batcher` talk real HTTP on loopback to `stub`, a scripted
//! stand-in for the server (which is not in this workspace's dependencies of the client);
//! `tail` reads live tails from it and `webhooks` manages subscriptions.

mod batcher;
mod client;
mod export;
mod stub;
mod tail;
mod webhooks;
