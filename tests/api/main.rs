//! Integration tests, one binary: a module per area, all against the real SQLite
//! file (and, for the HTTP API, the real server on a loopback port).

mod audit;
mod engines;
mod flags;
mod http;
mod log;
mod nucleo;
mod plan;
mod plan_sheet;
mod progress;
mod properties;
mod report;
mod report_xlsx;
mod support;
mod transparency;
mod web;
mod web_browser;
