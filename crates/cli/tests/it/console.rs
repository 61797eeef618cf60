//! The web console in a real browser: Debian's Chromium driven through ChromeDriver, against
//! real instances on loopback. Screenshots of the main pages go to `target/console/`.

use crate::harness::TestInstance;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A headless Chromium under its own ChromeDriver; both end with the test. Downloads go to a
/// directory of its own.
pub struct Browser {
    pub client: Client,
    driver: Child,
    downloads: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver runs: install Debian's chromium and chromium-driver (.ci/run does)",
            );
        let downloads = tempfile::tempdir().unwrap();
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--window-size=1280,900"],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        downloads,
                    };
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.kill();
        panic!("no browser session from chromedriver at {url}: {last_error}");
    }

    /// Saves what the browser shows as `target/console/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Saves the whole page, however long, as `target/console/NAME.png`.
    pub async fn screenshot_page(&self, name: &str) {
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(900)
            .clamp(900, 4000);
        let (width, old_height) = self.client.get_window_size().await.unwrap();
        self.client
            .set_window_size(width as u32, height as u32 + 140)
            .await
            .unwrap();
        self.screenshot(name).await;
        self.client
            .set_window_size(width as u32, old_height as u32)
            .await
            .unwrap();
    }

    /// The text of the first element `css` finds, once it is there (read again if the page
    /// changed under it).
    pub async fn text_of(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css))
                .await;
            match found {
                Ok(element) => match element.text().await {
                    Ok(text) => return text,
                    Err(e) if std::time::Instant::now() > deadline => {
                        panic!("'{css}' kept changing: {e}")
                    }
                    Err(_) => continue,
                },
                Err(e) => panic!("no '{css}' in the page: {e}"),
            }
        }
    }

    /// Clicks what `css` finds, which loads a page, and waits until the new page replaced the
    /// old one: what a test reads next is from the new page.
    pub async fn click(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no '{css}' to click: {e}"))
            .click()
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while old.tag_name().await.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "clicking '{css}' loaded no page"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The current value of the form field `css` finds.
    pub async fn value_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no '{css}': {e}"))
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// The first file the browser finished downloading.
    pub async fn downloaded(&self) -> PathBuf {
        for _ in 0..200 {
            let done = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                // Chromium writes to a hidden temporary file, then to NAME.crdownload, and
                // renames that to NAME when the download is complete.
                .find(|path| {
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    !name.starts_with('.') && !name.ends_with(".crdownload")
                });
            if let Some(path) = done {
                return path;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the browser downloaded nothing within 10 s");
    }

    /// Loads `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Clicks what `css` finds where no page loads (a checkbox, a summary, a script's button).
    pub async fn press(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no '{css}': {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    pub async fn sign_in(&self, base: &str, token: &str) {
        self.client.goto(&format!("{base}/sign-in")).await.unwrap();
        let field = self.client.find(Locator::Id("token")).await.unwrap();
        field.send_keys(token).await.unwrap();
        self.click("#sign-in").await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_sees_the_instance_and_signs_out_in_a_real_browser() {
    let inst = TestInstance::start().await;
    let facts = inst.get("/api/v1/instance").await;
    let browser = Browser::start().await;

    // No session: every page sends the browser to sign in.
    browser.client.goto(&inst.url).await.unwrap();
    assert_eq!(browser.path().await, "/sign-in");
    browser.screenshot("sign-in").await;

    // A wrong token: the page says why, with the stable code.
    browser.sign_in(&inst.url, "ferry_not_a_token").await;
    let refusal = browser.text_of(".error").await;
    assert!(
        refusal.contains("not known to this instance") && refusal.contains("unauthenticated"),
        "{refusal}"
    );

    browser.sign_in(&inst.url, &inst.admin_token).await;
    assert_eq!(
        browser.text_of("#fingerprint").await,
        facts["fingerprint"].as_str().unwrap()
    );
    assert_eq!(
        browser.text_of("#instance-id").await,
        facts["id"].as_str().unwrap()
    );
    assert_eq!(browser.text_of(".caller").await, "admin (admin)");
    // The token appears nowhere in the page or its address.
    let source = browser.client.source().await.unwrap();
    assert!(!source.contains(&inst.admin_token));
    assert!(
        !browser
            .client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("ferry_")
    );
    browser.screenshot("overview").await;

    browser.click("#sign-out").await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.client.goto(&inst.url).await.unwrap();
    assert_eq!(browser.path().await, "/sign-in", "signed out means out");
    browser.client.clone().close().await.unwrap();
}

/// A one-time sign-in link from `ferry token login-link`: it signs in once, leaves no secret in
/// the address, and is refused the second time with a page that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_works_once_in_a_real_browser() {
    let inst = TestInstance::start().await;
    inst.create_token("ops", "editor").await;
    let out = inst.ferry(&["token", "login-link", "ops", "--json"]);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    let link: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = link["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&inst.url) && url.contains("/sign-in/link/l_"),
        "{url}"
    );
    let nobody = inst.ferry(&["token", "login-link", "nobody"]);
    assert!(
        crate::harness::stderr(&nobody).contains("token_not_found"),
        "{}",
        crate::harness::stderr(&nobody)
    );

    // Opening the link spends nothing (a mail scanner's fetch cannot use it up): a plain GET,
    // twice, leaves it good.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..2 {
        let opened = http.get(&url).send().await.unwrap();
        assert_eq!(opened.status(), 200);
        assert!(!opened.headers().contains_key("set-cookie"));
    }
    // Its button posts it from this site only.
    let foreign = http
        .post(&url)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);

    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser.click("#continue").await;
    assert_eq!(browser.text_of(".caller").await, "ops (editor)");
    assert_eq!(
        browser.path().await,
        "/",
        "the address holds no secret once signed in"
    );

    let again = Browser::start().await;
    again.client.goto(&url).await.unwrap();
    again.click("#continue").await;
    let refusal = again.text_of(".error").await;
    assert!(
        refusal.contains("used already or expired") && refusal.contains("unauthenticated"),
        "{refusal}"
    );
    browser.client.clone().close().await.unwrap();
    again.client.clone().close().await.unwrap();
}

/// The `name=value` of the session cookie an answer sets.
fn session_cookie(answer: &reqwest::Response) -> String {
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// Sign-in and session rules over plain HTTP: the cookie's attributes, CSRF and origin checks on
/// forms, the security headers, and sessions that end at expiry or when their token is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_refuse_forged_forms_and_end_with_their_token() {
    let inst = TestInstance::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |token: String| {
        let http = http.clone();
        let url = format!("{}/sign-in", inst.url);
        async move {
            http.post(url)
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let page = http
        .get(format!("{}/sign-in", inst.url))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    let viewer = inst.create_token("vera", "viewer").await;
    let answer = sign_in(viewer.clone()).await;
    assert_eq!(answer.status(), 303);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let overview = |session: String| {
        let http = http.clone();
        let url = format!("{}/", inst.url);
        async move {
            http.get(url)
                .header("cookie", session)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(overview(session.clone()).await.status(), 200);

    // A sign-out without the session's CSRF token, or from another site, is refused.
    let forged = http
        .post(format!("{}/sign-out", inst.url))
        .header("cookie", &session)
        .form(&[("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let foreign = http
        .post(format!("{}/sign-in", inst.url))
        .header("origin", "http://evil.example")
        .form(&[("token", viewer.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(!foreign.headers().contains_key("set-cookie"));
    assert_eq!(
        overview(session.clone()).await.status(),
        200,
        "refused forms change nothing"
    );

    // A viewer's own, well-formed form for an admin action: the server refuses it anyway.
    let viewer_page = overview(session.clone()).await.text().await.unwrap();
    let csrf = viewer_page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let refused = http
        .post(format!("{}/peers/new", inst.url))
        .header("cookie", &session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("space", "any"),
            ("export_features", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("forbidden"));
    assert_eq!(inst.get("/api/v1/peers").await, serde_json::json!([]));

    // A form with a role that does not exist is refused with its reason, and makes nothing.
    let admin_session = session_cookie(&sign_in(inst.admin_token.clone()).await);
    let tokens_page = http
        .get(format!("{}/tokens", inst.url))
        .header("cookie", &admin_session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = tokens_page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's forms carry the CSRF token")
        .to_string();
    let before = inst.get("/api/v1/tokens").await.as_array().unwrap().len();
    let bad_role = http
        .post(format!("{}/tokens", inst.url))
        .header("cookie", &admin_session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "root"),
            ("role", "superuser"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_role.status(), 400);
    let page = bad_role.text().await.unwrap();
    assert!(
        page.contains("not a role") && page.contains("invalid_request"),
        "{page}"
    );
    assert_eq!(
        inst.get("/api/v1/tokens").await.as_array().unwrap().len(),
        before
    );

    // Revoking the token ends its sessions.
    let tokens = inst.get("/api/v1/tokens").await;
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "vera")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = inst
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let after = overview(session).await;
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], "/sign-in");

    // A session past its time is over.
    let brief = TestInstance::start_with(|c| c.session_secs = 0).await;
    let answer = http
        .post(format!("{}/sign-in", brief.url))
        .form(&[("token", brief.admin_token.clone())])
        .send()
        .await
        .unwrap();
    let session = session_cookie(&answer);
    let expired = http
        .get(format!("{}/", brief.url))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.headers()["location"], "/sign-in");
}

impl Browser {
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn select(&self, id: &str, value: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }
}

/// Tokens and network policy by clicking only: a token made (its secret shown once and
/// working), revoked, the last admin token kept; a rule added and removed, a bad pattern refused
/// with what was typed kept. A viewer is offered neither page and is refused both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_policy_are_managed_by_clicking_and_a_viewer_cannot() {
    let inst = TestInstance::start().await;
    let browser = Browser::start().await;
    browser.sign_in(&inst.url, &inst.admin_token).await;
    browser.click("nav a[href='/tokens']").await;
    browser.fill("token-name", "ana").await;
    browser.select("token-role", "editor").await;
    browser.click("#create-token").await;
    let secret = browser.text_of("#new-token").await;
    assert!(secret.starts_with("ferry_"), "{secret}");
    let (status, _) = inst
        .call_as(&secret, reqwest::Method::GET, "/api/v1/instance", None)
        .await;
    assert!(status.is_success(), "the shown secret works: {status}");
    browser.screenshot("tokens").await;
    browser
        .client
        .goto(&format!("{}/tokens", inst.url))
        .await
        .unwrap();
    assert!(!browser.has("#new-token").await, "the secret is shown once");
    browser.click("tr[data-token='ana'] button").await;
    let row = browser.text_of("tr[data-token='ana']").await;
    assert!(row.contains("revoked"), "{row}");
    browser.click("tr[data-token='admin'] button").await;
    let refusal = browser.text_of(".error").await;
    assert!(refusal.contains("last_admin_token"), "{refusal}");

    browser.click("nav a[href='/policy']").await;
    assert!(
        browser
            .text_of(".lead")
            .await
            .contains("Nothing moves unless a rule allows it")
    );
    browser.fill("rule-pattern", "not a pattern!").await;
    browser.click("#add-rule").await;
    let refusal = browser.text_of(".error").await;
    assert!(refusal.contains("code:"), "{refusal}");
    let kept = browser
        .client
        .find(Locator::Id("rule-pattern"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("not a pattern!"),
        "the form keeps what was typed"
    );
    browser.fill("rule-pattern", "10.0.0.0/8").await;
    browser.click("#add-rule").await;
    assert!(
        browser
            .text_of("tr[data-rule='cidr:10.0.0.0/8']")
            .await
            .contains("allow")
    );
    let rules = inst.get("/api/v1/policies").await;
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    browser.screenshot("policy").await;
    browser
        .click("tr[data-rule='cidr:10.0.0.0/8'] button")
        .await;
    assert!(browser.text_of("main").await.contains("No ingress rule"));
    assert!(
        inst.get("/api/v1/policies")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    browser.click("#sign-out").await;

    let viewer = inst.create_token("vera", "viewer").await;
    browser.sign_in(&inst.url, &viewer).await;
    assert_eq!(browser.text_of(".caller").await, "vera (viewer)");
    assert!(!browser.has("nav a[href='/tokens']").await);
    assert!(!browser.has("nav a[href='/policy']").await);
    assert!(!browser.has("nav a[href='/peers']").await);
    assert!(!browser.has("nav a[href='/collabs']").await);
    assert!(browser.has("nav a[href='/spaces']").await && browser.has("nav a[href='/sync']").await);
    assert!(!browser.has("nav a[href='/audit']").await);
    for page in [
        "/tokens",
        "/policy",
        "/peers",
        "/peers/new",
        "/peers/enter",
        "/audit",
    ] {
        browser
            .client
            .goto(&format!("{}{page}", inst.url))
            .await
            .unwrap();
        let refusal = browser.text_of(".error").await;
        assert!(
            refusal.contains("needs admin") && refusal.contains("forbidden"),
            "{refusal}"
        );
    }
    browser.client.clone().close().await.unwrap();
}

/// The audit log page: newest first, a page at a time, filtered by kind and by time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_pages_and_filters_in_a_real_browser() {
    let inst = TestInstance::start().await;
    for i in 0..110 {
        let (status, _) = inst
            .call(
                reqwest::Method::POST,
                "/api/v1/policies",
                Some(
                    serde_json::json!({"direction": "ingress", "effect": "allow",
                    "pattern": format!("10.1.{i}.0/24")}),
                ),
            )
            .await;
        assert!(status.is_success(), "{status}");
    }
    inst.create_token("ana", "editor").await;
    let browser = Browser::start().await;
    browser.sign_in(&inst.url, &inst.admin_token).await;
    browser.click("nav a[href='/audit']").await;
    let rows = browser
        .client
        .find_all(Locator::Css("#audit tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 100, "a page at a time");
    let first = browser.text_of("#audit tbody tr").await;
    assert!(first.contains("token.created"), "newest first: {first}");
    browser.screenshot("audit").await;
    browser.click("#older").await;
    let older = browser
        .client
        .find_all(Locator::Css("#audit tbody tr"))
        .await
        .unwrap();
    assert!(!older.is_empty() && older.len() < 100, "{}", older.len());

    browser
        .client
        .goto(&format!("{}/audit", inst.url))
        .await
        .unwrap();
    browser.select("audit-kind", "token").await;
    browser.click("#filter-audit").await;
    let events: Vec<String> = {
        let mut events = Vec::new();
        for row in browser
            .client
            .find_all(Locator::Css("#audit tbody tr"))
            .await
            .unwrap()
        {
            events.push(row.attr("data-event").await.unwrap().unwrap_or_default());
        }
        events
    };
    assert!(
        !events.is_empty() && events.iter().all(|e| e.starts_with("token.")),
        "{events:?}"
    );
    let tomorrow = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24))
        .to_string()
        .chars()
        .take(10)
        .collect::<String>();
    browser
        .client
        .goto(&format!("{}/audit?kind=&since={tomorrow}", inst.url))
        .await
        .unwrap();
    assert!(browser.text_of("main").await.contains("No entry matches."));
    browser.client.clone().close().await.unwrap();
}

/// A path no page answers: people get a console page that says so with its code, API and
/// federation clients a JSON error; long lists come a page at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_not_found_and_long_lists_page() {
    let inst = TestInstance::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/no/such/page", inst.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key("content-security-policy"));
    let text = page.text().await.unwrap();
    assert!(
        text.contains("There is no page at this address") && text.contains("not_found"),
        "{text}"
    );
    for path in ["/api/v1/no-such-thing", "/federation/v1/nothing"] {
        let answer = http
            .get(format!("{}{path}", inst.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}: {body}");
    }

    // An upload without a live session gets JSON the page's script can show, not a redirect.
    inst.create_space("s").await;
    let upload = http
        .post(format!("{}/spaces/s/upload?file_name=a.csv", inst.url))
        .header("content-type", "text/csv")
        .body("id\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 401);
    let body: serde_json::Value = upload.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated", "{body}");
    assert_eq!(
        inst.get("/api/v1/items?space=s").await,
        serde_json::json!([])
    );

    for i in 0..120 {
        inst.create_token(&format!("t{i:03}"), "viewer").await;
    }
    let browser = Browser::start().await;
    browser.sign_in(&inst.url, &inst.admin_token).await;
    browser
        .client
        .goto(&format!("{}/no/such/page", inst.url))
        .await
        .unwrap();
    assert!(browser.text_of(".error").await.contains("not_found"));
    assert!(
        browser.has("nav a[href='/tokens']").await,
        "signed in: the navigation is there"
    );
    browser.click("nav a[href='/tokens']").await;
    assert_eq!(browser.text_of(".pager span").await, "Rows 1–100 of 121");
    assert_eq!(
        browser
            .client
            .find_all(Locator::Css("tr[data-token]"))
            .await
            .unwrap()
            .len(),
        100
    );
    browser.click(".pager a[rel='next']").await;
    assert_eq!(browser.text_of(".pager span").await, "Rows 101–121 of 121");
    assert_eq!(
        browser
            .client
            .find_all(Locator::Css("tr[data-token]"))
            .await
            .unwrap()
            .len(),
        21
    );
    browser.client.clone().close().await.unwrap();
}
