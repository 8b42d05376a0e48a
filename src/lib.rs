//! Traguardo: event-sourced tracking of a municipality's *Piano degli Obiettivi*.
//!
//! - [`plan_document`]: the plan document of DESIGN.md §6, validated all at once;
//!   [`plan_sheet`]: the same plan as a workbook (template, export, import), and
//!   [`plan_cli`]: its commands.
//! - [`commands`]: decide functions, where every rule lives (no I/O).
//! - [`app`]: the use cases over the store and the in-memory read model;
//!   [`snapshots`]: that read model saved beside the log and checked against it
//!   at start.
//!   [`time_travel`]: the cache of objective streams behind reads at a past seq.
//! - [`error`]: the application's error type.
//! - [`backup`]: `backup` and `restore` of a SQLite log.
//! - [`transparency`]: signed checkpoints, witnesses' cosignatures and the
//!   year-end seal (DESIGN.md §9); [`transparency_cli`]: their commands (`key`,
//!   `prove`, `cosign`, `verify --checkpoint`).
//! - [`cli`]: the command line; [`http`]: the HTTP API; [`report`]: end-of-year
//!   reports; [`flags`]: red flags at the terminal; [`web`]: the web application
//!   (DESIGN.md §8).
//!
//! The benchmarks live beside the product, in the `traguardo-bench` package
//! (`bench/`).

pub mod app;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod error;
pub mod flags;
pub mod http;
pub mod plan_cli;
pub mod plan_document;
pub mod plan_sheet;
pub mod report;
pub mod snapshots;
pub mod time_travel;
pub mod transparency;
pub mod transparency_cli;
pub mod web;

pub use app::App;
pub use error::{AppError, FieldError};
