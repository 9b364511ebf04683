//! Integration tests of veritrail-ledger: store conformance, the sequencer, crash safety
//! and the offline verifier.

#![allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on the first surprise"
)]

mod conformance;
mod crash;
mod ledger;
mod recovery;
mod support;
mod verify;
