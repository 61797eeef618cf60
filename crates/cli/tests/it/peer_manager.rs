//! Peer Manager in a real browser: the whole peering flow between two instances by clicking
//! only, online and with a response file, every step checked in the pages and through the API;
//! and what a hostile peer sends (its title, space name, item titles) shown as text.

use crate::console::Browser;
use crate::harness::{TestInstance, ferry_json, open_policies, peered, points_geojson, wait_for};
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::Value;

async fn connection(inst: &TestInstance, id: &str) -> Value {
    inst.get(&format!("/api/v1/peers/{id}")).await["connection"].clone()
}

/// The only connection an instance has.
async fn only_connection(inst: &TestInstance) -> Value {
    let all = inst.get("/api/v1/peers").await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

async fn only_connection_count(inst: &TestInstance) -> usize {
    inst.get("/api/v1/peers").await.as_array().unwrap().len()
}

async fn fingerprint(inst: &TestInstance) -> String {
    inst.get("/api/v1/instance").await["fingerprint"]
        .as_str()
        .unwrap()
        .to_string()
}

impl Browser {
    /// Waits until the element `css` finds says `expected`.
    async fn wait_text(&self, css: &str, expected: &str) {
        for _ in 0..100 {
            if self.text_of(css).await == expected {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "'{css}' never said '{expected}': {}",
            self.text_of(css).await
        );
    }

    /// Form controls of the page that no label names (nor an `aria-label`).
    async fn unlabelled_controls(&self) -> Vec<String> {
        let found = self
            .client
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
                   .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))\
                   .map(e => e.outerHTML);",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(found).unwrap()
    }
}

/// City creates a request on its Peer Manager and copies the code; Harbor pastes it, sees the
/// details with nothing sent, approves with security; City activates; then disable, enable, a
/// security change proposed and approved, the types narrowed, and delete. Data flows once
/// active. Every step is checked in the page and through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_peering_flow_is_done_by_clicking_between_two_instances() {
    let city = TestInstance::start_with(|c| c.title = "City GIS".into()).await;
    let harbor = TestInstance::start_with(|c| c.title = "Harbor".into()).await;
    open_policies(&city);
    open_policies(&harbor);
    city.create_space("roads").await;
    harbor.create_space("archive").await;
    harbor.create_space("inbox").await;
    let (status, _) = city
        .import(
            "space=roads&title=Berths",
            "application/geo+json",
            points_geojson(3),
        )
        .await;
    assert_eq!(status, 201);
    let browser = Browser::start().await;
    browser.sign_in(&city.url, &city.admin_token).await;
    browser.sign_in(&harbor.url, &harbor.admin_token).await;

    // City: "Create a peer request" (top right): space, types each way, expiry.
    browser.goto(&format!("{}/peers", city.url)).await;
    assert!(
        browser
            .text_of("main")
            .await
            .contains("No peer connection yet")
    );
    browser.click("#new-request").await;
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    // No data type either way: refused with its code, and the form keeps what was chosen.
    browser.select("request-space", "roads").await;
    browser.select("request-expiry", "1h").await;
    browser.click("#create-request").await;
    let refusal = browser.text_of(".error").await;
    assert!(
        refusal.contains("at least one data type") && refusal.contains("invalid_request"),
        "{refusal}"
    );
    assert_eq!(browser.value_of("#request-expiry").await, "1h");
    assert!(only_connection_count(&city).await == 0, "nothing was made");
    browser.select("request-space", "roads").await;
    browser.press("#export-features").await;
    browser.press("#export-datasets").await;
    browser.select("request-expiry", "7d").await;
    browser.screenshot("peer-request").await;
    browser.click("#create-request").await;
    let code = browser.value_of("#invite-code").await;
    assert!(code.starts_with("ferry1-peer-"), "{code}");
    browser.press("#copy-code").await;
    browser.wait_text("#invite-code-status", "Copied").await;
    browser.screenshot("invite-code").await;
    let requested = only_connection(&city).await;
    let on_city = requested["id"].as_str().unwrap().to_string();
    assert_eq!(requested["state"], "requested");
    assert_eq!(
        requested["sends"],
        serde_json::json!(["datasets", "features"])
    );
    let expires: jiff::Timestamp = requested["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - jiff::Timestamp::now()).get_seconds() / 86_400;
    assert_eq!(days, 6, "a 7-day code expires in just under 7 days");

    let city_log = city.get("/api/v1/audit?newest=true&limit=1").await[0]["seq"].clone();

    // Harbor: "Enter invite code", pasted from the clipboard.
    browser.goto(&format!("{}/peers", harbor.url)).await;
    browser.click("#enter-code").await;
    browser.press("#invite-code").await;
    browser
        .client
        .find(Locator::Css("#invite-code"))
        .await
        .unwrap()
        .send_keys(&(Key::Control + "v"))
        .await
        .unwrap();
    assert_eq!(
        browser.value_of("#invite-code").await,
        code,
        "the Copy button put the code on the clipboard"
    );
    browser.click("#check-code").await;
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    let panel = browser.text_of("#connection").await;
    assert!(
        panel.contains("Nothing has been sent to City GIS yet"),
        "{panel}"
    );
    assert_eq!(
        browser.text_of("#peer-fingerprint").await,
        fingerprint(&city).await
    );
    assert_eq!(browser.text_of("#peer-url").await, city.url);
    assert_eq!(browser.text_of("#offered-space").await, "roads");
    assert_eq!(browser.text_of("#we-receive").await, "datasets, features");
    assert!(
        browser
            .text_of("#code-expires")
            .await
            .starts_with(&requested["expires_at"].as_str().unwrap()[..10])
    );
    browser.screenshot_page("enter-code").await;
    // Nothing was sent: City still waits, and heard nothing (not even a policy probe, which
    // it would have refused and logged).
    assert_eq!(connection(&city, &on_city).await["state"], "requested");
    assert_eq!(
        city.get("/api/v1/audit?newest=true&limit=1").await[0]["seq"],
        city_log
    );
    assert!(
        panel.contains("checked once the connection is approved"),
        "{panel}"
    );
    let on_harbor = only_connection(&harbor).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Harbor: pick the space, set security, approve.
    browser.select("approve-space", "inbox").await;
    browser.fill("approve-ceiling", "PUBLIC").await;
    browser.fill("approve-mark", "PARTNER, CITY").await;
    browser.click("#approve").await;
    assert!(
        browser
            .text_of(".notice")
            .await
            .contains("City GIS was told")
    );
    assert_eq!(browser.text_of("#connection-state").await, "approved");
    let approved = connection(&harbor, &on_harbor).await;
    assert_eq!(
        approved["security"]["ceiling"],
        serde_json::json!(["PUBLIC"])
    );
    assert_eq!(
        approved["security"]["mark"],
        serde_json::json!(["PARTNER", "CITY"])
    );
    assert_eq!(connection(&city, &on_city).await["state"], "approved");
    assert!(
        browser
            .client
            .find(Locator::Css("#activate"))
            .await
            .is_err(),
        "only the originator activates"
    );

    // City: Activate, in the panel's lower right.
    browser
        .goto(&format!("{}/peers?id={on_city}", city.url))
        .await;
    let foot = browser
        .client
        .find(Locator::Css(".panel-foot"))
        .await
        .unwrap();
    let activate = foot.find(Locator::Css("#activate")).await.unwrap();
    let (fx, _, fw, _) = foot.rectangle().await.unwrap();
    let (ax, _, aw, _) = activate.rectangle().await.unwrap();
    assert!(
        (fx + fw) - (ax + aw) < 40.0,
        "Activate sits at the right end"
    );
    browser.screenshot_page("peer-approved").await;
    // At a tablet's width the panel goes below the list, and nothing runs off the page.
    browser.client.set_window_size(768, 1024).await.unwrap();
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(overflow.as_i64().unwrap() <= 0, "overflows by {overflow}");
    browser.screenshot_page("peer-manager-tablet").await;
    browser.client.set_window_size(1280, 900).await.unwrap();
    browser.click("#activate").await;
    assert_eq!(browser.text_of("#connection-state").await, "active");
    assert_eq!(connection(&harbor, &on_harbor).await["state"], "active");
    wait_for("the layer reaches Harbor", || async {
        let items = harbor.get("/api/v1/items?space=inbox").await;
        items.as_array().unwrap().iter().any(|i| {
            let mut marks: Vec<&str> = i["markings"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            marks.sort_unstable();
            i["title"] == "Berths" && marks == ["CITY", "PARTNER"]
        })
    })
    .await;
    browser
        .goto(&format!("{}/peers?id={on_harbor}", harbor.url))
        .await;
    assert!(browser.text_of("#space-items").await.contains("Berths"));

    // City: Disable, then Enable; Harbor hears of both.
    browser
        .goto(&format!("{}/peers?id={on_city}", city.url))
        .await;
    browser.click("#disable").await;
    assert_eq!(browser.text_of("#connection-state").await, "disabled here");
    assert!(browser.text_of(".notice").await.contains("Harbor was told"));
    assert_eq!(
        connection(&harbor, &on_harbor).await["disabled_there"],
        true
    );
    browser.click("#enable").await;
    assert_eq!(browser.text_of("#connection-state").await, "active");
    assert_eq!(
        connection(&harbor, &on_harbor).await["disabled_there"],
        false
    );

    // Harbor proposes a wider ceiling for its side; City approves it.
    browser
        .goto(&format!("{}/peers?id={on_harbor}", harbor.url))
        .await;
    browser.press("details summary").await;
    assert_eq!(browser.value_of("#propose-ceiling").await, "PUBLIC");
    browser.fill("propose-ceiling", "PUBLIC, PARTNER").await;
    browser.click("#propose").await;
    assert!(
        browser
            .text_of("#proposal")
            .await
            .contains("Waiting for City GIS")
    );
    browser
        .goto(&format!("{}/peers?id={on_city}", city.url))
        .await;
    assert!(
        browser
            .text_of("#proposal")
            .await
            .contains("Harbor proposes")
    );
    browser.screenshot_page("security-proposal").await;
    browser.click("#proposal button").await;
    assert!(
        browser
            .text_of(".notice")
            .await
            .contains("new settings apply now")
    );
    assert_eq!(
        connection(&harbor, &on_harbor).await["security"]["ceiling"],
        serde_json::json!(["PUBLIC", "PARTNER"])
    );

    // City narrows what it sends to features.
    browser.press("details:last-of-type summary").await;
    browser.press("#send-datasets").await;
    browser.click("#narrow").await;
    assert_eq!(browser.text_of("#we-send").await, "features");
    assert_eq!(
        connection(&city, &on_city).await["sends"],
        serde_json::json!(["features"])
    );

    // City deletes, after a confirmation that says what happens on Harbor's side.
    browser.click("#delete").await;
    let consequences = browser.text_of("#consequences").await;
    assert!(
        consequences.contains("Harbor is told: its side becomes revoked"),
        "{consequences}"
    );
    browser.screenshot("delete-confirmation").await;
    browser.click("#confirm-delete").await;
    assert_eq!(browser.text_of("#connection-state").await, "deleted");
    assert_eq!(connection(&harbor, &on_harbor).await["state"], "revoked");
    assert!(
        !browser.has("#delete").await,
        "a deleted connection offers no action"
    );
    browser.client.clone().close().await.unwrap();
}

/// A site with no network path to the originator: Harbor approves with "Download response
/// file", City uploads the file and activates. The file serves once; a forged one is refused
/// with its code and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_file_carries_the_approval_by_clicking() {
    let city = TestInstance::start_with(|c| c.title = "City GIS".into()).await;
    let harbor = TestInstance::start_with(|c| c.title = "Harbor".into()).await;
    open_policies(&city);
    open_policies(&harbor);
    city.create_space("roads").await;
    harbor.create_space("inbox").await;
    let browser = Browser::start().await;
    browser.sign_in(&city.url, &city.admin_token).await;
    browser.sign_in(&harbor.url, &harbor.admin_token).await;

    browser.goto(&format!("{}/peers/new", city.url)).await;
    browser.press("#import-files").await;
    browser.click("#create-request").await;
    let code = browser.value_of("#invite-code").await;
    let on_city = only_connection(&city).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // City's first code is replaced by a refreshed one; the old one no longer works.
    browser
        .goto(&format!("{}/peers?id={on_city}", city.url))
        .await;
    browser.click("#refresh").await;
    let refreshed = browser.value_of("#invite-code").await;
    assert_ne!(refreshed, code);

    browser.goto(&format!("{}/peers/enter", harbor.url)).await;
    // A damaged code is refused with its code, the form keeping what was pasted.
    browser.fill("invite-code", "ferry1-peer-zzzz").await;
    browser.click("#check-code").await;
    assert!(browser.text_of(".error").await.contains("invite_malformed"));
    assert_eq!(browser.value_of("#invite-code").await, "ferry1-peer-zzzz");
    assert_eq!(
        only_connection_count(&harbor).await,
        0,
        "nothing was recorded"
    );
    browser.fill("invite-code", &refreshed).await;
    browser.click("#check-code").await;
    let on_harbor = only_connection(&harbor).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    browser.select("approve-space", "inbox").await;
    browser.click("#approve-file").await;
    assert!(
        browser
            .text_of(".notice")
            .await
            .contains("The response file is downloading")
    );
    let file = browser.downloaded().await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("ferry1-response-"), "{text}");
    assert_eq!(connection(&harbor, &on_harbor).await["state"], "approved");
    assert_eq!(
        connection(&city, &on_city).await["state"],
        "requested",
        "nothing went to City"
    );
    // The file can be had again until City activates, through the API too.
    let again = harbor
        .get(&format!("/api/v1/peers/{on_harbor}/response-file"))
        .await;
    assert_eq!(again["response"].as_str().unwrap(), text.trim());

    // City: a tampered file is refused with its code, and changes nothing.
    browser.goto(&format!("{}/peers", city.url)).await;
    browser.click("#upload-response").await;
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    let mut tampered = text.trim().to_string();
    tampered.replace_range(30..31, if &tampered[30..31] == "A" { "B" } else { "A" });
    browser.fill("response-text", &tampered).await;
    browser.click("#accept-response").await;
    let refusal = browser.text_of(".error").await;
    assert!(refusal.contains("response_"), "{refusal}");
    assert_eq!(
        browser.value_of("#response-text").await,
        tampered,
        "the form keeps what was typed"
    );
    assert_eq!(connection(&city, &on_city).await["state"], "requested");

    // The real file, picked in the file input.
    browser.fill("response-text", "").await;
    browser
        .client
        .find(Locator::Css("#response-file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    wait_for("the file's text fills the form", || async {
        browser.value_of("#response-text").await == text.trim()
    })
    .await;
    browser.screenshot("upload-response").await;
    browser.click("#accept-response").await;
    assert!(
        browser
            .text_of(".notice")
            .await
            .contains("Response accepted from Harbor")
    );
    assert_eq!(browser.text_of("#connection-state").await, "approved");
    browser.click("#activate").await;
    assert_eq!(browser.text_of("#connection-state").await, "active");
    let active = connection(&harbor, &on_harbor).await;
    assert_eq!(active["state"], "active");
    assert!(active.get("response_file_ready").is_none(), "{active}");

    // Harbor proposes marking less on its side; City rejects, and Harbor's settings stay.
    browser
        .goto(&format!("{}/peers?id={on_harbor}", harbor.url))
        .await;
    browser.press("details summary").await;
    browser.fill("propose-mark", "CITY").await;
    browser.click("#propose").await;
    browser
        .goto(&format!("{}/peers?id={on_city}", city.url))
        .await;
    browser.click("#security-reject").await;
    assert!(
        browser
            .text_of(".notice")
            .await
            .contains("settings stay as they were")
    );
    let kept = connection(&harbor, &on_harbor).await;
    assert_eq!(kept["security"]["mark"], serde_json::json!([]));
    assert!(
        kept.get("pending_security").is_none_or(Value::is_null),
        "{kept}"
    );

    // An open request can be invalidated: its code stops working.
    browser.goto(&format!("{}/peers/new", city.url)).await;
    browser.press("#export-files").await;
    browser.click("#create-request").await;
    let withdrawn = browser.value_of("#invite-code").await;
    browser.click("#to-connection").await;
    browser.click("#invalidate").await;
    assert_eq!(browser.text_of("#connection-state").await, "invalidated");
    assert!(!browser.has("#refresh").await && !browser.has("#delete").await);
    let imported = harbor
        .call(
            reqwest::Method::POST,
            "/api/v1/peers/import",
            Some(serde_json::json!({"code": withdrawn})),
        )
        .await
        .1;
    let answer = harbor
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/peers/{}/approve", imported["id"].as_str().unwrap()),
            Some(serde_json::json!({"space": "inbox"})),
        )
        .await
        .1;
    assert_eq!(
        (answer["code"].as_str(), answer["details"]["code"].as_str()),
        (Some("peer_refused"), Some("invite_reused")),
        "City refuses the withdrawn code: {answer}"
    );

    // Used once: the same file again is refused.
    browser.goto(&format!("{}/peers/response", city.url)).await;
    browser.fill("response-text", text.trim()).await;
    browser.click("#accept-response").await;
    assert!(browser.text_of(".error").await.contains("invite_reused"));
    browser.client.clone().close().await.unwrap();
}

const HOSTILE: &str =
    "<script>window.pwned=1</script>\"><img src=x onerror=\"window.pwned=2\"> javascript:alert(3)";

/// Percent-encodes every byte but letters and digits, for a query value.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Nothing a peer sent became markup or ran.
async fn nothing_ran(browser: &Browser) {
    assert!(
        browser
            .client
            .find_all(Locator::Css("main img, main script"))
            .await
            .unwrap()
            .is_empty(),
        "nothing from the other instance became markup"
    );
    let pwned = browser
        .client
        .execute("return window.pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, serde_json::json!(true), "no script of theirs ran");
}

/// The other instance's title and its item titles are hostile, and so are the title and space
/// name in an invite code a stranger crafted: Peer Manager shows them as text, nothing of them
/// runs or loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_manager_shows_what_peers_send_as_text() {
    let city = TestInstance::start().await;
    let harbor = TestInstance::start_with(|c| c.title = HOSTILE.into()).await;
    open_policies(&city);
    open_policies(&harbor);
    harbor.create_space("roads").await;
    city.create_space("inbox").await;
    let (on_harbor, on_city) = peered(&harbor, &city, "features", &[]);
    let (status, _) = harbor
        .import(
            &format!("space=roads&title={}", query_value(HOSTILE)),
            "application/geo+json",
            points_geojson(2),
        )
        .await;
    assert_eq!(status, 201);
    wait_for("the hostile layer reaches City", || async {
        let items = city.get("/api/v1/items?space=inbox").await;
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["title"] == HOSTILE)
    })
    .await;

    let browser = Browser::start().await;
    browser.sign_in(&city.url, &city.admin_token).await;
    browser.click("nav a[href='/peers']").await;
    let row = format!("tr[data-connection='{on_city}']");
    assert_eq!(browser.text_of(&format!("{row} .badge")).await, "active");
    let title = browser.text_of(&format!("{row} a")).await;
    assert_eq!(title.trim(), HOSTILE.trim(), "the title is text");
    assert!(browser.text_of(&row).await.contains("inbox"));
    browser.click(&format!("{row} a")).await;
    assert_eq!(browser.text_of("#connection-state").await, "active");
    let panel = browser.text_of("#connection").await;
    assert!(
        panel.contains(&fingerprint(&harbor).await) && panel.contains("permits ingress from"),
        "{panel}"
    );
    assert!(panel.contains("peer.remote_activated"), "{panel}");
    assert_eq!(
        browser
            .text_of("#space-items li")
            .await
            .trim_end_matches("feature_layer")
            .trim(),
        HOSTILE.trim(),
        "the item title is text"
    );
    browser.screenshot_page("peer-manager").await;
    nothing_ran(&browser).await;

    // A stranger's code: its title and space name are hostile too.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let offer = ferry_proto::ticket::PeerOffer {
        version: ferry_proto::ticket::TICKET_VERSION,
        request_id: [5; 16],
        issuer: ferry_proto::ticket::Issuer {
            instance_id: "0190a0a0-0000-7000-8000-000000000009".into(),
            title: HOSTILE.into(),
            url: "javascript:alert(4)".into(),
            public_key: stranger.verifying_key().to_bytes(),
        },
        space_name: HOSTILE.into(),
        export: ferry_proto::ticket::DataTypes::parse("features").unwrap(),
        import: ferry_proto::ticket::DataTypes::NONE,
        expires_at: jiff::Timestamp::now().as_second() + 3600,
        secret: [3; 32],
    };
    let code = ferry_proto::ticket::PeerTicket::issue(&offer, &stranger);
    browser.click("#enter-code").await;
    browser.fill("invite-code", &code).await;
    browser.click("#check-code").await;
    assert_eq!(
        browser.text_of("#offered-space").await.trim(),
        HOSTILE.trim()
    );
    assert_eq!(
        browser.text_of("#connection h2").await.trim(),
        HOSTILE.trim()
    );
    assert_eq!(browser.text_of("#peer-url").await, "javascript:alert(4)");
    for link in browser.client.find_all(Locator::Css("a")).await.unwrap() {
        let href = link.attr("href").await.unwrap().unwrap_or_default();
        assert!(
            !href.contains("javascript"),
            "a peer's URL is never a link: {href}"
        );
    }
    nothing_ran(&browser).await;

    // The other side disables the live connection: the list says so, and by which side.
    ferry_json(&harbor, &["peer", "disable", &on_harbor]);
    browser.goto(&format!("{}/peers", city.url)).await;
    assert_eq!(
        browser.text_of(&format!("{row} .badge")).await,
        "disabled there"
    );
    browser.client.clone().close().await.unwrap();
}
