//! Two-way editing on the wire: what a copy sends its origin (its pending edits, as `edit`
//! records), what an origin sends its copies with each row of a two-way item (the row's
//! version), and the origin's checks of an edit before the store judges it.

use super::links::Inbound;
use crate::node::Node;
use crate::task::blocking;
use ferry_core::Key;
use ferry_core::schema::SchemaBuilder;
use ferry_core::twoway::{Fields, GEOMETRY, Pending};
use ferry_proto::twoway::{EditAction, RowEdit, RowVersion};
use ferry_proto::{ErrorCode, ItemId, SyncRecord};
use ferry_store::{RowTwoWay, StoreError, SyncOp};
use std::collections::BTreeMap;

/// A row's fields from its stored text: values, and the geometry as [`GEOMETRY`].
pub(crate) fn fields_of(values: &str, geometry: Option<&str>) -> Result<Fields, StoreError> {
    let mut fields: Fields = match ferry_proto::exact::from_text(values)? {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => Fields::new(),
    };
    if let Some(g) = geometry {
        fields.insert(GEOMETRY.into(), ferry_proto::exact::from_text(g)?);
    }
    Ok(fields)
}

/// The `edit` record for a row whose latest change is an edit made here to a copy of the
/// receiver's own item; `None` when the change came from the origin (nothing pending).
pub(super) fn edit_record(
    me: &str,
    origin_item: &str,
    key: &Key,
    row: Option<(&str, Option<&str>)>,
    two_way: Option<&RowTwoWay>,
) -> Result<Option<SyncRecord>, StoreError> {
    let Some(pending) = two_way.and_then(|t| t.pending.as_deref()) else {
        return Ok(None);
    };
    let pending: Pending = serde_json::from_str(pending)?;
    if pending.seq() == 0 {
        return Ok(None);
    }
    let fields = row.map(|(v, g)| fields_of(v, g)).transpose()?;
    Ok(Some(SyncRecord::Edit {
        origin_item: origin_item.to_string(),
        key: key.to_value(),
        edit: Box::new(pending.edit(me, fields.as_ref())),
    }))
}

/// The version a row of this instance's own two-way item carries to its copies: its feed
/// position here, and the `seen` map the origin keeps beside it.
pub(super) fn version_of(seq: i64, two_way: Option<&RowTwoWay>) -> Result<RowVersion, StoreError> {
    #[derive(serde::Deserialize, Default)]
    struct Seen {
        #[serde(default)]
        seen: BTreeMap<String, i64>,
    }
    let seen: Seen = match two_way.and_then(|t| t.twoway.as_deref()) {
        Some(text) => serde_json::from_str(text)?,
        None => Seen::default(),
    };
    Ok(RowVersion {
        version: seq,
        seen: seen.seen,
    })
}

pub(super) fn version_text(seq: i64, two_way: Option<&RowTwoWay>) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&version_of(seq, two_way)?)?)
}

/// An item of this instance that a channel's sender may edit, checked once per stream: its id,
/// and its schema and whether its geometries are lon/lat, for the rows edits bring.
pub(super) struct Editable {
    pub(super) id: ItemId,
    pub(super) schema: Option<SchemaBuilder>,
    pub(super) geographic: bool,
    /// In grace (the sender may no longer edit it): only edits made by then are taken.
    pub(super) until_ms: Option<i64>,
}

/// An edit that passed the checks of its own: the row it brings is still to be checked against
/// the item's schema (values as text, geometry as text).
pub(super) struct CheckedEdit {
    pub(super) key: Key,
    pub(super) edit: Box<RowEdit>,
    pub(super) row: Option<(String, Option<String>)>,
}

/// Why an edit is refused: its code and what to tell the sender's admin.
pub(super) type Refusal = (ErrorCode, String);

/// Checks that the sender may edit `origin_item` over this channel: an item of this instance
/// (not a copy), two-way, held here as a copy-able item in the channel's space, of a type the
/// channel carries both ways.
pub(super) async fn editable(
    node: &Node,
    channel: &Inbound,
    origin_item: &str,
) -> Result<Result<Editable, Refusal>, crate::error::NodeError> {
    let refused = |why: String| Ok(Err((ErrorCode::EditRefused, why)));
    let Ok(id) = origin_item.parse::<ItemId>() else {
        return refused(format!("{origin_item} is not an item id of this instance"));
    };
    let store = node.store.clone();
    let space = channel.space.clone();
    let found = blocking(move || {
        let item = match store.item(id) {
            Ok(item) => item,
            Err(StoreError::ItemNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let received = store.item_origin(id)?.is_some();
        let space = store.space(&space)?;
        Ok(Some((item, received, space.id)))
    })
    .await?;
    let Some((item, received, space_id)) = found else {
        return refused(format!("there is no item {origin_item} here"));
    };
    if received || item.space_id != space_id {
        return refused(format!(
            "item {origin_item} is not this instance's own item in the space this link shares"
        ));
    }
    if item.two_way.is_none() || item.reference {
        return refused(format!("two-way editing is off for item {origin_item}"));
    }
    let until_ms = if ferry_core::sync::carries(channel.edits_from, item.kind) {
        None
    } else {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        match channel.grace.as_ref().filter(|g| {
            ferry_core::sync::carries(g.types, item.kind)
                && now_ms.saturating_sub(g.until_ms) < MAX_GRACE_MS
        }) {
            Some(grace) => Some(grace.until_ms),
            None => {
                return refused(format!(
                    "this link does not let the sender edit {}s: it must send and receive them (a two-way workspace and a send and receive guest, or a connection that carries the type both ways)",
                    item.kind.as_str()
                ));
            }
        }
    };
    // Only an item this instance sends the editor, as a copy: one kept from it by its markings,
    // its scope or a reference is not its to edit, whatever id it names. In grace, the link
    // may carry nothing to the editor any more: the edits were made while it did.
    let sent_as_copy = sent_as_copy(node, channel, &item, until_ms.is_some()).await;
    if !sent_as_copy {
        return refused(format!(
            "item {origin_item} is not sent to the editing instance as a copy over this link"
        ));
    }
    let geographic = item
        .crs
        .as_deref()
        .is_none_or(ferry_core::geometry::is_geographic);
    Ok(Ok(Editable {
        id: item.id,
        schema: item.schema.as_ref().map(SchemaBuilder::enforce),
        geographic,
        until_ms,
    }))
}

/// How long a grace stays open at most: an editor that never completes a run (or cuts every
/// stream) cannot keep it for ever.
const MAX_GRACE_MS: i64 = 14 * 24 * 3600 * 1000;

/// Whether this instance sends `item` to the channel's sender as a copy now; `in_grace`: would
/// send it, were the link still carrying its type (its ceiling, scope and delivery as now).
async fn sent_as_copy(
    node: &Node,
    channel: &Inbound,
    item: &ferry_proto::Item,
    in_grace: bool,
) -> bool {
    match super::links::channel_to(node, &channel.sender, &channel.wire).await {
        Ok(mut back) => {
            if in_grace {
                back.scope.kinds = back.scope.kinds.union(
                    channel
                        .grace
                        .as_ref()
                        .map_or(ferry_proto::ticket::DataTypes::NONE, |g| g.types),
                );
            }
            let facts = ferry_core::sync::ItemFacts {
                kind: item.kind,
                markings: &item.markings,
                origin_instance: &node.info.instance_id,
                deleted: false,
            };
            ferry_core::sync::judge(&back.scope, facts) == ferry_core::sync::Verdict::Send
                && !back.scope.delivery.by_reference(item.kind, item.sync_as)
        }
        Err(_) => false,
    }
}

/// Checks one edit of an editable item: its editor is the sender, its key a key, its version
/// not negative, and the fields it sets are those of its row. The row itself is then checked
/// against the item's current schema (a copy may have edited against an older one).
pub(super) fn edit_op(
    sender: &str,
    key: &serde_json::Value,
    edit: RowEdit,
) -> Result<CheckedEdit, Refusal> {
    let invalid = |why: String| (ErrorCode::EditRefused, why);
    if edit.editor != sender {
        return Err(invalid(format!(
            "an edit names instance {} as its editor, but {sender} sent it",
            edit.editor
        )));
    }
    if edit.base < 0 || edit.seq <= 0 {
        return Err((
            ErrorCode::VersionInvalid,
            "an edit's version is negative".into(),
        ));
    }
    let key = Key::from_value(key).map_err(|e| invalid(e.to_string()))?;
    let mut text = None;
    if let EditAction::Put { set, row } = &edit.action {
        if set.iter().any(|(name, value)| row.get(name) != Some(value)) {
            return Err(invalid(
                "an edit sets fields its own row does not hold".into(),
            ));
        }
        let values: serde_json::Map<String, serde_json::Value> = row
            .iter()
            .filter(|(name, _)| name.as_str() != GEOMETRY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let geometry = row
            .get(GEOMETRY)
            .filter(|g| !g.is_null())
            .map(|g| g.to_string());
        text = Some((serde_json::Value::Object(values).to_string(), geometry));
    }
    Ok(CheckedEdit {
        key,
        edit: Box::new(edit),
        row: text,
    })
}

impl CheckedEdit {
    /// The store operation, once its row was given to `check` (the item's current schema and
    /// geometry rules). A row that fails them is no cause to drop the edit: it goes to the
    /// store as refused, to be acknowledged and kept as an open conflict, with the refusal.
    pub(super) fn into_op(
        self,
        item: ItemId,
        check: impl FnOnce(&Key, String, Option<String>) -> Result<(), String>,
    ) -> (SyncOp, Option<Refusal>) {
        let refusal = self.row.and_then(|(values, geometry)| {
            check(&self.key, values, geometry)
                .err()
                .map(|why| (ErrorCode::SchemaMismatch, why))
        });
        let op = match &refusal {
            None => SyncOp::Edit {
                item,
                key: self.key,
                edit: self.edit,
            },
            Some((code, why)) => SyncOp::RefusedEdit {
                item,
                key: self.key,
                edit: self.edit,
                reason: format!(
                    "{}: {why} (the item's schema changed since the copy edited)",
                    code.as_str()
                ),
            },
        };
        (op, refusal)
    }
}

/// Whether this instance may edit its copy of a two-way item now: the item's owner turned
/// two-way editing on, and a link straight to the item's origin lets this end edit it (a
/// two-way workspace where the guest sends and receives, or a connection that carries the
/// item's type both ways). A copy that came through a third instance is read-only here.
pub(crate) async fn may_edit_copy(
    node: &Node,
    item: &ferry_proto::Item,
    origin_instance: &str,
) -> Result<(), crate::error::NodeError> {
    use crate::error::NodeError;
    if item.reference {
        return Err(NodeError::new(
            ErrorCode::ItemReceived,
            format!(
                "item {} is a reference: its rows live at its origin; change them there",
                item.id
            ),
        ));
    }
    let store = node.store.clone();
    let id = item.id;
    let links = blocking(move || store.item_links(id)).await?;
    let mut link_allows = false;
    for link in links
        .iter()
        .filter(|l| l.origin_instance == origin_instance)
    {
        if let Some(link) = super::links::Link::parse(&link.link)
            && super::links::edits_allowed(node, &link, origin_instance, item.kind).await?
        {
            link_allows = true;
            break;
        }
    }
    match (link_allows, item.two_way.is_some()) {
        (true, true) => Ok(()),
        (true, false) => Err(NodeError::new(
            ErrorCode::TwoWayOff,
            format!(
                "item {} is a copy whose owner has not turned two-way editing on; change it at its origin, or ask its owner to run `ferry item update ITEM --two-way on`",
                item.id
            ),
        )),
        (false, true) => Err(NodeError::new(
            ErrorCode::EditNotAllowed,
            format!(
                "item {} is a two-way copy, but no link of this instance to its origin lets it edit now: a collaboration guest needs send and receive in a two-way workspace, a peer connection must carry {}s both ways, and a copy relayed by a third instance stays read-only",
                item.id,
                item.kind.as_str()
            ),
        )),
        (false, false) => Err(NodeError::new(
            ErrorCode::ItemReceived,
            format!(
                "item {} is a copy received from instance {origin_instance}; change it at its origin",
                item.id
            ),
        )),
    }
}
