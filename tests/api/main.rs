//! Integration tests, one binary: a module per area, all against the real SQLite
//! file (and, for the HTTP API, the real server on a loopback port).

mod support;
mod plan;
mod log;
mod http;
mod audit;
mod flags;
mod report;
mod progress;
mod properties;
