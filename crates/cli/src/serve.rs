//! `ferry serve`.

use anyhow::{Context, Result};
use clap::Args;
use ferry_server::{Instance, ServeOptions};
use std::net::SocketAddr;

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8750; port 0 picks a free one).
    #[arg(long, env = "FERRY_LISTEN")]
    listen: Option<SocketAddr>,
    /// URL peers and clients use to reach this instance (default http://<listen>).
    #[arg(long, env = "FERRY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Title shown to peers.
    #[arg(long, env = "FERRY_TITLE")]
    title: Option<String>,
    /// Largest JSON request body in bytes (default 16 MiB).
    #[arg(long, env = "FERRY_MAX_BODY_BYTES")]
    max_body_bytes: Option<u64>,
    /// Largest import in bytes (default 8 GiB).
    #[arg(long, env = "FERRY_MAX_IMPORT_BYTES")]
    max_import_bytes: Option<u64>,
    /// Poke the other side of a link to pull at once when something changes (default true).
    #[arg(long, env = "FERRY_REALTIME")]
    realtime: Option<bool>,
    /// Ask senders for LZ4-compressed sync streams (default true; false saves CPU on a fast LAN).
    #[arg(long, env = "FERRY_COMPRESS_SYNC")]
    compress_sync: Option<bool>,
    /// Most connections open at once (default 1024); past it, the one quiet longest is closed.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a client has to send a request's head (default 10).
    #[arg(long, env = "FERRY_HEADER_READ_TIMEOUT_SECS")]
    header_read_timeout_secs: Option<u64>,
    /// Seconds a connection may move nothing before it is closed (default 120).
    #[arg(long, env = "FERRY_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); read again on SIGHUP.
    #[arg(long, env = "FERRY_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "FERRY_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// PEM certificates to trust besides the system's, for peers under a private CA.
    #[arg(long, env = "FERRY_TLS_CA_BUNDLE")]
    tls_ca_bundle: Option<std::path::PathBuf>,
    /// Call peers at plain http:// URLs off loopback (a lab setting: traffic is unencrypted).
    #[arg(long, env = "FERRY_ALLOW_PLAIN_HTTP")]
    allow_plain_http: Option<bool>,
    /// Background tiles for the web console's map, as a URL with {z}, {x} and {y} (e.g.
    /// https://tile.openstreetmap.org/{z}/{x}/{y}.png). Browsers fetch them; without it the map
    /// draws features on a plain background and needs no internet.
    #[arg(long, env = "FERRY_BASEMAP_URL")]
    basemap_url: Option<String>,
}

/// Runs an instance on `data_dir` (the global `--data-dir`, which also reads FERRY_DATA_DIR).
pub(crate) async fn run(args: ServeArgs, data_dir: Option<std::path::PathBuf>) -> Result<()> {
    let options = ServeOptions {
        data_dir,
        listen: args.listen,
        public_url: args.public_url,
        title: args.title,
        max_body_bytes: args.max_body_bytes,
        max_import_bytes: args.max_import_bytes,
        realtime: args.realtime,
        compress_sync: args.compress_sync,
        max_connections: args.max_connections,
        header_read_timeout_secs: args.header_read_timeout_secs,
        idle_timeout_secs: args.idle_timeout_secs,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_ca_bundle: args.tls_ca_bundle,
        allow_plain_http: args.allow_plain_http,
        basemap_url: args.basemap_url,
    };
    let config = options.resolve(&crate::client::default_data_dir())?;
    let data_dir = config.data_dir.clone();
    let listen = config.listen;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let last_url = ferry_server::config::last_reached_url(&config.data_dir, scheme);
    let instance = tokio::task::spawn_blocking(move || Instance::open(config)).await??;
    if let Err(e) = ferry_server::config::remember(&instance.config) {
        tracing::warn!(error = %e, "cannot remember this start's settings in the data directory");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen}; is another instance running? pick another with --listen"
            )
        })?;
    let bound = listener.local_addr()?;
    warn_if_url_changed(&instance, last_url, &instance.public_url(bound));
    // The local CLI's way in: HTTPS when this instance serves it (trust its CA with
    // --ca-bundle or FERRY_CA_BUNDLE when it is private).
    let url = format!("{scheme}://{bound}");
    std::fs::write(
        data_dir.join(ferry_server::instance::ENDPOINT_FILE),
        format!("{url}\n"),
    )
    .context("cannot write the endpoint file in the data directory")?;
    let token_file = data_dir.join(ferry_server::instance::ADMIN_TOKEN_FILE);
    eprintln!(
        "Ferry instance '{}' ({})",
        instance.config.title,
        instance.identity.fingerprint()
    );
    eprintln!("  data directory: {}", data_dir.display());
    eprintln!("  listening on:   {url}");
    match &instance.admin_token_created {
        Some(path) => eprintln!(
            "  admin token:    created in {} (shown nowhere else)",
            path.display()
        ),
        None => eprintln!(
            "  admin token:    {} (written at first start)",
            token_file.display()
        ),
    }
    // At first start, a one-time sign-in link for the console stands for the admin token.
    let first_token = instance
        .admin_token_created
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|token| token.trim().to_string());
    let console = url.clone();
    ferry_server::serve_with(instance, listener, shutdown_signal(), move |node| async move {
        let Some(token) = first_token else {
            eprintln!(
                "  console:        {console}/ (sign in with an API token, or open a link from `ferry token login-link NAME`)"
            );
            return;
        };
        match ferry_node::sessions::login_link_for_secret(&node, &token).await {
            Ok(path) => eprintln!(
                "  console:        {console}{path} (sign-in link, good once for 15 minutes)"
            ),
            Err(e) => tracing::warn!(error = %e, "no console sign-in link"),
        }
    })
    .await?;
    let _ = std::fs::remove_file(data_dir.join(ferry_server::instance::ENDPOINT_FILE));
    eprintln!("Ferry stopped.");
    Ok(())
}

/// Peers and collaborations reach this instance at the URL they were given: a new one needs
/// telling them.
fn warn_if_url_changed(instance: &Instance, last: Option<String>, now: &str) {
    let Some(last) = last else {
        return;
    };
    if last == now {
        return;
    }
    let known = instance.store.list_peers().is_ok_and(|peers| {
        peers
            .iter()
            .any(|p| p.status.phase.is_established() && p.peer.is_some())
    }) || instance
        .store
        .list_collabs()
        .is_ok_and(|c| c.iter().any(|c| !c.state.is_over()));
    if known {
        eprintln!(
            "WARNING: the public URL changed from {last} to {now}; peers and collaborations know this instance at {last} and will not reach it at the new one. Tell their admins, or start with --public-url {last}."
        );
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
