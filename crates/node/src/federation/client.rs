//! The one way this instance calls another: network policy first (for the directions of data
//! the call serves), then a signed request with timeouts, and retries with backoff on transient
//! failures. Local API requests never wait on a
//! slow peer beyond [`TOTAL_TIMEOUT`] per attempt.

use super::policy::{Audience, Party, admit_call};
use crate::error::NodeError;
use crate::instance::Identity;
use ferry_core::policy::{Destination, Flows, judge_destination};
use ferry_proto::signing::{self, RequestTarget};
use ferry_proto::{ApiError, ErrorCode};
use ferry_store::Store;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(20);
const ATTEMPTS: u32 = 3;
/// A stream that sends nothing for this long is given up.
const STREAM_SILENCE: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The largest control answer (a snapshot, a connection, a probe) this instance reads.
pub(crate) const CONTROL_ANSWER_BYTES: usize = 4 << 20;
/// The largest error body read from a peer that refused.
const ERROR_ANSWER_BYTES: usize = 64 << 10;

/// Why a call to a peer did not succeed.
#[derive(Debug)]
pub(crate) enum FederationError {
    /// This instance's policy lets no data move with the callee in a direction the call serves.
    Policy(NodeError),
    /// An address rule refuses where the call would go.
    AddressDenied {
        ip: std::net::IpAddr,
        rule: String,
        flows: Flows,
    },
    /// The peer's URL is plain `http://` off loopback, and plain HTTP is not allowed.
    PlainHttp { url: String },
    /// The peer's name or URL leads to an internal address no address rule opens.
    Internal {
        host: String,
        ip: std::net::IpAddr,
        flows: Flows,
    },
    /// No answer (connection refused, timed out) after every attempt.
    Unreachable { url: String, reason: String },
    /// The peer answered with an error.
    Refused { status: u16, error: ApiError },
    /// The peer's answer was larger than this instance reads for it.
    TooLarge { url: String, limit: usize },
    /// The answer's signature is missing or does not verify with the peer's pinned key: it was
    /// changed on the way, or does not come from that peer.
    Unverified { url: String, why: String },
}

impl From<FederationError> for NodeError {
    fn from(e: FederationError) -> Self {
        match e {
            FederationError::Policy(failure) => failure,
            FederationError::AddressDenied { ip, rule, flows } => NodeError::new(
                refusal_code(flows),
                format!(
                    "this instance's rule {rule} denies {} the address {ip}; its admin can remove it with `ferry policy {} remove {rule}`",
                    rule_words(flows).1,
                    rule_words(flows).0,
                ),
            ),
            FederationError::PlainHttp { url } => NodeError::new(
                ErrorCode::PlainHttpRefused,
                format!(
                    "{url} is plain HTTP: rows, codes and tokens would travel in clear, so this instance does not call it. Ask the peer's admin for its https:// URL; for a lab only, set allow_plain_http = true in ferry.toml (or --allow-plain-http true)"
                ),
            ),
            FederationError::Internal { host, ip, flows } => NodeError::new(
                refusal_code(flows),
                format!(
                    "calls to {host} would reach {ip}, an internal address; a rule for an instance or a host name does not open internal addresses: its admin can run `ferry policy {} allow {ip}` if that is meant",
                    rule_words(flows).0
                ),
            ),
            FederationError::Unreachable { url, reason } => NodeError::new(
                ErrorCode::PeerUnreachable,
                format!(
                    "the peer at {url} could not be reached ({reason}); check that it is running and reachable, then retry"
                ),
            ),
            FederationError::Unverified { url, why } => NodeError::new(
                ErrorCode::AnswerSignatureInvalid,
                format!(
                    "the answer from {url} is not signed by the peer's pinned key ({why}); nothing of it was used. Something between the instances may be changing traffic"
                ),
            ),
            FederationError::TooLarge { url, limit } => NodeError::new(
                ErrorCode::PeerAnswerTooLarge,
                format!(
                    "the peer at {url} answered with more than the {limit} bytes this instance reads for that answer; nothing of it was used"
                ),
            ),
            FederationError::Refused { status, error } => NodeError::new(
                ErrorCode::PeerRefused,
                format!(
                    "the peer refused: {} [{}]",
                    error.message,
                    error.code.as_str()
                ),
            )
            .with_details(
                serde_json::json!({"status": status, "code": error.code, "message": error.message}),
            ),
        }
    }
}

/// The code of a refusal of a call serving `flows`: the one direction's, or both's.
fn refusal_code(flows: Flows) -> ErrorCode {
    match (flows.sends, flows.receives) {
        (true, false) => ErrorCode::EgressDenied,
        (false, true) => ErrorCode::IngressDenied,
        _ => ErrorCode::PolicyDenied,
    }
}

/// The rule direction that opens a call serving `flows`, and how data relates to the address.
fn rule_words(flows: Flows) -> (&'static str, &'static str) {
    if flows.sends && !flows.receives {
        ("egress", "data to")
    } else {
        ("ingress", "data from")
    }
}

#[derive(Clone)]
pub(crate) struct FederationClient {
    http: reqwest::Client,
    stream_http: reqwest::Client,
    identity: Arc<Identity>,
    instance_id: String,
    /// This instance's title, for refusals.
    title: String,
    store: Arc<dyn Store>,
    allow_plain_http: bool,
}

/// How this instance reaches others: the certificates it trusts, and whether plain HTTP off
/// loopback is allowed (a lab setting).
pub(crate) struct Transport {
    pub(crate) tls: rustls::ClientConfig,
    pub(crate) allow_plain_http: bool,
}

impl FederationClient {
    pub(crate) fn new(
        identity: Arc<Identity>,
        (instance_id, title): (String, String),
        store: Arc<dyn Store>,
        transport: Transport,
    ) -> FederationClient {
        let resolver = Arc::new(PolicyResolver {
            store: store.clone(),
        });
        // No HTTP proxy from the environment: a proxy would resolve peer names itself, past the
        // resolver that judges every address.
        let http = reqwest::Client::builder()
            .no_proxy()
            .use_preconfigured_tls(transport.tls.clone())
            .dns_resolver(resolver.clone())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            // A redirect would send a signed request to a host the egress policy never saw.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with timeouts always builds");
        let stream_http = reqwest::Client::builder()
            .no_proxy()
            .use_preconfigured_tls(transport.tls)
            .dns_resolver(resolver)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(STREAM_SILENCE)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with timeouts always builds");
        FederationClient {
            http,
            stream_http,
            identity,
            instance_id,
            title,
            store,
            allow_plain_http: transport.allow_plain_http,
        }
    }

    /// Refuses a peer URL whose traffic would travel in clear: `http://` off loopback, unless
    /// the admin allowed plain HTTP (a lab).
    fn transport_allowed(&self, base_url: &str) -> Result<(), FederationError> {
        match plain_http_off_loopback(base_url) {
            Some(true) if !self.allow_plain_http => Err(FederationError::PlainHttp {
                url: base_url.to_string(),
            }),
            None => Err(FederationError::Unreachable {
                url: base_url.to_string(),
                reason: "not an http:// or https:// URL".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether this instance's policy allows a call to `peer`: data may move with it in a
    /// direction the call serves, and the addresses its URL leads to are open for that.
    pub(crate) async fn call_allowed(&self, peer: Callee<'_>) -> Result<(), FederationError> {
        let party = Party::new(peer.title, peer.instance_id.unwrap_or(""), peer.url, None);
        let host = party.host.clone().unwrap_or_default();
        // Rules on addresses match where the call goes: the name is resolved first. The
        // resolver judges again when it connects, so a name cannot lead elsewhere in between.
        let addresses = super::policy::addresses_of(peer.url)
            .await
            .map_err(|reason| FederationError::Unreachable {
                url: peer.url.to_string(),
                reason,
            })?;
        let rules = super::policy::rules(&self.store).await;
        let flows = match peer.flows.is_empty() {
            true => Flows::BOTH,
            false => peer.flows,
        };
        let mut first_refusal = None;
        for ip in addresses {
            let at = Party {
                ip: Some(ip),
                ..party.clone()
            };
            if !peer.probe
                && let Err(refused) =
                    admit_call(&rules, &self.title, &at, peer.flows, Audience::Here)
            {
                first_refusal.get_or_insert(FederationError::Policy(refused));
                continue;
            }
            match judge_destination(&rules, ip, flows) {
                Destination::Allowed => return Ok(()),
                Destination::Denied(rule) => {
                    first_refusal.get_or_insert(FederationError::AddressDenied {
                        ip,
                        rule: rule.id.clone(),
                        flows,
                    });
                }
                Destination::Internal => {
                    first_refusal.get_or_insert(FederationError::Internal {
                        host: host.clone(),
                        ip,
                        flows,
                    });
                }
            }
        }
        Err(first_refusal.unwrap_or(FederationError::Unreachable {
            url: peer.url.to_string(),
            reason: format!("{host} resolves to no address"),
        }))
    }

    /// Sends a signed JSON request to a peer and decodes its JSON answer, of at most
    /// [`CONTROL_ANSWER_BYTES`].
    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        peer: Callee<'_>,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, FederationError> {
        self.call_bounded(peer, method, path, body, CONTROL_ANSWER_BYTES)
            .await
    }

    /// [`FederationClient::call`] for an answer of at most `limit` bytes. The answer must be
    /// signed by the peer's key for this request.
    pub(crate) async fn call_bounded<B: Serialize, T: DeserializeOwned>(
        &self,
        peer: Callee<'_>,
        method: Method,
        path: &str,
        body: &B,
        limit: usize,
    ) -> Result<T, FederationError> {
        let (response, exchange) = self.send(&self.http, peer, method, path, body).await?;
        let url = response.url().to_string();
        let (status, signature) = answer_facts(&response);
        let bytes = read_bounded(response, limit).await?;
        exchange.verify(peer, &url, signature.as_deref(), status, &bytes)?;
        serde_json::from_slice(&bytes).map_err(|e| FederationError::Unreachable {
            url,
            reason: format!("unreadable answer: {e}"),
        })
    }

    /// Sends a signed JSON request whose answer is a stream (a sync pull): no limit on the
    /// whole exchange, only on silence. Returns the answer and the request's nonce, which the
    /// stream's signatures are bound to: the caller checks them as it reads.
    pub(crate) async fn open_stream<B: Serialize>(
        &self,
        peer: Callee<'_>,
        path: &str,
        body: &B,
    ) -> Result<(reqwest::Response, [u8; 16]), FederationError> {
        let (response, exchange) = self
            .send(&self.stream_http, peer, Method::POST, path, body)
            .await?;
        Ok((response, exchange.nonce))
    }

    /// Egress check, then the signed request, retried with backoff on transient failures;
    /// returns a successful response, or the peer's refusal.
    async fn send<B: Serialize>(
        &self,
        http: &reqwest::Client,
        peer: Callee<'_>,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<(reqwest::Response, Exchange), FederationError> {
        let base_url = peer.url;
        self.transport_allowed(base_url)?;
        self.call_allowed(peer).await?;
        let url = format!("{}{path}", base_url.trim_end_matches('/'));
        // Sign what the peer will see: a peer URL may carry a path prefix before ours.
        let signed_path = reqwest::Url::parse(&url).map_or_else(
            |_| path.to_string(),
            |u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            },
        );
        let bytes = serde_json::to_vec(body).expect("request bodies always serialize");
        let digest = signing::body_digest(&bytes);
        let mut backoff = FIRST_BACKOFF;
        let mut last_failure = String::new();
        for attempt in 1..=ATTEMPTS {
            // A fresh nonce and time per attempt: a retry is a new request, never a replay.
            let mut nonce = [0u8; 16];
            getrandom::fill(&mut nonce).expect("the operating system provides randomness");
            let target = RequestTarget {
                method: method.as_str(),
                path_and_query: &signed_path,
                body_digest: &digest,
            };
            let signature = signing::sign(
                self.identity.signing_key(),
                &self.instance_id,
                &target,
                jiff::Timestamp::now().as_second(),
                nonce,
            );
            let sent = http
                .request(method.clone(), &url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(signing::DIGEST_HEADER, signing::content_digest(&digest))
                .header(signing::SIGNATURE_HEADER, signature)
                .body(bytes.clone())
                .send()
                .await;
            let exchange = Exchange {
                method: method.as_str().to_string(),
                path: signed_path.clone(),
                digest,
                nonce,
            };
            match sent {
                Ok(response) if response.status().is_success() => return Ok((response, exchange)),
                Ok(response) if !transient(response.status()) => {
                    let (status, signature) = answer_facts(&response);
                    let answer_url = response.url().to_string();
                    let body = read_bounded(response, ERROR_ANSWER_BYTES).await?;
                    // A refusal is an answer like any other: a forged one would make this
                    // instance give up on a peer that never refused.
                    exchange.verify(peer, &answer_url, signature.as_deref(), status, &body)?;
                    let error = serde_json::from_slice::<ApiError>(&body)
                        .ok()
                        .unwrap_or_else(|| ApiError {
                            code: ErrorCode::Unknown,
                            message: format!("HTTP {status} without a Ferry error body"),
                            details: None,
                        });
                    return Err(FederationError::Refused { status, error });
                }
                Ok(response) => last_failure = format!("HTTP {}", response.status()),
                Err(e) => last_failure = e.to_string(),
            }
            tracing::warn!(peer = %base_url, tries = attempt, retry_in_ms = backoff.as_millis() as u64, reason = %last_failure, "peer call failed");
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 4;
            }
        }
        Err(FederationError::Unreachable {
            url,
            reason: last_failure,
        })
    }
}

/// `Some(true)` for a plain `http://` URL whose host is not loopback, `Some(false)` for HTTPS or
/// loopback, `None` for anything else.
pub(crate) fn plain_http_off_loopback(url: &str) -> Option<bool> {
    let url = reqwest::Url::parse(url).ok()?;
    match url.scheme() {
        "https" => Some(false),
        "http" => {
            let host = url.host_str()?.trim_matches(['[', ']']);
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.to_canonical().is_loopback());
            Some(!loopback)
        }
        _ => None,
    }
}

/// The warning `peer show` and `collab show` give for a peer `title` at `url`, if its traffic
/// would travel in clear.
pub(crate) fn transport_warning(title: &str, url: &str) -> Option<String> {
    (plain_http_off_loopback(url) == Some(true)).then(|| {
        format!(
            "'{title}' is at {url}, plain HTTP: calls to it are refused unless this instance allows plain HTTP (a lab setting), and then they travel unencrypted"
        )
    })
}

/// The instance a call goes to: where it is, who it is, and the key its answers must be
/// signed with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Callee<'a> {
    pub(crate) url: &'a str,
    pub(crate) title: &'a str,
    /// Known for every peer but one whose identity the call is to check.
    pub(crate) instance_id: Option<&'a str>,
    pub(crate) public_key: &'a [u8; 32],
    /// The directions of data the call serves: those of the link it is for (a handshake, a
    /// notice), or the one way data will move (a pull receives, a poke sends).
    pub(crate) flows: Flows,
    /// A policy probe: it carries no data, so this instance's own rules do not stop it (a
    /// check reports them); only where it goes is judged.
    pub(crate) probe: bool,
}

impl<'a> Callee<'a> {
    /// An instance as a signed code names it.
    pub(crate) fn issuer(issuer: &'a ferry_proto::ticket::Issuer, flows: Flows) -> Callee<'a> {
        Callee {
            url: &issuer.url,
            title: &issuer.title,
            instance_id: Some(&issuer.instance_id),
            public_key: &issuer.public_key,
            flows,
            probe: false,
        }
    }

    /// A pinned peer.
    pub(crate) fn of(peer: &'a ferry_store::PeerIdentity, flows: Flows) -> Callee<'a> {
        Callee {
            url: &peer.url,
            title: &peer.title,
            instance_id: Some(&peer.instance_id),
            public_key: &peer.public_key,
            flows,
            probe: false,
        }
    }

    /// A policy probe of a pinned peer.
    pub(crate) fn probe(peer: &'a ferry_store::PeerIdentity) -> Callee<'a> {
        Callee {
            probe: true,
            ..Callee::of(peer, Flows::BOTH)
        }
    }
}

/// An answer's status and its `Ferry-Answer-Signature`, if any.
fn answer_facts(response: &reqwest::Response) -> (u16, Option<String>) {
    let signature = response
        .headers()
        .get(signing::ANSWER_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (response.status().as_u16(), signature)
}

/// A request as sent: what its answer's signature must be bound to.
pub(crate) struct Exchange {
    method: String,
    path: String,
    digest: [u8; 32],
    nonce: [u8; 16],
}

impl Exchange {
    /// Checks an answer's signature against the callee's key and this request.
    fn verify(
        &self,
        peer: Callee<'_>,
        url: &str,
        signature: Option<&str>,
        status: u16,
        body: &[u8],
    ) -> Result<(), FederationError> {
        let unverified = |why: String| FederationError::Unverified {
            url: url.to_string(),
            why,
        };
        let key = ed25519_dalek::VerifyingKey::from_bytes(peer.public_key)
            .map_err(|_| unverified("the pinned key is not an Ed25519 key".into()))?;
        let answered = signing::AnsweredRequest {
            target: RequestTarget {
                method: &self.method,
                path_and_query: &self.path,
                body_digest: &self.digest,
            },
            nonce: &self.nonce,
        };
        signing::verify_answer(signature, &key, &answered, status, body)
            .map_err(|e| unverified(e.to_string()))
    }
}

/// Resolves host names for the federation client and keeps only the addresses policy lets it
/// reach, so the address it connects to is one that was judged. It does not know which way the
/// call's data moves, so it keeps an address open in either direction: the exact judgement is
/// [`FederationClient::call_allowed`]'s, just before.
struct PolicyResolver {
    store: Arc<dyn Store>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let store = self.store.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let rules = super::policy::rules(&store).await;
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<std::net::SocketAddr> = found
                .filter(|a| judge_destination(&rules, a.ip(), Flows::BOTH) == Destination::Allowed)
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "network policy allows none of the addresses {host} resolves to"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Reads an answer's body, refusing one of more than `limit` bytes as soon as it says so or
/// sends so much: a peer cannot make this instance hold more than it expects of that answer.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FederationError> {
    let url = response.url().to_string();
    let too_large = |url: String| FederationError::TooLarge { url, limit };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large(url));
    }
    // Sized once from the announced length (bounded by the limit), not grown chunk by chunk.
    let expected = response.content_length().unwrap_or(0).min(limit as u64) as usize;
    let mut body = Vec::with_capacity(expected);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > limit => return Err(too_large(url)),
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(FederationError::Unreachable {
                    url,
                    reason: format!("the answer was cut: {e}"),
                });
            }
        }
    }
}

fn transient(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}
