//! Administration commands: each calls the REST API and prints a table or JSON.

use crate::client::{Client, segment};
use crate::output::{Output, fields, progress, table};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ferry_proto::{
    ChangePage, CreatedToken, EditBatch, EditResults, InstanceInfo, Item, ItemPatch, LoginLink,
    NewLoginLink, NewSpace, NewToken, Role, RowPage, Space, SpacePatch, SyncAs, TokenInfo,
};
use futures_util::TryStreamExt;
use reqwest::Method;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Subcommand, Debug)]
pub(crate) enum InstanceCmd {
    /// Id, title, URL and key fingerprint.
    Show,
    /// Wait until the instance answers: for scripts that start `ferry serve` in the background.
    Wait {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// Polls until the instance answers. The endpoint file is read again at each try, since a
/// starting instance writes it only once it listens.
async fn wait_for_instance(
    connect: impl Fn() -> Result<Client>,
    out: Output,
    timeout_secs: u64,
) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
    loop {
        let answer = match connect() {
            Ok(client) => client.get::<InstanceInfo>("/api/v1/instance").await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(info) => {
                return out.done(
                    &info,
                    &format!("'{}' answers at {}.", info.title, info.public_url),
                );
            }
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "no instance answered within {timeout_secs} s; is `ferry serve` running, and is its log free of errors?"
                )));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// `connect` is called when the command needs the instance: `wait` calls it until it answers.
pub(crate) async fn instance(
    connect: impl Fn() -> Result<Client>,
    out: Output,
    cmd: InstanceCmd,
) -> Result<()> {
    match cmd {
        InstanceCmd::Wait { timeout } => wait_for_instance(connect, out, timeout).await,
        InstanceCmd::Show => {
            let info: InstanceInfo = connect()?.get("/api/v1/instance").await?;
            out.show(&info, |i| {
                fields(&[
                    ("id", i.id.clone()),
                    ("title", i.title.clone()),
                    ("public url", i.public_url.clone()),
                    ("fingerprint", i.fingerprint.clone()),
                    ("data epoch", i.epoch.clone()),
                    ("last change", i.last_seq.to_string()),
                    ("version", i.software_version.clone()),
                ])
            })
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// Create a token for a named user; prints the secret once.
    Create {
        /// Who holds the token (a person or a script): shown in `token list` and the audit log.
        name: String,
        /// viewer (read), editor (edit item data) or admin (everything).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token at once. The last admin token that is not revoked cannot be.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: String,
    },
    /// A one-time console sign-in link that stands for the newest live token with this name:
    /// open it in a browser within 15 minutes; it works once.
    LoginLink {
        /// The token's name, as `token list` shows it (e.g. admin).
        name: String,
    },
    /// Create a new admin token offline, straight in the data directory (for its owner, when no
    /// admin token works); it is written to the directory's admin-token file. Works whether or
    /// not the instance is running.
    Recover,
}

/// `ferry token recover`: needs the data directory, not the API.
pub(crate) fn recover_token(out: Output, data_dir: Option<std::path::PathBuf>) -> Result<()> {
    let dir = data_dir.unwrap_or_else(crate::client::default_data_dir);
    let actor = format!(
        "local:{}",
        std::env::var("USER").unwrap_or_else(|_| "owner".into())
    );
    let (info, path) = ferry_server::instance::recover_admin_token(&dir, &actor)?;
    out.done(
        &info,
        &format!(
            "Created admin token {} ('{}'); its secret is in {}.",
            info.id,
            info.name,
            path.display()
        ),
    )
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role '{s}': use viewer, editor or admin"))
}

fn token_table(tokens: &[TokenInfo]) -> comfy_table::Table {
    let mut t = table(&["id", "name", "role", "created", "revoked"]);
    for k in tokens {
        t.add_row(vec![
            k.id.to_string(),
            k.name.clone(),
            k.role.as_str().to_string(),
            k.created_at.clone(),
            k.revoked_at.clone().unwrap_or_default(),
        ]);
    }
    t
}

pub(crate) async fn token(client: &Client, out: Output, cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Create { name, role } => {
            let created: CreatedToken = client
                .call(Method::POST, "/api/v1/tokens", &NewToken { name, role })
                .await?;
            let message = format!(
                "Token for '{}' ({}), shown only now:\n{}",
                created.info.name,
                created.info.role.as_str(),
                created.token
            );
            out.done(&created, &message)
        }
        TokenCmd::List => {
            let tokens: Vec<TokenInfo> = client.get("/api/v1/tokens").await?;
            out.show(&tokens, |t| token_table(t))
        }
        TokenCmd::Revoke { id } => {
            let info: TokenInfo = client
                .json(client.request(Method::DELETE, &format!("/api/v1/tokens/{}", segment(&id))))
                .await?;
            out.done(
                &info,
                &format!("Revoked token {} ('{}').", info.id, info.name),
            )
        }
        TokenCmd::LoginLink { name } => {
            let link: LoginLink = client
                .call(
                    Method::POST,
                    "/api/v1/tokens/login-link",
                    &NewLoginLink { name },
                )
                .await?;
            out.done(
                &link,
                &format!(
                    "{}\nOpen it in a browser within 15 minutes; it signs in once.",
                    link.url
                ),
            )
        }
        TokenCmd::Recover => recover_token(out, None),
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum SpaceCmd {
    /// Create a space.
    Create {
        /// The space's name: unique on this instance.
        name: String,
        /// What the space holds, for people.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List spaces.
    List,
    /// Show one space (by name or id).
    Show {
        /// The space, by name or id.
        space: String,
    },
    /// Rename or describe a space.
    Update {
        /// The space, by name or id.
        space: String,
        /// A new name for the space.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a space; refuses one that holds items unless --force.
    Delete {
        /// The space, by name or id.
        space: String,
        /// Delete the space's items too.
        #[arg(long)]
        force: bool,
    },
}

fn space_table(spaces: &[Space]) -> comfy_table::Table {
    let mut t = table(&["name", "items", "linked to", "description", "id"]);
    for s in spaces {
        t.add_row(vec![
            s.name.clone(),
            s.item_count.to_string(),
            links_of(s),
            s.description.clone(),
            s.id.to_string(),
        ]);
    }
    t
}

/// A space's links, one a line: `peer Harbor (acceptor, active, copies)`.
fn links_of(space: &Space) -> String {
    space
        .links
        .iter()
        .map(|l| {
            format!(
                "{} {} ({}, {}, {})",
                l.kind, l.name, l.role, l.mode, l.share
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) async fn space(client: &Client, out: Output, cmd: SpaceCmd) -> Result<()> {
    match cmd {
        SpaceCmd::Create { name, description } => {
            let s: Space = client
                .call(
                    Method::POST,
                    "/api/v1/spaces",
                    &NewSpace { name, description },
                )
                .await?;
            out.done(&s, &format!("Created space '{}' ({}).", s.name, s.id))
        }
        SpaceCmd::List => {
            let spaces: Vec<Space> = client.get("/api/v1/spaces").await?;
            out.show(&spaces, |s| space_table(s))
        }
        SpaceCmd::Show { space } => {
            let s: Space = client
                .get(&format!("/api/v1/spaces/{}", segment(&space)))
                .await?;
            out.show(&s, |s| space_table(std::slice::from_ref(s)))
        }
        SpaceCmd::Update {
            space,
            name,
            description,
        } => {
            let patch = SpacePatch { name, description };
            let s: Space = client
                .call(
                    Method::PATCH,
                    &format!("/api/v1/spaces/{}", segment(&space)),
                    &patch,
                )
                .await?;
            out.done(&s, &format!("Updated space '{}'.", s.name))
        }
        SpaceCmd::Delete { space, force } => {
            let path = format!("/api/v1/spaces/{}?force={force}", segment(&space));
            client.send(client.request(Method::DELETE, &path)).await?;
            out.done(
                &serde_json::json!({"deleted": space}),
                &format!("Deleted space '{space}'."),
            )
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum ItemCmd {
    /// Import a file: GeoJSON → feature layer, CSV/NDJSON → dataset, anything else → file.
    Import(ImportArgs),
    /// List items, optionally of one space.
    List {
        /// Only this space's items (name or id); default: every space.
        #[arg(long)]
        space: Option<String>,
    },
    /// Show an item's metadata and schema.
    Show {
        /// The item's id (`item list` shows it).
        id: String,
    },
    /// Export an item: GeoJSON (layers), CSV or NDJSON (datasets), original bytes (files).
    Export {
        /// The item's id (`item list` shows it).
        id: String,
        /// geojson, csv or ndjson (default: the item's own).
        #[arg(long)]
        format: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Apply a batch of edits from a JSON file, all or nothing.
    ///
    /// The file: {"adds": [ROW, ...], "updates": [ROW, ...], "deletes": [KEY, ...]}
    ///
    /// A dataset's ROW is {"values": {...}} with its primary key among the values; an update
    /// changes only the values it names. For a dataset keyed by "imo":
    ///   {"adds": [{"values": {"imo": 9321483, "name": "Nordic Star"}}],
    ///    "updates": [{"values": {"imo": 9187654, "berth": "B2"}}],
    ///    "deletes": [9012345]}
    ///
    /// A layer's ROW is {"key": ID, "values": {...}, "geometry": GEOJSON}; an add without a key
    /// gets one; an update without "geometry" keeps it, with "geometry": null clears it:
    ///   {"adds": [{"values": {"name": "Buoy 7"}, "geometry": {"type": "Point", "coordinates": [4.4, 51.9]}}],
    ///    "updates": [{"key": 12, "values": {"status": "closed"}}],
    ///    "deletes": [3]}
    #[command(verbatim_doc_comment)]
    Edit {
        /// The item's id (`item list` shows it).
        id: String,
        /// The batch, as JSON ('-' for standard input).
        #[arg(long)]
        file: PathBuf,
    },
    /// Change an item's title, description, tags or markings, or move it to another space.
    Update {
        /// The item's id (`item list` shows it).
        id: String,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// Replace the tags (repeat for several).
        #[arg(long = "tag")]
        tags: Option<Vec<String>>,
        /// Replace the markings (repeat for several).
        #[arg(long = "marking")]
        markings: Option<Vec<String>>,
        /// Remove every marking.
        #[arg(long, conflicts_with = "markings")]
        clear_markings: bool,
        /// How links send the item: `link` (as the link's config says), `copy`, or `reference`
        /// (receivers read rows from here on demand; datasets and layers only).
        #[arg(long, value_parser = ["link", "copy", "reference"])]
        sync_as: Option<String>,
        /// Move the item to this space (name or id; admins only): links of the space it leaves
        /// retract it from their receivers, links of the new one send it.
        #[arg(long)]
        space: Option<String>,
        /// Two-way editing (`on` or `off`; the item's own instance only): copies on links that
        /// send and receive its type may edit it, and their edits come back here.
        #[arg(long, value_parser = ["on", "off"])]
        two_way: Option<String>,
        /// How concurrent edits to the same field are settled: `origin_wins` (the default),
        /// `latest_wins` (the later edit by hybrid logical clock) or `manual` (this instance's
        /// value stays until an admin resolves the conflict). Turns two-way editing on.
        #[arg(long, value_parser = ["origin_wins", "latest_wins", "manual"])]
        conflict_policy: Option<String>,
        #[command(flatten)]
        schema: SchemaChangeArgs,
    },
    /// Take the schema change the origin of a copy made (removed or retyped fields): until then
    /// the copy fails in every run with `schema_changed` and keeps its rows as they were; at
    /// the next run it is copied whole under the new schema.
    AcceptSchema {
        /// The copy's id (`item list` shows it).
        id: String,
    },
    /// Delete an item.
    Delete {
        /// The item's id (`item list` shows it).
        id: String,
    },
    /// Query rows or features, a page at a time.
    Rows(RowsArgs),
}

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// The file to import.
    file: PathBuf,
    /// The space the item goes in (name or id).
    #[arg(long)]
    space: String,
    /// dataset, feature_layer or file (default: from the file's extension: .geojson,
    /// .geojsonl/.geojsons (GeoJSON text sequences), .csv, .ndjson/.jsonl; anything else is a
    /// file). A layer from a file of another extension is read as GeoJSON or a text sequence.
    #[arg(long)]
    kind: Option<String>,
    /// The item's title (default: the file's name).
    #[arg(long)]
    title: Option<String>,
    /// What the item holds, for people.
    #[arg(long)]
    description: Option<String>,
    /// A tag (repeat for several).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Security label (repeat for several).
    #[arg(long = "marking")]
    markings: Vec<String>,
    /// Datasets: the primary-key column (default `id`, else a generated `_id`).
    #[arg(long)]
    primary_key: Option<String>,
    /// A JSON file holding the schema, instead of inferring it.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Layers: CRS of the coordinates (default EPSG:4326).
    #[arg(long)]
    crs: Option<String>,
    /// CSV: the field separator, one character or `tab` (default: told from the header line,
    /// `,`, `;` or tab).
    #[arg(long)]
    delimiter: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RowsArgs {
    /// The item's id (`item list` shows it).
    id: String,
    /// Rows per page (at most 10,000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Cursor from a previous page.
    #[arg(long)]
    after: Option<String>,
    /// Layers: min_x,min_y,max_x,max_y.
    #[arg(long, allow_hyphen_values = true)]
    bbox: Option<String>,
    /// Equality filter field:value (repeat for several).
    #[arg(long = "where")]
    filters: Vec<String>,
}

/// Items as a table; `spaces` names their spaces (id to name).
fn item_table(
    items: &[Item],
    spaces: &std::collections::HashMap<String, String>,
) -> comfy_table::Table {
    let mut t = table(&[
        "id", "kind", "title", "space", "rows", "data", "markings", "version", "updated",
    ]);
    for i in items {
        let rows = match &i.file {
            Some(f) => format!("{} bytes", f.size),
            None => i.row_count.to_string(),
        };
        // A stale copy says so where people look first; `item show` says why.
        let title = match &i.stale {
            Some(_) => format!("{} (STALE)", i.title),
            None => i.title.clone(),
        };
        let space = spaces
            .get(&i.space_id.to_string())
            .cloned()
            .unwrap_or_else(|| i.space_id.to_string());
        t.add_row(vec![
            i.id.to_string(),
            i.kind.as_str().to_string(),
            title,
            space,
            rows,
            holding(i).to_string(),
            i.markings.join(","),
            i.version.to_string(),
            i.updated_at.clone(),
        ]);
    }
    t
}

/// Where an item's data is: here, or at its origin (a reference).
fn holding(item: &Item) -> &'static str {
    match item.reference {
        true => "reference",
        false => "here",
    }
}

/// Space ids to names, for tables.
async fn space_names(client: &Client) -> Result<std::collections::HashMap<String, String>> {
    let spaces: Vec<Space> = client.get("/api/v1/spaces").await?;
    Ok(spaces
        .into_iter()
        .map(|s| (s.id.to_string(), s.name))
        .collect())
}

fn item_detail(i: &Item, spaces: &std::collections::HashMap<String, String>) -> comfy_table::Table {
    let mut rows = vec![
        ("id", i.id.to_string()),
        ("kind", i.kind.as_str().to_string()),
        ("title", i.title.clone()),
        ("description", i.description.clone()),
        (
            "space",
            match spaces.get(&i.space_id.to_string()) {
                Some(name) => format!("{name} ({})", i.space_id),
                None => i.space_id.to_string(),
            },
        ),
        ("owner", i.owner.clone()),
        ("tags", i.tags.join(", ")),
        ("markings", i.markings.join(", ")),
        ("version", i.version.to_string()),
        ("change seq", i.seq.to_string()),
        ("created", i.created_at.clone()),
        ("updated", i.updated_at.clone()),
    ];
    if i.kind.has_rows() {
        rows.push(("rows", i.row_count.to_string()));
        rows.push(("sync as", i.sync_as.as_str().to_string()));
    }
    if i.reference {
        rows.push((
            "reference",
            "yes: rows are read from the item's origin on demand".to_string(),
        ));
    }
    if let Some(why) = &i.stale {
        rows.push((
            "STALE",
            format!(
                "its latest version was refused here, so its rows are those of the version last accepted: {why}"
            ),
        ));
    }
    if let Some(g) = i.geometry_type {
        rows.push(("geometry", g.as_str().to_string()));
    }
    if let Some(c) = &i.crs {
        rows.push(("crs", c.clone()));
    }
    if let Some(s) = &i.schema {
        let described: Vec<String> = s
            .fields
            .iter()
            .map(|f| {
                let pk = if s.primary_key.as_deref() == Some(&f.name) {
                    " (key)"
                } else {
                    ""
                };
                format!("{}: {}{pk}", f.name, f.field_type.as_str())
            })
            .collect();
        rows.push(("schema", described.join("\n")));
    }
    if let Some(f) = &i.file {
        rows.push((
            "size",
            format!("{} bytes in {} chunks", f.size, f.chunk_count),
        ));
        rows.push(("media type", f.media_type.clone()));
        rows.push(("blake3", f.content_hash.clone()));
    }
    fields(&rows)
}

/// Content type for an import, and why: from `--kind`, else the file's extension, else (for
/// `.json` and a layer asked for by `--kind`) from its content.
fn content_type(path: &Path, kind: Option<&str>) -> (&'static str, &'static str) {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match (kind, ext.as_str()) {
        (Some("file"), _) => ("application/octet-stream", "--kind file"),
        (_, "geojson") => ("application/geo+json", "its .geojson extension"),
        (_, "geojsonl" | "geojsons" | "geojsonseq") => (
            "application/geo+json-seq",
            "its GeoJSON text sequence extension",
        ),
        (_, "csv") => ("text/csv", "its .csv extension"),
        (_, "ndjson" | "jsonl") => ("application/x-ndjson", "its NDJSON extension"),
        (Some("feature_layer"), _) if first_line_is_a_feature(path) => (
            "application/geo+json-seq",
            "--kind feature_layer (one feature per line)",
        ),
        (Some("feature_layer"), _) => ("application/geo+json", "--kind feature_layer"),
        (None, "json") if holds_geojson(path) => (
            "application/geo+json",
            "its content, GeoJSON (--kind overrides)",
        ),
        (None, "json") => (
            "application/octet-stream",
            "its content, JSON that is not GeoJSON (--kind dataset or feature_layer imports rows)",
        ),
        (Some(_), _) => ("application/octet-stream", "--kind"),
        (None, _) => (
            "application/octet-stream",
            "its extension, which names no layer or table format (--kind imports rows)",
        ),
    }
}

/// Whether a JSON file is GeoJSON: its first object says `"type": "FeatureCollection"` (or
/// `"Feature"`) within its first 64 KiB.
fn holds_geojson(path: &Path) -> bool {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = String::new();
    if file.take(64 << 10).read_to_string(&mut head).is_err() && head.is_empty() {
        return false;
    }
    let compact: String = head.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with('{')
        && (compact.contains(r#""type":"FeatureCollection""#)
            || compact.contains(r#""type":"Feature""#))
}

/// Whether a file starts with one GeoJSON Feature on its own line: a text sequence, not a
/// FeatureCollection.
fn first_line_is_a_feature(path: &Path) -> bool {
    use std::io::{BufRead, Read};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(file).take(16 << 20);
    if reader.read_line(&mut line).is_err() {
        return false;
    }
    serde_json::from_str::<serde_json::Value>(line.trim_start_matches('\u{1e}'))
        .is_ok_and(|v| v["type"] == "Feature")
}

async fn import(client: &Client, out: Output, args: ImportArgs) -> Result<()> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().await?.len();
    let file_name = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload")
        .to_string();
    let mut query: Vec<(&str, String)> = vec![
        ("space", args.space.clone()),
        ("file_name", file_name.clone()),
    ];
    query.push((
        "title",
        args.title.clone().unwrap_or_else(|| file_name.clone()),
    ));
    let optional = [
        ("kind", &args.kind),
        ("description", &args.description),
        ("primary_key", &args.primary_key),
        ("crs", &args.crs),
        ("delimiter", &args.delimiter),
    ];
    query.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k, v))),
    );
    query.extend(args.tags.iter().map(|t| ("tag", t.clone())));
    query.extend(args.markings.iter().map(|m| ("marking", m.clone())));
    if let Some(schema) = &args.schema {
        let text = std::fs::read_to_string(schema)
            .with_context(|| format!("cannot read {}", schema.display()))?;
        query.push(("schema", text));
    }
    let (media, why) = content_type(&args.file, args.kind.as_deref());
    let bar = progress(Some(size), "uploading");
    let counter = bar.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
        .inspect_ok(move |chunk| counter.inc(chunk.len() as u64));
    let request = client
        .request(Method::POST, "/api/v1/items/import")
        .query(&query)
        .header(reqwest::header::CONTENT_TYPE, media)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(stream));
    let result: Result<Item> = client.json(request).await;
    bar.finish_and_clear();
    let item = result?;
    let what = match &item.file {
        Some(f) => format!("{} bytes", f.size),
        None => format!("{} rows", item.row_count),
    };
    out.done(
        &item,
        &format!(
            "Imported {} as {} '{}' ({what}), id {}; its kind from {why}.",
            args.file.display(),
            item.kind.as_str(),
            item.title,
            item.id
        ),
    )
}

async fn export(
    client: &Client,
    id: &str,
    format: Option<String>,
    output: Option<PathBuf>,
) -> Result<()> {
    let mut request = client.request(
        Method::GET,
        &format!("/api/v1/items/{}/export", segment(id)),
    );
    if let Some(f) = format {
        request = request.query(&[("format", f)]);
    }
    let response = client.send(request).await?;
    let bar = progress(response.content_length(), "downloading");
    let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin> = match &output {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    let mut body = response.bytes_stream();
    while let Some(chunk) = body
        .try_next()
        .await
        .context("the export was cut off; run it again")?
    {
        sink.write_all(&chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    sink.flush().await?;
    bar.finish_and_clear();
    if let Some(path) = output {
        eprintln!("Exported to {}.", path.display());
    }
    Ok(())
}

async fn edit(client: &Client, out: Output, id: &str, file: &Path) -> Result<()> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let batch: EditBatch =
        serde_json::from_str(&text).context("the edit file is not a valid batch")?;
    let results: EditResults = client
        .call(
            Method::POST,
            &format!("/api/v1/items/{}/edits", segment(id)),
            &batch,
        )
        .await?;
    out.show(&results, |r| {
        let mut t = table(&["edit", "#", "key", "result"]);
        for e in &r.results {
            let key = e.key.as_ref().map(|k| k.to_string()).unwrap_or_default();
            t.add_row(vec![
                format!("{:?}", e.op).to_lowercase(),
                e.index.to_string(),
                key,
                "ok".into(),
            ]);
        }
        t
    })
}

async fn rows(client: &Client, out: Output, args: RowsArgs) -> Result<()> {
    let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    query.extend(args.after.map(|a| ("after", a)));
    query.extend(args.bbox.map(|b| ("bbox", b)));
    query.extend(args.filters.into_iter().map(|f| ("where", f)));
    let page: RowPage = client
        .json(
            client
                .request(
                    Method::GET,
                    &format!("/api/v1/items/{}/rows", segment(&args.id)),
                )
                .query(&query),
        )
        .await?;
    out.show(&page, rows_table)
}

/// A page of rows as people read attribute tables: the key, a column per attribute (in the
/// order they first appear), and the geometry's type with its first position.
fn rows_table(page: &RowPage) -> comfy_table::Table {
    let mut columns: Vec<String> = Vec::new();
    for row in &page.rows {
        for name in row.values.as_object().into_iter().flat_map(|m| m.keys()) {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        }
    }
    let has_geometry = page.rows.iter().any(|r| r.geometry.is_some());
    let mut header: Vec<&str> = vec!["key"];
    header.extend(columns.iter().map(String::as_str));
    if has_geometry {
        header.push("geometry");
    }
    let mut t = table(&header);
    for row in &page.rows {
        let mut cells = vec![cell_text(&row.key)];
        for c in &columns {
            cells.push(row.values.get(c).map(cell_text).unwrap_or_default());
        }
        if has_geometry {
            cells.push(
                row.geometry
                    .as_ref()
                    .map(geometry_summary)
                    .unwrap_or_default(),
            );
        }
        t.add_row(cells);
    }
    if let Some(next) = &page.next {
        t.add_row(vec![format!("more: --after {next}")]);
    }
    t
}

/// A value in a cell: text as it is, nothing for null, anything else as JSON.
fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A geometry in a cell: its type and first position (`Point 4.48 51.92`).
fn geometry_summary(geometry: &serde_json::Value) -> String {
    let kind = geometry["type"].as_str().unwrap_or("?");
    let mut first = &geometry["coordinates"];
    while let Some(inner) = first
        .as_array()
        .and_then(|a| a.first())
        .filter(|f| f.is_array())
    {
        first = inner;
    }
    match first.as_array() {
        Some(position) => {
            let numbers: Vec<String> = position.iter().map(|n| n.to_string()).collect();
            let more = if kind == "Point" { "" } else { " ..." };
            format!("{kind} {}{more}", numbers.join(" "))
        }
        None => kind.to_string(),
    }
}

pub(crate) async fn item(client: &Client, out: Output, cmd: ItemCmd) -> Result<()> {
    match cmd {
        ItemCmd::Import(args) => import(client, out, args).await,
        ItemCmd::List { space } => {
            let mut request = client.request(Method::GET, "/api/v1/items");
            if let Some(s) = space {
                request = request.query(&[("space", s)]);
            }
            let items: Vec<Item> = client.json(request).await?;
            let spaces = space_names(client).await?;
            out.show(&items, |i| item_table(i, &spaces))
        }
        ItemCmd::Show { id } => {
            let item: Item = client
                .get(&format!("/api/v1/items/{}", segment(&id)))
                .await?;
            let spaces = space_names(client).await?;
            out.show(&item, |i| item_detail(i, &spaces))
        }
        ItemCmd::Export { id, format, output } => export(client, &id, format, output).await,
        ItemCmd::Edit { id, file } => edit(client, out, &id, &file).await,
        ItemCmd::Update {
            id,
            title,
            description,
            tags,
            markings,
            clear_markings,
            sync_as,
            space,
            two_way,
            conflict_policy,
            schema,
        } => {
            let schema = schema.apply(client, &id).await?;
            let two_way = two_way.map(|t| t == "on");
            let conflict_policy = conflict_policy
                .as_deref()
                .and_then(ferry_proto::twoway::ConflictPolicy::parse);
            let markings = if clear_markings {
                Some(Vec::new())
            } else {
                markings
            };
            let sync_as = sync_as.as_deref().and_then(SyncAs::parse);
            if title.is_none()
                && description.is_none()
                && tags.is_none()
                && markings.is_none()
                && sync_as.is_none()
                && space.is_none()
                && two_way.is_none()
                && conflict_policy.is_none()
                && schema.is_none()
            {
                bail!(
                    "nothing to change: pass --title, --description, --tag, --marking, --clear-markings, --sync-as, --space, --two-way, --conflict-policy, --add-field, --remove-field or --retype-field"
                );
            }
            let patch = ItemPatch {
                title,
                description,
                tags,
                markings,
                sync_as,
                space,
                two_way,
                conflict_policy,
                schema,
            };
            let item: Item = client
                .call(
                    Method::PATCH,
                    &format!("/api/v1/items/{}", segment(&id)),
                    &patch,
                )
                .await?;
            out.done(
                &item,
                &format!("Updated item {} (version {}).", item.id, item.version),
            )
        }
        ItemCmd::AcceptSchema { id } => {
            let item: Item = client
                .call(
                    Method::POST,
                    &format!("/api/v1/items/{}/accept-schema", segment(&id)),
                    &serde_json::json!({}),
                )
                .await?;
            out.done(
                &item,
                &format!(
                    "Item {} takes its origin's schema at its next run: it will be copied whole.",
                    item.id
                ),
            )
        }
        ItemCmd::Delete { id } => {
            client
                .send(client.request(Method::DELETE, &format!("/api/v1/items/{}", segment(&id))))
                .await?;
            out.done(
                &serde_json::json!({"deleted": id}),
                &format!("Deleted item {id}."),
            )
        }
        ItemCmd::Rows(args) => rows(client, out, args).await,
    }
}

/// A change of an item's schema, field by field.
#[derive(Args, Debug)]
pub(crate) struct SchemaChangeArgs {
    /// Add a field, as NAME:TYPE (integer, number, string, boolean, timestamp or json; repeat
    /// for several). Copies take it at their next run.
    #[arg(long = "add-field", value_name = "NAME:TYPE")]
    add: Vec<String>,
    /// Remove a field and its values from every row (repeat for several). Copies take it once
    /// their admin runs `ferry item accept-schema`.
    #[arg(long = "remove-field", value_name = "NAME")]
    remove: Vec<String>,
    /// Give a field another type, as NAME:TYPE: every value must already fit it (values are
    /// never converted). Copies take it once their admin accepts it.
    #[arg(long = "retype-field", value_name = "NAME:TYPE")]
    retype: Vec<String>,
}

impl SchemaChangeArgs {
    /// The item's schema with the changes asked for; `None` when none is.
    async fn apply(self, client: &Client, id: &str) -> Result<Option<ferry_proto::Schema>> {
        if self.add.is_empty() && self.remove.is_empty() && self.retype.is_empty() {
            return Ok(None);
        }
        let item: Item = client
            .get(&format!("/api/v1/items/{}", segment(id)))
            .await?;
        let Some(mut schema) = item.schema else {
            bail!("item {id} has no schema: files have no fields");
        };
        for name in &self.remove {
            let before = schema.fields.len();
            schema.fields.retain(|f| &f.name != name);
            if schema.fields.len() == before {
                bail!("item {id} has no field '{name}' to remove");
            }
        }
        for spec in &self.retype {
            let (name, field_type) = field_spec(spec)?;
            let Some(field) = schema.fields.iter_mut().find(|f| f.name == name) else {
                bail!("item {id} has no field '{name}' to retype");
            };
            field.field_type = field_type;
        }
        for spec in &self.add {
            let (name, field_type) = field_spec(spec)?;
            schema.fields.push(ferry_proto::Field { name, field_type });
        }
        Ok(Some(schema))
    }
}

/// `NAME:TYPE` as a field's name and type.
fn field_spec(spec: &str) -> Result<(String, ferry_proto::FieldType)> {
    let (name, type_name) = spec
        .rsplit_once(':')
        .with_context(|| format!("'{spec}' is not NAME:TYPE (for example depth:number)"))?;
    let field_type = serde_json::from_value(serde_json::Value::String(type_name.into()))
        .map_err(|_| {
            anyhow::anyhow!(
                "'{type_name}' is not a field type: integer, number, string, boolean, timestamp or json"
            )
        })?;
    Ok((name.to_string(), field_type))
}

#[derive(Args, Debug)]
pub(crate) struct ChangesArgs {
    /// Space name or id.
    space: String,
    /// Resume after this sequence number.
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// Changes per page (at most 10,000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub(crate) async fn changes(client: &Client, out: Output, args: ChangesArgs) -> Result<()> {
    let path = format!("/api/v1/spaces/{}/changes", segment(&args.space));
    let page: ChangePage = client
        .json(client.request(Method::GET, &path).query(&[
            ("after", args.after.to_string()),
            ("limit", args.limit.to_string()),
        ]))
        .await?;
    out.show(&page, |p| {
        let mut t = table(&["seq", "change", "item", "key"]);
        for c in &p.changes {
            let (kind, item, key) = match c {
                ferry_proto::Change::Item { item, .. } => {
                    ("item", item.id.to_string(), String::new())
                }
                ferry_proto::Change::ItemDeleted { item_id, .. } => {
                    ("item deleted", item_id.to_string(), String::new())
                }
                ferry_proto::Change::ItemLeft { item_id, .. } => {
                    ("item moved out", item_id.to_string(), String::new())
                }
                ferry_proto::Change::Row { item_id, row, .. } => {
                    ("row", item_id.to_string(), row.key.to_string())
                }
                ferry_proto::Change::RowDeleted { item_id, key, .. } => {
                    ("row deleted", item_id.to_string(), key.to_string())
                }
            };
            t.add_row(vec![c.seq().to_string(), kind.to_string(), item, key]);
        }
        let more = if p.has_more {
            format!("more: --after {}", p.next_after)
        } else {
            format!("up to date at {}", p.next_after)
        };
        t.add_row(vec![
            more,
            String::new(),
            String::new(),
            format!("epoch {}", p.epoch),
        ]);
        t
    })
}
