//! The report as people read it (Markdown, HTML and PDF): every value already
//! in Italian words and formats, so that the templates only lay it out. The PDF's
//! typst template reads it serialised as JSON.

use super::italian as it;
use super::model::{IndicatorReport, ObjectiveReport, PhaseReport, Report};
use super::Level;
use traguardo_projections::objective::Pct;
use traguardo_projections::{Outcome, PhaseStatus};

/// The whole document.
#[derive(serde::Serialize)]
pub struct Document {
    /// `Relazione sul grado di raggiungimento degli obiettivi 2022`, or
    /// `Monitoraggio intermedio al 30/06/2022` before the end of the year.
    pub heading: String,
    /// What the document is, under the heading: `Obiettivi 2022 — …`.
    pub subheading: String,
    /// *Ente*.
    pub organisation: String,
    /// The plan's title.
    pub plan_title: String,
    /// Reference date.
    pub at: String,
    /// Record-time cut, if any.
    pub as_of: Option<String>,
    /// Generation time.
    pub generated_at: String,
    /// Head seq of the log.
    pub head_seq: u64,
    /// Head hash of the log.
    pub head_hash: String,
    /// The signed checkpoint of the head, when the server signs them.
    pub checkpoint: Option<String>,
    /// Whether phases are listed (phase level) or only objectives.
    pub phases: bool,
    /// Plan summary.
    pub summary: SummaryDoc,
    /// Units, in unit-code order.
    pub units: Vec<UnitDoc>,
    /// One line per revision.
    pub revisions: Vec<String>,
    /// One line per red flag.
    pub flags: Vec<String>,
    /// The year-end seal, if the year is sealed.
    pub sealed: Option<SealDoc>,
    /// The signature block.
    pub signatures: SignaturesDoc,
}

/// The signature block as printed.
#[derive(serde::Serialize)]
pub struct SignaturesDoc {
    /// `Il Dirigente` / `Il Responsabile` of each unit.
    pub units: Vec<SignatureDoc>,
    /// The Nucleo's *visto di validazione*: date and minutes of each validation
    /// session, or that there was none yet.
    pub validations: Vec<String>,
}

/// One unit's signature line.
#[derive(serde::Serialize)]
pub struct SignatureDoc {
    /// `Il Dirigente` or `Il Responsabile`.
    pub role: String,
    /// `Settore 2250 — Risorse finanziarie e tributi`.
    pub unit: String,
    /// The manager's name, or blank for the signature.
    pub name: String,
}

/// The year-end seal (*esercizio chiuso*) as printed.
#[derive(serde::Serialize)]
pub struct SealDoc {
    /// Who sealed.
    pub actor: String,
    /// When, in Italian time.
    pub recorded_at: String,
    /// The checkpoint's origin.
    pub origin: String,
    /// The tree size sealed.
    pub size: u64,
    /// The root, base64.
    pub root: String,
    /// The signed note, signature lines included.
    pub checkpoint: String,
}

/// The plan summary.
#[derive(serde::Serialize)]
pub struct SummaryDoc {
    /// Objectives that count.
    pub objectives: usize,
    /// *Raggiunti*.
    pub achieved: usize,
    /// *Non raggiunti*.
    pub not_achieved: usize,
    /// *In corso*.
    pub in_progress: usize,
    /// *Stralciati*.
    pub withdrawn: usize,
    /// With a final validation.
    pub validated: usize,
    /// Declared *grado di raggiungimento* of the plan.
    pub score: String,
    /// Validated *grado di raggiungimento*, or why there is none yet.
    pub validated_score: String,
    /// Per unit.
    pub units: Vec<UnitScoreDoc>,
    /// The bar chart of unit scores (HTML).
    pub chart: Chart,
}

/// A unit's line in the summary.
#[derive(serde::Serialize)]
pub struct UnitScoreDoc {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Objectives that count.
    pub objectives: usize,
    /// Declared *grado di raggiungimento*.
    pub score: String,
    /// Objectives with a current final validation.
    pub validated: usize,
    /// Validated *grado di raggiungimento*, or a dash.
    pub validated_score: String,
}

/// An SVG bar chart, geometry computed here so the template only draws.
#[derive(serde::Serialize)]
pub struct Chart {
    /// Total width.
    pub width: u32,
    /// Total height.
    pub height: u32,
    /// Where bars start (after the labels).
    pub left: u32,
    /// The width of a 100% bar.
    pub span: u32,
    /// Where unit labels end (right-aligned).
    pub label_x: u32,
    /// Where gridlines start.
    pub grid_top: u32,
    /// Where gridlines end.
    pub grid_bottom: u32,
    /// Baseline of the gridline labels.
    pub axis_y: u32,
    /// Gridlines at 0, 25, 50, 75, 100%.
    pub ticks: Vec<Tick>,
    /// One bar per unit.
    pub bars: Vec<Bar>,
    /// The mean, drawn as a line.
    pub mean_x: u32,
    /// The mean's label.
    pub mean_label: String,
}

/// A gridline.
#[derive(serde::Serialize)]
pub struct Tick {
    /// Its x.
    pub x: u32,
    /// Its label.
    pub label: String,
}

/// One bar.
#[derive(serde::Serialize)]
pub struct Bar {
    /// Top of the bar.
    pub y: u32,
    /// Baseline of its labels.
    pub text_y: u32,
    /// Its length.
    pub width: u32,
    /// Unit code.
    pub label: String,
    /// Score, in words.
    pub value: String,
    /// Where the value is written.
    pub value_x: u32,
}

/// A unit and its objectives.
#[derive(serde::Serialize)]
pub struct UnitDoc {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `Dott. Stefano Specchia (Dirigente)`, or a dash.
    pub manager: String,
    /// Declared *grado di raggiungimento*, or a dash.
    pub score: String,
    /// `validato: 80% (3 obiettivi validati su 3)`.
    pub validated: String,
    /// Objectives.
    pub objectives: Vec<ObjectiveDoc>,
}

/// An objective.
#[derive(serde::Serialize)]
pub struct ObjectiveDoc {
    /// Key.
    pub key: String,
    /// Letter.
    pub letter: String,
    /// Title.
    pub title: String,
    /// Manager.
    pub manager: String,
    /// *Finalità strategiche*.
    pub strategic_purpose: String,
    /// *Risultato atteso*.
    pub expected_result: String,
    /// The other units and bodies involved, or a dash.
    pub involved: String,
    /// Indicators.
    pub indicators: Vec<IndicatorDoc>,
    /// Final deadline in force.
    pub final_deadline: String,
    /// Final deadline as planned, when a revision moved it.
    pub original_final_deadline: Option<String>,
    /// Phases.
    pub phases: Vec<PhaseDoc>,
    /// Completed weight.
    pub completed_pct: String,
    /// On-time weight.
    pub on_time_pct: String,
    /// Outcome in words.
    pub outcome: &'static str,
    /// Outcome as a CSS class suffix.
    pub outcome_class: &'static str,
    /// Validated result, or `non ancora validato`; a stale validation says
    /// *validazione da ripetere*.
    pub validated: String,
    /// Whether the validation went stale.
    pub stale: bool,
    /// What the validation said besides the number.
    pub validation_detail: Option<String>,
    /// The validation's note.
    pub validation_note: Option<String>,
    /// The minutes of the validation.
    pub validation_reference: Option<String>,
    /// The manager's notes on its phases, one line each.
    pub notes: Vec<String>,
}

/// An indicator.
#[derive(serde::Serialize)]
pub struct IndicatorDoc {
    /// Its description.
    pub description: String,
    /// `Rapporto`, `Soglia`, `Qualitativo`.
    pub kind: &'static str,
    /// Target, or a dash.
    pub target: String,
    /// The measured value with its date, the finding of a qualitative one, or
    /// `non rilevato`.
    pub actual: String,
    /// `sì`, `no`, or a dash.
    pub met: &'static str,
}

/// A phase.
#[derive(serde::Serialize)]
pub struct PhaseDoc {
    /// Number.
    pub number: u32,
    /// Description.
    pub description: String,
    /// Weight in force.
    pub weight: String,
    /// Deadline as planned.
    pub original_deadline: String,
    /// Deadline in force.
    pub deadline: String,
    /// Units or bodies involved, or a dash.
    pub involved: String,
    /// Whether a revision moved the deadline.
    pub deadline_changed: bool,
    /// Completion date, or a dash.
    pub completed_on: String,
    /// Status in words.
    pub status: &'static str,
    /// Status symbol.
    pub symbol: &'static str,
    /// Status as a CSS class suffix.
    pub class: &'static str,
    /// How the validation treated it, if specially.
    pub validation: Option<&'static str>,
}

impl Document {
    /// Lays out a report.
    pub fn new(report: &Report, level: Level) -> Self {
        let units: Vec<UnitDoc> = report
            .units
            .iter()
            .map(|u| UnitDoc {
                code: u.code.clone(),
                name: u.name.clone(),
                manager: match (&u.manager, &u.manager_title) {
                    (Some(m), Some(t)) => format!("{m} ({t})"),
                    (Some(m), None) => m.clone(),
                    (None, _) => "—".into(),
                },
                score: u.score.map_or_else(|| "—".into(), it::pct),
                validated: validated_line(
                    u.validated_score,
                    u.validated,
                    u.objectives
                        .iter()
                        .filter(|o| o.outcome != Outcome::Withdrawn)
                        .count(),
                ),
                objectives: u.objectives.iter().map(objective).collect(),
            })
            .collect();
        let summary = &report.summary;
        let (heading, subheading) = if report.interim {
            (
                format!("Monitoraggio intermedio al {}", it::date(report.at)),
                format!(
                    "Stato di attuazione degli obiettivi {} — {}",
                    report.year, report.organisation
                ),
            )
        } else {
            (
                format!(
                    "Relazione sul grado di raggiungimento degli obiettivi {}",
                    report.year
                ),
                format!("{} — {}", report.organisation, report.title),
            )
        };
        Document {
            heading,
            subheading,
            checkpoint: report.checkpoint.as_ref().map(|c| c.trim_end().to_string()),
            signatures: signatures(report),
            organisation: report.organisation.clone(),
            plan_title: report.title.clone(),
            at: it::date(report.at),
            as_of: report.as_of.map(it::timestamp),
            generated_at: it::timestamp(report.generated_at),
            head_seq: report.head.seq,
            head_hash: report.head.hash.clone(),
            sealed: report.sealed.as_ref().map(|seal| SealDoc {
                actor: seal.actor.clone(),
                recorded_at: it::timestamp(seal.recorded_at),
                origin: seal.origin.clone(),
                size: seal.size,
                root: seal.root.clone(),
                checkpoint: seal.checkpoint.trim_end().to_string(),
            }),
            phases: level == Level::Phase,
            summary: SummaryDoc {
                objectives: summary.objectives,
                achieved: summary.achieved,
                not_achieved: summary.not_achieved,
                in_progress: summary.in_progress,
                withdrawn: summary.withdrawn,
                validated: summary.validated,
                score: it::pct(summary.score),
                validated_score: summary.validated_score.map_or_else(
                    || {
                        format!(
                            "non ancora disponibile ({} obiettivi validati su {})",
                            summary.validated, summary.objectives
                        )
                    },
                    it::pct,
                ),
                units: summary
                    .units
                    .iter()
                    .map(|u| UnitScoreDoc {
                        code: u.unit.clone(),
                        name: u.name.clone(),
                        objectives: u.objectives,
                        score: it::pct(u.score),
                        validated: u.validated,
                        validated_score: u.validated_score.map_or_else(|| "—".into(), it::pct),
                    })
                    .collect(),
                chart: chart(report),
            },
            units,
            revisions: report.revisions.iter().map(it::revision).collect(),
            flags: report.flags.iter().map(it::flag).collect(),
        }
    }
}

/// A unit's validated *grado di raggiungimento* with its count.
fn validated_line(score: Option<Pct>, validated: usize, objectives: usize) -> String {
    let count = format!("{validated} obiettivi validati su {objectives}");
    match score {
        Some(score) => format!("{} ({count})", it::pct(score)),
        None => format!("non ancora disponibile ({count})"),
    }
}

/// The signature block.
fn signatures(report: &Report) -> SignaturesDoc {
    SignaturesDoc {
        units: report
            .signatures
            .units
            .iter()
            .map(|s| SignatureDoc {
                role: s.role.clone(),
                unit: format!("{} — {}", s.unit, s.name),
                name: s.manager.clone().unwrap_or_default(),
            })
            .collect(),
        validations: report
            .signatures
            .validations
            .iter()
            .map(|m| {
                let objectives = if m.objectives == 1 {
                    "1 obiettivo".to_string()
                } else {
                    format!("{} obiettivi", m.objectives)
                };
                match &m.reference {
                    Some(reference) => format!(
                        "{reference}, registrato il {} ({objectives})",
                        it::date(m.date)
                    ),
                    None => format!(
                        "validazione registrata il {} senza verbale ({objectives})",
                        it::date(m.date)
                    ),
                }
            })
            .collect(),
    }
}

fn indicator(i: &IndicatorReport) -> IndicatorDoc {
    use traguardo_events::model::IndicatorKind;
    let kind = match i.kind {
        IndicatorKind::Ratio => "Rapporto",
        IndicatorKind::Threshold => "Soglia",
        IndicatorKind::Qualitative => "Qualitativo",
    };
    let measured = i
        .measured_on
        .map(|on| format!(" al {}", it::date(on)))
        .unwrap_or_default();
    let actual = match (&i.text, i.actual, i.numerator, i.denominator) {
        (Some(text), _, _, _) => format!("{}{measured}", it::one_line(text)),
        (None, Some(value), Some(a), Some(b)) => {
            format!("{} ({a} su {b}){measured}", it::pct(value))
        }
        (None, Some(value), _, _) => format!("{}{measured}", it::pct(value)),
        (None, None, _, _) => "non rilevato".to_string(),
    };
    IndicatorDoc {
        description: if i.withdrawn {
            format!("{} (stralciato)", i.description)
        } else {
            i.description.clone()
        },
        kind,
        target: i.target.map_or_else(|| "—".into(), it::pct),
        actual,
        met: match i.met {
            Some(true) => "sì",
            Some(false) => "no",
            None => "—",
        },
    }
}

fn objective(o: &ObjectiveReport) -> ObjectiveDoc {
    ObjectiveDoc {
        key: o.key.clone(),
        letter: o.letter.clone(),
        title: o.title.clone(),
        manager: o.manager.clone(),
        strategic_purpose: o.strategic_purpose.clone(),
        expected_result: o.expected_result.clone(),
        involved: if o.involved.is_empty() {
            "—".into()
        } else {
            o.involved.join(", ")
        },
        indicators: o.indicators.iter().map(indicator).collect(),
        final_deadline: it::date(o.final_deadline),
        original_final_deadline: (o.original_final_deadline != o.final_deadline)
            .then(|| it::date(o.original_final_deadline)),
        phases: o.phases.iter().map(phase).collect(),
        completed_pct: it::pct(o.completed_pct),
        on_time_pct: it::pct(o.on_time_pct),
        outcome: it::outcome(o.outcome),
        outcome_class: match o.outcome {
            Outcome::Achieved => "achieved",
            Outcome::NotAchieved => "not-achieved",
            Outcome::InProgress => "in-progress",
            Outcome::Withdrawn => "withdrawn",
        },
        validated: match (
            o.validated_pct,
            o.validation.as_ref().is_some_and(|v| v.stale),
        ) {
            (None, _) => "non ancora validato".into(),
            (Some(pct), false) => it::pct(pct),
            (Some(pct), true) => format!("{} — validazione da ripetere", it::pct(pct)),
        },
        stale: o.validation.as_ref().is_some_and(|v| v.stale),
        validation_detail: o.validation.as_ref().map(|v| {
            it::validation_detail(
                v.outcome,
                &v.neutralised_phases,
                &v.unverified_phases,
                &v.actor,
                v.recorded_at,
            )
        }),
        validation_note: o
            .validation
            .as_ref()
            .and_then(|v| v.note.as_deref())
            .map(it::one_line)
            .filter(|n| !n.is_empty()),
        validation_reference: o.validation.as_ref().and_then(|v| v.reference.clone()),
        notes: o.phases.iter().flat_map(phase_notes).collect(),
    }
}

/// What a phase's notes say, one line each: every note with a text, evidence or
/// a back-fill declaration, and for a late or overdue phase without any
/// justification, that there is none.
fn phase_notes(p: &PhaseReport) -> Vec<String> {
    let told: Vec<String> = p
        .notes
        .iter()
        .filter(|n| n.text.is_some() || !n.evidence.is_empty() || n.backfill.is_some())
        .map(|n| note_line(p.number, n))
        .collect();
    let late = matches!(p.status, PhaseStatus::CompletedLate | PhaseStatus::Overdue);
    let justified = p.notes.iter().any(|n| n.text.is_some());
    if late && !justified {
        let mut lines = told;
        lines.push(format!(
            "Fase {} — {}: nessuna motivazione registrata",
            p.number,
            it::status(p.status)
        ));
        lines
    } else {
        told
    }
}

/// The manager's justification of a late or overdue phase: the text of its
/// latest note that has one, else *nessuna motivazione registrata*; `None` for a
/// phase that is neither late nor overdue.
pub fn justification(p: &PhaseReport) -> Option<String> {
    let late = matches!(p.status, PhaseStatus::CompletedLate | PhaseStatus::Overdue);
    late.then(|| {
        p.notes
            .iter()
            .rev()
            .find_map(|n| n.text.as_deref().map(it::one_line))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "nessuna motivazione registrata".to_string())
    })
}

/// A phase's note in one line: «Fase 2 — completamento del 28/05/2022 (Dott.
/// Rossi, registrato il 10/06/2022): testo; evidenze: …; caricamento storico …».
fn note_line(phase: u32, n: &traguardo_projections::objective::NoteView) -> String {
    use traguardo_projections::objective::NoteKind;
    let what = match (n.kind, n.on) {
        (NoteKind::Start, Some(on)) => format!("avvio del {}", it::date(on)),
        (NoteKind::Completion, Some(on)) => format!("completamento del {}", it::date(on)),
        (NoteKind::Retraction, _) => "completamento annullato".to_string(),
        (NoteKind::Start, None) => "avvio".to_string(),
        (NoteKind::Completion, None) => "completamento".to_string(),
    };
    let mut line = format!(
        "Fase {phase} — {what} ({}, registrato il {})",
        n.actor,
        it::recorded_on(n.recorded_at)
    );
    match n.text.as_deref().map(it::one_line) {
        Some(text) if !text.is_empty() => line.push_str(&format!(": {text}")),
        _ => line.push_str(": nessuna motivazione registrata"),
    }
    if !n.evidence.is_empty() {
        line.push_str(&format!("; evidenze: {}", n.evidence.join("; ")));
    }
    if let Some(b) = &n.backfill {
        line.push_str(&format!(
            "; caricamento storico ({}): {}",
            b.act,
            it::one_line(&b.reason)
        ));
    }
    line
}

fn phase(p: &PhaseReport) -> PhaseDoc {
    PhaseDoc {
        number: p.number,
        description: p.description.clone(),
        weight: it::pct(p.weight),
        original_deadline: it::date(p.original_deadline),
        deadline: it::date(p.deadline),
        involved: if p.involved.is_empty() {
            "—".into()
        } else {
            p.involved.join(", ")
        },
        deadline_changed: p.deadline != p.original_deadline,
        completed_on: it::optional_date(p.completed_on),
        status: it::status(p.status),
        symbol: it::status_symbol(p.status),
        class: match p.status {
            PhaseStatus::CompletedOnTime => "on-time",
            PhaseStatus::CompletedLate => "late",
            PhaseStatus::Overdue => "overdue",
            PhaseStatus::InProgress => "in-progress",
            PhaseStatus::NotStarted => "not-started",
            PhaseStatus::Withdrawn => "withdrawn",
        },
        validation: p.validation.map(it::phase_validation),
    }
}

/// Horizontal bars, one per unit score, 0..100%.
fn chart(report: &Report) -> Chart {
    const LEFT: u32 = 70;
    const SPAN: u32 = 520;
    const ROW: u32 = 26;
    const TOP: u32 = 24;
    let scale = |pct: traguardo_projections::objective::Pct| -> u32 {
        // Hundredths of a percent, clamped to 0..=100%, to pixels.
        let clamped = pct.0 .0.clamp(0, 10_000) as u64;
        (clamped * u64::from(SPAN) / 10_000) as u32
    };
    let bars: Vec<Bar> = report
        .summary
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let y = TOP + ROW * i as u32;
            let width = scale(u.score);
            Bar {
                y,
                text_y: y + 15,
                width,
                label: u.unit.clone(),
                value: it::pct(u.score),
                value_x: LEFT + width + 6,
            }
        })
        .collect();
    let grid_bottom = TOP + ROW * bars.len().max(1) as u32;
    Chart {
        width: LEFT + SPAN + 60,
        height: grid_bottom + 20,
        left: LEFT,
        span: SPAN,
        label_x: LEFT - 8,
        grid_top: TOP - 6,
        grid_bottom,
        axis_y: grid_bottom + 14,
        ticks: (0..=4)
            .map(|i| Tick {
                x: LEFT + SPAN * i / 4,
                label: format!("{}%", 25 * i),
            })
            .collect(),
        mean_x: LEFT + scale(report.summary.score),
        mean_label: format!("media {}", it::pct(report.summary.score)),
        bars,
    }
}
