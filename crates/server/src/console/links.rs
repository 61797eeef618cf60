//! How the console names a space's links: badges on spaces, and the links a received item
//! came by.

use ferry_proto::{Space, SpaceLink};
use maud::{Markup, html};

/// A badge for each link of a space: what it is linked to, this side's role and mode.
pub(crate) fn link_badges(links: &[SpaceLink]) -> Markup {
    html! {
        @for link in links {
            span.badge.link data-kind=(link.kind) title={ (link.role) ", " (link.mode) } {
                (if link.kind == "peer" { "Peer: " } else { "Collaboration: " }) (link.name)
                " · layers as " (link.share)
            }
            " "
        }
    }
}

/// The links a received item came by, named as the space's badges name them.
pub(crate) fn via(links: &[String], space: Option<&Space>) -> String {
    links
        .iter()
        .map(|key| {
            space
                .and_then(|s| s.links.iter().find(|l| &l.link == key))
                .map_or_else(
                    || key.clone(),
                    |l| {
                        format!(
                            "{} {}",
                            if l.kind == "peer" {
                                "peer"
                            } else {
                                "collaboration"
                            },
                            l.name
                        )
                    },
                )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
