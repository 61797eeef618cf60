//! The CLI's HTTP client for `/api/v1`: adds the token, turns error bodies into messages.

use anyhow::{Context, Result, anyhow};
use ferry_proto::ApiError;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Where to reach the server and how to authenticate.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) server: String,
    pub(crate) token: Option<String>,
}

impl Target {
    /// Flags and environment first, then the files `ferry serve` leaves in the data directory.
    pub(crate) fn resolve(
        server: Option<String>,
        token: Option<String>,
        data_dir: &Path,
    ) -> Result<Target> {
        let read = |name: &str| -> Option<String> {
            std::fs::read_to_string(data_dir.join(name))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let server = server
            .map(|s| with_scheme(&s))
            .or_else(|| read(ferry_server::instance::ENDPOINT_FILE))
            .ok_or_else(|| anyhow!(
                "no server given, and no running instance in the data directory {} (it has no {} file): pass --server URL (or set FERRY_SERVER), set FERRY_DATA_DIR to the data directory of a running `ferry serve`, or start one",
                data_dir.display(),
                ferry_server::instance::ENDPOINT_FILE
            ))?;
        let token = token.or_else(|| read(ferry_server::instance::ADMIN_TOKEN_FILE));
        Ok(Target {
            server: server.trim_end_matches('/').to_string(),
            token,
        })
    }
}

/// A server given as `host:port` gets its scheme: `http://` on loopback (where `ferry serve`
/// listens by default), else `https://`.
fn with_scheme(server: &str) -> String {
    if server.contains("://") {
        return server.to_string();
    }
    let host = server
        .rsplit_once(':')
        .map_or(server, |(host, _)| host)
        .trim_matches(['[', ']']);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match loopback {
        true => format!("http://{server}"),
        false => format!("https://{server}"),
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    target: Target,
}

/// The server's error, shown as its message and stable code.
#[derive(Debug)]
pub(crate) struct ServerError {
    pub(crate) status: u16,
    pub(crate) error: ApiError,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}, HTTP {}]",
            self.error.message,
            self.error.code.as_str(),
            self.status
        )?;
        if let Some(details) = &self.error.details {
            write!(
                f,
                "\n{}",
                serde_json::to_string_pretty(details).unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// How the CLI reaches its server: the certificates it trusts besides the system's, and whether
/// a token may go to a plain http:// server off loopback.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transport {
    pub(crate) ca_bundle: Option<PathBuf>,
    pub(crate) allow_plain_http: bool,
}

impl Client {
    pub(crate) fn new(target: Target, transport: &Transport) -> Result<Client> {
        let tls = ferry_server::tls::client_config(transport.ca_bundle.as_deref())?;
        let server = reqwest::Url::parse(&target.server)
            .with_context(|| format!("--server {} is not a URL", target.server))?;
        let loopback = server.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if server.scheme() == "http" && !loopback && !transport.allow_plain_http {
            anyhow::bail!(
                "{} is plain HTTP: the token would travel in clear. Use the server's https:// URL, or pass --allow-plain-http if this network is yours alone",
                target.server
            );
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client { http, target })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.server)
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.target.token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Sends, and turns a non-2xx answer into a [`ServerError`].
    pub(crate) async fn send(&self, builder: RequestBuilder) -> Result<Response> {
        let response = builder.send().await.with_context(|| {
            format!(
                "cannot reach the Ferry server at {}; is `ferry serve` running?",
                self.target.server
            )
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => Err(ServerError { status, error }.into()),
            Err(_) => Err(anyhow!(
                "the server answered HTTP {status}: {}",
                text.trim()
            )),
        }
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    pub(crate) async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T> {
        let response = self.send(builder).await?;
        response
            .json()
            .await
            .context("the server's answer is not what this CLI expects")
    }

    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.json(self.request(method, path).json(body)).await
    }
}

/// The default data directory: `$FERRY_DATA_DIR`, else `$XDG_DATA_HOME/ferry`, else
/// `~/.local/share/ferry`.
pub(crate) fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FERRY_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("ferry");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/ferry")
}

/// Percent-encodes a path segment (space names may hold '.', ids hold '-').
pub(crate) fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::with_scheme;

    #[test]
    fn a_server_without_a_scheme_gets_one() {
        assert_eq!(with_scheme("127.0.0.1:8750"), "http://127.0.0.1:8750");
        assert_eq!(with_scheme("localhost:8750"), "http://localhost:8750");
        assert_eq!(with_scheme("[::1]:8750"), "http://[::1]:8750");
        assert_eq!(
            with_scheme("gis.example.org:443"),
            "https://gis.example.org:443"
        );
        assert_eq!(
            with_scheme("https://gis.example.org"),
            "https://gis.example.org"
        );
    }
}
