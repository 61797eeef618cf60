//! `ferry demo`: three instances on loopback, joined as a collaboration (a host and two guests
//! on different modes) and a peer connection, with sample data synced between them.

use crate::output::{Output, table};
use anyhow::{Context, Result, bail};
use clap::Args;
use ferry_server::{Config, Instance};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Where the three instances keep their data (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Stop after printing what arrived where, instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

/// One demo instance, served in this process.
struct Node {
    title: &'static str,
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Node {
    async fn start(dir: &Path, title: &'static str) -> Result<Node> {
        let data = dir.join(title.to_lowercase().replace(' ', "-"));
        let mut config = Config::new(&data);
        config.title = title.into();
        let instance = tokio::task::spawn_blocking(move || Instance::open(config)).await??;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(ferry_server::serve(
            instance,
            listener,
            std::future::pending(),
        ));
        let token = std::fs::read_to_string(data.join(ferry_server::instance::ADMIN_TOKEN_FILE))
            .context("the demo instance wrote no admin token")?;
        let node = Node {
            title,
            url,
            token: token.trim().to_string(),
            http: reqwest::Client::new(),
        };
        node.post(
            "/api/v1/policies",
            json!({"direction": "ingress", "effect": "allow", "pattern": "127.0.0.0/8"}),
        )
        .await?;
        node.post(
            "/api/v1/policies",
            json!({"direction": "egress", "effect": "allow", "pattern": "127.0.0.1"}),
        )
        .await?;
        Ok(node)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{}: HTTP {status}: {text}", self.title);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.url)).json(&body))
            .await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    async fn import(
        &self,
        space: &str,
        title: &str,
        content_type: &str,
        body: String,
    ) -> Result<Value> {
        let path = format!(
            "{}/api/v1/items/import?space={space}&title={}",
            self.url,
            title.replace(' ', "%20")
        );
        self.send(
            self.http
                .post(path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    async fn sync(&self, link: &str) -> Result<Value> {
        self.post("/api/v1/sync/now", json!({"link": link})).await
    }
}

fn sample_layer(n: usize) -> String {
    let features: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"type":"Feature","id":{i},"geometry":{{"type":"Point","coordinates":[{},{}]}},"properties":{{"name":"berth {i}","depth":{}}}}}"#,
                4.0 + i as f64 / 100.0,
                51.9 + i as f64 / 200.0,
                3 + i % 9
            )
        })
        .collect();
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
}

pub(crate) async fn run(out: Output, args: DemoArgs) -> Result<()> {
    let (_temp, dir) = crate::bench::work_dir(args.dir.clone())?;
    eprintln!("starting three instances in {}...", dir.display());
    let host = Node::start(&dir, "Port Authority").await?;
    let city = Node::start(&dir, "City GIS").await?;
    let pilots = Node::start(&dir, "Harbor Pilots").await?;

    eprintln!(
        "a collaboration: Port Authority hosts, City GIS sends and receives, Harbor Pilots receives..."
    );
    for (node, space) in [
        (&host, "coast"),
        (&city, "city-shared"),
        (&pilots, "from-partners"),
    ] {
        node.post("/api/v1/spaces", json!({"name": space})).await?;
    }
    let collab = host
        .post(
            "/api/v1/collabs",
            json!({"name": "Coast", "workspaces": [{"name": "Harbor", "space": "coast"}]}),
        )
        .await?;
    let collab_id = collab["id"]
        .as_str()
        .context("no collaboration id")?
        .to_string();
    for (guest, mode, space) in [
        (&city, "send_receive", "city-shared"),
        (&pilots, "receive", "from-partners"),
    ] {
        let invitation = host
            .post(
                &format!("/api/v1/collabs/{collab_id}/invitations"),
                json!({"guest_url": guest.url, "access": {"Harbor": mode}}),
            )
            .await?;
        guest
            .post("/api/v1/collabs/accept", json!({"code": invitation["code"], "contact": format!("{} data desk", guest.title)}))
            .await?;
        guest
            .post(
                &format!("/api/v1/collabs/{collab_id}/workspaces/Harbor/link"),
                json!({"space": space}),
            )
            .await?;
    }

    eprintln!("a peer connection: City GIS sends datasets to Harbor Pilots...");
    city.post("/api/v1/spaces", json!({"name": "city-datasets"}))
        .await?;
    pilots
        .post("/api/v1/spaces", json!({"name": "from-city"}))
        .await?;
    let request = city
        .post(
            "/api/v1/peers/requests",
            json!({"space": "city-datasets", "export": ["datasets"], "import": []}),
        )
        .await?;
    let imported = pilots
        .post("/api/v1/peers/import", json!({"code": request["code"]}))
        .await?;
    let on_pilots = imported["id"]
        .as_str()
        .context("no connection id")?
        .to_string();
    pilots
        .post(
            &format!("/api/v1/peers/{on_pilots}/approve"),
            json!({"space": "from-city", "security": {"mark": ["PARTNER"]}}),
        )
        .await?;
    let on_city = request["connection"]["id"]
        .as_str()
        .context("no connection id")?;
    city.post(&format!("/api/v1/peers/{on_city}/activate"), json!({}))
        .await?;

    eprintln!("sample data...");
    host.import("coast", "Berths", "application/geo+json", sample_layer(250))
        .await?;
    city.import(
        "city-shared",
        "Road works",
        "application/geo+json",
        sample_layer(40),
    )
    .await?;
    city.import(
        "city-shared",
        "Survey notes",
        "application/octet-stream",
        "Quay 4: fender damage, repair planned.\n".repeat(200),
    )
    .await?;
    city.import(
        "city-datasets",
        "Traffic counts",
        "text/csv",
        "id,street,vehicles\n1,Harbour Rd,5400\n2,Quay St,1200\n3,Dock Ln,860\n".into(),
    )
    .await?;

    eprintln!("syncing...");
    let workspace = "Coast/Harbor";
    host.sync(workspace).await?;
    city.sync(workspace).await?;
    pilots.sync(workspace).await?;
    pilots.sync(&on_pilots).await?;

    let mut rows = Vec::new();
    for node in [&host, &city, &pilots] {
        for item in node
            .get("/api/v1/items")
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let space_id = item["space_id"].as_str().unwrap_or_default();
            let space = node.get(&format!("/api/v1/spaces/{space_id}")).await?;
            rows.push(json!({
                "instance": node.title, "space": space["name"], "item": item["title"],
                "kind": item["kind"], "rows": item["row_count"], "markings": item["markings"],
            }));
        }
    }
    out.show(&rows, |rows| {
        let mut t = table(&["instance", "space", "item", "kind", "rows", "markings"]);
        for r in rows {
            let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
            t.add_row(vec![
                text(&r["instance"]),
                text(&r["space"]),
                text(&r["item"]),
                text(&r["kind"]),
                text(&r["rows"]),
                r["markings"]
                    .as_array()
                    .map(|m| m.iter().map(text).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
            ]);
        }
        t
    })?;
    if args.exit {
        return Ok(());
    }
    eprintln!();
    for node in [&host, &city, &pilots] {
        eprintln!("{:<15} {}   token {}", node.title, node.url, node.token);
        let link = node
            .post("/api/v1/tokens/login-link", json!({"name": "admin"}))
            .await?;
        if let Some(url) = link["url"].as_str() {
            eprintln!("{:<15} console: {url}", "");
        }
    }
    eprintln!("(each console link signs in once, within 15 minutes)");
    eprintln!("try: ferry --server URL --token TOKEN sync status   (Ctrl-C stops the demo)");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
