//! Network policy rules and the audit log, through the API and the CLI.

use crate::harness::{TestInstance, ferry_json, stderr};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_rules_are_managed_and_audited() {
    let inst = TestInstance::start().await;
    let added = ferry_json(&inst, &["policy", "ingress", "allow", "10.1.2.3/8"]);
    assert_eq!(
        (added["direction"].as_str(), added["pattern"].as_str()),
        (Some("ingress"), Some("cidr:10.0.0.0/8"))
    );
    let again = ferry_json(&inst, &["policy", "ingress", "allow", "cidr:10.0.0.0/8"]);
    assert_eq!(
        again["id"], added["id"],
        "the same rule typed two ways is one rule"
    );
    ferry_json(&inst, &["policy", "egress", "deny", "*.example.org"]);
    assert_eq!(
        ferry_json(&inst, &["policy", "ingress", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ferry_json(&inst, &["policy", "egress", "list"])[0]["pattern"],
        "host:*.example.org"
    );
    // Without a direction: both.
    let both = ferry_json(&inst, &["policy", "list"]);
    let directions: Vec<&str> = both
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions.len(), 2, "{both}");
    assert!(directions.contains(&"ingress") && directions.contains(&"egress"));
    ferry_json(
        &inst,
        &["policy", "ingress", "remove", added["id"].as_str().unwrap()],
    );
    assert_eq!(ferry_json(&inst, &["policy", "ingress", "list"]), json!([]));

    let bad = inst.ferry(&["policy", "ingress", "allow", "not a pattern"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("invalid_request"), "{}", stderr(&bad));
    let (status, body) = inst
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(json!({"direction": "sideways", "effect": "allow", "pattern": "10.0.0.0/8"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = inst
        .call(Method::DELETE, "/api/v1/policies/nope", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("policy_rule_not_found"))
    );

    // Newest first by default; `--after` reads the log through, oldest first.
    let log = ferry_json(&inst, &["audit", "list"]);
    assert_eq!(
        crate::harness::events(&log),
        vec![
            "policy.removed",
            "policy.added",
            "policy.added",
            "token.created"
        ]
    );
    let oldest_first = ferry_json(&inst, &["audit", "list", "--after", "0"]);
    assert_eq!(crate::harness::events(&oldest_first)[0], "token.created");
    assert!(
        oldest_first
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .all(|e| e["actor"] == "admin"),
        "the first admin token is created by ferry itself; the rest by admin"
    );
    // A page says when there are more, and how to see them.
    let page = inst.ferry(&["audit", "list", "--limit", "2"]);
    let said = stderr(&page);
    let before = log[1]["seq"].as_i64().unwrap();
    assert!(
        said.contains(&format!("ferry audit list --before {before}")),
        "{said}"
    );
    let next = ferry_json(&inst, &["audit", "list", "--before", &before.to_string()]);
    assert_eq!(
        crate::harness::events(&next),
        vec!["policy.added", "token.created"]
    );

    // Security settings are for admins only.
    let editor = inst.create_token("ed", "editor").await;
    for (method, path) in [
        (Method::GET, "/api/v1/policies"),
        (Method::GET, "/api/v1/audit"),
    ] {
        assert_eq!(
            inst.call_as(&editor, method, path, None).await.0,
            StatusCode::FORBIDDEN
        );
    }
}
