//! Network policy follows the data: for data to flow from S to R, S must permit egress to R and
//! R must permit ingress from S. Each of the two alone blocks the flow and is named in the error
//! and in the checks; the two together are enough, whoever opens the connections.
//!
//! All test instances share 127.0.0.1, an internal address: calls there need an address rule of
//! their own, so "the document's rules" here are address rules for loopback, and the rules a
//! test takes away or adds to single out one instance are `instance:` rules.

use crate::harness::{TestInstance, ferry_json, instance_id, stderr};
use crate::sync::{coast, import, items, sync_now};
use serde_json::Value;

/// An instance with no policy rule at all.
async fn bare(title: &str) -> TestInstance {
    let title = title.to_string();
    TestInstance::start_with(move |c| {
        c.title = title;
        c.realtime = false;
        c.sync_tick = std::time::Duration::from_secs(3600);
    })
    .await
}

/// Adds a rule; returns its id.
fn rule(inst: &TestInstance, direction: &str, effect: &str, pattern: &str) -> String {
    let added = ferry_json(inst, &["policy", direction, effect, pattern]);
    added["id"].as_str().unwrap().to_string()
}

fn remove(inst: &TestInstance, direction: &str, id: &str) {
    ferry_json(inst, &["policy", direction, "remove", id]);
}

/// The document's rules for data leaving `inst` (egress to loopback peers).
fn egress(inst: &TestInstance) -> String {
    rule(inst, "egress", "allow", "127.0.0.1")
}

/// The document's rules for data coming to `inst` (ingress from loopback peers).
fn ingress(inst: &TestInstance) -> String {
    rule(inst, "ingress", "allow", "127.0.0.0/8")
}

/// Runs a check (`peer check ID` or `collab check NAME`); returns (ok, the failing findings as
/// (instance, rule, message)).
fn check(inst: &TestInstance, args: &[&str]) -> (bool, Vec<(String, String, String)>) {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = inst.ferry(&full);
    let found: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no check: {}", stderr(&out)));
    assert_eq!(found["ok"].as_bool(), Some(out.status.success()), "{found}");
    let missing = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| {
            (
                f["instance"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (found["ok"] == true, missing)
}

/// A `sync now` that fails; returns what it said.
fn sync_fails(inst: &TestInstance, link: &str) -> String {
    let out = inst.ferry(&["sync", "now", link]);
    assert!(!out.status.success(), "the run should fail");
    stderr(&out)
}

/// A requests a connection exporting `export` and importing `import`; B approves, A activates.
fn connect(a: &TestInstance, b: &TestInstance, export: &str, import: &str) -> (String, String) {
    ferry_json(a, &["space", "create", "roads"]);
    ferry_json(b, &["space", "create", "inbox"]);
    let created = ferry_json(
        a,
        &[
            "peer", "request", "--space", "roads", "--export", export, "--import", import,
        ],
    );
    let on_b = ferry_json(b, &["peer", "import", created["code"].as_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    ferry_json(b, &["peer", "approve", &on_b, "--space", "inbox"]);
    let on_a = created["connection"]["id"].as_str().unwrap().to_string();
    ferry_json(a, &["peer", "activate", &on_a]);
    (on_a, on_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_needs_the_exporters_egress_and_the_receivers_ingress_and_nothing_more() {
    let (a, b) = (bare("City GIS").await, bare("Harbor Authority").await);
    let (a_id, b_id) = (instance_id(&a).await, instance_id(&b).await);
    ferry_json(&a, &["space", "create", "roads"]);
    ferry_json(&b, &["space", "create", "inbox"]);
    let created = ferry_json(
        &a,
        &[
            "peer", "request", "--space", "roads", "--export", "datasets",
        ],
    );
    let on_a = created["connection"]["id"].as_str().unwrap().to_string();
    let on_b = ferry_json(&b, &["peer", "import", created["code"].as_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let approve = || b.ferry(&["peer", "approve", &on_b, "--space", "inbox"]);
    let states = || async {
        (
            ferry_json(&a, &["peer", "show", &on_a])["connection"]["state"].clone(),
            ferry_json(&b, &["peer", "show", &on_b])["connection"]["state"].clone(),
        )
    };
    // No rule on B: its approval (for an import) is refused on B, and nothing changes.
    let said = stderr(&approve());
    assert!(
        said.contains("ingress_denied")
            && said.contains("'Harbor Authority' does not permit ingress from 'City GIS'"),
        "{said}"
    );
    assert_eq!(states().await, ("requested".into(), "imported".into()));
    // B's ingress, but no rule on A: A refuses the approval before reading it.
    let b_ingress = ingress(&b);
    let said = stderr(&approve());
    assert!(
        said.contains("policy_denied") && said.contains("'City GIS' does not permit egress"),
        "{said}"
    );
    assert_eq!(states().await, ("requested".into(), "imported".into()));
    // Exactly the document's rules for a connection that exports from A: A's egress to B, B's
    // ingress from A. Approval, activation and pulls all work with these alone.
    let a_egress = egress(&a);
    let out = approve();
    assert!(out.status.success(), "{}", stderr(&out));
    ferry_json(&a, &["peer", "activate", &on_a]);
    import(&a, "roads", "Berths", "csv", "id,v\n1,a\n".into()).await;
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    assert!(items(&b, "inbox").await.contains_key("Berths"));
    assert_eq!(check(&a, &["peer", "check", &on_a]), (true, vec![]));
    assert_eq!(check(&b, &["peer", "check", &on_b]), (true, vec![]));

    // The exporter's egress alone: the pull is refused by A, naming A's missing rule, and no
    // data leaves A.
    remove(&a, "egress", &a_egress);
    import(&a, "roads", "Quays", "csv", "id,v\n1,q\n".into()).await;
    let said = sync_fails(&b, &on_b);
    assert!(said.contains("egress_denied"), "{said}");
    assert!(
        said.contains(&format!(
            "'City GIS' does not permit egress to 'Harbor Authority' (instance {b_id}): its admin can run `ferry policy egress allow instance:{b_id}`"
        )),
        "{said}"
    );
    assert!(!items(&b, "inbox").await.contains_key("Quays"));
    let only_egress = |text: &str| {
        vec![(
            "City GIS".to_string(),
            "egress".to_string(),
            text.to_string(),
        )]
    };
    // A's own check names its rule; with no rule left for loopback, A cannot reach B's
    // internal address even to ask about B's rules, and says so.
    let (ok, missing) = check(&a, &["peer", "check", &on_a]);
    assert!(!ok);
    assert_eq!(
        missing[0],
        only_egress(&format!(
            "'City GIS' does not permit egress to 'Harbor Authority' (instance {b_id}): its admin can run `ferry policy egress allow instance:{b_id}`"
        ))[0]
    );
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(
        missing[1]
            .2
            .starts_with("the ingress rule of 'Harbor Authority' could not be checked")
            && missing[1].2.contains("internal address"),
        "{missing:?}"
    );
    assert_eq!(
        check(&b, &["peer", "check", &on_b]).1,
        only_egress(&format!(
            "'City GIS' does not permit egress to 'Harbor Authority' (instance {b_id}): its admin can run `ferry policy egress allow instance:{b_id}`"
        )),
        "B's check names A's rule, on A"
    );
    // A rule for B by instance (and the loopback address it needs) brings the flow back at the
    // next call, with no restart.
    rule(&a, "egress", "allow", &format!("instance:{b_id}"));
    let a_egress = egress(&a);
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    assert!(items(&b, "inbox").await.contains_key("Quays"));

    // The receiver's ingress alone: a deny rule for A refuses the pull on B, naming the rule.
    let deny = rule(&b, "ingress", "deny", &format!("instance:{a_id}"));
    import(&a, "roads", "Piers", "csv", "id,v\n1,p\n".into()).await;
    let said = sync_fails(&b, &on_b);
    assert!(said.contains("ingress_denied"), "{said}");
    assert!(
        said.contains(&format!(
            "'Harbor Authority' denies ingress from 'City GIS' (instance {a_id}) by rule {deny} (instance:{a_id}): its admin can run `ferry policy ingress remove {deny}`"
        )),
        "{said}"
    );
    assert!(!items(&b, "inbox").await.contains_key("Piers"));
    let (ok, missing) = check(&b, &["peer", "check", &on_b]);
    assert!(!ok);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(
        (missing[0].0.as_str(), missing[0].1.as_str()),
        ("Harbor Authority", "ingress")
    );
    assert!(missing[0].2.contains(&deny), "{missing:?}");
    assert_eq!(
        check(&a, &["peer", "check", &on_a]).1,
        vec![(
            "Harbor Authority".to_string(),
            "ingress".to_string(),
            format!(
                "'Harbor Authority' does not permit ingress from 'City GIS' (instance {a_id}): its admin can run `ferry policy ingress allow instance:{a_id}`"
            )
        )],
        "A's check names B's rule, on B"
    );
    remove(&b, "ingress", &deny);
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    assert!(items(&b, "inbox").await.contains_key("Piers"));

    // The rules the other way round (A's ingress, B's egress) move nothing: they are an import's.
    remove(&a, "egress", &a_egress);
    remove(&b, "ingress", &b_ingress);
    ingress(&a);
    egress(&b);
    let said = sync_fails(&b, &on_b);
    assert!(said.contains("ingress_denied"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_direction_of_a_two_way_connection_has_its_own_two_rules() {
    let (a, b) = (bare("City GIS").await, bare("Harbor Authority").await);
    let (a_id, b_id) = (instance_id(&a).await, instance_id(&b).await);
    for inst in [&a, &b] {
        egress(inst);
        ingress(inst);
    }
    // A sends features to B; B sends datasets to A.
    let (on_a, on_b) = connect(&a, &b, "features", "datasets");
    import(
        &a,
        "roads",
        "Berths",
        "geojson",
        crate::harness::points_geojson(3),
    )
    .await;
    import(&b, "inbox", "Tides", "csv", "id,v\n1,t\n".into()).await;
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    assert_eq!(sync_now(&a, &on_a)["status"], "completed");
    assert!(items(&b, "inbox").await.contains_key("Berths"));
    assert!(items(&a, "roads").await.contains_key("Tides"));

    // B stops data going to A: B -> A stops, A -> B goes on.
    let deny = rule(&b, "egress", "deny", &format!("instance:{a_id}"));
    import(&b, "inbox", "Currents", "csv", "id,v\n1,c\n".into()).await;
    import(
        &a,
        "roads",
        "Quays",
        "geojson",
        crate::harness::points_geojson(2),
    )
    .await;
    // A hears which rule is missing on B, and nothing of B's rules.
    let said = sync_fails(&a, &on_a);
    assert!(
        said.contains("egress_denied")
            && said.contains(&format!(
                "'Harbor Authority' does not permit egress to 'City GIS' (instance {a_id})"
            ))
            && !said.contains(&deny),
        "{said}"
    );
    // B's own check names B's rule.
    let (_, missing) = check(&b, &["peer", "check", &on_b]);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].2.contains(&format!(
            "'Harbor Authority' denies egress to 'City GIS' (instance {a_id}) by rule {deny}"
        )),
        "{missing:?}"
    );
    assert!(!items(&a, "roads").await.contains_key("Currents"));
    assert_eq!(sync_now(&b, &on_b)["status"], "completed");
    assert!(items(&b, "inbox").await.contains_key("Quays"));
    let (_, missing) = check(&a, &["peer", "check", &on_a]);
    assert_eq!(
        missing,
        vec![(
            "Harbor Authority".to_string(),
            "egress".to_string(),
            format!(
                "'Harbor Authority' does not permit egress to 'City GIS' (instance {a_id}): its admin can run `ferry policy egress allow instance:{a_id}`"
            )
        )]
    );
    remove(&b, "egress", &deny);

    // A stops taking data from B: refused on A before anything is asked of B.
    let deny = rule(&a, "ingress", "deny", &format!("instance:{b_id}"));
    let said = sync_fails(&a, &on_a);
    assert!(
        said.contains("ingress_denied") && said.contains(&deny),
        "{said}"
    );
    assert!(!items(&a, "roads").await.contains_key("Currents"));
    let (_, missing) = check(&b, &["peer", "check", &on_b]);
    assert_eq!(
        missing,
        vec![(
            "City GIS".to_string(),
            "ingress".to_string(),
            format!(
                "'City GIS' does not permit ingress from 'Harbor Authority' (instance {b_id}): its admin can run `ferry policy ingress allow instance:{b_id}`"
            )
        )]
    );
    remove(&a, "ingress", &deny);
    assert_eq!(sync_now(&a, &on_a)["status"], "completed");
    assert!(items(&a, "roads").await.contains_key("Currents"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collaboration_needs_per_guest_the_rules_of_its_modes() {
    let host = bare("Port Authority").await;
    let sender = bare("City GIS").await;
    let reader = bare("Harbor Pilots").await;
    let (sender_id, reader_id) = (instance_id(&sender).await, instance_id(&reader).await);
    let host_id = instance_id(&host).await;
    // The host receives from one guest and sends to the other: it needs both rules. The guest
    // that only sends needs only egress; the one that only receives, only ingress.
    egress(&host);
    ingress(&host);
    egress(&sender);
    ingress(&reader);
    coast(
        &host,
        &[(&sender, "Roads=send"), (&reader, "Roads=receive")],
        &[],
    );
    import(
        &sender,
        "mine",
        "From the city",
        "csv",
        "id,v\n1,a\n".into(),
    )
    .await;
    assert_eq!(sync_now(&host, "Coast/Roads")["status"], "completed");
    assert_eq!(sync_now(&reader, "Coast/Roads")["status"], "completed");
    assert!(items(&reader, "mine").await.contains_key("From the city"));
    for inst in [&host, &sender, &reader] {
        assert_eq!(check(inst, &["collab", "check", "Coast"]), (true, vec![]));
    }

    // The host's egress to the reader alone: the reader's pull is refused, the sender's flow
    // goes on.
    let deny = rule(&host, "egress", "deny", &format!("instance:{reader_id}"));
    import(&sender, "mine", "Later", "csv", "id,v\n1,b\n".into()).await;
    assert_eq!(sync_now(&host, "Coast/Roads")["status"], "completed");
    let said = sync_fails(&reader, "Coast/Roads");
    assert!(
        said.contains("egress_denied")
            && said.contains(&format!(
                "'Port Authority' does not permit egress to 'Harbor Pilots' (instance {reader_id})"
            ))
            && !said.contains(&deny),
        "{said}"
    );
    assert!(!items(&reader, "mine").await.contains_key("Later"));
    let (_, missing) = check(&host, &["collab", "check", "Coast"]);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(
        (missing[0].0.as_str(), missing[0].1.as_str()),
        ("Port Authority", "egress")
    );
    assert!(
        missing[0].2.contains("'Harbor Pilots'") && missing[0].2.contains(&deny),
        "the host's own check names its rule: {missing:?}"
    );
    let (_, missing) = check(&reader, &["collab", "check", "Coast"]);
    assert_eq!(
        missing,
        vec![(
            "Port Authority".to_string(),
            "egress".to_string(),
            format!(
                "'Port Authority' does not permit egress to 'Harbor Pilots' (instance {reader_id}): its admin can run `ferry policy egress allow instance:{reader_id}`"
            )
        )]
    );
    remove(&host, "egress", &deny);
    assert_eq!(sync_now(&reader, "Coast/Roads")["status"], "completed");
    assert!(items(&reader, "mine").await.contains_key("Later"));

    // The host's ingress from the sender alone: the host's pull is refused on the host.
    let deny = rule(&host, "ingress", "deny", &format!("instance:{sender_id}"));
    import(&sender, "mine", "Refused", "csv", "id,v\n1,c\n".into()).await;
    let said = sync_fails(&host, "Coast/Roads");
    assert!(
        said.contains("ingress_denied") && said.contains(&deny),
        "{said}"
    );
    assert!(!items(&host, "coast").await.contains_key("Refused"));
    remove(&host, "ingress", &deny);

    // The sender's own egress alone: it takes its rule away, and the host's pull is refused by
    // the sender, naming the sender's rule.
    let rules = sender.get("/api/v1/policies").await;
    for r in rules.as_array().unwrap() {
        remove(&sender, "egress", r["id"].as_str().unwrap());
    }
    let said = sync_fails(&host, "Coast/Roads");
    assert!(
        said.contains("egress_denied")
            && said.contains("'City GIS' does not permit egress to 'Port Authority'"),
        "{said}"
    );
    let (_, missing) = check(&host, &["collab", "check", "Coast"]);
    assert_eq!(
        missing,
        vec![(
            "City GIS".to_string(),
            "egress".to_string(),
            format!(
                "'City GIS' does not permit egress to 'Port Authority' (instance {host_id}): its admin can run `ferry policy egress allow instance:{host_id}`"
            )
        )]
    );
    let (_, missing) = check(&sender, &["collab", "check", "Coast"]);
    assert_eq!(
        (missing[0].0.as_str(), missing[0].1.as_str()),
        ("City GIS", "egress")
    );
    egress(&sender);
    assert_eq!(sync_now(&host, "Coast/Roads")["status"], "completed");
    assert!(items(&host, "coast").await.contains_key("Refused"));
}
