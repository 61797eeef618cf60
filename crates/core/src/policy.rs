//! Network policy: which instances data may go to (egress) and come from (ingress).
//!
//! Rules govern data, not connections. For data to flow from instance S to instance R, S must
//! permit egress to R and R must permit ingress from S. Which of the two opens a TCP
//! connection is a transport detail: the calls a link needs (handshake, notices, pulls) may
//! happen between two instances whose rules let data flow between them in some direction the
//! link carries ([`Verdict::permits_any`]), and the data itself is judged per direction.
//!
//! Rules match a peer by instance id, by address range (CIDR) or by host name (of its URL).
//! Evaluation is default-deny, and a matching deny rule wins over any allow rule, so an admin
//! can carve an exception out of a broad allow. [`decide`] says which rule decided, so refusals
//! can name it.

use crate::error::{CoreError, CoreResult};
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Data coming to this instance from another.
    Ingress,
    /// Data leaving this instance for another.
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Matcher {
    /// A peer instance by its id.
    Instance(String),
    /// Peers whose address is in this range.
    Cidr(IpNet),
    /// Peers reached at this host name; `*.example.org` matches its subdomains.
    Host(String),
}

impl Matcher {
    /// Reads `instance:<id>`, `cidr:<range>`, `host:<name>`, or a bare range, address or host.
    pub fn parse(text: &str) -> CoreResult<Matcher> {
        let bad = |why: &str| {
            CoreError::InvalidRequest(format!(
                "'{text}' is not a peer pattern ({why}): use instance:<id>, a CIDR like 10.0.0.0/8, or a host like gis.example.org"
            ))
        };
        let (kind, value) = match text.split_once(':') {
            Some((k @ ("instance" | "cidr" | "host"), v)) => (k, v.trim()),
            _ => ("", text.trim()),
        };
        match kind {
            "instance" if !value.is_empty() => Ok(Matcher::Instance(value.to_string())),
            "instance" => Err(bad("empty instance id")),
            "cidr" => cidr(value).ok_or_else(|| bad("not a CIDR range")),
            "host" => host(value).ok_or_else(|| bad("not a host name")),
            _ => cidr(value)
                .or_else(|| host(value))
                .ok_or_else(|| bad("neither a range nor a host")),
        }
    }

    pub fn render(&self) -> String {
        match self {
            Matcher::Instance(id) => format!("instance:{id}"),
            Matcher::Cidr(net) => format!("cidr:{net}"),
            Matcher::Host(h) => format!("host:{h}"),
        }
    }

    fn matches(&self, peer: &PeerAddress<'_>) -> bool {
        match self {
            Matcher::Instance(id) => peer.instance_id == Some(id.as_str()),
            Matcher::Cidr(net) => peer.ip.is_some_and(|ip| net.contains(&ip)),
            Matcher::Host(pattern) => peer.host.is_some_and(|h| host_matches(pattern, h)),
        }
    }
}

fn cidr(value: &str) -> Option<Matcher> {
    value
        .parse::<IpNet>()
        .ok()
        .or_else(|| value.parse::<IpAddr>().ok().map(IpNet::from))
        .map(|net| Matcher::Cidr(net.trunc()))
}

fn host(value: &str) -> Option<Matcher> {
    let name = value.strip_prefix("*.").unwrap_or(value);
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok);
    ok.then(|| Matcher::Host(value.to_ascii_lowercase()))
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == pattern,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub direction: Direction,
    pub effect: Effect,
    pub matcher: Matcher,
}

/// What is known about the other side of a call.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerAddress<'a> {
    pub instance_id: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub host: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'r> {
    Allowed(&'r Rule),
    /// Refused by this deny rule.
    Denied(&'r Rule),
    /// No rule matched: refused by default.
    NoRule,
}

impl Decision<'_> {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

/// Decides a call: a matching deny wins, then a matching allow, else refused.
pub fn decide<'r>(rules: &'r [Rule], direction: Direction, peer: &PeerAddress<'_>) -> Decision<'r> {
    let matching = || {
        rules
            .iter()
            .filter(move |r| r.direction == direction && r.matcher.matches(peer))
    };
    if let Some(deny) = matching().find(|r| r.effect == Effect::Deny) {
        return Decision::Denied(deny);
    }
    matching()
        .next()
        .map_or(Decision::NoRule, Decision::Allowed)
}

/// Which ways data moves between this instance and one other, over the links they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flows {
    /// Data leaves this instance for the other: egress here, ingress there.
    pub sends: bool,
    /// Data comes from the other: ingress here, egress there.
    pub receives: bool,
}

impl Flows {
    pub const SENDS: Flows = Flows {
        sends: true,
        receives: false,
    };
    pub const RECEIVES: Flows = Flows {
        sends: false,
        receives: true,
    };
    pub const BOTH: Flows = Flows {
        sends: true,
        receives: true,
    };

    pub fn union(self, other: Flows) -> Flows {
        Flows {
            sends: self.sends || other.sends,
            receives: self.receives || other.receives,
        }
    }

    pub fn is_empty(self) -> bool {
        !self.sends && !self.receives
    }

    /// The rule this instance needs for each way data moves: egress to send, ingress to receive.
    pub fn directions(self) -> impl Iterator<Item = Direction> {
        [
            self.sends.then_some(Direction::Egress),
            self.receives.then_some(Direction::Ingress),
        ]
        .into_iter()
        .flatten()
    }
}

/// This instance's rules judged for one peer, in both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'r> {
    pub egress: Decision<'r>,
    pub ingress: Decision<'r>,
}

/// Judges a peer in both directions.
pub fn judge<'r>(rules: &'r [Rule], peer: &PeerAddress<'_>) -> Verdict<'r> {
    Verdict {
        egress: decide(rules, Direction::Egress, peer),
        ingress: decide(rules, Direction::Ingress, peer),
    }
}

impl<'r> Verdict<'r> {
    pub fn on(&self, direction: Direction) -> &Decision<'r> {
        match direction {
            Direction::Egress => &self.egress,
            Direction::Ingress => &self.ingress,
        }
    }

    /// Whether data may move in some way `flows` has: what any call between the two needs.
    pub fn permits_any(&self, flows: Flows) -> bool {
        flows.directions().any(|d| self.on(d).is_allowed())
    }

    /// The directions of `flows` these rules refuse, each with the decision that refused it.
    pub fn refused(&self, flows: Flows) -> Vec<(Direction, &Decision<'r>)> {
        flows
            .directions()
            .map(|d| (d, self.on(d)))
            .filter(|(_, decision)| !decision.is_allowed())
            .collect()
    }
}

/// What a resolved destination address of an egress call is judged to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination<'r> {
    Allowed,
    /// An address rule denies it.
    Denied(&'r Rule),
    /// An internal address (loopback, private, link-local, ...) that no address rule opens.
    Internal,
}

/// Judges where a call for data moving in `flows` really goes, address by address, once its
/// host name is resolved. Who the peer is (an instance rule) or what it is called (a host rule)
/// says nothing about where its URL leads: a peer's self-issued invite code, or a name that
/// resolves somewhere new, could point this instance at its own internal services. So a deny
/// rule on the address refuses the direction it is for, and an internal address is reached only
/// through an allow rule for that address itself (`ferry policy ingress allow 10.0.0.0/8`), in
/// a direction of `flows` that no address rule denies.
pub fn judge_destination(rules: &[Rule], ip: IpAddr, flows: Flows) -> Destination<'_> {
    let ip = ip.to_canonical();
    let address_rules = |direction: Direction| {
        rules.iter().filter(move |r| {
            r.direction == direction
                && matches!(&r.matcher, Matcher::Cidr(net) if net.contains(&ip))
        })
    };
    let mut first_deny = None;
    let mut internal_opened = false;
    let mut open = false;
    for direction in flows.directions() {
        if let Some(deny) = address_rules(direction).find(|r| r.effect == Effect::Deny) {
            first_deny.get_or_insert(deny);
            continue;
        }
        open = true;
        internal_opened |= address_rules(direction).any(|r| match &r.matcher {
            Matcher::Cidr(net) => names_internal_range(net),
            _ => false,
        });
    }
    match first_deny {
        Some(deny) if !open => Destination::Denied(deny),
        _ if !open => Destination::Internal,
        _ if is_internal(ip) && !internal_opened => Destination::Internal,
        _ => Destination::Allowed,
    }
}

/// Whether a range lies inside the internal address space: a rule for it means internal
/// addresses on purpose. A catch-all (`0.0.0.0/0`, `::/0`) written to accept anyone does not.
fn names_internal_range(net: &IpNet) -> bool {
    let min_prefix = match net {
        IpNet::V4(_) => 8,
        IpNet::V6(_) => 7,
    };
    net.prefix_len() >= min_prefix && is_internal(net.network()) && is_internal(net.broadcast())
}

/// Addresses that lead inside a network rather than to another organization's server.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // Shared address space (carrier-grade NAT), RFC 6598.
                || (a == 100 && (64..128).contains(&b))
                // Benchmarking, RFC 2544.
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let first = s[0];
            // IPv6 forms that carry an IPv4 address: judged by that address.
            let embedded = |hi: u16, lo: u16| {
                is_internal(IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(hi) << 16) | u32::from(lo),
                )))
            };
            let ipv4_compatible = s[..6] == [0; 6];
            let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || ((ipv4_compatible || nat64) && embedded(s[6], s[7]))
                // 6to4 (2002::/16) carries the IPv4 address in its next 32 bits.
                || (first == 0x2002 && embedded(s[1], s[2]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_need_a_rule_of_their_own() {
        let rules = vec![
            rule("i", Direction::Egress, Effect::Allow, "instance:peer"),
            rule("h", Direction::Egress, Effect::Allow, "*.example.org"),
            rule("lab", Direction::Egress, Effect::Allow, "10.1.0.0/16"),
            rule("no", Direction::Egress, Effect::Deny, "203.0.113.0/24"),
            rule("in", Direction::Ingress, Effect::Allow, "192.168.0.0/16"),
        ];
        let judge = |ip: &str| judge_destination(&rules, ip.parse().unwrap(), Flows::SENDS);
        assert_eq!(judge("198.51.100.7"), Destination::Allowed, "public");
        assert_eq!(judge("2001:db8::1"), Destination::Allowed, "public IPv6");
        assert_eq!(
            judge("64:ff9b::c633:6407"),
            Destination::Allowed,
            "NAT64 of a public address"
        );
        assert_eq!(judge("10.1.2.3"), Destination::Allowed, "its own rule");
        assert_eq!(judge("203.0.113.9"), Destination::Denied(&rules[3]));
        for internal in [
            "127.0.0.1",
            "10.2.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(judge(internal), Destination::Internal, "{internal}");
        }
    }

    fn rule(id: &str, direction: Direction, effect: Effect, pattern: &str) -> Rule {
        Rule {
            id: id.into(),
            direction,
            effect,
            matcher: Matcher::parse(pattern).unwrap(),
        }
    }

    fn peer<'a>(id: &'a str, ip: &str, host: &'a str) -> PeerAddress<'a> {
        PeerAddress {
            instance_id: Some(id),
            ip: ip.parse().ok(),
            host: Some(host),
        }
    }

    #[test]
    fn patterns_parse_and_render() {
        assert_eq!(
            Matcher::parse("10.1.2.3/8").unwrap().render(),
            "cidr:10.0.0.0/8"
        );
        assert_eq!(
            Matcher::parse("127.0.0.1").unwrap().render(),
            "cidr:127.0.0.1/32"
        );
        assert_eq!(Matcher::parse("::1").unwrap().render(), "cidr:::1/128");
        assert_eq!(
            Matcher::parse("GIS.Example.org").unwrap().render(),
            "host:gis.example.org"
        );
        assert_eq!(
            Matcher::parse("instance:abc").unwrap().render(),
            "instance:abc"
        );
        assert_eq!(
            Matcher::parse("*.example.org").unwrap().render(),
            "host:*.example.org"
        );
        for bad in ["", "instance:", "cidr:10.0.0.0/33", "host:bad_name", "a b"] {
            assert!(Matcher::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_deny_then_allow_then_deny_wins() {
        let p = peer("abc", "10.1.2.3", "gis.example.org");
        assert_eq!(decide(&[], Direction::Ingress, &p), Decision::NoRule);
        let rules = vec![
            rule("r1", Direction::Ingress, Effect::Allow, "10.0.0.0/8"),
            rule("r2", Direction::Egress, Effect::Allow, "*.example.org"),
        ];
        assert!(decide(&rules, Direction::Ingress, &p).is_allowed());
        assert!(decide(&rules, Direction::Egress, &p).is_allowed());
        assert_eq!(
            decide(&rules, Direction::Ingress, &peer("abc", "192.168.0.1", "x")),
            Decision::NoRule
        );
        let mut with_deny = rules.clone();
        with_deny.push(rule("r3", Direction::Ingress, Effect::Deny, "instance:abc"));
        assert_eq!(
            decide(&with_deny, Direction::Ingress, &p),
            Decision::Denied(&with_deny[2])
        );
        assert!(
            decide(
                &with_deny,
                Direction::Ingress,
                &peer("other", "10.9.9.9", "x")
            )
            .is_allowed()
        );
    }

    #[test]
    fn a_call_needs_one_direction_of_its_link_and_data_its_own() {
        let p = peer("abc", "10.1.2.3", "gis.example.org");
        let rules = vec![rule(
            "in",
            Direction::Ingress,
            Effect::Allow,
            "instance:abc",
        )];
        let verdict = judge(&rules, &p);
        assert!(verdict.permits_any(Flows::RECEIVES));
        assert!(verdict.permits_any(Flows::BOTH));
        assert!(!verdict.permits_any(Flows::SENDS), "an export needs egress");
        let refused = verdict.refused(Flows::BOTH);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0], (Direction::Egress, &Decision::NoRule));
        assert!(judge(&[], &p).refused(Flows::BOTH).len() == 2);
    }

    #[test]
    fn address_rules_count_in_the_directions_a_call_serves() {
        let rules = vec![
            rule("in", Direction::Ingress, Effect::Allow, "10.1.0.0/16"),
            rule("out-no", Direction::Egress, Effect::Deny, "10.1.2.0/24"),
        ];
        let ip = "10.1.2.3".parse().unwrap();
        // A pull (this instance receives) reaches an internal address its ingress rule names...
        assert_eq!(
            judge_destination(&rules, ip, Flows::RECEIVES),
            Destination::Allowed
        );
        // ...an egress deny for that address does not stop data coming in...
        assert_eq!(
            judge_destination(&rules, ip, Flows::BOTH),
            Destination::Allowed
        );
        // ...but stops a call that only sends.
        assert_eq!(
            judge_destination(&rules, ip, Flows::SENDS),
            Destination::Denied(&rules[1])
        );
        assert_eq!(
            judge_destination(&rules, "10.9.0.1".parse().unwrap(), Flows::BOTH),
            Destination::Internal
        );
        // "Data from anyone" is not "connect to my own network".
        let anyone = vec![
            rule("all4", Direction::Ingress, Effect::Allow, "0.0.0.0/0"),
            rule("all6", Direction::Ingress, Effect::Allow, "::/0"),
        ];
        for internal in ["127.0.0.1", "169.254.169.254", "10.1.2.3", "::1", "fd00::1"] {
            assert_eq!(
                judge_destination(&anyone, internal.parse().unwrap(), Flows::RECEIVES),
                Destination::Internal,
                "{internal}"
            );
        }
        assert_eq!(
            judge_destination(&anyone, "198.51.100.7".parse().unwrap(), Flows::RECEIVES),
            Destination::Allowed
        );
    }

    #[test]
    fn host_wildcards_match_subdomains_only() {
        let rules = vec![rule("r", Direction::Egress, Effect::Allow, "*.example.org")];
        assert!(decide(&rules, Direction::Egress, &peer("i", "", "a.example.org")).is_allowed());
        assert!(decide(&rules, Direction::Egress, &peer("i", "", "A.B.EXAMPLE.ORG")).is_allowed());
        assert!(!decide(&rules, Direction::Egress, &peer("i", "", "example.org")).is_allowed());
        assert!(!decide(&rules, Direction::Egress, &peer("i", "", "badexample.org")).is_allowed());
    }
}
