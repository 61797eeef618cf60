use crate::harness::TestInstance;
use reqwest::{Method, StatusCode};

const MIB: usize = 1 << 20;

fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

pub(crate) fn chunk_files(inst: &TestInstance) -> usize {
    walk(&inst.data_dir().join("chunks"))
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p).map_or(0, |d| {
        d.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

#[tokio::test]
async fn files_are_chunked_deduplicated_and_served_with_ranges() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let bytes = content(2 * MIB + 12_345, 1);
    let (status, item) = inst
        .import(
            "space=s&file_name=scan.bin&title=Scan",
            "application/x-scan",
            bytes.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!(item["kind"], "file");
    assert_eq!(item["file"]["size"], bytes.len());
    assert_eq!(item["file"]["chunk_count"], 3);
    assert_eq!(item["file"]["content_hash"], blake3_hex(&bytes));
    assert_eq!(chunk_files(&inst), 3);
    let id = item["id"].as_str().unwrap().to_string();

    let whole = inst.export(&id, "", &[]).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "application/x-scan");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // A range across a chunk boundary.
    let (from, to) = (MIB - 10, MIB + 9);
    let part = inst
        .export(&id, "", &[("range", format!("bytes={from}-{to}"))])
        .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes {from}-{to}/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[from..=to]);
    let tail = inst
        .export(&id, "", &[("range", "bytes=-5".to_string())])
        .await;
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &bytes[bytes.len() - 5..]
    );
    let outside = inst
        .export(
            &id,
            "",
            &[("range", format!("bytes={}-", bytes.len() + 10))],
        )
        .await;
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        outside.headers()["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );
    assert_eq!(
        outside.json::<serde_json::Value>().await.unwrap()["code"],
        "range_not_satisfiable"
    );

    let (_, empty) = inst
        .import("space=s", "application/octet-stream", Vec::<u8>::new())
        .await;
    let empty_id = empty["id"].as_str().unwrap().to_string();
    let none = inst
        .export(&empty_id, "", &[("range", "bytes=0-".to_string())])
        .await;
    assert_eq!(
        none.status(),
        StatusCode::OK,
        "a range of an empty file sends the (empty) file"
    );
    assert!(none.bytes().await.unwrap().is_empty());
    inst.call(Method::DELETE, &format!("/api/v1/items/{empty_id}"), None)
        .await;
    let garbled = inst
        .export(&id, "", &[("range", "pages=1-2".to_string())])
        .await;
    assert_eq!(
        garbled.status(),
        StatusCode::OK,
        "a Range header Ferry cannot use is ignored"
    );

    // The same content again stores no new chunk; one changed chunk stores one.
    let (_, copy) = inst
        .import("space=s", "application/octet-stream", bytes.clone())
        .await;
    assert_eq!(chunk_files(&inst), 3);
    let mut edited = bytes.clone();
    edited[5] ^= 0xff;
    let (_, changed) = inst
        .import("space=s", "application/octet-stream", edited)
        .await;
    assert_eq!(chunk_files(&inst), 4);

    // Deleting frees only chunks nothing else uses.
    for it in [&item, &copy] {
        inst.call(
            Method::DELETE,
            &format!("/api/v1/items/{}", it["id"].as_str().unwrap()),
            None,
        )
        .await;
    }
    assert_eq!(
        chunk_files(&inst),
        3,
        "the changed file still uses two shared chunks and its own"
    );
    inst.call(
        Method::DELETE,
        &format!("/api/v1/items/{}", changed["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(chunk_files(&inst), 0);
}

fn blake3_hex(bytes: &[u8]) -> String {
    // The CLI crate does not link blake3; the store's chunk store computes the same hash.
    let dir = tempfile::tempdir().unwrap();
    let store = ferry_store::ChunkStore::open(dir.path()).unwrap();
    let mut w = ferry_store::ChunkWriter::new(store);
    w.write(bytes).unwrap();
    w.finish().unwrap().content_hash
}
