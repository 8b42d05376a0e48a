//! What a decide function refuses, as data. Each variant says in Italian what
//! went wrong for the person who reads it, and [`DomainError::kind`] says what
//! kind of refusal it is, which the HTTP layer turns into a status in one place.

use chrono::NaiveDate;
use traguardo_events::model::Role;
use traguardo_projections::italian;

use crate::error::FieldError;

/// The kind of a refusal: what it becomes over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The principal may not do this (403).
    Forbidden,
    /// It names something that does not exist (404).
    NotFound,
    /// The state of the objective or plan forbids it (409).
    Rule,
    /// The input is wrong (422).
    Invalid,
}

/// A command refused by a rule of the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Only the *Nucleo di Valutazione* validates.
    #[error(
        "solo il Nucleo di Valutazione (ruolo validator) può registrare validazioni; {actor} è {}",
        italian::role(*role)
    )]
    NotValidator {
        /// Who asked.
        actor: String,
        /// Their role.
        role: Role,
    },
    /// Only a manager of the objective's unit records its progress.
    #[error(
        "solo un dirigente dell'unità {unit} può registrare l'avanzamento di {key}; {actor} è {}{}",
        italian::role(*role),
        units_clause(units)
    )]
    NotManagerOf {
        /// The objective.
        key: String,
        /// Its unit.
        unit: String,
        /// Who asked.
        actor: String,
        /// Their role.
        role: Role,
        /// The units they act for.
        units: Vec<String>,
    },
    /// Only an admin (*Programmazione e Controllo*) does this.
    #[error(
        "solo un amministratore (Programmazione e Controllo) può {action}; {actor} è {}",
        italian::role(*role)
    )]
    NotAdmin {
        /// What was asked, in Italian ("registrare rimodulazioni").
        action: &'static str,
        /// Who asked.
        actor: String,
        /// Their role.
        role: Role,
    },
    /// Separation of duties: whoever declared a completion may not validate it.
    #[error(
        "{actor} ha registrato il completamento della fase {phase} di {key} e non può validarlo"
    )]
    ValidatesOwnCompletion {
        /// Who asked.
        actor: String,
        /// The objective.
        key: String,
        /// The phase they completed.
        phase: u32,
    },
    /// No such plan.
    #[error("non esiste un piano per il {year}")]
    UnknownPlan {
        /// The year asked for.
        year: i32,
    },
    /// No such objective.
    #[error("non esiste l'obiettivo {key}")]
    UnknownObjective {
        /// The key asked for.
        key: String,
    },
    /// No such phase.
    #[error("l'obiettivo {key} non ha la fase {phase}")]
    UnknownPhase {
        /// The objective.
        key: String,
        /// The phase asked for.
        phase: u32,
    },
    /// No such indicator.
    #[error("l'obiettivo {key} non ha l'indicatore {indicator}")]
    UnknownIndicator {
        /// The objective.
        key: String,
        /// The indicator asked for.
        indicator: String,
    },
    /// No such red flag in the plan.
    #[error("il piano {year} non ha la segnalazione {flag}")]
    UnknownFlag {
        /// The plan year.
        year: i32,
        /// The flag id asked for.
        flag: String,
    },
    /// The objective was withdrawn by a revision.
    #[error("l'obiettivo {key} è stato stralciato da una rimodulazione")]
    ObjectiveWithdrawn {
        /// The objective.
        key: String,
    },
    /// The phase was withdrawn by a revision.
    #[error("la fase {phase} di {key} è stata stralciata da una rimodulazione")]
    PhaseWithdrawn {
        /// The objective.
        key: String,
        /// The phase.
        phase: u32,
    },
    /// A phase starts once.
    #[error("la fase {phase} di {key} è già stata avviata il {}", italian::date(*on))]
    PhaseAlreadyStarted {
        /// The objective.
        key: String,
        /// The phase.
        phase: u32,
        /// When it was started.
        on: NaiveDate,
    },
    /// A phase completes once (a retraction reopens it).
    #[error("la fase {phase} di {key} è già stata completata il {}", italian::date(*on))]
    PhaseAlreadyCompleted {
        /// The objective.
        key: String,
        /// The phase.
        phase: u32,
        /// When it was completed.
        on: NaiveDate,
    },
    /// A completion cannot precede the recorded start.
    #[error(
        "la fase {phase} di {key} non può essere completata il {}, prima del suo avvio il {}",
        italian::date(*on),
        italian::date(*started)
    )]
    CompletionBeforeStart {
        /// The objective.
        key: String,
        /// The phase.
        phase: u32,
        /// The completion date asked for.
        on: NaiveDate,
        /// The recorded start.
        started: NaiveDate,
    },
    /// Only a recorded completion can be withdrawn.
    #[error("la fase {phase} di {key} non ha un completamento da annullare")]
    NothingToRetract {
        /// The objective.
        key: String,
        /// The phase.
        phase: u32,
    },
    /// The plan of an objective is validated once, unless a revision changed it.
    #[error(
        "il piano dell'obiettivo {key} è già stato validato il {} e nessuna rimodulazione lo ha cambiato da allora",
        italian::date(*on)
    )]
    PlanAlreadyValidated {
        /// The objective.
        key: String,
        /// The Italian date of the earlier validation.
        on: NaiveDate,
    },
    /// The year was sealed (*esercizio chiuso*): its plan and objectives take
    /// no more writes.
    #[error(
        "esercizio chiuso: il piano {year} è stato sigillato dal Nucleo di Valutazione il {} \
         (checkpoint di {size} eventi) e non accetta più scritture su piano e obiettivi",
        italian::date(*on)
    )]
    YearSealed {
        /// The plan year.
        year: i32,
        /// The Italian date of the seal.
        on: NaiveDate,
        /// The tree size of the sealed checkpoint.
        size: u64,
    },
    /// The input is wrong: every problem, with its field.
    #[error("dati non validi: {}", join(.0))]
    Invalid(Vec<FieldError>),
}

impl DomainError {
    /// What kind of refusal this is.
    pub fn kind(&self) -> RefusalKind {
        match self {
            DomainError::NotValidator { .. }
            | DomainError::NotManagerOf { .. }
            | DomainError::NotAdmin { .. }
            | DomainError::ValidatesOwnCompletion { .. } => RefusalKind::Forbidden,
            DomainError::UnknownPlan { .. }
            | DomainError::UnknownObjective { .. }
            | DomainError::UnknownPhase { .. }
            | DomainError::UnknownIndicator { .. }
            | DomainError::UnknownFlag { .. } => RefusalKind::NotFound,
            DomainError::ObjectiveWithdrawn { .. }
            | DomainError::PhaseWithdrawn { .. }
            | DomainError::PhaseAlreadyStarted { .. }
            | DomainError::PhaseAlreadyCompleted { .. }
            | DomainError::CompletionBeforeStart { .. }
            | DomainError::NothingToRetract { .. }
            | DomainError::PlanAlreadyValidated { .. }
            | DomainError::YearSealed { .. } => RefusalKind::Rule,
            DomainError::Invalid(_) => RefusalKind::Invalid,
        }
    }

    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldError::new(field, message)])
    }
}

fn units_clause(units: &[String]) -> String {
    if units.is_empty() {
        String::new()
    } else {
        format!(" per le unità {}", units.join(", "))
    }
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
