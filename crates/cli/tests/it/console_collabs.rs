//! Collaborations in the console, by clicking only: a host and two guests set one up (create,
//! invite, accept online and by file, link spaces, change a mode, add a workspace later that a
//! guest links), data flows, a guest leaves and the host deletes it. On every page of every
//! participant, no other participant's linked space appears.

use crate::console::Browser;
use crate::harness::{TestInstance, open_policies, points_geojson, wait_for};
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::Value;

const HOST_SPACES: [&str; 2] = ["city-roads-space", "city-docs-space"];
const G1_SPACES: [&str; 2] = ["harbor-inbox-space", "harbor-docs-space"];
const G2_SPACES: [&str; 1] = ["pilots-charts-space"];

impl Browser {
    /// Asserts that no page of `base` in `paths` names any of `others` (their linked spaces).
    async fn names_none_of(&self, base: &str, paths: &[String], others: &[&str]) {
        for path in paths {
            self.goto(&format!("{base}{path}")).await;
            let source = self.client.source().await.unwrap();
            for name in others {
                assert!(!source.contains(name), "{base}{path} names '{name}'");
            }
        }
    }
}

async fn only_collab(inst: &TestInstance) -> Value {
    let all = inst.get("/api/v1/collabs").await;
    all.as_array().unwrap()[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_and_two_guests_set_up_a_collaboration_by_clicking() {
    let host = TestInstance::start_with(|c| c.title = "City GIS".into()).await;
    let g1 = TestInstance::start_with(|c| c.title = "Harbor".into()).await;
    let g2 = TestInstance::start_with(|c| c.title = "Pilots".into()).await;
    for (inst, spaces) in [
        (&host, &HOST_SPACES[..]),
        (&g1, &G1_SPACES[..]),
        (&g2, &G2_SPACES[..]),
    ] {
        open_policies(inst);
        for space in spaces {
            inst.create_space(space).await;
        }
    }
    let browser = Browser::start().await;
    for inst in [&host, &g1, &g2] {
        browser.sign_in(&inst.url, &inst.admin_token).await;
    }

    // The host creates the collaboration with its first workspace.
    browser.click("nav a[href='/collabs']").await; // signed in last on g2: any page works
    browser.goto(&format!("{}/collabs", host.url)).await;
    browser.click("#new-collab").await;
    browser.fill("collab-name", "Coast").await;
    browser.fill("first-name", "Roads").await;
    browser.select("first-space", HOST_SPACES[0]).await;
    browser.click("#create-collab").await;
    let collab = only_collab(&host).await;
    let id = collab["id"].as_str().unwrap().to_string();
    assert_eq!(browser.path().await, format!("/collabs/{id}"));
    assert_eq!(browser.text_of("#collab-role").await, "host");

    // It invites Harbor (send and receive); Harbor pastes the invitation and accepts online.
    browser.press("#invite-summary").await;
    browser.fill("guest-url", &g1.url).await;
    let roads = collab["workspaces"][0]["id"].as_str().unwrap().to_string();
    browser
        .select(&format!("invite-{roads}"), "send_receive")
        .await;
    browser.click("#invite").await;
    let invitation = browser.value_of("#invitation-code").await;
    assert!(invitation.starts_with("ferry1-collab-"), "{invitation}");
    browser.press("#copy-invitation-code").await;
    browser.screenshot("collab-invitation").await;
    browser.goto(&format!("{}/collabs", g1.url)).await;
    browser.click("#accept-invitation").await;
    browser.press("#invitation").await;
    browser
        .client
        .find(Locator::Css("#invitation"))
        .await
        .unwrap()
        .send_keys(&(Key::Control + "v"))
        .await
        .unwrap();
    assert_eq!(browser.value_of("#invitation").await, invitation);
    browser.click("#preview-invitation").await;
    let host_facts = host.get("/api/v1/instance").await;
    assert_eq!(
        browser.text_of("#host-fingerprint").await,
        host_facts["fingerprint"].as_str().unwrap()
    );
    assert!(
        browser
            .text_of("#nothing-sent")
            .await
            .contains("Nothing has been sent")
    );
    assert!(
        browser
            .text_of("#offered")
            .await
            .contains("send and receive")
    );
    let invitations = host.get(&format!("/api/v1/collabs/{id}/invitations")).await;
    assert_eq!(
        invitations[0]["state"], "open",
        "nothing was sent: {invitations}"
    );
    browser
        .fill("contact", "Ana Diaz, ana@harbor.example")
        .await;
    browser.click("#accept").await;
    assert_eq!(browser.text_of("#collab-role").await, "guest");

    // Pilots (receive) gets its invitation as a file and answers with a response file.
    browser.goto(&format!("{}/collabs/{id}", host.url)).await;
    browser.press("#invite-summary").await;
    browser.fill("guest-url", &g2.url).await;
    browser.select(&format!("invite-{roads}"), "receive").await;
    browser.click("#invite").await;
    browser.press("#download-invitation-code").await;
    let invitation_file = browser.downloaded().await;
    browser.goto(&format!("{}/collabs/accept", g2.url)).await;
    browser
        .client
        .find(Locator::Css("#invitation-file"))
        .await
        .unwrap()
        .send_keys(invitation_file.to_str().unwrap())
        .await
        .unwrap();
    wait_for("the file fills the form", || async {
        browser
            .value_of("#invitation")
            .await
            .starts_with("ferry1-collab-")
    })
    .await;
    std::fs::remove_file(&invitation_file).unwrap();
    browser.click("#preview-invitation").await;
    browser.click("#accept-file").await;
    browser.press("#download-guest-response").await;
    let response_file = browser.downloaded().await;
    let participants = |c: Value| c["participants"].as_array().unwrap().len();
    assert_eq!(
        participants(only_collab(&host).await),
        2,
        "Pilots is not in yet"
    );
    browser.goto(&format!("{}/collabs/{id}", host.url)).await;
    browser.press("#response-summary").await;
    browser
        .client
        .find(Locator::Css("#guest-response-file"))
        .await
        .unwrap()
        .send_keys(response_file.to_str().unwrap())
        .await
        .unwrap();
    wait_for("the response fills the form", || async {
        !browser.value_of("#guest-response").await.is_empty()
    })
    .await;
    browser.click("#import-response").await;
    assert!(browser.text_of(".notice").await.contains("takes part now"));
    assert!(
        browser
            .text_of("tr[data-participant='Harbor']")
            .await
            .contains("Ana Diaz")
    );
    assert!(
        browser
            .text_of("tr[data-participant='Pilots']")
            .await
            .contains("active")
    );

    // Each guest links one of its spaces; once linked, no second link is offered.
    for (inst, space) in [(&g1, G1_SPACES[0]), (&g2, G2_SPACES[0])] {
        browser.goto(&format!("{}/collabs/{id}", inst.url)).await;
        let row = "tr[data-workspace='Roads']";
        browser
            .client
            .find(Locator::Css(&format!("{row} select")))
            .await
            .unwrap()
            .select_by_value(space)
            .await
            .unwrap();
        browser.click(&format!("{row} button.link-space")).await;
        assert!(
            browser
                .text_of(&format!("{row} td.linked"))
                .await
                .contains(space)
        );
        assert!(
            !browser.has(&format!("{row} select")).await,
            "a second link is not offered"
        );
        // The space's badge names the link and how this guest's layers go over it.
        browser.goto(&format!("{}/spaces", inst.url)).await;
        let badges = browser.text_of("body").await;
        assert!(
            badges.contains("Collaboration: Coast / Roads · layers as workspace (copies)"),
            "{badges}"
        );
    }

    // The host changes Pilots' mode in place, and adds a workspace that Harbor then links.
    browser.goto(&format!("{}/collabs/{id}", host.url)).await;
    let pilots = "tr[data-guest='Pilots']";
    browser
        .client
        .find(Locator::Css(&format!("{pilots} select")))
        .await
        .unwrap()
        .select_by_value("send_receive")
        .await
        .unwrap();
    browser.click(&format!("{pilots} button.save-access")).await;
    assert!(browser.text_of(".notice").await.contains("Access saved"));
    let modes = |c: &Value| c["workspaces"][0]["guests"].clone();
    let now = only_collab(&host).await;
    assert!(
        modes(&now).to_string().contains("\"Pilots\"")
            && modes(&now).to_string().matches("send_receive").count() == 2,
        "{now}"
    );
    browser.press("details summary").await;
    browser.fill("add-name", "Docs").await;
    browser.select("add-space", HOST_SPACES[1]).await;
    browser.click("#add-workspace").await;
    assert!(browser.has("tr[data-workspace='Docs']").await);
    let harbor_row = "tr[data-guest='Harbor']";
    let docs = only_collab(&host).await["workspaces"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    browser
        .client
        .find(Locator::Css(&format!(
            "{harbor_row} select[name='ws_{docs}']"
        )))
        .await
        .unwrap()
        .select_by_value("receive")
        .await
        .unwrap();
    browser
        .click(&format!("{harbor_row} button.save-access"))
        .await;
    browser.screenshot_page("collaboration").await;
    browser.goto(&format!("{}/collabs/{id}", g1.url)).await;
    wait_for("Harbor hears of Docs", || async {
        browser.goto(&format!("{}/collabs/{id}", g1.url)).await;
        browser.has("tr[data-workspace='Docs'] select").await
    })
    .await;
    browser
        .client
        .find(Locator::Css("tr[data-workspace='Docs'] select"))
        .await
        .unwrap()
        .select_by_value(G1_SPACES[1])
        .await
        .unwrap();
    browser
        .click("tr[data-workspace='Docs'] button.link-space")
        .await;
    assert!(
        browser
            .text_of("tr[data-workspace='Docs'] td.linked")
            .await
            .contains(G1_SPACES[1])
    );

    // Data flows: the host's layer reaches both guests.
    let (status, _) = host
        .import(
            &format!("space={}&title=Berths", HOST_SPACES[0]),
            "application/geo+json",
            points_geojson(5),
        )
        .await;
    assert_eq!(status, 201);
    for (inst, space) in [(&g1, G1_SPACES[0]), (&g2, G2_SPACES[0])] {
        wait_for("the layer reaches the guest", || async {
            inst.get(&format!("/api/v1/items?space={space}"))
                .await
                .as_array()
                .unwrap()
                .len()
                == 1
        })
        .await;
    }

    // The privacy rule, on every page of every participant.
    let pages = |inst: &TestInstance| {
        let _ = inst;
        vec![
            "/".to_string(),
            "/collabs".to_string(),
            format!("/collabs/{id}"),
            "/spaces".to_string(),
            "/sync".to_string(),
            "/sync/history".to_string(),
        ]
    };
    let others = |mine: &[&str]| -> Vec<&str> {
        HOST_SPACES
            .iter()
            .chain(&G1_SPACES)
            .chain(&G2_SPACES)
            .copied()
            .filter(|s| !mine.contains(s))
            .collect()
    };
    browser
        .names_none_of(&host.url, &pages(&host), &others(&HOST_SPACES))
        .await;
    browser
        .names_none_of(&g1.url, &pages(&g1), &others(&G1_SPACES))
        .await;
    browser
        .names_none_of(&g2.url, &pages(&g2), &others(&G2_SPACES))
        .await;

    // Harbor chooses what happens to received items when a workspace ends for it.
    browser.goto(&format!("{}/collabs/{id}", g1.url)).await;
    browser.select("delete-policy-choice", "delete").await;
    browser.click("#save-delete-policy").await;
    assert_eq!(only_collab(&g1).await["delete_policy"], "delete");
    browser.select("delete-policy-choice", "keep").await;
    browser.click("#save-delete-policy").await;
    assert_eq!(browser.text_of("#delete-policy").await, "keep");

    // The host edits a workspace, and refreshes then invalidates an invitation.
    browser.goto(&format!("{}/collabs/{id}", host.url)).await;
    browser.press(&format!("#edit-{docs}-summary")).await;
    browser
        .fill(&format!("edit-{docs}-description"), "Shared documents")
        .await;
    browser.click(&format!("#save-{docs}")).await;
    assert!(browser.text_of(".notice").await.contains("Workspace saved"));
    assert_eq!(
        only_collab(&host).await["workspaces"][1]["description"],
        "Shared documents"
    );
    browser.press("#invite-summary").await;
    browser.fill("guest-url", "http://127.0.0.1:9").await;
    browser.click("#invite").await;
    let first_code = browser.value_of("#invitation-code").await;
    browser.click("#to-collab").await;
    let open = "#invitations tbody tr:last-child";
    let table = browser.text_of("#invitations").await;
    assert!(browser.text_of(open).await.contains("open"), "{table}");
    browser.click(&format!("{open} button.secondary")).await;
    assert_ne!(
        browser.value_of("#invitation-code").await,
        first_code,
        "a new code"
    );
    browser.click("#to-collab").await;
    browser.click(&format!("{open} button.danger")).await;
    assert!(browser.text_of(open).await.contains("invalidated"));

    // The host removes Harbor; Harbor keeps what it received, as its setting says.
    browser
        .click("tr[data-participant='Harbor'] button.danger")
        .await;
    assert!(
        browser
            .text_of("tr[data-participant='Harbor']")
            .await
            .contains("removed")
    );

    // Pilots leaves after a confirmation; the host deletes the collaboration, whose
    // confirmation says linked spaces and items stay.
    browser.goto(&format!("{}/collabs/{id}", g2.url)).await;
    browser.click("#leave-collab").await;
    browser.click("#confirm-leave").await;
    assert!(browser.text_of(".notice").await.contains("We left"));
    assert_eq!(only_collab(&g2).await["state"], "left");
    browser.goto(&format!("{}/collabs/{id}", host.url)).await;
    browser.click("#delete-collab").await;
    assert!(
        browser
            .text_of("#consequences")
            .await
            .contains("Linked spaces and their items stay")
    );
    browser.click("#confirm-delete").await;
    assert!(browser.text_of(".notice").await.contains("is deleted"));
    assert_eq!(only_collab(&host).await["state"], "deleted");
    assert_eq!(
        g1.get(&format!("/api/v1/items?space={}", G1_SPACES[0]))
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "received items stay"
    );
    browser.client.clone().close().await.unwrap();
}
