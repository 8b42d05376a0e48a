//! Traguardo's read models, folded from the event log and nothing more.
//!
//! - [`objective`]: one objective's state ([`Objective`]), folded from its stream;
//!   [`Objective::evaluate`] gives its phases and score (DESIGN.md §4) at any valid
//!   date, and folding only the events up to a seq gives it as of any record time.
//! - [`plan`]: plan years, their units and revisions, and the [`Registry`] that
//!   holds every plan, objective and token in memory, with plan and unit scores.
//! - [`error`]: the one error type: an event that cannot be folded.

pub mod error;
pub mod objective;
pub mod plan;
pub mod timeline;

pub use error::ProjectionError;
pub use objective::{Objective, ObjectiveView, Outcome, PhaseStatus, Score};
pub use plan::{Plan, PlanScores, Registry, TokenInfo};
