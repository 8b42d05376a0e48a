//! The problem types of the API (RFC 9457 §3.1.1): every problem's `type` is
//! `/problemi/{name}`, and following it gives a short Italian page saying what
//! the problem means and what to do about it.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Where the pages of the problem types live.
pub const PREFIX: &str = "/problemi/";

/// One kind of problem: its name in the `type` URI, the HTTP status it comes
/// with, and its Italian title and explanation.
#[derive(Debug, Clone, Copy)]
pub struct ProblemType {
    /// The last segment of its URI.
    pub name: &'static str,
    /// The status it is answered with.
    pub status: u16,
    /// Italian title.
    pub title: &'static str,
    /// What it means and what to do (Italian).
    pub explanation: &'static str,
}

/// Every problem type the server answers.
pub const ALL: &[ProblemType] = &[
    ProblemType {
        name: "request-timeout",
        status: 408,
        title: "Richiesta non completata in tempo",
        explanation: "Il client non ha inviato la richiesta completa, oppure la risposta non è stata \
                      pronta, entro il tempo concesso. Riprovare; con Idempotency-Key una scrittura \
                      non viene registrata due volte.",
    },
    ProblemType {
        name: "uri-too-long",
        status: 414,
        title: "Indirizzo troppo lungo",
        explanation: "L'indirizzo della richiesta supera il limite del server: accorciare i \
                      parametri della richiesta.",
    },
    ProblemType {
        name: "headers-too-large",
        status: 431,
        title: "Intestazioni troppo grandi",
        explanation: "Le intestazioni della richiesta sono troppe o troppo lunghe: inviare solo \
                      quelle necessarie.",
    },
    ProblemType {
        name: "insufficient-storage",
        status: 507,
        title: "Spazio su disco esaurito",
        explanation: "Il disco che ospita il registro degli eventi è pieno: nulla è stato \
                      registrato. Avvisare chi gestisce il server; quando lo spazio torna, la \
                      stessa richiesta (con la stessa Idempotency-Key) va a buon fine.",
    },
    ProblemType {
        name: "read-only",
        status: 503,
        title: "Registro in sola lettura",
        explanation: "Il registro degli eventi non accetta scritture (file o disco in sola \
                      lettura): nulla è stato registrato. Avvisare chi gestisce il server.",
    },
    ProblemType {
        name: "http-error",
        status: 400,
        title: "Richiesta non accettata",
        explanation: "Il server non ha accettato la richiesta per il motivo indicato nel campo \
                      status e nel campo detail.",
    },
    ProblemType {
        name: "bad-request",
        status: 400,
        title: "Richiesta non leggibile",
        explanation: "La richiesta non si può leggere: il corpo non è JSON valido, oppure un'intestazione \
                      (per esempio If-Match o Idempotency-Key) non ha la forma prevista. Il campo \
                      detail dice che cosa correggere.",
    },
    ProblemType {
        name: "unauthorized",
        status: 401,
        title: "Autenticazione necessaria",
        explanation: "Manca l'intestazione Authorization: Bearer <token>, oppure il token non è valido o \
                      è stato revocato. Chiedere un token all'ufficio Programmazione e Controllo.",
    },
    ProblemType {
        name: "forbidden",
        status: 403,
        title: "Operazione non consentita a questo ruolo",
        explanation: "Il token è valido, ma il suo ruolo o i suoi settori non consentono questa \
                      operazione (per esempio un dirigente che registra una fase di un altro settore).",
    },
    ProblemType {
        name: "not-found",
        status: 404,
        title: "Risorsa inesistente",
        explanation: "Il piano, l'obiettivo, la fase o la risorsa indicati nell'indirizzo non esistono.",
    },
    ProblemType {
        name: "method-not-allowed",
        status: 405,
        title: "Metodo non consentito",
        explanation: "L'indirizzo esiste ma non risponde a questo metodo HTTP: il documento OpenAPI \
                      (/api/v1/openapi.json) elenca i metodi di ogni indirizzo.",
    },
    ProblemType {
        name: "conflict",
        status: 409,
        title: "Conflitto con lo stato attuale",
        explanation: "Un'altra scrittura è arrivata prima (per esempio il piano dell'anno è già caricato, \
                      o la stessa chiave di idempotenza è in uso): rileggere lo stato e riprovare.",
    },
    ProblemType {
        name: "rule",
        status: 409,
        title: "Operazione non ammessa in questo stato",
        explanation: "La richiesta è ben formata ma una regola del piano la esclude: per esempio \
                      completare due volte una fase, o scrivere su un esercizio chiuso. Il campo \
                      detail spiega quale regola.",
    },
    ProblemType {
        name: "stale",
        status: 412,
        title: "Versione non più attuale",
        explanation: "L'intestazione If-Match indica una versione dell'obiettivo che non è più quella \
                      attuale: qualcuno ha scritto nel frattempo. Rileggere l'obiettivo e riprovare \
                      con il nuovo ETag.",
    },
    ProblemType {
        name: "too-large",
        status: 413,
        title: "Richiesta troppo grande",
        explanation: "Il corpo della richiesta supera il limite di 1 MiB.",
    },
    ProblemType {
        name: "unsupported-media-type",
        status: 415,
        title: "Tipo di contenuto non accettato",
        explanation: "Il corpo deve dichiarare il suo tipo con Content-Type: application/json (o un \
                      tipo application/…+json) per le API, application/x-www-form-urlencoded per i \
                      moduli delle pagine.",
    },
    ProblemType {
        name: "validation",
        status: 422,
        title: "Dati non validi",
        explanation: "Uno o più campi non rispettano le regole (date, limiti di lunghezza, pesi che non \
                      sommano a 100…): l'elenco errors indica ogni campo con il suo problema, e \
                      nulla è stato registrato.",
    },
    ProblemType {
        name: "idempotency-key-reused",
        status: 422,
        title: "Chiave di idempotenza riusata",
        explanation: "La stessa Idempotency-Key è già stata usata per una richiesta diversa: usare una \
                      chiave nuova per ogni operazione distinta.",
    },
    ProblemType {
        name: "too-many-requests",
        status: 429,
        title: "Troppe richieste",
        explanation: "Sono state superate le scritture consentite al minuto per questo token o \
                      indirizzo, oppure le autenticazioni fallite. Attendere i secondi indicati da \
                      Retry-After e riprovare.",
    },
    ProblemType {
        name: "internal",
        status: 500,
        title: "Errore interno",
        explanation: "Il server non è riuscito a rispondere; la causa è nel suo registro, con \
                      l'identificativo della richiesta (request_id) riportato nel problema.",
    },
    ProblemType {
        name: "report-rendering",
        status: 500,
        title: "Relazione non generata",
        explanation: "La relazione non è stata composta nel formato richiesto (PDF): è un \
                      difetto del server, non della richiesta. La causa è nel suo registro, con \
                      l'identificativo della richiesta (request_id); gli altri formati restano \
                      disponibili.",
    },
    ProblemType {
        name: "unavailable",
        status: 503,
        title: "Servizio momentaneamente non disponibile",
        explanation: "Il registro degli eventi non è raggiungibile in questo momento. Riprovare dopo i \
                      secondi indicati da Retry-After con la stessa Idempotency-Key: una scrittura \
                      non viene mai registrata due volte.",
    },
    ProblemType {
        name: "not-yet",
        status: 503,
        title: "Istanza non ancora aggiornata",
        explanation: "È stato chiesto (min_seq o X-Min-Seq) uno stato che questa istanza non ha ancora \
                      letto dal registro: riprovare dopo i secondi indicati da Retry-After.",
    },
    ProblemType {
        name: "no-checkpoint-key",
        status: 404,
        title: "Checkpoint non firmati",
        explanation: "Questo server non ha una chiave per firmare i checkpoint del registro (opzione \
                      --checkpoint-key): le rotte dei checkpoint non sono disponibili.",
    },
];

/// The problem type called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static ProblemType> {
    ALL.iter().find(|t| t.name == name)
}

/// The URI of the problem type `name` (the `type` member of its problems).
pub fn uri(name: &str) -> String {
    format!("{PREFIX}{name}")
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="it">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ kind.title }} · Traguardo</title>
</head>
<body>
<main>
<h1>{{ kind.title }}</h1>
<p>Tipo di problema <code>{{ uri }}</code>, risposta HTTP {{ kind.status }}.</p>
<p>{{ kind.explanation }}</p>
<p>Ogni problema è un documento <code>application/problem+json</code> (RFC 9457): il campo
<code>detail</code> dice che cosa è successo questa volta, <code>request_id</code> lo identifica
nei registri del server.</p>
<p><a href="/api/v1/openapi.json">Documento OpenAPI dell'API</a></p>
</main>
</body>
</html>
"#
)]
struct Page<'a> {
    kind: &'a ProblemType,
    uri: String,
}

/// `GET /problemi/{name}`: the page of a problem type, or a 404 problem.
async fn page(Path(name): Path<String>) -> Response {
    let Some(kind) = find(&name) else {
        return super::problem::Problem::not_found(format!("no problem type {name}"))
            .into_response();
    };
    match (Page {
        kind,
        uri: uri(kind.name),
    })
    .render()
    {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a problem type page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The pages' route.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/problemi/{name}", get(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem the sources make names a problem type that has its page.
    #[test]
    fn every_problem_the_sources_make_has_a_page() {
        let mut names = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("problem_types.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (at, _) in text.match_indices("Problem::new(") {
                        // The second argument, when it is a literal.
                        let rest = &text[at + "Problem::new(".len()..];
                        let Some((_, second)) = rest.split_once(',') else {
                            continue;
                        };
                        let Some(literal) = second.trim_start().strip_prefix('"') else {
                            continue;
                        };
                        let name = literal.split('"').next().unwrap();
                        if name != "about:blank" {
                            names.push((path.display().to_string(), name.to_string()));
                        }
                    }
                }
            }
        }
        assert!(names.len() >= 15, "{names:?}");
        for (file, name) in names {
            assert!(
                find(&name).is_some(),
                "{file}: problem type {name} has no page"
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for kind in ALL {
            assert!(seen.insert(kind.name), "{} twice", kind.name);
        }
    }
}
