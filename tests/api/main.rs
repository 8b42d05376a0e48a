//! Integration tests, one binary: a module per area, all against the real SQLite
//! file (and, for the HTTP API, the real server on a loopback port).

mod audit;
mod backup;
mod bounds;
mod conventions;
mod engines;
mod flags;
mod fuzzed;
mod hardening;
mod http;
mod identity;
mod log;
mod nucleo;
mod openapi;
mod plan;
mod plan_schema;
mod plan_sheet;
mod progress;
mod properties;
mod report;
mod report_pdf;
mod report_xlsx;
mod snapshots;
mod stream_snapshots;
mod support;
mod time_travel;
mod transparency;
mod web;
mod web_browser;
