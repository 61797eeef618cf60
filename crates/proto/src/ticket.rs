//! Invite codes: self-describing, signed tickets.
//!
//! A ticket's text is a kind prefix (`ferry1-peer-`) followed by lowercase base32 (no padding) of
//! compact postcard bytes: the offer and the issuer's Ed25519 signature over it. The issuer's
//! public key travels inside the offer, so [`PeerTicket::parse`] checks the signature before it
//! returns anything; whether that key is the one the reader expects, whether the ticket expired
//! and whether it was used already are the reader's questions ([`PeerOffer::check_expiry`]).
//!
//! Wire format, version 1:
//!
//! ```text
//! ticket  = prefix base32(postcard(Signed { offer: bytes, signature: [u8; 64] }))
//! offer   = postcard(PeerOffer { version: 1, request_id, issuer, space_name, export, import,
//!                                expires_at, secret })
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Version of the ticket format this code writes and reads.
pub const TICKET_VERSION: u8 = 1;
pub const PEER_TICKET_PREFIX: &str = "ferry1-peer-";

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketError {
    /// Not a peer invite code at all (another kind, or no Ferry prefix).
    WrongKind,
    /// Not decodable: bad characters, truncated, trailing bytes.
    Malformed(String),
    /// Decodable, but the signature does not match its content.
    Tampered,
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion(u8),
}

impl std::fmt::Display for TicketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TicketError::WrongKind => write!(
                f,
                "this is not a Ferry peer invite code: it should start with '{PEER_TICKET_PREFIX}'"
            ),
            TicketError::Malformed(why) => write!(
                f,
                "the invite code is damaged or incomplete ({why}); copy it again in full"
            ),
            TicketError::Tampered => write!(
                f,
                "the invite code's signature does not match its content: it was altered; ask for a new code"
            ),
            TicketError::UnsupportedVersion(v) => write!(
                f,
                "the invite code uses format version {v}, which this Ferry does not read; upgrade Ferry"
            ),
        }
    }
}

impl std::error::Error for TicketError {}

/// What a link carries in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DataTypes {
    pub datasets: bool,
    pub features: bool,
    pub files: bool,
}

impl DataTypes {
    pub const NONE: DataTypes = DataTypes {
        datasets: false,
        features: false,
        files: false,
    };

    /// Parses `datasets,features,files` (any subset; empty or `none` for nothing).
    pub fn parse(text: &str) -> Result<DataTypes, String> {
        let mut types = DataTypes::NONE;
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "none")
        {
            match part {
                "datasets" => types.datasets = true,
                "features" => types.features = true,
                "files" => types.files = true,
                other => {
                    return Err(format!(
                        "unknown data type '{other}': use datasets, features and/or files"
                    ));
                }
            }
        }
        Ok(types)
    }

    pub fn is_empty(self) -> bool {
        self == DataTypes::NONE
    }

    /// Whether every type carried here is carried by `other` too.
    pub fn is_within(self, other: DataTypes) -> bool {
        (!self.datasets || other.datasets)
            && (!self.features || other.features)
            && (!self.files || other.files)
    }

    /// The types either carries.
    pub fn union(self, other: DataTypes) -> DataTypes {
        DataTypes {
            datasets: self.datasets || other.datasets,
            features: self.features || other.features,
            files: self.files || other.files,
        }
    }

    /// The types carried here and not by `other`.
    pub fn minus(self, other: DataTypes) -> DataTypes {
        DataTypes {
            datasets: self.datasets && !other.datasets,
            features: self.features && !other.features,
            files: self.files && !other.files,
        }
    }

    /// The names of the types carried, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.datasets, "datasets"),
            (self.features, "features"),
            (self.files, "files"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Who issued a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuer {
    pub instance_id: String,
    pub title: String,
    pub url: String,
    pub public_key: [u8; 32],
}

/// What a peer request offers, as signed by its issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerOffer {
    pub version: u8,
    pub request_id: [u8; 16],
    pub issuer: Issuer,
    /// Name of the issuer's space that the connection links.
    pub space_name: String,
    /// What the issuer sends to the reader.
    pub export: DataTypes,
    /// What the issuer takes from the reader.
    pub import: DataTypes,
    /// Unix seconds.
    pub expires_at: i64,
    /// Proof of possession: the reader returns a value derived from it to accept.
    pub secret: [u8; 32],
}

impl PeerOffer {
    /// Refuses an offer at or past its expiry (`now` in Unix seconds).
    pub fn check_expiry(&self, now: i64) -> Result<(), i64> {
        if now >= self.expires_at {
            Err(self.expires_at)
        } else {
            Ok(())
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Signed {
    offer: Vec<u8>,
    signature: Vec<u8>,
}

/// A parsed, signature-checked peer invite code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTicket {
    pub offer: PeerOffer,
}

impl PeerTicket {
    /// Signs `offer` with the issuer's key and renders the invite code.
    pub fn issue(offer: &PeerOffer, key: &SigningKey) -> String {
        encode_signed(PEER_TICKET_PREFIX, offer, key)
    }

    /// Decodes a code and checks its signature before anything else is looked at.
    pub fn parse(code: &str) -> Result<PeerTicket, TicketError> {
        decode_signed(PEER_TICKET_PREFIX, code, |o: &PeerOffer| {
            o.issuer.public_key
        })
        .map(|offer| PeerTicket { offer })
    }
}

pub const PEER_RESPONSE_PREFIX: &str = "ferry1-response-";

/// The acceptor's answer to an invite code: who it is, and the code's secret as proof that it
/// holds the code. Signed by the acceptor; sent online or carried as a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerResponse {
    pub version: u8,
    pub request_id: [u8; 16],
    pub acceptor: Issuer,
    pub secret: [u8; 32],
}

impl PeerResponse {
    pub fn issue(&self, key: &SigningKey) -> String {
        encode_signed(PEER_RESPONSE_PREFIX, self, key)
    }

    /// Decodes a response and checks the acceptor's signature over it.
    pub fn parse(text: &str) -> Result<PeerResponse, TicketError> {
        decode_signed(PEER_RESPONSE_PREFIX, text, |r: &PeerResponse| {
            r.acceptor.public_key
        })
    }
}

pub const COLLAB_INVITATION_PREFIX: &str = "ferry1-collab-";

/// One workspace offered in an invitation, with the guest's access mode in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedWorkspace {
    pub workspace_id: [u8; 16],
    pub name: String,
    pub description: String,
    /// `send`, `receive` or `send_receive`.
    pub mode: String,
}

/// A host's invitation to one guest, signed by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollabInvitation {
    pub version: u8,
    pub invitation_id: [u8; 16],
    pub host: Issuer,
    pub collaboration_id: [u8; 16],
    pub collaboration_name: String,
    /// The guest instance's URL this invitation is meant for.
    pub guest_url: String,
    pub workspaces: Vec<OfferedWorkspace>,
    /// Unix seconds.
    pub expires_at: i64,
    pub secret: [u8; 32],
}

impl CollabInvitation {
    pub fn issue(&self, key: &SigningKey) -> String {
        encode_signed(COLLAB_INVITATION_PREFIX, self, key)
    }

    /// Decodes an invitation and checks the host's signature over it.
    pub fn parse(text: &str) -> Result<CollabInvitation, TicketError> {
        decode_signed(COLLAB_INVITATION_PREFIX, text, |i: &CollabInvitation| {
            i.host.public_key
        })
    }
}

pub const COLLAB_RESPONSE_PREFIX: &str = "ferry1-guest-";

/// A guest's answer to an invitation: who it is, how to reach its people, and the invitation's
/// secret as proof that it holds the invitation. Signed by the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollabResponse {
    pub version: u8,
    pub invitation_id: [u8; 16],
    pub collaboration_id: [u8; 16],
    pub guest: Issuer,
    pub contact: String,
    pub secret: [u8; 32],
}

impl CollabResponse {
    pub fn issue(&self, key: &SigningKey) -> String {
        encode_signed(COLLAB_RESPONSE_PREFIX, self, key)
    }

    /// Decodes a response and checks the guest's signature over it.
    pub fn parse(text: &str) -> Result<CollabResponse, TicketError> {
        decode_signed(COLLAB_RESPONSE_PREFIX, text, |r: &CollabResponse| {
            r.guest.public_key
        })
    }
}

fn encode_signed<T: Serialize>(prefix: &str, value: &T, key: &SigningKey) -> String {
    let body = postcard::to_allocvec(value).expect("ticket contents always serialize");
    let signature = key.sign(&body).to_bytes().to_vec();
    let signed = postcard::to_allocvec(&Signed {
        offer: body,
        signature,
    })
    .expect("a signed ticket always serializes");
    format!(
        "{prefix}{}",
        data_encoding::BASE32_NOPAD.encode(&signed).to_lowercase()
    )
}

/// Decodes `prefix` + base32 of a signed value, and checks the signature with the key the value
/// names for its signer.
fn decode_signed<T: for<'de> Deserialize<'de>>(
    prefix: &str,
    text: &str,
    signer: impl Fn(&T) -> [u8; 32],
) -> Result<T, TicketError> {
    let body = text
        .trim()
        .strip_prefix(prefix)
        .ok_or(TicketError::WrongKind)?;
    let bytes = data_encoding::BASE32_NOPAD
        .decode(body.to_ascii_uppercase().as_bytes())
        .map_err(|e| TicketError::Malformed(format!("not base32: {e}")))?;
    let (signed, rest): (Signed, &[u8]) = postcard::take_from_bytes(&bytes)
        .map_err(|e| TicketError::Malformed(format!("cannot decode: {e}")))?;
    if !rest.is_empty() {
        return Err(TicketError::Malformed("extra bytes at the end".into()));
    }
    let signature = Signature::from_slice(&signed.signature)
        .map_err(|_| TicketError::Malformed("the signature has the wrong length".into()))?;
    // The version byte comes first, so it can be read before the rest.
    match signed.offer.first() {
        Some(&TICKET_VERSION) => {}
        Some(&v) => return Err(TicketError::UnsupportedVersion(v)),
        None => return Err(TicketError::Malformed("empty content".into())),
    }
    let (value, rest): (T, &[u8]) = postcard::take_from_bytes(&signed.offer)
        .map_err(|e| TicketError::Malformed(format!("cannot decode the content: {e}")))?;
    if !rest.is_empty() {
        return Err(TicketError::Malformed(
            "extra bytes after the content".into(),
        ));
    }
    let key = VerifyingKey::from_bytes(&signer(&value)).map_err(|_| TicketError::Tampered)?;
    key.verify(&signed.offer, &signature)
        .map_err(|_| TicketError::Tampered)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn offer(key: &SigningKey) -> PeerOffer {
        PeerOffer {
            version: TICKET_VERSION,
            request_id: [7; 16],
            issuer: Issuer {
                instance_id: "01a2014f-db55-76da-90ae-819c57b22d24".into(),
                title: "City GIS".into(),
                url: "https://gis.example.org".into(),
                public_key: key.verifying_key().to_bytes(),
            },
            space_name: "roads".into(),
            export: DataTypes {
                datasets: false,
                features: true,
                files: true,
            },
            import: DataTypes {
                datasets: true,
                features: false,
                files: false,
            },
            expires_at: 1_900_000_000,
            secret: [9; 32],
        }
    }

    #[test]
    fn a_ticket_round_trips_and_names_its_kind() {
        let k = key(1);
        let code = PeerTicket::issue(&offer(&k), &k);
        assert!(code.starts_with("ferry1-peer-"));
        assert!(
            code[PEER_TICKET_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(PeerTicket::parse(&code).unwrap().offer, offer(&k));
        assert_eq!(
            PeerTicket::parse(&format!("  {code}\n")).unwrap().offer,
            offer(&k)
        );
    }

    /// The format is a promise to other instances: this code, written once, must keep parsing.
    #[test]
    fn a_version_1_ticket_from_the_past_still_parses() {
        let k = key(1);
        let code = PeerTicket::issue(&offer(&k), &k);
        let golden = include_str!("../tests/fixtures/peer-ticket-v1.txt").trim();
        assert_eq!(
            code, golden,
            "Ed25519 is deterministic: same offer and key, same code"
        );
        assert_eq!(PeerTicket::parse(golden).unwrap().offer, offer(&k));
    }

    #[test]
    fn refusals_have_their_reasons() {
        let k = key(1);
        assert_eq!(
            PeerTicket::parse("ferry1-collab-abc"),
            Err(TicketError::WrongKind)
        );
        assert_eq!(PeerTicket::parse("hello"), Err(TicketError::WrongKind));
        assert!(matches!(
            PeerTicket::parse("ferry1-peer-!!!"),
            Err(TicketError::Malformed(_))
        ));
        let code = PeerTicket::issue(&offer(&k), &k);
        assert!(matches!(
            PeerTicket::parse(&code[..code.len() / 2]),
            Err(TicketError::Malformed(_))
        ));
        // Signed by another key than the one it names.
        let mut forged = offer(&k);
        forged.issuer.public_key = key(2).verifying_key().to_bytes();
        assert_eq!(
            PeerTicket::parse(&PeerTicket::issue(&forged, &k)),
            Err(TicketError::Tampered)
        );
        let mut future = offer(&k);
        future.version = 9;
        assert_eq!(
            PeerTicket::parse(&PeerTicket::issue(&future, &k)),
            Err(TicketError::UnsupportedVersion(9))
        );
    }

    #[test]
    fn responses_round_trip_and_are_signed_by_the_acceptor() {
        let acceptor = key(2);
        let response = PeerResponse {
            version: TICKET_VERSION,
            request_id: [7; 16],
            acceptor: Issuer {
                instance_id: "b".into(),
                title: "Harbor".into(),
                url: "http://127.0.0.1:2".into(),
                public_key: acceptor.verifying_key().to_bytes(),
            },
            secret: [9; 32],
        };
        let text = response.issue(&acceptor);
        assert!(text.starts_with(PEER_RESPONSE_PREFIX));
        assert_eq!(PeerResponse::parse(&text).unwrap(), response);
        assert_eq!(
            PeerResponse::parse(&text.replace("ferry1-response-", "ferry1-peer-")),
            Err(TicketError::WrongKind)
        );
        assert_eq!(
            PeerResponse::parse(&response.issue(&key(3))),
            Err(TicketError::Tampered)
        );
    }

    #[test]
    fn collaboration_invitations_round_trip_and_are_signed_by_the_host() {
        let host = key(5);
        let invitation = CollabInvitation {
            version: TICKET_VERSION,
            invitation_id: [1; 16],
            host: offer(&host).issuer,
            collaboration_id: [2; 16],
            collaboration_name: "Coastal data".into(),
            guest_url: "https://harbor.example.org".into(),
            workspaces: vec![
                OfferedWorkspace {
                    workspace_id: [3; 16],
                    name: "Roads".into(),
                    description: "".into(),
                    mode: "send".into(),
                },
                OfferedWorkspace {
                    workspace_id: [4; 16],
                    name: "Berths".into(),
                    description: "Quays".into(),
                    mode: "send_receive".into(),
                },
            ],
            expires_at: 1_900_000_000,
            secret: [6; 32],
        };
        let text = invitation.issue(&host);
        assert!(text.starts_with(COLLAB_INVITATION_PREFIX));
        assert_eq!(CollabInvitation::parse(&text).unwrap(), invitation);
        assert_eq!(
            PeerTicket::parse(&text),
            Err(TicketError::WrongKind),
            "kinds never mix"
        );
        let mut forged = invitation.clone();
        forged.host.public_key = key(6).verifying_key().to_bytes();
        assert_eq!(
            CollabInvitation::parse(&forged.issue(&host)),
            Err(TicketError::Tampered)
        );
    }

    #[test]
    fn guest_responses_round_trip_and_are_signed_by_the_guest() {
        let guest = key(8);
        let response = CollabResponse {
            version: TICKET_VERSION,
            invitation_id: [1; 16],
            collaboration_id: [2; 16],
            guest: offer(&guest).issuer,
            contact: "Data desk <data@harbor.example.org>".into(),
            secret: [6; 32],
        };
        let text = response.issue(&guest);
        assert!(text.starts_with(COLLAB_RESPONSE_PREFIX));
        assert_eq!(CollabResponse::parse(&text).unwrap(), response);
        assert_eq!(CollabInvitation::parse(&text), Err(TicketError::WrongKind));
        let mut forged = response.clone();
        forged.contact = "someone else".into();
        assert_eq!(
            CollabResponse::parse(&forged.issue(&key(9))),
            Err(TicketError::Tampered),
            "signed by another key than the one it carries"
        );
    }

    #[test]
    fn expiry() {
        let o = offer(&key(1));
        assert!(o.check_expiry(o.expires_at - 1).is_ok());
        assert_eq!(o.check_expiry(o.expires_at), Err(o.expires_at));
    }

    #[test]
    fn data_types_parse() {
        assert_eq!(
            DataTypes::parse("features, files").unwrap(),
            DataTypes {
                datasets: false,
                features: true,
                files: true
            }
        );
        assert!(DataTypes::parse("").unwrap().is_empty());
        assert!(DataTypes::parse("rasters").is_err());
        assert_eq!(
            DataTypes::parse("files,datasets").unwrap().names(),
            vec!["datasets", "files"]
        );
        let types = |t: &str| DataTypes::parse(t).unwrap();
        assert!(types("features").is_within(types("features,files")));
        assert!(types("").is_within(types("datasets")));
        assert!(!types("features,datasets").is_within(types("features,files")));
        assert!(types("datasets,features,files").is_within(types("files,features,datasets")));
    }

    proptest! {
        #[test]
        fn tickets_round_trip(seed in any::<u8>(), space in "[a-z0-9_.-]{1,64}", title in ".{0,80}",
                              expires in any::<i64>(), secret in any::<[u8; 32]>(), flags in any::<[bool; 6]>()) {
            let k = key(seed);
            let mut o = offer(&k);
            o.space_name = space;
            o.issuer.title = title;
            o.expires_at = expires;
            o.secret = secret;
            o.export = DataTypes { datasets: flags[0], features: flags[1], files: flags[2] };
            o.import = DataTypes { datasets: flags[3], features: flags[4], files: flags[5] };
            let code = PeerTicket::issue(&o, &k);
            prop_assert_eq!(PeerTicket::parse(&code).unwrap().offer, o);
        }

        /// Any single changed character is refused: nothing decodes to a different, valid offer.
        #[test]
        fn any_single_character_change_is_refused(position in any::<prop::sample::Index>(), replacement in "[a-z2-7]") {
            let k = key(3);
            let code = PeerTicket::issue(&offer(&k), &k);
            let body_start = PEER_TICKET_PREFIX.len();
            let i = body_start + position.index(code.len() - body_start);
            let mut changed = code.clone().into_bytes();
            prop_assume!(changed[i] != replacement.as_bytes()[0]);
            changed[i] = replacement.as_bytes()[0];
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(PeerTicket::parse(&changed).is_err(), "accepted a changed code");
        }

        /// Any single changed byte of the decoded ticket is refused too.
        #[test]
        fn any_single_byte_change_is_refused(position in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let k = key(4);
            let code = PeerTicket::issue(&offer(&k), &k);
            let mut bytes = data_encoding::BASE32_NOPAD
                .decode(code[PEER_TICKET_PREFIX.len()..].to_ascii_uppercase().as_bytes())
                .unwrap();
            let i = position.index(bytes.len());
            bytes[i] ^= flip;
            let changed = format!("{PEER_TICKET_PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase());
            prop_assert!(PeerTicket::parse(&changed).is_err());
        }
    }
}
