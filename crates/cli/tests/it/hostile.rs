//! Hostile peers: each test stands for one way another instance might try to touch more than its
//! link allows, and shows that it cannot. The proxy in front of a real sender plays the hostile
//! peer: every answer the receiver gets passes through it and can be rewritten at will.

use crate::harness::{TestInstance, ferry_json, stderr};
use crate::sync::{id, import_file, items, noise, peered_behind_proxy, sync_now};
use serde_json::{Value, json};

/// Runs `link` now, expecting the run to fail; returns its record from the history.
fn failed_run(inst: &TestInstance, link: &str) -> Value {
    let out = inst.ferry(&["sync", "now", link]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr(&out).contains("the run failed"), "{}", stderr(&out));
    ferry_json(inst, &["sync", "history", link])[0].clone()
}

/// Rewrites the first chunk hash of every file item a stream describes.
fn chunk_hash_becomes(hash: String) -> impl Fn(&str) -> Vec<String> + Send + Sync {
    move |line| {
        let mut record: Value = serde_json::from_str(line).unwrap();
        if record["t"] == "item" && record["item"]["kind"] == "file" {
            record["item"]["chunks"][0][0] = json!(hash);
        }
        vec![record.to_string()]
    }
}

/// A sender that puts a path where a chunk hash belongs gets nothing from it: the record does not
/// parse, the run fails, and the file it named is neither served as the item nor deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_hash_from_a_peer_never_names_a_file() {
    let (proxy, a, b, on_b) = peered_behind_proxy("files").await;
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("payroll.csv");
    std::fs::write(&victim, "name,salary\nana,1\n").unwrap();
    import_file(&a, "space=roads&title=Survey", noise(1000, 1)).await;

    let hostile = [
        victim.to_string_lossy().into_owned(),
        "../../identity.key".to_string(),
        format!("../{}", "0".repeat(61)),
        "AB".repeat(32),
    ];
    for hash in hostile {
        proxy.rewrite_sync_lines(chunk_hash_becomes(hash.clone()));
        let run = failed_run(&b, &on_b);
        assert_eq!(run["status"], "failed", "{hash}: {run}");
        let message = run["message"].as_str().unwrap();
        assert!(
            message.contains("chunk hash") && message.contains("sync_refused"),
            "{hash}: {message}"
        );
        assert!(items(&b, "inbox").await.is_empty(), "{hash}");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "name,salary\nana,1\n",
        "the named file is untouched"
    );

    // Honest again: the file arrives with its own bytes.
    proxy.rewrite_sync_lines(|line| vec![line.to_string()]);
    let run = sync_now(&b, &on_b);
    assert_eq!(run["status"], "completed", "{run}");
    let copy = &items(&b, "inbox").await["Survey"];
    let bytes = b.export(id(copy), "", &[]).await.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), noise(1000, 1).as_slice());
}
