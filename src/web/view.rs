//! What every page shows around its content, and the small formatting the
//! templates need (through the one Italian formatter).

use chrono::NaiveDate;
use traguardo_events::model::{Hundredths, Role};
use traguardo_projections::objective::Pct;
use traguardo_projections::{italian, PhaseStatus};

use super::assets;
use super::session::Viewer;
use crate::App;

/// The page around the content: title, who is logged in, navigation, assets.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// Who is logged in.
    pub user: Option<Badge>,
    /// The session's CSRF token (for the logout form).
    pub csrf: String,
    /// Navigation links.
    pub nav: Vec<NavLink>,
    /// Bootstrap Italia's stylesheet.
    pub css: String,
    /// Ours.
    pub own_css: String,
    /// htmx.
    pub htmx: String,
    /// Ours.
    pub js: String,
    /// The regular Titillium Web, preloaded.
    pub font: String,
}

/// Who is logged in.
#[derive(Debug, Clone)]
pub struct Badge {
    /// Display name.
    pub actor: String,
    /// Role, in Italian.
    pub role: String,
    /// Units, for managers.
    pub units: String,
}

/// A link of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Target.
    pub href: String,
    /// Label.
    pub label: String,
    /// Whether it is the page shown.
    pub current: bool,
}

impl Chrome {
    /// A page without a session (login, errors).
    pub fn bare(title: &str) -> Chrome {
        Chrome {
            title: title.to_string(),
            user: None,
            csrf: String::new(),
            nav: Vec::new(),
            css: assets::url("bootstrap-italia.min.css"),
            own_css: assets::url("traguardo.css"),
            htmx: assets::url("htmx.min.js"),
            js: assets::url("traguardo.js"),
            font: assets::url("titillium-web-400.woff2"),
        }
    }

    /// A page for `viewer`; `here` is the path of the page, to mark its link.
    pub fn new(title: &str, viewer: &Viewer, app: &App, here: &str) -> Chrome {
        let mut chrome = Chrome::bare(title);
        let p = &viewer.principal;
        chrome.user = Some(Badge {
            actor: p.name.clone(),
            role: italian::role(p.role).to_string(),
            units: p.units.join(", "),
        });
        chrome.csrf = viewer.csrf.clone();
        let year = app.read(|r| r.plans().map(|p| p.year).next_back());
        let mut links: Vec<(String, &str)> = vec![("/".into(), "Inizio")];
        if let Some(y) = year {
            links.push((format!("/piani/{y}"), "Piano"));
            if p.role == Role::Validator {
                links.push(("/validazioni".into(), "Da validare"));
            }
            links.push((format!("/piani/{y}/rimodulazioni"), "Rimodulazioni"));
            links.push((format!("/piani/{y}/segnalazioni"), "Segnalazioni"));
            links.push((format!("/piani/{y}/storia"), "Storia"));
            links.push((format!("/piani/{y}/relazione"), "Relazione"));
        }
        if matches!(p.role, Role::Auditor | Role::Admin) {
            links.push(("/integrita".into(), "Integrità"));
        }
        if p.role == Role::Admin {
            links.push(("/amministrazione".into(), "Amministrazione"));
        }
        chrome.nav = links
            .into_iter()
            .map(|(href, label)| NavLink {
                current: href == here,
                href,
                label: label.to_string(),
            })
            .collect();
        chrome
    }
}

/// `28/07/2022`.
pub fn date(on: NaiveDate) -> String {
    italian::date(on)
}

/// `28/07/2022` or a dash.
pub fn opt_date(on: Option<NaiveDate>) -> String {
    italian::optional_date(on)
}

/// `33,33%`.
pub fn pct(p: Pct) -> String {
    italian::pct(p.0)
}

/// `33,33%` or a dash.
pub fn opt_pct(p: Option<Pct>) -> String {
    p.map_or_else(|| "—".to_string(), pct)
}

/// The CSS class of a status.
pub fn status_class(status: PhaseStatus) -> &'static str {
    match status {
        PhaseStatus::CompletedOnTime => "tg-ok",
        PhaseStatus::CompletedLate => "tg-late",
        PhaseStatus::Overdue => "tg-overdue",
        _ => "",
    }
}

/// A status with its symbol: `✔ completata nei tempi`.
pub fn status(status: PhaseStatus) -> String {
    format!(
        "{} {}",
        italian::status_symbol(status),
        italian::status(status)
    )
}

/// One bar of a chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label.
    pub label: String,
    /// Where the label links to.
    pub href: String,
    /// Value, 0–100 in hundredths.
    pub value: Hundredths,
}

/// A horizontal bar chart as inline SVG (no script): each bar with its label
/// and value written out, so that it reads without colour and without sight
/// (the table beside it holds the same figures).
pub fn bar_chart(title: &str, bars: &[Bar]) -> String {
    let row = 26;
    let label_w = 170;
    let width = 640;
    let bar_w = width - label_w - 80;
    let height = row * bars.len() as i64 + 10;
    let mut svg = format!(
        "<svg class=\"tg-chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"chart-{id}\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-{id}\">{t}</title>",
        id = html_escape(&title.replace(' ', "-").to_lowercase()),
        t = html_escape(title)
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = i as i64 * row + 5;
        let value = bar.value.0.clamp(0, 10_000);
        let w = bar_w * value / 10_000;
        svg.push_str(&format!(
            "{open}<text x=\"0\" y=\"{ty}\">{label}</text>{close}<rect class=\"tg-bar-track\" x=\"{label_w}\" y=\"{y}\" width=\"{bar_w}\" height=\"18\"/><rect class=\"tg-bar\" x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"18\"/><text x=\"{vx}\" y=\"{ty}\">{v}</text>",
            ty = y + 14,
            label = html_escape(&bar.label),
            open = if bar.href.is_empty() { String::new() } else { format!("<a href=\"{}\">", html_escape(&bar.href)) },
            close = if bar.href.is_empty() { "" } else { "</a>" },
            vx = label_w + bar_w + 8,
            v = italian::pct(bar.value),
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
