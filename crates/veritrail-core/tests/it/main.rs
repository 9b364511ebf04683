//! Integration tests of veritrail-core: known-answer vectors and property tests.

mod catalog;
mod merkle;
mod note;
mod record;
mod webhook;
