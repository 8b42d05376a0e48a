//! Browser harness for the web tests: a real server on a loopback port, headless
//! Chromium driven over WebDriver (chromedriver + fantoccini), axe-core run on
//! every page visited, and a screenshot of each under `target/screenshots/`.
//!
//! Why WebDriver and fantoccini rather than CDP and chromiumoxide: fantoccini is
//! a small crate over the hyper client already in the tree, while chromiumoxide
//! generates the whole DevTools protocol (minutes of compile time on this
//! 2-core machine), and WebDriver is the standard both Chromium and Firefox
//! speak. The browser tests never skip: a missing Chromium is a failure that says
//! how to install it (`.ci/test` does).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use traguardo::App;
use traguardo_events::Clock;

/// Browser tests run one at a time: each starts Chromium, and the machine has
/// two cores.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A server over a fresh database with the seed plan and the demo accounts.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub clock: Clock,
    pub base: String,
    server: Option<traguardo::http::Server>,
}

impl Site {
    /// The seed plan and the demo accounts, the clock at 09:00 UTC of `today`;
    /// with `played_until`, the demo year is played up to that record date first.
    pub async fn start(today: &str, played_until: Option<&str>) -> Site {
        Site::start_with(
            today,
            played_until,
            traguardo::transparency::Checkpoints::disabled(),
        )
        .await
    }

    /// As [`Site::start`], signing checkpoints with `checkpoints`' key.
    pub async fn start_with(
        today: &str,
        played_until: Option<&str>,
        checkpoints: traguardo::transparency::Checkpoints,
    ) -> Site {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let clock = Clock::manual(Utc.with_ymd_and_hms(2022, 1, 20, 9, 0, 0).unwrap());
        let app = App::open(dir.path().join("web.db"), clock.clone()).expect("the database opens");
        traguardo::web::demo::load_plan(&app)
            .await
            .expect("the seed loads");
        traguardo::web::demo::create_accounts(&app)
            .await
            .expect("the accounts are created");
        if let Some(until) = played_until {
            traguardo::web::demo::play_year(&app, &clock, date(until))
                .await
                .expect("the demo year plays");
        }
        clock.set(Utc.from_utc_datetime(&date(today).and_hms_opt(9, 0, 0).unwrap()));
        let server = traguardo::http::start_with(app.clone(), "127.0.0.1:0", checkpoints)
            .await
            .expect("the server starts");
        let base = format!("http://{}", server.addr);
        Site {
            dir,
            app,
            clock,
            base,
            server: Some(server),
        }
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

pub fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
}

/// chromedriver on a free loopback port; killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
    profiles: tempfile::TempDir,
}

impl Driver {
    pub async fn start() -> Driver {
        assert!(
            std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists(),
            "the browser tests need Debian's chromium and chromium-driver \
             (apt-get install -y chromium chromium-driver; .ci/test installs them)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver {
            child,
            url,
            profiles: tempfile::tempdir().expect("a profile folder"),
        }
    }

    /// A new headless Chromium, with its own fresh profile.
    pub async fn browser(&self, test: &str, who: &str, base: &str) -> Browser {
        let profile = self.profiles.path().join(who);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=it-IT",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("Chromium starts under chromedriver");
        Browser {
            client,
            base: base.to_string(),
            name: format!("{test}-{who}"),
            shots: 0,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser: visits pages, checks each with axe-core and keeps a screenshot.
pub struct Browser {
    pub client: Client,
    pub base: String,
    name: String,
    shots: usize,
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots is writable");
    dir
}

impl Browser {
    /// Goes to `path` and checks the page.
    pub async fn visit(&mut self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        self.check(path).await;
    }

    /// After a navigation: axe-core finds no serious or critical WCAG 2.1 A/AA
    /// violation, and a screenshot is kept.
    pub async fn check(&mut self, label: &str) {
        self.shots += 1;
        let png = self.client.screenshot().await.expect("a screenshot");
        let slug: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let file = screenshots().join(format!("{}-{:02}{}.png", self.name, self.shots, slug));
        std::fs::write(&file, png).expect("the screenshot is written");
        let axe =
            std::fs::read_to_string(traguardo::web::assets::AXE_JS).expect("axe-core from npm");
        self.client
            .execute(&format!("{axe}\n;return true;"), vec![])
            .await
            .expect("axe-core loads in the page");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                   .then(r => done(r.violations
                      .filter(v => v.impact === 'serious' || v.impact === 'critical')
                      .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
                           v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        let violations: Vec<String> = serde_json::from_value(found).unwrap_or_default();
        assert!(
            violations.is_empty(),
            "accessibility violations on {label} ({}):\n{}",
            file.display(),
            violations.join("\n")
        );
    }

    /// Logs in through the form.
    pub async fn login(&mut self, username: &str, password: &str) {
        self.visit("/accesso").await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click("form[action='/accesso'] button[type=submit]")
            .await;
        self.check("dopo-accesso").await;
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("a query")
            .is_empty()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("its text")
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.expect("cleared");
        e.send_keys(text).await.expect("typed");
    }

    /// Sets an input's value directly (date inputs take keys in the locale's order).
    pub async fn set_value(&self, css: &str, value: &str) {
        self.find(css).await;
        self.client
            .execute(
                "document.querySelector(arguments[0]).value = arguments[1]; return true;",
                vec![json!(css), json!(value)],
            )
            .await
            .expect("the value is set");
    }

    /// Clicks like a person: Bootstrap's smooth scrolling would move the element
    /// while WebDriver clicks, so it is scrolled to the middle at once first.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'}); return true;",
                vec![serde_json::to_value(&e).expect("an element reference")],
            )
            .await
            .expect("scrolled");
        e.click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Runs a script and answers its result.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("the script runs")
    }

    /// Sends a POST from the page (same origin, the session's cookie), answering
    /// the status.
    pub async fn post(&self, path: &str, body: &str) -> u16 {
        let status = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(arguments[0], {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'},
                                      body: arguments[1], redirect: 'manual'})
                   .then(r => done(r.status)).catch(e => done(-1));",
                vec![json!(path), json!(body)],
            )
            .await
            .expect("the request is sent");
        status.as_u64().unwrap_or(0) as u16
    }

    /// The session's CSRF token, read from the logout form every page has.
    pub async fn csrf(&self) -> String {
        self.find("form[action='/esci'] input[name=csrf]")
            .await
            .attr("value")
            .await
            .expect("an attribute")
            .unwrap_or_default()
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("a URL")
            .path()
            .to_string()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
