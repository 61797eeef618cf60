//! References: received items whose rows stay at their origin. The receiver keeps the metadata;
//! a read of the rows goes to the instance that sent the item, signed, over a link that brought
//! it. That instance checks, at read time, that the caller may still see the item (the link
//! carries data to the caller, the item is in the link's space and scope) and answers from its
//! own store, or, if it holds a reference too (a collaboration host relaying a guest's layer),
//! from its own origin in turn.

use super::links::{Link, Outbound};
use crate::error::{NodeError, NodeResult};
use crate::federation::{self, FederationError, SignedByPeer, json_body};
use crate::node::Node;
use crate::query::QueryPairs;
use crate::task::blocking;
use ferry_core::geometry::BBox;
use ferry_core::policy::Flows;
use ferry_core::schema::coerce_text;
use ferry_core::{CoreError, Key};
use ferry_proto::{ErrorCode, Item, ReferenceRows, ReferenceRowsRequest};
use ferry_proto::{ItemId, ItemKind, RowPage};
use ferry_store::RowQuery;
use ferry_store::{Store, StoreError};

/// How many instances a read may pass through (a host relaying a guest's layer is one).
const MAX_HOPS: usize = 4;

/// A page of a referenced item's rows, read from where it came from. `query` is the rows
/// query string, passed on as it is; `via` the instances the read already passed through.
///
/// The instances that sent the item are asked, its origin first. A refusal by the origin is
/// final (it decides who may read); a read never goes back through an instance it passed.
pub async fn read_rows(
    node: &Node,
    item: &Item,
    query: String,
    mut via: Vec<String>,
) -> NodeResult<ReferenceRows> {
    if via.len() >= MAX_HOPS {
        return Err(unavailable(item, "it passed through too many instances"));
    }
    via.push(node.info.instance_id.clone());
    let store = node.store.clone();
    let id = item.id;
    let links = blocking(move || store.item_links(id)).await?;
    let mut failures = Vec::new();
    for arrival in links {
        let Some(link) = Link::parse(&arrival.link) else {
            continue;
        };
        let mut channels = match super::links::inbound(node, &link).await {
            Ok((_, channels)) => channels,
            Err(e) => {
                failures.push(e.0.message);
                continue;
            }
        };
        channels.retain(|c| !via.contains(&c.sender.instance_id));
        channels.sort_by_key(|c| c.sender.instance_id != arrival.origin_instance);
        for channel in channels {
            let request = ReferenceRowsRequest {
                link: channel.wire.clone(),
                origin_instance: arrival.origin_instance.clone(),
                origin_item: arrival.origin_item.clone(),
                query: query.clone(),
                via: via.clone(),
            };
            let answer: Result<ReferenceRows, FederationError> = node
                .federation
                .call_bounded(
                    crate::federation::Callee::of(&channel.sender, Flows::RECEIVES),
                    reqwest::Method::POST,
                    federation::SYNC_ROWS_PATH,
                    &request,
                    ROWS_ANSWER_BYTES,
                )
                .await;
            match answer {
                Ok(mut answer) => {
                    // As this instance's copy of the item would be marked after its next sync.
                    for m in &channel.mark {
                        if !answer.markings.contains(m) {
                            answer.markings.push(m.clone());
                        }
                    }
                    return Ok(answer);
                }
                Err(e @ FederationError::Refused { .. })
                    if channel.sender.instance_id == arrival.origin_instance =>
                {
                    return Err(unavailable(item, &cause(e)));
                }
                Err(e) => failures.push(cause(e)),
            }
        }
    }
    let why = if failures.is_empty() {
        "no link that brought it carries data now".to_string()
    } else {
        failures.join("; ")
    };
    Err(unavailable(item, &why))
}

/// Why a read through another instance failed, said once: a relay's own "reference
/// unavailable" is unwrapped to the cause it carries.
fn cause(e: FederationError) -> String {
    match e {
        FederationError::Refused { error, .. } if error.code == ErrorCode::ReferenceUnavailable => {
            match error.message.split_once(" could not be read now (") {
                Some((_, rest)) => rest.strip_suffix(')').unwrap_or(rest).to_string(),
                None => error.message,
            }
        }
        other => NodeError::from(other).0.message,
    }
}

/// The largest page of rows read from another instance for a reference (a page holds at most
/// 10,000 rows).
const ROWS_ANSWER_BYTES: usize = 32 << 20;

fn unavailable(item: &Item, why: &str) -> NodeError {
    NodeError::new(
        ErrorCode::ReferenceUnavailable,
        format!(
            "item {} is a reference: its rows live at its origin and could not be read now ({why})",
            item.id
        ),
    )
}

/// `POST /federation/v1/sync/rows`: rows of an item the caller holds by reference, if it may
/// still see the item.
pub async fn rows(node: &Node, signed: SignedByPeer) -> NodeResult<ReferenceRows> {
    let request: ReferenceRowsRequest = json_body(&signed.body)?;
    if request.via.contains(&node.info.instance_id) {
        return Err(NodeError::new(
            ErrorCode::ReferenceUnavailable,
            "this read already passed through this instance",
        ));
    }
    let outbound = super::links::outbound(node, &signed, &request.link).await?;
    let not_shared = || {
        NodeError::new(
            ErrorCode::ItemNotFound,
            format!(
                "item {} is not shared with the caller over this link (any more)",
                request.origin_item
            ),
        )
    };
    let (store, me) = (node.store.clone(), node.info.instance_id.clone());
    let (origin_instance, origin_item, scope) = (
        request.origin_instance.clone(),
        request.origin_item.clone(),
        outbound.clone(),
    );
    let item =
        blocking(move || visible_item(store.as_ref(), &scope, &me, &origin_instance, &origin_item))
            .await?
            .ok_or_else(not_shared)?;
    // Rows of a copy still arriving here would be part of it.
    super::sender::refuse_if_arriving(node, item.id, &request.origin_item).await?;
    let answer = row_page(node, item.id, request.query, request.via).await?;
    if item.reference {
        // Relayed: judged again with the markings the item has at its origin now, not the
        // ones this instance saw at its last sync.
        let (store, me) = (node.store.clone(), node.info.instance_id.clone());
        let current = Item {
            markings: answer.markings.clone(),
            ..item
        };
        let still =
            blocking(move || super::sender::in_scope(store.as_ref(), &outbound, &me, &current))
                .await?;
        if !still {
            return Err(not_shared());
        }
    }
    Ok(answer)
}

/// The local item an origin identity names, if it is in the channel's space and scope now.
fn visible_item(
    store: &dyn Store,
    outbound: &Outbound,
    me: &str,
    origin_instance: &str,
    origin_item: &str,
) -> Result<Option<Item>, StoreError> {
    let Some(item) =
        super::sender::item_in_space(store, outbound, me, origin_instance, origin_item)?
    else {
        return Ok(None);
    };
    Ok(super::sender::in_scope(store, outbound, me, &item)?.then_some(item))
}

/// A page of rows is this many unless the caller asks for another number...
const DEFAULT_ROWS: usize = 100;
/// ...and never more than this.
const MAX_ROWS: usize = 10_000;

fn encode_cursor(key: &serde_json::Value) -> String {
    data_encoding::BASE64URL_NOPAD.encode(key.to_string().as_bytes())
}

fn decode_cursor(cursor: &str) -> NodeResult<Key> {
    data_encoding::BASE64URL_NOPAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| Key::from_value(&v).ok())
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::InvalidCursor,
                "the 'after' cursor was not produced by this server; start again without it",
            )
        })
}

/// A page of an item's rows: from this instance's store, or from the item's origin when it is
/// a reference.
/// A page of an item's rows, with the item's markings as they stand where the rows came from.
pub(crate) async fn row_page(
    node: &Node,
    id: ItemId,
    query: String,
    via: Vec<String>,
) -> NodeResult<ReferenceRows> {
    let store = node.store.clone();
    let item = blocking(move || store.item(id)).await?;
    // Checked here first, also for a reference: a bad query is the caller's mistake, not the
    // origin's.
    let q = QueryPairs::parse(Some(&query));
    let limit = q
        .number::<usize>("limit")?
        .unwrap_or(DEFAULT_ROWS)
        .clamp(1, MAX_ROWS);
    let after = q.get("after").map(decode_cursor).transpose()?;
    let bbox = q.get("bbox").map(BBox::parse).transpose()?;
    if bbox.is_some() && item.kind != ItemKind::FeatureLayer {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            "bbox filters apply to feature layers only",
        ));
    }
    let filters = q.all("where");
    if filters.len() > MAX_FILTERS {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            format!(
                "{} 'where' filters given; at most {MAX_FILTERS} are taken (each narrows the page further)",
                filters.len()
            ),
        ));
    }
    let equals = filters
        .iter()
        .map(|f| equality_filter(&item, f))
        .collect::<Result<_, CoreError>>()?;
    if item.reference {
        return crate::sync::reference::read_rows(node, &item, query, via).await;
    }
    let store = node.store.clone();
    let page = blocking(move || {
        store.query_rows(
            id,
            &RowQuery {
                after,
                limit,
                bbox,
                equals,
            },
        )
    })
    .await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|r| encode_cursor(&r.key)))
        .flatten();
    Ok(ReferenceRows {
        page: RowPage { rows: page, next },
        markings: item.markings,
    })
}

/// The most `where` filters one query takes: each becomes a condition of its own, and the
/// database refuses statements past a few hundred of them.
const MAX_FILTERS: usize = 64;

/// `field:value` with the value typed by the schema.
fn equality_filter(item: &Item, filter: &str) -> Result<(String, serde_json::Value), CoreError> {
    let (field, text) = filter.split_once(':').ok_or_else(|| {
        CoreError::InvalidRequest(format!("filter '{filter}' is not valid: write field:value"))
    })?;
    let field_type = item
        .schema
        .as_ref()
        .and_then(|s| s.field(field))
        .map(|f| f.field_type)
        .ok_or_else(|| CoreError::InvalidRequest(format!("the item has no field '{field}'")))?;
    let value = coerce_text(field_type, text)
        .map_err(|m| CoreError::InvalidRequest(format!("filter on '{field}': {m}")))?;
    Ok((field.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay that could not read from the origin answers `reference_unavailable` with the
    /// origin's cause inside; the reader's message gives that cause once.
    #[test]
    fn a_relayed_refusal_states_its_cause_once() {
        let at_origin = "the peer refused: item o is not shared with the caller over this link (any more) [item_not_found]";
        let relayed = FederationError::Refused {
            status: 424,
            error: ferry_proto::ApiError {
                code: ErrorCode::ReferenceUnavailable,
                message: format!(
                    "item h is a reference: its rows live at its origin and could not be read now ({at_origin})"
                ),
                details: None,
            },
        };
        assert_eq!(cause(relayed), at_origin);
        let other = FederationError::Refused {
            status: 404,
            error: ferry_proto::ApiError {
                code: ErrorCode::ItemNotFound,
                message: "gone".into(),
                details: None,
            },
        };
        assert!(cause(other).contains("gone [item_not_found]"));
    }
}
