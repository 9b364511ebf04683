//! Integration tests of veritrail-core: known-answer vectors and property tests.

mod catalog;
mod fuzz;
mod merkle;
mod note;
mod record;
mod webhook;
