//! Integration tests of the server: real HTTP on loopback to a real `Server` over a
//! temporary data directory, through the SDK (and raw requests for what the SDK would not
//! send).

mod flow;
mod support;
