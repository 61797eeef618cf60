//! Invite codes, responses, collaboration invitations and guest responses: whatever text an
//! admin pastes or another instance sends. Parsing never panics, and whatever parses was signed
//! by the key it names (the parsers check that before returning anything).
#![no_main]

use ferry_proto::ticket::{CollabInvitation, CollabResponse, PeerResponse, PeerTicket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = PeerTicket::parse(text);
    let _ = PeerResponse::parse(text);
    let _ = CollabInvitation::parse(text);
    let _ = CollabResponse::parse(text);
    // The same bytes behind each prefix, so the fuzzer reaches past the prefix check.
    for prefix in ["ferry1-peer-", "ferry1-response-", "ferry1-collab-", "ferry1-guest-"] {
        let code = format!("{prefix}{text}");
        let _ = PeerTicket::parse(&code);
        let _ = PeerResponse::parse(&code);
        let _ = CollabInvitation::parse(&code);
        let _ = CollabResponse::parse(&code);
    }
});
