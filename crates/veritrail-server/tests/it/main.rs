//! Integration tests of the server: real HTTP on loopback to a real `Server` over a
//! temporary data directory, through the SDK (and raw requests for what the SDK would not
//! send).

mod authz;
mod catalog;
mod diskfull;
mod export;
mod flow;
mod fuzz;
mod gotlog;
mod hardening;
mod ingest;
mod lifecycle;
mod log;
mod openapi;
mod ops;
mod receiver;
mod restart;
mod scrub;
mod search;
mod selfaudit;
mod service;
#[path = "../../../veritrail-search/tests/it/small_disk.rs"]
mod small_disk;
mod stream;
mod support;
mod ui;
mod webhooks;
