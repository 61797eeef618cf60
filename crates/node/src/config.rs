//! Instance configuration: defaults, then `<data-dir>/ferry.toml`, then environment variables and
//! flags (the CLI merges those two before calling [`ServeOptions::resolve`]).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8750";
pub const CONFIG_FILE: &str = "ferry.toml";
/// What `ferry serve` was last started with (title, listen address, public URL), written by
/// each start: a later start without those settings keeps them. Flags, environment and
/// `ferry.toml` still win.
pub const REMEMBERED_FILE: &str = "last-start.toml";

/// Settings as given by flags, environment or file; `None` means "not given here".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub title: Option<String>,
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: Option<u64>,
    /// Largest import body, in bytes.
    pub max_import_bytes: Option<u64>,
    /// Whether changes poke receivers at once (default true).
    pub realtime: Option<bool>,
    /// Whether sync streams this instance pulls are asked for compressed (default true).
    pub compress_sync: Option<bool>,
    /// Most connections open at once (default 1024); past it, the quietest one is closed.
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's head (default 10).
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a connection may move nothing before it is closed (default 120).
    pub idle_timeout_secs: Option<u64>,
    /// PEM certificate chain to serve HTTPS with (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM certificates trusted besides the system's roots, for peers under a private CA.
    pub tls_ca_bundle: Option<PathBuf>,
    /// Lets this instance call peers at plain `http://` URLs off loopback: a lab setting, never
    /// for real data (default false).
    pub allow_plain_http: Option<bool>,
    /// Tiles the console's map draws under a layer's features: a URL with `{z}`, `{x}` and
    /// `{y}` (none by default: the map needs no internet).
    pub basemap_url: Option<String>,
}

/// Settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The URL peers and clients use; defaults to `http://<listen>`.
    pub public_url: Option<String>,
    pub title: String,
    pub max_body_bytes: u64,
    pub max_import_bytes: u64,
    /// How often the scheduler looks for links whose sync is due.
    pub sync_tick: std::time::Duration,
    /// How long a console session lasts from sign-in, in seconds (default 12 h).
    pub session_secs: u64,
    /// Whether item-level changes and runs poke the other side to pull at once (tests that count
    /// what each run moves turn it off).
    pub realtime: bool,
    /// Whether this instance asks senders for LZ4-compressed sync streams.
    pub compress_sync: bool,
    /// Limits on the connections clients and peers open.
    pub connections: ConnectionLimits,
    /// Certificate and key files to serve HTTPS with; plain HTTP when `None` (on loopback, or
    /// behind a proxy that terminates TLS).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// PEM certificates trusted besides the system's roots.
    pub tls_ca_bundle: Option<PathBuf>,
    /// Whether peers at plain `http://` URLs off loopback may be called.
    pub allow_plain_http: bool,
    pub basemap: Option<Basemap>,
}

/// Where the console's map fetches background tiles: the browser asks for them, never this
/// instance, so the page's content policy allows images from `origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basemap {
    /// With `{z}`, `{x}` and `{y}` where a tile's zoom, column and row go.
    pub url: String,
    /// `scheme://host[:port]` of `url`.
    pub origin: String,
}

impl Basemap {
    /// A basemap URL checked: `http` or `https`, a host, the three placeholders, and nothing
    /// that could end a header or an HTML attribute.
    pub fn parse(url: &str) -> Result<Basemap, ConfigError> {
        let bad = |why: &str| {
            ConfigError::Basemap(format!(
                "the basemap URL '{url}' {why}: give a tile URL such as https://tiles.example.org/{{z}}/{{x}}/{{y}}.png"
            ))
        };
        for placeholder in ["{z}", "{x}", "{y}"] {
            if !url.contains(placeholder) {
                return Err(bad(&format!("has no {placeholder}")));
            }
        }
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "'\"<>;,".contains(c))
        {
            return Err(bad("holds spaces, quotes, brackets, commas or semicolons"));
        }
        let sample = url.replace(['{', '}'], "");
        let parsed =
            reqwest::Url::parse(&sample).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(bad("is not an http or https URL with a host"));
        }
        Ok(Basemap {
            url: url.to_string(),
            origin: parsed.origin().ascii_serialization(),
        })
    }
}

impl Config {
    /// A configuration for tests and embedding: everything default under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            public_url: None,
            title: "Ferry".to_string(),
            max_body_bytes: 16 << 20,
            max_import_bytes: 8 << 30,
            sync_tick: std::time::Duration::from_secs(30),
            session_secs: 12 * 3600,
            realtime: true,
            compress_sync: true,
            connections: ConnectionLimits::default(),
            tls: None,
            tls_ca_bundle: None,
            allow_plain_http: false,
            basemap: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "a TLS certificate needs its key and a key its certificate: give both --tls-cert and --tls-key"
    )]
    TlsHalf,
    #[error("{0}")]
    Basemap(String),
}

impl ServeOptions {
    /// Fills what `self` leaves open from `ferry.toml` in the data dir, then from defaults.
    pub fn resolve(self, default_data_dir: &Path) -> Result<Config, ConfigError> {
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| default_data_dir.to_path_buf());
        let file = read_file(&data_dir.join(CONFIG_FILE))?;
        // What the last start used, below everything given now; unreadable is as if absent.
        let last = read_file(&data_dir.join(REMEMBERED_FILE)).unwrap_or_default();
        let base = Config::new(&data_dir);
        Ok(Config {
            listen: self
                .listen
                .or(file.listen)
                .or(last.listen)
                .unwrap_or(base.listen),
            public_url: self.public_url.or(file.public_url).or(last.public_url),
            title: self
                .title
                .or(file.title)
                .or(last.title)
                .unwrap_or(base.title),
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(base.max_body_bytes),
            max_import_bytes: self
                .max_import_bytes
                .or(file.max_import_bytes)
                .unwrap_or(base.max_import_bytes),
            sync_tick: base.sync_tick,
            session_secs: base.session_secs,
            realtime: self.realtime.or(file.realtime).unwrap_or(base.realtime),
            compress_sync: self
                .compress_sync
                .or(file.compress_sync)
                .unwrap_or(base.compress_sync),
            connections: ConnectionLimits {
                max_connections: self
                    .max_connections
                    .or(file.max_connections)
                    .unwrap_or(base.connections.max_connections),
                header_read: self
                    .header_read_timeout_secs
                    .or(file.header_read_timeout_secs)
                    .map_or(base.connections.header_read, std::time::Duration::from_secs),
                idle: self
                    .idle_timeout_secs
                    .or(file.idle_timeout_secs)
                    .map_or(base.connections.idle, std::time::Duration::from_secs),
            },
            tls: match (
                self.tls_cert.or(file.tls_cert),
                self.tls_key.or(file.tls_key),
            ) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => return Err(ConfigError::TlsHalf),
            },
            tls_ca_bundle: self.tls_ca_bundle.or(file.tls_ca_bundle),
            allow_plain_http: self
                .allow_plain_http
                .or(file.allow_plain_http)
                .unwrap_or(base.allow_plain_http),
            basemap: self
                .basemap_url
                .or(file.basemap_url)
                .map(|url| Basemap::parse(&url))
                .transpose()?,
            data_dir,
        })
    }
}

fn read_file(path: &Path) -> Result<ServeOptions, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ServeOptions::default()),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The URL peers reached the last start at: its public URL, else its listen address under
/// `scheme` (unless it picked a free port, which no peer can have been told).
pub fn last_reached_url(data_dir: &Path, scheme: &str) -> Option<String> {
    let last = read_file(&data_dir.join(REMEMBERED_FILE)).ok()?;
    last.public_url.or_else(|| {
        last.listen
            .filter(|address| address.port() != 0)
            .map(|address| format!("{scheme}://{address}"))
    })
}

/// Writes what this start uses (see [`REMEMBERED_FILE`]).
pub fn remember(config: &Config) -> std::io::Result<()> {
    // JSON's string escapes are TOML's basic-string escapes.
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let mut text = String::from("# What the last `ferry serve` used; flags and ferry.toml win.\n");
    text.push_str(&format!("title = {}\n", quoted(&config.title)));
    text.push_str(&format!(
        "listen = {}\n",
        quoted(&config.listen.to_string())
    ));
    if let Some(url) = &config.public_url {
        text.push_str(&format!("public_url = {}\n", quoted(url)));
    }
    std::fs::write(config.data_dir.join(REMEMBERED_FILE), text)
}

/// How long connections may take and how many may be open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time to send a request's head (the request line and headers).
    pub header_read: Duration,
    /// A connection that sends and receives nothing for this long is closed.
    pub idle: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_read: Duration::from_secs(10),
            // Longer than a sync stream's own silence limit (60 s), so a slow but live
            // stream is the receiver's to give up, not this server's.
            idle: Duration::from_secs(120),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_basemap_url_is_checked_and_its_origin_kept() {
        let good = Basemap::parse("https://tiles.example.org:8443/osm/{z}/{x}/{y}.png").unwrap();
        assert_eq!(good.origin, "https://tiles.example.org:8443");
        for bad in [
            "https://tiles.example.org/{z}/{x}.png",
            "ftp://tiles.example.org/{z}/{x}/{y}.png",
            "https://tiles.example.org/{z}/{x}/{y}.png; script-src *",
            "https://tiles.example.org/{z}/{x}/{y}.png\" onerror=\"x",
            "/tiles/{z}/{x}/{y}.png",
        ] {
            let Err(e) = Basemap::parse(bad) else {
                panic!("{bad} was taken");
            };
            assert!(e.to_string().contains("give a tile URL such as"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let options = ServeOptions {
            basemap_url: Some("not a url".into()),
            ..Default::default()
        };
        assert!(matches!(
            options.resolve(dir.path()),
            Err(ConfigError::Basemap(_))
        ));
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "title = \"From file\"\nlisten = \"127.0.0.1:9999\"\nmax_body_bytes = 10\nrealtime = false\ncompress_sync = false\n",
        )
        .unwrap();
        let flags = ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            title: Some("From flag".into()),
            ..Default::default()
        };
        let c = flags.resolve(Path::new("/nonexistent")).unwrap();
        assert_eq!(c.title, "From flag");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.max_body_bytes, 10);
        assert!(!c.realtime);
        assert!(!c.compress_sync);
        assert!(Config::new("x").compress_sync, "compressed by default");
        assert_eq!(c.max_import_bytes, Config::new("x").max_import_bytes);
    }

    #[test]
    fn a_start_is_remembered_below_everything_given() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            title: Some("Harbor \"Main\" GIS".into()),
            listen: Some("127.0.0.1:8752".parse().unwrap()),
            public_url: Some("https://gis.harbor.example".into()),
            ..Default::default()
        }
        .resolve(Path::new("/x"))
        .unwrap();
        remember(&first).unwrap();
        let bare = ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let again = bare.clone().resolve(Path::new("/x")).unwrap();
        assert_eq!(
            (
                again.title.as_str(),
                again.listen.port(),
                again.public_url.as_deref()
            ),
            (
                "Harbor \"Main\" GIS",
                8752,
                Some("https://gis.harbor.example")
            )
        );
        assert_eq!(
            last_reached_url(dir.path(), "http").as_deref(),
            Some("https://gis.harbor.example")
        );
        // Without a public URL, the last start was reached at its listen address.
        let derived = ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            public_url: None,
            ..Default::default()
        }
        .resolve(Path::new("/x"))
        .unwrap();
        remember(&Config {
            public_url: None,
            ..derived
        })
        .unwrap();
        assert_eq!(
            last_reached_url(dir.path(), "https").as_deref(),
            Some("https://127.0.0.1:8752")
        );
        let flagged = ServeOptions {
            title: Some("Renamed".into()),
            ..bare
        }
        .resolve(Path::new("/x"))
        .unwrap();
        assert_eq!(flagged.title, "Renamed", "flags win");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "titel = \"typo\"\n").unwrap();
        let flags = ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let err = flags.resolve(Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("titel"), "{err}");
    }
}
