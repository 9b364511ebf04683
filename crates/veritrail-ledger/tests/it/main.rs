//! Integration tests of veritrail-ledger: store conformance, the sequencer, crash safety
//! (SIGKILL and power cuts) and the offline verifier.

#![allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on the first surprise"
)]

mod compaction;
mod conformance;
mod crash;
mod ledger;
mod powercut;
mod recovery;
mod support;
mod verify;
