//! The web application in a real browser (DESIGN.md §8): each test drives
//! headless Chromium against the real server, runs axe-core on every page it
//! visits and keeps a screenshot of each under `target/screenshots/`.

use std::time::{Duration, Instant};

use traguardo_events::store::Until;

use crate::web_browser::{Driver, Site, ONE_AT_A_TIME};

async fn events_of(site: &Site, key: &str) -> Vec<traguardo_events::RecordedEvent> {
    site.app
        .objective_events(key)
        .expect("the objective has events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sees_their_phases_completes_one_and_the_score_and_the_event_say_so() {
    let _one = ONE_AT_A_TIME.lock().await;
    let site = Site::start("2022-06-10", None).await;
    let driver = Driver::start().await;
    let mut b = driver.browser("manager", "specchia", &site.base).await;

    // No session: the home page sends to the login form.
    b.visit("/").await;
    assert_eq!(b.path().await, "/accesso");
    // A wrong password stays on the form, says so in Italian, keeps the username.
    b.fill("#username", "specchia").await;
    b.fill("#password", "sbagliata").await;
    b.click("form[action='/accesso'] button[type=submit]").await;
    b.check("accesso-errato").await;
    assert!(b.text("#errore-accesso").await.contains("non corretti"));
    assert_eq!(
        b.find("#username")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default(),
        "specchia"
    );

    b.login("specchia", "specchia-demo-2022").await;
    assert_eq!(b.path().await, "/");
    let due = b.text("#in-scadenza + *").await;
    assert!(
        due.contains("2022-2250-A") && due.contains("30/06/2022"),
        "due within 30 days: {due}"
    );
    let overdue = b.text("#scadute + *").await;
    assert!(overdue.contains("2022-2250-C"), "overdue phases: {overdue}");
    assert!(b.text("#fasi").await.contains("2022-2250-B"));

    b.visit("/obiettivi/2022-2250-A").await;
    assert_eq!(b.text("#nei-tempi").await, "0%");

    // A date after today is refused next to the field, and what was typed stays.
    b.click("#fase-1 details:nth-of-type(2) summary").await;
    b.set_value("#on-1-completamento", "2022-07-01").await;
    b.fill("#note-1-completamento", "Modalità di caricamento acquisite")
        .await;
    b.click("form[action$='/fasi/1/completamento'] button[type=submit]")
        .await;
    b.check("completamento-rifiutato").await;
    assert!(b
        .text("#on-1-completamento-errore")
        .await
        .contains("dopo oggi"));
    assert_eq!(
        b.find("#note-1-completamento")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default(),
        "Modalità di caricamento acquisite"
    );

    b.set_value("#on-1-completamento", "2022-05-27").await;
    b.fill(
        "#evidence-1-completamento",
        "Verbale incontro del 27/05/2022",
    )
    .await;
    b.click("form[action$='/fasi/1/completamento'] button[type=submit]")
        .await;
    b.check("completamento-registrato").await;
    assert_eq!(b.path().await, "/obiettivi/2022-2250-A");
    assert_eq!(b.text("#nei-tempi").await, "20%");
    let phase = b.text("#fase-1").await;
    assert!(
        phase.contains("completata nei tempi") && phase.contains("Verbale incontro del 27/05/2022"),
        "{phase}"
    );
    assert!(phase.contains("Dott. Stefano Specchia"));

    let last = events_of(&site, "2022-2250-A")
        .await
        .pop()
        .expect("an event");
    assert_eq!(last.event_type, "phase_completed");
    assert_eq!(last.actor, "Dott. Stefano Specchia");
    assert_eq!(last.role, "manager");

    // Logging out ends the session.
    b.click("form[action='/esci'] button[type=submit]").await;
    b.check("uscita").await;
    assert_eq!(b.path().await, "/accesso");
    b.visit("/obiettivi/2022-2250-A").await;
    assert_eq!(b.path().await, "/accesso");
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_manager_gets_no_form_and_forged_posts_or_posts_without_csrf_are_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let site = Site::start("2022-06-10", None).await;
    let driver = Driver::start().await;
    let mut b = driver.browser("csrf", "bocchio", &site.base).await;
    b.login("bocchio", "bocchio-demo-2022").await;
    b.visit("/obiettivi/2022-2250-A").await;
    assert!(
        !b.exists("form[action*='/fasi/']").await,
        "another unit's manager sees no form"
    );
    let before = events_of(&site, "2022-2250-A").await.len();
    let csrf = b.csrf().await;
    let forged = b
        .post(
            "/obiettivi/2022-2250-A/fasi/1/completamento",
            &format!("csrf={csrf}&on=2022-05-27&note=x"),
        )
        .await;
    assert_eq!(forged, 403, "a forged completion by another unit's manager");

    // Their own objective: without the CSRF token nothing happens.
    b.visit("/obiettivi/2022-2252-D").await;
    assert!(b.exists("form[action$='/fasi/1/completamento']").await);
    let own_before = events_of(&site, "2022-2252-D").await.len();
    let missing = b
        .post(
            "/obiettivi/2022-2252-D/fasi/1/completamento",
            "on=2022-05-23",
        )
        .await;
    assert_eq!(missing, 403, "a form without its CSRF token");
    let wrong = b
        .post(
            "/obiettivi/2022-2252-D/fasi/1/completamento",
            "csrf=0000&on=2022-05-23",
        )
        .await;
    assert_eq!(wrong, 403, "a form with a wrong CSRF token");
    assert_eq!(events_of(&site, "2022-2250-A").await.len(), before);
    assert_eq!(events_of(&site, "2022-2252-D").await.len(), own_before);

    // The form as the page serves it works.
    b.click("#fase-1 details:nth-of-type(2) summary").await;
    b.set_value("#on-1-completamento", "2022-05-23").await;
    b.click("form[action$='/fasi/1/completamento'] button[type=submit]")
        .await;
    b.check("completamento-proprio").await;
    assert_eq!(events_of(&site, "2022-2252-D").await.len(), own_before + 1);
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_office_previews_a_revision_then_records_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let site = Site::start("2022-07-29", Some("2022-07-21")).await;
    let driver = Driver::start().await;
    let mut b = driver
        .browser("rimodulazione", "controllo", &site.base)
        .await;
    b.login("controllo", "controllo-demo-2022").await;
    b.visit("/amministrazione").await;
    assert!(b.text("main").await.contains("specchia"));
    // A workbook with a problem, chosen in the file input: listed by its cell.
    let mut broken = serde_json::to_value(seed_of_2023()).unwrap();
    broken["objectives"][0]["phases"][0]["weight"] = serde_json::json!(10);
    let broken: traguardo::plan_document::PlanDocument = serde_json::from_value(broken).unwrap();
    let file = site.dir.path().join("piano-2023.xlsx");
    std::fs::write(&file, traguardo::plan_sheet::write(&broken).unwrap()).unwrap();
    b.find("#file")
        .await
        .send_keys(&file.display().to_string())
        .await
        .expect("the file is chosen");
    b.click("#form-piano button[type=submit]").await;
    b.check("piano-rifiutato").await;
    assert!(b.text("#file-errori").await.contains("Fasi!A2:"));
    assert!(site.app.read(|r| r.plan(2023).is_none()));
    b.visit("/piani/2022/rimodulazioni").await;
    b.fill("#act", "D.G.C. n. 182 del 28/07/2022").await;
    b.set_value("#act_date", "2022-07-28").await;
    b.fill("#reason", "Rimodulazione degli obiettivi 2022")
        .await;
    b.find("#kind_0")
        .await
        .select_by_value("deadline")
        .await
        .unwrap();
    b.find("#objective_0")
        .await
        .select_by_value("2022-2250-A")
        .await
        .unwrap();
    b.fill("#phase_0", "2").await;
    b.set_value("#new_deadline_0", "2022-07-31").await;
    b.find("#kind_1")
        .await
        .select_by_value("weights")
        .await
        .unwrap();
    b.find("#objective_1")
        .await
        .select_by_value("2022-2249-C")
        .await
        .unwrap();
    b.fill("#weights_1", "2=35; 3=35").await;
    b.click("button[value=anteprima]").await;
    b.check("anteprima").await;
    let preview = b.text("#sezione-anteprima").await;
    assert!(
        preview.contains("2022-2250-A") && preview.contains("2022-2249-C"),
        "{preview}"
    );
    assert!(
        preview.contains("31/07/2022") && preview.contains("35%") && preview.contains("cambia"),
        "{preview}"
    );
    assert!(
        preview.contains("Rimodulazione retroattiva"),
        "the preview names the flags: {preview}"
    );
    assert_eq!(
        site.app.read(|r| r.plan(2022).unwrap().revisions.len()),
        0,
        "a preview records nothing"
    );
    // The form kept what was typed.
    assert_eq!(
        b.find("#weights_1")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default(),
        "2=35; 3=35"
    );

    b.click("button[value=registra]").await;
    b.check("rimodulazione-registrata").await;
    assert!(b.path().await.starts_with("/piani/2022/rimodulazioni/"));
    assert_eq!(site.app.read(|r| r.plan(2022).unwrap().revisions.len()), 1);
    let replay = b.text("main").await;
    assert!(replay.contains("D.G.C. n. 182 del 28/07/2022") && replay.contains("cambia"));

    // A wrong row is shown next to its field, with the rest of the form kept.
    b.visit("/piani/2022/rimodulazioni").await;
    b.fill("#act", "D.G.C. n. 200").await;
    b.fill("#reason", "Prova").await;
    b.find("#kind_0")
        .await
        .select_by_value("weights")
        .await
        .unwrap();
    b.find("#objective_0")
        .await
        .select_by_value("2022-2250-B")
        .await
        .unwrap();
    b.fill("#weights_0", "1=50").await;
    b.click("button[value=anteprima]").await;
    b.check("rimodulazione-errata").await;
    let page = b.text("#form-rimodulazione").await;
    assert!(!b.exists("#sezione-anteprima").await);
    assert!(
        page.contains("100") || b.exists("#errori-rimodulazione").await,
        "{page}"
    );
    assert_eq!(
        b.find("#act")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default(),
        "D.G.C. n. 200"
    );
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nucleo_validates_from_its_queue_with_a_sterilizzazione() {
    let _one = ONE_AT_A_TIME.lock().await;
    let site = Site::start("2023-03-15", Some("2023-03-01")).await;
    let driver = Driver::start().await;
    let mut b = driver.browser("nucleo", "nucleo", &site.base).await;
    b.login("nucleo", "nucleo-demo-2022").await;
    b.visit("/validazioni").await;
    assert!(b.text("main").await.contains("2022-2249-C"));
    b.visit("/obiettivi/2022-2249-C").await;
    // Neutralising without a note: refused next to the note, the choice kept.
    b.click("label[for=neutralised-3]").await;
    b.click("form[action$='/validazioni'] button[type=submit]")
        .await;
    b.check("validazione-senza-nota").await;
    assert!(!b.text("#validation-note-errore").await.is_empty());
    assert!(
        b.find("#neutralised-3")
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref()
            == Some("true")
    );
    b.fill(
        "#validation-note",
        "Sterilizzazione della fase 3: ritardo non imputabile all'unità — Verbale n. 3 del 15/03/2023",
    )
    .await;
    b.click("form[action$='/validazioni'] button[type=submit]")
        .await;
    b.check("validazione-registrata").await;
    let validations = b.text("#validazioni + *").await;
    assert!(
        validations.contains("validazione finale") && validations.contains("Sterilizzazione"),
        "{validations}"
    );
    let last = events_of(&site, "2022-2249-C")
        .await
        .pop()
        .expect("an event");
    assert_eq!(
        (last.event_type.as_str(), last.actor.as_str()),
        ("validation_recorded", "Nucleo di Valutazione")
    );
    b.visit("/piani/2022/segnalazioni").await;
    // The Nucleo acknowledges the first flag: an empty note is refused next to
    // the field, then the flag stays listed as examined, with its note.
    let form = "table tbody tr:first-child form";
    b.click(&format!("{form} button[type=submit]")).await;
    b.check("presa-visione-senza-nota").await;
    assert!(b
        .text("table tbody tr:first-child .invalid-feedback")
        .await
        .contains("nota"));
    b.fill(
        "table tbody tr:first-child textarea",
        "Esaminata: la data dichiarata risulta dal protocollo",
    )
    .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.check("presa-visione-registrata").await;
    let row = b.text("table tbody tr:first-child").await;
    assert!(
        row.contains("esaminata dal Nucleo") && row.contains("risulta dal protocollo"),
        "{row}"
    );
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_time_travels_replays_the_revision_and_verifies_the_chain() {
    let _one = ONE_AT_A_TIME.lock().await;
    use traguardo_tlog::note::{KeyName, KeyType, SignerKey};
    let key = SignerKey::generate(
        KeyName::parse("traguardo.test/comune").expect("a key name"),
        KeyType::Ed25519,
    )
    .expect("a checkpoint key");
    let vkey = key.verifier_key();
    let checkpoints =
        traguardo::transparency::Checkpoints::new(Some(key), vec![]).expect("checkpoints");
    let site = Site::start_with("2023-04-01", Some("2023-03-31"), checkpoints).await;
    let driver = Driver::start().await;
    let mut b = driver.browser("revisore", "revisore", &site.base).await;
    b.login("revisore", "revisore-demo-2022").await;
    b.visit("/piani/2022").await;
    b.visit("/obiettivi/2022-2250-A/storia").await;
    assert!(b.text("#traccia").await.contains("D.G.C. n. 182"));
    // What the system said on 25 July 2022, before the revision: phase 2 was late.
    b.set_value("#at", "2022-07-25").await;
    b.set_value("#as_of", "2022-07-25T12:00").await;
    b.click("#form-viaggio button[type=submit]").await;
    b.check("viaggio-nel-tempo").await;
    let then = b.text("#com-era").await;
    assert!(
        then.contains("30/06/2022") && then.contains("completata in ritardo"),
        "{then}"
    );
    assert!(
        !then.contains("originaria 30/06/2022"),
        "the revision was not recorded yet: {then}"
    );
    // Filters.
    b.visit("/obiettivi/2022-2250-A/storia?type=phase_completed")
        .await;
    assert!(!b.text("#traccia").await.contains("D.G.C. n. 182"));

    b.visit("/piani/2022/rimodulazioni").await;
    b.click("main table a").await;
    b.check("replay").await;
    let replay = b.text("main").await;
    assert!(
        replay.contains("30/06/2022") && replay.contains("31/07/2022") && replay.contains("cambia"),
        "{replay}"
    );
    assert!(b.exists("td.tg-changed").await);

    b.visit("/piani/2022/storia?unit=2250").await;
    b.visit("/integrita").await;
    let head = site.app.store().head().expect("a head");
    assert_eq!(b.text("#testa-seq").await, head.seq.to_string());
    // The latest signed checkpoint, which verifies with the key shown beside it.
    let note = b.text("#checkpoint").await;
    assert_eq!(b.text("#chiave-verifica").await, vkey.to_string());
    let signed = traguardo_tlog::checkpoint::open(format!("{note}\n").as_bytes(), &vkey)
        .unwrap_or_else(|e| panic!("the page's checkpoint verifies: {e}\n{note}"));
    assert_eq!(signed.checkpoint.size(), head.seq);
    b.click("form[action='/integrita'] button[type=submit]")
        .await;
    b.check("verifica").await;
    assert!(b
        .text("#esito-verifica")
        .await
        .contains("Catena verificata"));
    b.visit("/piani/2022/relazione").await;
    for link in [
        "relazione-2022.pdf",
        "relazione-2022.html",
        "relazione-2022.xlsx",
        "relazione-2022.csv",
        "obiettivi-2022.csv",
        "relazione-2022.md",
        "relazione-2022.json",
    ] {
        let status = b
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(document.querySelector('a[href*=\"' + arguments[0] + '\"]').href).then(r => done(r.status));",
                vec![serde_json::json!(link)],
            )
            .await
            .expect("a download");
        assert_eq!(status.as_u64(), Some(200), "{link}");
    }
    let export = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/integrita/export.ndjson').then(r => r.text()).then(t => done(t.split('\\n').filter(l => l).length));",
            vec![],
        )
        .await
        .expect("the export");
    assert_eq!(export.as_u64(), Some(head.seq));
    // The state the page showed for 25 July is the store's.
    let past = site
        .app
        .objective_as_of(
            "2022-2250-A",
            Until::RecordedAt(
                chrono::DateTime::parse_from_rfc3339("2022-07-25T10:00:00Z")
                    .unwrap()
                    .into(),
            ),
        )
        .expect("a read")
        .expect("the objective");
    assert_eq!(
        past.phase(2).map(|p| p
            .deadline
            .at(crate::web_browser::date("2022-07-25"))
            .to_string()),
        Some("2022-06-30".into())
    );
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_browser_on_the_plan_sees_a_completion_appear_without_reloading() {
    let _one = ONE_AT_A_TIME.lock().await;
    let site = Site::start("2022-06-10", None).await;
    let driver = Driver::start().await;
    let mut watcher = driver.browser("live", "revisore", &site.base).await;
    watcher.login("revisore", "revisore-demo-2022").await;
    watcher.visit("/piani/2022").await;
    assert_eq!(watcher.text("#riga-2022-2250-A .tg-on-time").await, "0%");
    watcher
        .js("window.tgMarker = 'same page'; return true;")
        .await;
    // Let the page open its event stream.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut manager = driver.browser("live", "specchia", &site.base).await;
    manager.login("specchia", "specchia-demo-2022").await;
    manager.visit("/obiettivi/2022-2250-A").await;
    manager
        .click("#fase-1 details:nth-of-type(2) summary")
        .await;
    manager.set_value("#on-1-completamento", "2022-05-27").await;
    manager
        .click("form[action$='/fasi/1/completamento'] button[type=submit]")
        .await;
    manager.check("completato").await;

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let shown = watcher.text("#riga-2022-2250-A .tg-on-time").await;
        if shown == "20%" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the plan page still shows {shown}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        watcher.js("return window.tgMarker || null;").await,
        serde_json::json!("same page"),
        "no reload"
    );
    assert!(
        watcher.text("#punteggio-piano").await.contains(','),
        "the plan score moved to a decimal"
    );
    watcher.check("aggiornato-dal-vivo").await;
    manager.close().await;
    watcher.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_revision_previews_over_the_api() {
    let site = Site::start("2022-07-29", Some("2022-07-21")).await;
    let token = "tg_web_test_bootstrap_token_0123456789abcdef";
    site.app.set_bootstrap_token(token);
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}/api/v1{p}", site.base);
    let created = http
        .post(url("/users"))
        .bearer_auth(token)
        .json(&serde_json::json!({"username": "rossi", "password": "una-password-lunga", "actor": "Dott.ssa Rossi", "role": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: serde_json::Value = created.json().await.unwrap();
    assert_eq!(body["actor_id"], "rossi");
    assert!(body.get("password").is_none() && body.get("password_phc").is_none());
    let short = http
        .post(url("/users"))
        .bearer_auth(token)
        .json(&serde_json::json!({"username": "bianchi", "password": "corta", "actor": "B", "role": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 422);
    let list: Vec<serde_json::Value> = http
        .get(url("/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.iter().any(|u| u["username"] == "rossi"));
    let org = site.app.store().read_stream("org", Until::End).unwrap();
    let stored = serde_json::to_string(&org).unwrap();
    assert!(!stored.contains("una-password-lunga") && stored.contains("$argon2id$"));
    assert_eq!(
        http.delete(url("/users/rossi"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(site.app.account_principal("rossi").is_none());

    let head = site.app.store().head().unwrap().seq;
    let preview = http
        .post(url("/plans/2022/revisions?dry_run=true"))
        .bearer_auth(token)
        .json(&serde_json::json!({"act": "D.G.C. n. 182 del 28/07/2022", "act_date": "2022-07-28", "reason": "Rimodulazione",
            "changes": [{"kind": "deadline", "objective": "2022-2250-A", "phase": 2, "new_deadline": "2022-07-31"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 200);
    let preview: serde_json::Value = preview.json().await.unwrap();
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["touched"][0]["key"], "2022-2250-A");
    assert!(preview["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "retroactive_revision"));
    assert_eq!(
        site.app.store().head().unwrap().seq,
        head,
        "a dry run appends nothing"
    );
    site.stop().await;
}

/// A signed-in client without a browser: cookies and CSRF tokens by hand, to
/// post the forms exactly as a browser without JavaScript would.
struct FormClient {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl FormClient {
    async fn login(base: &str, username: &str, password: &str) -> FormClient {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        let page = http
            .get(format!("{base}/accesso"))
            .send()
            .await
            .expect("the login page");
        let pre = cookie_of(&page, "tg_accesso").expect("the login form's cookie");
        let csrf = csrf_of(&page.text().await.expect("a page"));
        let answer = http
            .post(format!("{base}/accesso"))
            .header("cookie", format!("tg_accesso={pre}"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .expect("a login answer");
        assert_eq!(answer.status(), 303, "logged in");
        let session = cookie_of(&answer, "tg_sessione").expect("a session");
        FormClient {
            http,
            base: base.to_string(),
            session,
        }
    }

    async fn get(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("tg_sessione={}", self.session))
            .send()
            .await
            .expect("a page")
            .text()
            .await
            .expect("its text")
    }

    /// Posts `fields` with the CSRF token of the page at `path`.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let csrf = csrf_of(&self.get(path).await);
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("tg_sessione={}", self.session))
            .form(&form)
            .send()
            .await
            .expect("an answer");
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("its text"))
    }
}

pub(crate) fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

pub(crate) fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("the token ends")].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revision_form_adds_a_phase_renames_and_retargets_and_shows_problems_by_field() {
    let site = Site::start("2022-07-29", Some("2022-07-21")).await;
    let office = FormClient::login(&site.base, "controllo", "controllo-demo-2022").await;
    let path = "/piani/2022/rimodulazioni";
    let objective = |key: &str| {
        site.app
            .objective_as_of(key, Until::End)
            .expect("the log reads")
            .expect("the objective")
    };
    let indicator = objective("2022-2250-A")
        .indicators()
        .first()
        .map(|i| i.id.to_string())
        .expect("an indicator");
    let before = site.app.store().head().expect("a head").seq;
    // A new phase without a weight, and a title left empty: each problem is
    // next to its field, what was typed stays, and nothing is recorded.
    let (status, page) = office
        .post(
            path,
            &[
                ("act", "D.G.C. n. 200 del 29/07/2022"),
                ("act_date", "2022-07-29"),
                ("reason", "Nuova fase di collaudo"),
                ("rows", "2"),
                ("kind_0", "add_phase"),
                ("objective_0", "2022-2250-A"),
                ("phase_0", "5"),
                ("text_0", "Collaudo della contabilità analitica"),
                ("new_deadline_0", "2022-12-15"),
                ("kind_1", "title"),
                ("objective_1", "2022-2250-A"),
                ("azione", "anteprima"),
            ],
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("indica un numero"), "the weight's problem");
    assert!(
        page.contains("indica il nuovo titolo"),
        "the title's problem"
    );
    assert!(
        page.contains("Collaudo della contabilità analitica"),
        "kept"
    );
    assert_eq!(site.app.store().head().expect("a head").seq, before);
    // Complete: a phase added with the weights that make 100, a new manager, a
    // new title, a phase described anew and an indicator's target; recorded.
    let fields = [
        ("act", "D.G.C. n. 200 del 29/07/2022"),
        ("act_date", "2022-07-29"),
        ("reason", "Nuova fase di collaudo"),
        ("rows", "6"),
        ("kind_0", "add_phase"),
        ("objective_0", "2022-2250-A"),
        ("phase_0", "5"),
        ("text_0", "Collaudo della contabilità analitica"),
        ("weight_0", "10"),
        ("new_deadline_0", "2022-12-15"),
        ("kind_1", "weights"),
        ("objective_1", "2022-2250-A"),
        ("weights_1", "1=20; 2=20; 3=20; 4=30; 5=10"),
        ("kind_2", "manager"),
        ("objective_2", "2022-2250-A"),
        ("text_2", "Dott.ssa Anna Verdi"),
        ("kind_3", "title"),
        ("objective_3", "2022-2250-A"),
        ("text_3", "Contabilità analitica per centri di costo"),
        ("kind_4", "phase_description"),
        ("objective_4", "2022-2250-A"),
        ("phase_4", "4"),
        ("text_4", "Relazione finale sui centri di costo"),
        ("kind_5", "indicator_target"),
        ("objective_5", "2022-2250-A"),
        ("indicator_5", &indicator),
        ("target_5", "95,5"),
    ];
    let mut preview = fields.to_vec();
    preview.push(("azione", "anteprima"));
    let (status, page) = office.post(path, &preview).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Anteprima: nulla è ancora registrato"));
    assert_eq!(site.app.store().head().expect("a head").seq, before);
    let mut record = fields.to_vec();
    record.push(("azione", "registra"));
    let (status, page) = office.post(path, &record).await;
    assert_eq!(status, 303, "{page}");
    let objective = objective("2022-2250-A");
    assert_eq!(objective.phases().len(), 5);
    assert_eq!(objective.manager_at_latest(), "Dott.ssa Anna Verdi");
    assert_eq!(
        objective.title_at_latest(),
        "Contabilità analitica per centri di costo"
    );
    site.stop().await;
}

impl FormClient {
    /// A GET answer as it is (status, headers, bytes).
    async fn fetch(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("tg_sessione={}", self.session))
            .send()
            .await
            .expect("an answer")
    }

    /// Posts `fields` and a file `file` as `multipart/form-data`, as a browser
    /// sends the plan-load form, with the CSRF token of the page at `page`.
    async fn post_file(
        &self,
        page: &str,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
    ) -> (u16, String) {
        let csrf = csrf_of(&self.get(page).await);
        let boundary = "----traguardo-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields.iter().chain([("csrf", csrf.as_str())].iter()) {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        let (file_name, bytes) = file;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("tg_sessione={}", self.session))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("an answer");
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("its text"))
    }
}

/// The Alessandria plan moved to 2023 (every date a year on), as a workbook.
fn seed_of_2023() -> traguardo::plan_document::PlanDocument {
    let text = std::fs::read_to_string(crate::support::seed_path())
        .expect("the seed")
        .replace("\"2022-", "\"2023-")
        .replace("\"year\": 2022", "\"year\": 2023");
    let document: traguardo::plan_document::PlanDocument =
        serde_json::from_str(&text).expect("a plan document");
    assert_eq!(document.year, 2023);
    document
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_office_loads_a_plan_from_a_workbook_and_a_broken_one_loads_nothing() {
    let site = Site::start("2023-01-10", None).await;
    let office = FormClient::login(&site.base, "controllo", "controllo-demo-2022").await;
    let page = office.get("/amministrazione").await;
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    assert!(page.contains("/amministrazione/modello-piano.xlsx"));

    // The template, as `traguardo plan-template` writes it, for the year asked.
    let template = office
        .fetch("/amministrazione/modello-piano.xlsx?anno=2024")
        .await;
    assert_eq!(template.status(), 200);
    assert_eq!(
        template.headers()["content-type"],
        traguardo::plan_sheet::XLSX_CONTENT_TYPE
    );
    assert!(template.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("modello-piano-2024.xlsx"));
    let bytes = template.bytes().await.expect("the workbook");
    assert_eq!(
        bytes.as_ref(),
        traguardo::plan_sheet::template(2024).unwrap().as_slice()
    );
    assert_eq!(
        office
            .fetch("/amministrazione/modello-piano.xlsx?anno=dopodomani")
            .await
            .status(),
        400
    );
    let manager = FormClient::login(&site.base, "specchia", "specchia-demo-2022").await;
    assert_eq!(
        manager
            .fetch("/amministrazione/modello-piano.xlsx")
            .await
            .status(),
        403,
        "the template is the control office's"
    );

    // A broken workbook: every problem listed with its sheet and cell, nothing loaded.
    let mut broken = seed_of_2023();
    let mut value = serde_json::to_value(&broken).unwrap();
    value["objectives"][0]["phases"][0]["weight"] = serde_json::json!(10);
    value["objectives"][0]["phases"][1]["deadline"] = serde_json::json!("2024-06-30");
    broken = serde_json::from_value(value).unwrap();
    let workbook = traguardo::plan_sheet::write(&broken).unwrap();
    let head = site.app.store().head().unwrap().seq;
    let (status, page) = office
        .post_file(
            "/amministrazione",
            "/amministrazione/piani",
            &[("plan", "")],
            ("piano-2023.xlsx", &workbook),
        )
        .await;
    assert_eq!(status, 422, "{page}");
    let at = page
        .find("id=\"file-errori\"")
        .expect("the problems next to the file");
    let problems = &page[at..at + page[at..].find("</ul>").unwrap()];
    assert!(problems.contains("piano-2023.xlsx"), "{problems}");
    assert!(
        problems.contains("Fasi!A2:"),
        "the rows of the objective: {problems}"
    );
    assert!(
        problems.contains("Fasi!D3:"),
        "the deadline's cell: {problems}"
    );
    assert!(problems.matches("<li>").count() >= 2, "{problems}");
    assert_eq!(site.app.store().head().unwrap().seq, head, "nothing loaded");
    assert!(site.app.read(|r| r.plan(2023).is_none()));

    // Not a workbook nor JSON: one problem, nothing loaded.
    let (status, page) = office
        .post_file(
            "/amministrazione",
            "/amministrazione/piani",
            &[],
            ("piano.xlsx", b"not a workbook"),
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("non è una cartella di lavoro xlsx leggibile"));

    // The seed of 2023 as a workbook: loaded, every objective of it.
    let workbook = traguardo::plan_sheet::write(&seed_of_2023()).unwrap();
    let (status, page) = office
        .post_file(
            "/amministrazione",
            "/amministrazione/piani",
            &[("plan", "")],
            ("piano-2023.xlsx", &workbook),
        )
        .await;
    assert_eq!(status, 303, "{page}");
    let objectives = site
        .app
        .read(|r| r.plan(2023).map(|p| p.objectives.clone()))
        .expect("the plan of 2023 is loaded");
    assert_eq!(objectives.len(), 7);
    // Once more: the year is loaded already, said next to the file.
    let (status, page) = office
        .post_file(
            "/amministrazione",
            "/amministrazione/piani",
            &[],
            ("piano-2023.xlsx", &workbook),
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("il piano del 2023 è già caricato"), "{page}");

    // The form without its CSRF token loads nothing.
    let head = site.app.store().head().unwrap().seq;
    let forged = office
        .http
        .post(format!("{}/amministrazione/piani", site.base))
        .header("cookie", format!("tg_sessione={}", office.session))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"plan\"\r\n\r\n{}\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(site.app.store().head().unwrap().seq, head);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revision_form_adds_an_objective_after_a_preview_and_shows_its_problems_by_field() {
    let site = Site::start("2022-07-29", Some("2022-07-21")).await;
    let office = FormClient::login(&site.base, "controllo", "controllo-demo-2022").await;
    let path = "/piani/2022/rimodulazioni";
    let page = office.get(path).await;
    assert!(
        page.contains("value=\"add_objective\""),
        "the kind is offered"
    );
    let before = site.app.store().head().expect("a head").seq;
    // A letter missing, weights that sum to 90, a line without a date: each
    // problem next to its field, what was typed kept, nothing recorded.
    let (status, page) = office
        .post(
            path,
            &[
                ("act", "D.G.C. n. 201 del 29/07/2022"),
                ("act_date", "2022-07-29"),
                ("reason", "Nuovo obiettivo di digitalizzazione"),
                ("rows", "1"),
                ("kind_0", "add_objective"),
                ("unit_0", "2250"),
                ("manager_0", "Dott. Stefano Specchia"),
                ("title_0", "Pagamenti elettronici con pagoPA"),
                ("final_deadline_0", "2022-12-31"),
                ("phases_0", "Attivazione dei servizi | 40 | 30/09/2022\nCollaudo | 50 | 15/12/2022\nFormazione del personale | 10"),
                ("azione", "anteprima"),
            ],
        )
        .await;
    assert_eq!(status, 422, "{page}");
    let letter = page
        .find("id=\"letter_0-errore\"")
        .expect("a problem next to the letter");
    assert!(page[letter..].starts_with("id=\"letter_0-errore\">è obbligatorio"));
    assert!(
        page.contains("riga 3: «Formazione del personale | 10» non è nella forma"),
        "{page}"
    );
    assert!(page.contains("Pagamenti elettronici con pagoPA"), "kept");
    assert!(page.contains("Collaudo | 50 | 15/12/2022"), "kept");
    assert_eq!(site.app.store().head().expect("a head").seq, before);
    // Weights that do not sum to 100.
    let mut fields = vec![
        ("act", "D.G.C. n. 201 del 29/07/2022"),
        ("act_date", "2022-07-29"),
        ("reason", "Nuovo obiettivo di digitalizzazione"),
        ("rows", "1"),
        ("kind_0", "add_objective"),
        ("unit_0", "2250"),
        ("letter_0", "Z"),
        ("manager_0", "Dott. Stefano Specchia"),
        ("title_0", "Pagamenti elettronici con pagoPA"),
        ("purpose_0", "Semplificare i pagamenti dei cittadini"),
        ("final_deadline_0", "2022-12-31"),
    ];
    let mut wrong = fields.clone();
    wrong.push((
        "phases_0",
        "Attivazione | 40 | 30/09/2022\nCollaudo | 50 | 15/12/2022",
    ));
    wrong.push(("azione", "anteprima"));
    let (status, page) = office.post(path, &wrong).await;
    assert_eq!(status, 422, "{page}");
    let phases = page
        .find("id=\"phases_0-errore\"")
        .expect("a problem next to the phases");
    assert!(
        page[phases..phases + 300].contains("100"),
        "{}",
        &page[phases..phases + 300]
    );
    assert_eq!(site.app.store().head().expect("a head").seq, before);
    // Right: the preview shows the new objective and records nothing; then it is recorded.
    fields.push((
        "phases_0",
        "Attivazione dei servizi | 40 | 30/09/2022\nCollaudo | 33,5 | 15/12/2022\nFormazione | 26,5 | 2022-12-20",
    ));
    let mut preview = fields.clone();
    preview.push(("azione", "anteprima"));
    let (status, page) = office.post(path, &preview).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Anteprima: nulla è ancora registrato"));
    assert!(
        page.contains("2022-2250-Z"),
        "the new objective in the preview"
    );
    assert_eq!(site.app.store().head().expect("a head").seq, before);
    let mut record = fields.clone();
    record.push(("azione", "registra"));
    let (status, page) = office.post(path, &record).await;
    assert_eq!(status, 303, "{page}");
    let added = site
        .app
        .objective_as_of("2022-2250-Z", Until::End)
        .expect("the log reads")
        .expect("the objective was added");
    assert_eq!(added.phases().len(), 3);
    assert_eq!(added.title_at_latest(), "Pagamenti elettronici con pagoPA");
    let events = events_of(&site, "2022-2250-Z").await;
    assert_eq!(events[0].event_type, "objective_defined");
    assert_eq!(events[0].role, "admin");
    // The same objective again: it exists already, said next to its letter.
    let (status, page) = office.post(path, &preview).await;
    assert_eq!(status, 422, "{page}");
    let letter = page
        .find("id=\"letter_0-errore\"")
        .expect("a problem next to the letter");
    assert!(
        page[letter..letter + 200].contains("esiste già"),
        "{}",
        &page[letter..letter + 200]
    );
    site.stop().await;
}
