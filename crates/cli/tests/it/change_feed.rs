use crate::harness::{TestInstance, points_geojson};
use reqwest::Method;
use serde_json::{Value, json};

fn seqs(page: &Value) -> Vec<i64> {
    page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn change_feed_orders_changes_and_keeps_tombstones() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    inst.create_space("other").await;
    let (_, item) = inst
        .import("space=s", "application/geo+json", points_geojson(4))
        .await;
    inst.import("space=other", "text/csv", "id\n1\n2\n").await;
    let id = item["id"].as_str().unwrap();

    let all = inst.get("/api/v1/spaces/s/changes").await;
    assert_eq!(
        seqs(&all).len(),
        5,
        "four features and the item, nothing from the other space: {all}"
    );
    assert!(seqs(&all).windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all["changes"][4]["change"], "item");
    assert_eq!(all["has_more"], false);
    let mark = all["next_after"].as_i64().unwrap();

    let edits = json!({"updates": [{"key": 2, "values": {"name": "two"}}], "deletes": [3]});
    inst.call(
        Method::POST,
        &format!("/api/v1/items/{id}/edits"),
        Some(edits),
    )
    .await;
    let delta = inst
        .get(&format!("/api/v1/spaces/s/changes?after={mark}"))
        .await;
    let kinds: Vec<&str> = delta["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["row", "row_deleted", "item"]);
    assert_eq!(delta["changes"][0]["row"]["values"]["name"], "two");
    assert_eq!(delta["changes"][1]["key"], 3);
    assert!(seqs(&delta).iter().all(|s| *s > mark));

    let paged = inst.get("/api/v1/spaces/s/changes?limit=2").await;
    assert_eq!(seqs(&paged).len(), 2);
    assert_eq!(paged["has_more"], true);

    let mark = delta["next_after"].as_i64().unwrap();
    inst.call(Method::DELETE, &format!("/api/v1/items/{id}"), None)
        .await;
    let gone = inst
        .get(&format!("/api/v1/spaces/s/changes?after={mark}"))
        .await;
    assert_eq!(
        gone["changes"],
        json!([{"change": "item_deleted", "seq": mark + 1, "item_id": id}])
    );
    let empty = inst
        .get(&format!("/api/v1/spaces/s/changes?after={}", mark + 1))
        .await;
    assert_eq!(empty["changes"], json!([]));
    assert_eq!(empty["next_after"], mark + 1);
    assert_eq!(empty["epoch"], inst.get("/api/v1/instance").await["epoch"]);
}
