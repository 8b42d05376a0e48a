//! Traguardo's read models, folded from the event log and nothing more.
//!
//! - [`answer`]: an objective's state written as JSON straight from the read
//!   model, the bytes of [`ObjectiveView`] without building it.
//! - [`objective`]: one objective's state ([`Objective`]), folded from its stream;
//!   [`Objective::evaluate`] gives its phases and score (DESIGN.md §4) at any valid
//!   date, and folding only the events up to a seq gives it as of any record time.
//! - [`plan`]: plan years, their units and revisions, and the [`Registry`] that
//!   holds every plan, objective and token in memory, with plan and unit scores.
//! - [`audit`]: the audit trail: every event with who, when, on what authority, a
//!   one-line Italian summary and the fields it changed, filtered as asked.
//! - [`revision`]: revision replay: each revision of a year, and every objective it
//!   touched before and after it, with a field-by-field diff.
//! - [`flags`]: red flags: retroactive revisions, late registrations, changes after
//!   validation…, each with the events that raise it.
//! - [`italian`]: the one Italian formatter (dates, percentages, statuses, roles).
//! - [`name`]: interned names and boxed texts, how the read model keeps strings.
//! - [`text`] and [`notes`]: the live read model's texts, and each phase's
//!   notes packed into bytes, kept in a file mapped into memory.
//! - [`snapshot`]: the registry as bytes for snapshots, and the [`snapshot::FOLD`]
//!   number that a change of the fold must raise.
//! - [`error`]: the one error type: an event that cannot be folded.

pub mod answer;
pub mod audit;
pub mod days;
pub mod error;
pub mod flags;
pub mod italian;
pub mod measurements;
pub mod name;
pub mod notes;
pub mod objective;
pub mod plan;
pub mod revision;
pub mod snapshot;
pub mod text;
pub mod timeline;

pub use error::ProjectionError;
pub use objective::{Objective, ObjectiveView, Outcome, PhaseStatus, Score};
pub use plan::{Plan, PlanScores, Registry, Seal, TokenInfo, UserAccount};
