//! Signed requests and signed answers: headers, digests and signatures as another instance (or
//! anyone on the network) sends them. Nothing panics, and nothing forged verifies.
#![no_main]

use ed25519_dalek::SigningKey;
use ferry_proto::signing::{
    AnsweredRequest, RequestTarget, SignatureHeader, StreamSignature, check_body, claimed_digest,
    verify_answer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let (head, body) = data.split_at(data.len().min(data.first().copied().unwrap_or(0) as usize));
    let Ok(header) = std::str::from_utf8(head) else {
        return;
    };
    let digest = check_body(Some(header), body);
    if let Ok(parsed) = SignatureHeader::parse(header) {
        let digest = digest.unwrap_or([0; 32]);
        let target = RequestTarget {
            method: "POST",
            path_and_query: "/federation/v1/sync/pull",
            body_digest: &digest,
        };
        assert!(
            parsed.verify(&key, &target, 1_800_000_000).is_err(),
            "a forged request signature verified"
        );
    }
    let digest = claimed_digest(Some(header)).unwrap_or([0; 32]);
    let answered = AnsweredRequest {
        target: RequestTarget {
            method: "POST",
            path_and_query: "/federation/v1/probe",
            body_digest: &digest,
        },
        nonce: &[1; 16],
    };
    assert!(
        verify_answer(Some(header), &key, &answered, 200, body).is_err(),
        "a forged answer signature verified"
    );
    let mut stream = StreamSignature::new([1; 16]);
    stream.line(body);
    assert!(stream.verify(&key, header).is_err(), "a forged stream signature verified");
});
