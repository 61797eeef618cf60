//! Signatures on server-to-server requests, version 1.
//!
//! The sender signs, with its instance's Ed25519 key, a canonical text of the request:
//!
//! ```text
//! ferry-request-v1
//! <METHOD>
//! <path and query, as sent>
//! <hex SHA-256 of the body>
//! <created: Unix seconds>
//! <nonce: 32 hex digits>
//! <key id: the sender's instance id>
//! ```
//!
//! and sends two headers: `Content-Digest: sha-256=:<base64>:` (RFC 9530) and
//! `Ferry-Signature: v1;key=<id>;created=<secs>;nonce=<hex>;sig=<base64url>`. The receiver
//! recomputes the digest from the body it got, rebuilds the text, and checks the signature against
//! the key it pinned for that instance, then the clock window; nonce reuse is the receiver's
//! bookkeeping. A small profile in the spirit of RFC 9421, kept to what Ferry needs.
//!
//! Answers are signed too, by the answering instance, and bound to the request they answer by
//! its nonce, so a man in the middle can drop traffic but cannot change it or replay an old
//! answer. A control answer (JSON, success or error) carries
//! `Ferry-Answer-Signature: v1;key=<id>;sig=<base64url>` over
//!
//! ```text
//! ferry-answer-v1
//! <request METHOD>
//! <request path and query>
//! <hex SHA-256 of the request body>
//! <request nonce: 32 hex digits>
//! <HTTP status>
//! <hex SHA-256 of the answer body>
//! ```
//!
//! A sync stream is signed batch by batch: after every `commit` and `end` record (and every few
//! thousand rows of a whole-item copy) the sender writes a `sig` record whose signature covers
//!
//! ```text
//! ferry-stream-v1
//! <request nonce: 32 hex digits>
//! <hex BLAKE3 of every line of the stream before the sig record, as sent, uncompressed>
//! ```
//!
//! so a receiver checks each batch, and that nothing before it was dropped, reordered or
//! changed, before it applies anything of it. A file chunk needs no signature: its BLAKE3 hash
//! is in the signed description of its file.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

pub const SIGNATURE_HEADER: &str = "ferry-signature";
pub const ANSWER_SIGNATURE_HEADER: &str = "ferry-answer-signature";
pub const DIGEST_HEADER: &str = "content-digest";
/// How far a request's `created` may be from the receiver's clock, either way.
pub const CLOCK_WINDOW_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// A header is missing or not in the expected form.
    Malformed(String),
    /// The body does not match its Content-Digest.
    DigestMismatch,
    /// The signature does not verify with the pinned key.
    BadSignature,
    /// `created` is outside the clock window.
    Stale { created: i64, now: i64 },
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Malformed(why) => {
                write!(f, "the request signature is malformed: {why}")
            }
            SignatureError::DigestMismatch => {
                write!(f, "the request body does not match its Content-Digest")
            }
            SignatureError::BadSignature => {
                write!(
                    f,
                    "the request signature does not verify with the sender's pinned key"
                )
            }
            SignatureError::Stale { created, now } => write!(
                f,
                "the request was signed at {created} but it is now {now}: outside the {CLOCK_WINDOW_SECS} s window; check both clocks"
            ),
        }
    }
}

impl std::error::Error for SignatureError {}

pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// `sha-256=:<base64>:`
pub fn content_digest(digest: &[u8; 32]) -> String {
    format!("sha-256=:{}:", data_encoding::BASE64.encode(digest))
}

/// Checks a received body against its `Content-Digest` header value; returns the digest.
pub fn check_body(header: Option<&str>, body: &[u8]) -> Result<[u8; 32], SignatureError> {
    let header =
        header.ok_or_else(|| SignatureError::Malformed("no Content-Digest header".into()))?;
    let claimed = header
        .trim()
        .strip_prefix("sha-256=:")
        .and_then(|s| s.strip_suffix(':'))
        .and_then(|b64| data_encoding::BASE64.decode(b64.as_bytes()).ok())
        .ok_or_else(|| {
            SignatureError::Malformed("Content-Digest must be sha-256=:<base64>:".into())
        })?;
    let actual = body_digest(body);
    if claimed.as_slice() == actual.as_slice() {
        Ok(actual)
    } else {
        Err(SignatureError::DigestMismatch)
    }
}

/// The parts of a `Ferry-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub key_id: String,
    pub created: i64,
    pub nonce: [u8; 16],
    pub signature: [u8; 64],
}

/// What is signed about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestTarget<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body_digest: &'a [u8; 32],
}

fn canonical(target: &RequestTarget<'_>, key_id: &str, created: i64, nonce: &[u8; 16]) -> Vec<u8> {
    format!(
        "ferry-request-v1\n{}\n{}\n{}\n{created}\n{}\n{key_id}",
        target.method.to_ascii_uppercase(),
        target.path_and_query,
        data_encoding::HEXLOWER.encode(target.body_digest),
        data_encoding::HEXLOWER.encode(nonce),
    )
    .into_bytes()
}

/// The `Ferry-Signature` header value for a request.
pub fn sign(
    key: &SigningKey,
    key_id: &str,
    target: &RequestTarget<'_>,
    created: i64,
    nonce: [u8; 16],
) -> String {
    let signature = key.sign(&canonical(target, key_id, created, &nonce));
    format!(
        "v1;key={key_id};created={created};nonce={};sig={}",
        data_encoding::HEXLOWER.encode(&nonce),
        data_encoding::BASE64URL_NOPAD.encode(&signature.to_bytes()),
    )
}

/// The request an answer answers: what its signature is bound to, besides its own status and
/// body.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredRequest<'a> {
    pub target: RequestTarget<'a>,
    pub nonce: &'a [u8; 16],
}

/// The text an answer's signature covers.
fn answer_text(request: &AnsweredRequest<'_>, status: u16, body: &[u8]) -> Vec<u8> {
    format!(
        "ferry-answer-v1\n{}\n{}\n{}\n{}\n{status}\n{}",
        request.target.method.to_ascii_uppercase(),
        request.target.path_and_query,
        data_encoding::HEXLOWER.encode(request.target.body_digest),
        data_encoding::HEXLOWER.encode(request.nonce),
        data_encoding::HEXLOWER.encode(&body_digest(body)),
    )
    .into_bytes()
}

/// The `Ferry-Answer-Signature` header value for an answer to `request`.
pub fn sign_answer(
    key: &SigningKey,
    key_id: &str,
    request: &AnsweredRequest<'_>,
    status: u16,
    body: &[u8],
) -> String {
    let signature = key.sign(&answer_text(request, status, body));
    format!(
        "v1;key={key_id};sig={}",
        data_encoding::BASE64URL_NOPAD.encode(&signature.to_bytes())
    )
}

/// Checks an answer's `Ferry-Answer-Signature` header against the key of the instance that was
/// called and the request it answers.
pub fn verify_answer(
    header: Option<&str>,
    key: &VerifyingKey,
    request: &AnsweredRequest<'_>,
    status: u16,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or_else(|| {
        SignatureError::Malformed("the answer carries no Ferry-Answer-Signature".into())
    })?;
    let signature = header
        .trim()
        .strip_prefix("v1;")
        .and_then(|rest| rest.split(';').find_map(|part| part.strip_prefix("sig=")))
        .and_then(|s| data_encoding::BASE64URL_NOPAD.decode(s.as_bytes()).ok())
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(|| {
            SignatureError::Malformed("the answer signature is not v1;key=..;sig=..".into())
        })?;
    key.verify(
        &answer_text(request, status, body),
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| SignatureError::BadSignature)
}

/// The digest a `Content-Digest` header claims, without the body (what an answer is bound to;
/// the request's own signature check compares it with the body).
pub fn claimed_digest(header: Option<&str>) -> Option<[u8; 32]> {
    header?
        .trim()
        .strip_prefix("sha-256=:")
        .and_then(|s| s.strip_suffix(':'))
        .and_then(|b64| data_encoding::BASE64.decode(b64.as_bytes()).ok())
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
}

/// The text a sync stream's `sig` record covers: everything before it.
fn stream_text(nonce: &[u8; 16], prefix: &blake3::Hash) -> Vec<u8> {
    format!(
        "ferry-stream-v1\n{}\n{}",
        data_encoding::HEXLOWER.encode(nonce),
        prefix.to_hex()
    )
    .into_bytes()
}

/// Signs or checks a sync stream as its lines go by: both sides feed it every line (the `sig`
/// records too, after they are made or checked).
#[derive(Debug, Clone)]
pub struct StreamSignature {
    nonce: [u8; 16],
    lines: blake3::Hasher,
}

impl StreamSignature {
    /// For the stream that answers the request with `nonce`.
    pub fn new(nonce: [u8; 16]) -> StreamSignature {
        StreamSignature {
            nonce,
            lines: blake3::Hasher::new(),
        }
    }

    /// One more line (with its newline), as sent.
    pub fn line(&mut self, line: &[u8]) {
        self.lines.update(line);
    }

    /// The signature of everything so far, base64url: what a `sig` record carries.
    pub fn sign(&self, key: &SigningKey) -> String {
        let signature = key.sign(&stream_text(&self.nonce, &self.lines.finalize()));
        data_encoding::BASE64URL_NOPAD.encode(&signature.to_bytes())
    }

    /// Checks a `sig` record's signature against everything so far.
    pub fn verify(&self, key: &VerifyingKey, signature: &str) -> Result<(), SignatureError> {
        let signature = data_encoding::BASE64URL_NOPAD
            .decode(signature.as_bytes())
            .ok()
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .ok_or(SignatureError::BadSignature)?;
        key.verify(
            &stream_text(&self.nonce, &self.lines.finalize()),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| SignatureError::BadSignature)
    }
}

impl SignatureHeader {
    pub fn parse(value: &str) -> Result<SignatureHeader, SignatureError> {
        let bad = |why: &str| SignatureError::Malformed(why.to_string());
        let mut parts = value.trim().split(';');
        if parts.next() != Some("v1") {
            return Err(bad("unknown signature version; expected v1"));
        }
        let (mut key_id, mut created, mut nonce, mut signature) = (None, None, None, None);
        for part in parts {
            let (name, v) = part
                .split_once('=')
                .ok_or_else(|| bad("parameters are name=value"))?;
            let slot = match name {
                "key" => &mut key_id,
                "created" => &mut created,
                "nonce" => &mut nonce,
                "sig" => &mut signature,
                _ => return Err(bad("unknown parameter")),
            };
            if slot.replace(v).is_some() {
                return Err(bad("a parameter appears twice"));
            }
        }
        // An instance id: a UUID, or at least something shaped like one. Anything longer or
        // stranger is refused here, before it can be looked up, logged or quoted back.
        let key_id = key_id
            .filter(|k| {
                (1..=64).contains(&k.len())
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .ok_or_else(|| {
                bad("key must be an instance id (at most 64 letters, digits and '-')")
            })?;
        let created = created
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad("created must be Unix seconds"))?;
        let nonce = nonce
            .and_then(|n| data_encoding::HEXLOWER.decode(n.as_bytes()).ok())
            .and_then(|n| <[u8; 16]>::try_from(n).ok())
            .ok_or_else(|| bad("nonce must be 32 hex digits"))?;
        let signature = signature
            .and_then(|s| data_encoding::BASE64URL_NOPAD.decode(s.as_bytes()).ok())
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .ok_or_else(|| bad("sig must be a base64url Ed25519 signature"))?;
        Ok(SignatureHeader {
            key_id: key_id.to_string(),
            created,
            nonce,
            signature,
        })
    }

    /// Checks the signature with the pinned key, then the clock window.
    pub fn verify(
        &self,
        key: &VerifyingKey,
        target: &RequestTarget<'_>,
        now: i64,
    ) -> Result<(), SignatureError> {
        let text = canonical(target, &self.key_id, self.created, &self.nonce);
        key.verify(&text, &Signature::from_bytes(&self.signature))
            .map_err(|_| SignatureError::BadSignature)?;
        // abs_diff: no overflow whatever `created` an attacker sends.
        if now.abs_diff(self.created) > CLOCK_WINDOW_SECS.unsigned_abs() {
            return Err(SignatureError::Stale {
                created: self.created,
                now,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ID: &str = "01a2014f-db55-76da-90ae-819c57b22d24";
    const NOW: i64 = 1_800_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5; 32])
    }

    fn signed(method: &str, path: &str, body: &[u8]) -> (String, [u8; 32]) {
        let digest = body_digest(body);
        let target = RequestTarget {
            method,
            path_and_query: path,
            body_digest: &digest,
        };
        (sign(&key(), KEY_ID, &target, NOW, [0xab; 16]), digest)
    }

    /// Test vector: other implementations (and later versions of Ferry) must produce these bytes.
    /// The digest and signature were cross-checked with an independent SHA-256 and Ed25519
    /// implementation over the canonical text in the module documentation.
    #[test]
    fn test_vector() {
        let body = br#"{"hello":"peer"}"#;
        let (header, digest) = signed("post", "/federation/v1/peer/responses?x=1", body);
        assert_eq!(
            content_digest(&digest),
            "sha-256=:MSgNGGDQWmfdrm+1iD+DlQaQIF9npuvW94XuljBPqMA=:"
        );
        let expected = include_str!("../tests/fixtures/signature-v1.txt").trim();
        assert_eq!(header, expected);
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_does_not() {
        let body = b"{}";
        let (header, digest) = signed("POST", "/federation/v1/ping?a=b", body);
        let parsed = SignatureHeader::parse(&header).unwrap();
        assert_eq!(parsed.key_id, KEY_ID);
        let pinned = key().verifying_key();
        let target = |m, p, d| RequestTarget {
            method: m,
            path_and_query: p,
            body_digest: d,
        };
        assert_eq!(
            parsed.verify(
                &pinned,
                &target("POST", "/federation/v1/ping?a=b", &digest),
                NOW
            ),
            Ok(())
        );
        assert_eq!(
            parsed.verify(
                &pinned,
                &target("post", "/federation/v1/ping?a=b", &digest),
                NOW + 299
            ),
            Ok(())
        );
        let other = body_digest(b"{ }");
        for (m, p, d) in [
            ("PUT", "/federation/v1/ping?a=b", &digest),
            ("POST", "/federation/v1/ping?a=c", &digest),
            ("POST", "/federation/v1/ping", &digest),
            ("POST", "/federation/v1/ping?a=b", &other),
        ] {
            assert_eq!(
                parsed.verify(&pinned, &target(m, p, d), NOW),
                Err(SignatureError::BadSignature),
                "{m} {p}"
            );
        }
        let wrong_key = SigningKey::from_bytes(&[6; 32]).verifying_key();
        assert_eq!(
            parsed.verify(
                &wrong_key,
                &target("POST", "/federation/v1/ping?a=b", &digest),
                NOW
            ),
            Err(SignatureError::BadSignature)
        );
        let extreme = SignatureHeader {
            created: i64::MIN,
            ..parsed.clone()
        };
        assert!(
            extreme
                .verify(
                    &pinned,
                    &target("POST", "/federation/v1/ping?a=b", &digest),
                    NOW
                )
                .is_err()
        );
        for now in [NOW + CLOCK_WINDOW_SECS + 1, NOW - CLOCK_WINDOW_SECS - 1] {
            assert!(matches!(
                parsed.verify(
                    &pinned,
                    &target("POST", "/federation/v1/ping?a=b", &digest),
                    now
                ),
                Err(SignatureError::Stale { .. })
            ));
        }
    }

    #[test]
    fn answers_verify_only_unchanged_and_for_their_request() {
        let digest = body_digest(b"{}");
        let answered = |path, nonce| AnsweredRequest {
            target: RequestTarget {
                method: "POST",
                path_and_query: path,
                body_digest: &digest,
            },
            nonce,
        };
        let probe = answered("/federation/v1/probe", &[7u8; 16]);
        let body = br#"{"ok":true}"#;
        let header = sign_answer(&key(), KEY_ID, &probe, 200, body);
        let pinned = key().verifying_key();
        assert_eq!(
            verify_answer(Some(&header), &pinned, &probe, 200, body),
            Ok(())
        );
        let refused = |request: &AnsweredRequest<'_>, status, body: &[u8]| {
            verify_answer(Some(&header), &pinned, request, status, body)
        };
        assert_eq!(
            refused(&probe, 200, br#"{"ok":false}"#),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            refused(&probe, 403, body),
            Err(SignatureError::BadSignature)
        );
        let other_request = answered("/federation/v1/probe", &[8u8; 16]);
        assert_eq!(
            refused(&other_request, 200, body),
            Err(SignatureError::BadSignature)
        );
        let other_path = answered("/federation/v1/identity", &[7u8; 16]);
        assert_eq!(
            refused(&other_path, 200, body),
            Err(SignatureError::BadSignature)
        );
        let other_body = body_digest(b"{ }");
        let other_digest = AnsweredRequest {
            target: RequestTarget {
                body_digest: &other_body,
                ..probe.target
            },
            ..probe
        };
        assert_eq!(
            refused(&other_digest, 200, body),
            Err(SignatureError::BadSignature)
        );
        assert!(matches!(
            verify_answer(None, &pinned, &probe, 200, b""),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_answer(Some("v1;key=x;sig=!!"), &pinned, &probe, 200, b""),
            Err(SignatureError::Malformed(_))
        ));
        let other = SigningKey::from_bytes(&[6; 32]).verifying_key();
        assert_eq!(
            verify_answer(Some(&header), &other, &probe, 200, body),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn streams_verify_batch_by_batch() {
        let mut sender = StreamSignature::new([1u8; 16]);
        let mut receiver = StreamSignature::new([1u8; 16]);
        let lines: [&[u8]; 3] = [
            b"{\"t\":\"start\"}\n",
            b"row\n",
            b"{\"t\":\"commit\",\"seq\":1}\n",
        ];
        for line in lines {
            sender.line(line);
            receiver.line(line);
        }
        let sig = sender.sign(&key());
        assert_eq!(receiver.verify(&key().verifying_key(), &sig), Ok(()));
        // A line changed, dropped or from another request's stream: refused.
        let mut changed = StreamSignature::new([1u8; 16]);
        changed.line(lines[0]);
        changed.line(b"rox\n");
        changed.line(lines[2]);
        assert!(changed.verify(&key().verifying_key(), &sig).is_err());
        let mut other = StreamSignature::new([2u8; 16]);
        lines.iter().for_each(|l| other.line(l));
        assert!(other.verify(&key().verifying_key(), &sig).is_err());
        assert!(
            receiver
                .verify(&key().verifying_key(), "not base64!")
                .is_err()
        );
    }

    #[test]
    fn body_digests() {
        let d = body_digest(b"abc");
        assert_eq!(check_body(Some(&content_digest(&d)), b"abc"), Ok(d));
        assert_eq!(
            check_body(Some(&content_digest(&d)), b"abd"),
            Err(SignatureError::DigestMismatch)
        );
        assert!(matches!(
            check_body(None, b"abc"),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            check_body(Some("md5=:x:"), b"abc"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_headers() {
        let (good, _) = signed("GET", "/", b"");
        for bad in [
            "",
            "v2;key=a;created=1;nonce=00;sig=00",
            &good.replace("v1;", "v1;key=again;"),
            &good.replace("created=", "created=x"),
            &good.replace("nonce=", "nonce=zz"),
            &good.replace(";sig=", ";sig=!"),
            &good.replace("key=", "kid="),
        ] {
            assert!(
                matches!(
                    SignatureHeader::parse(bad),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
