//! Opening an instance's data directory: identity key, database, chunks, admin token, epoch.

use crate::config::Config;
use ed25519_dalek::SigningKey;
use ferry_proto::Role;
use ferry_store::{ChunkStore, SqliteStore, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DATABASE_FILE: &str = "ferry.db";
pub const IDENTITY_FILE: &str = "identity.key";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// Where `serve` writes the URL it listens on, for the CLI on the same machine.
pub const ENDPOINT_FILE: &str = "endpoint";
const EPOCH_MARKER_FILE: &str = "epoch-marker.json";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("identity key {path} is not valid: {message}")]
    Identity { path: PathBuf, message: String },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

/// The instance's Ed25519 identity.
pub struct Identity {
    signing_key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret half.
        write!(f, "Identity({})", self.fingerprint())
    }
}

impl Identity {
    pub fn public_key(&self) -> [u8; 32] {
        self.signing_key.verifying_key().to_bytes()
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// Signs a peer offer and renders it as an invite code.
    pub fn issue_peer_ticket(&self, offer: &ferry_proto::ticket::PeerOffer) -> String {
        ferry_proto::ticket::PeerTicket::issue(offer, &self.signing_key)
    }

    pub fn public_key_base64(&self) -> String {
        key_text(&self.public_key())
    }

    /// What people compare: 20 bytes of BLAKE3 over the public key, in groups of four.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key())
    }
}

/// A public key as text: base64url without padding.
pub fn key_text(public_key: &[u8; 32]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(public_key)
}

pub fn fingerprint(public_key: &[u8; 32]) -> String {
    let digest = blake3::hash(public_key);
    let text = data_encoding::BASE32_NOPAD
        .encode(&digest.as_bytes()[..20])
        .to_lowercase();
    text.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// An opened instance, ready to serve.
pub struct Instance {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub chunks: ChunkStore,
    pub identity: Arc<Identity>,
    /// What this instance trusts when it calls others over HTTPS.
    pub client_tls: rustls::ClientConfig,
    /// Set on first start: where the new admin token was written.
    pub admin_token_created: Option<PathBuf>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("data_dir", &self.config.data_dir)
            .field("identity", &self.identity)
            .finish()
    }
}

/// Writes a file readable by its owner only, refusing to overwrite.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn load_or_create_identity(dir: &Path) -> Result<Identity, StartError> {
    let path = dir.join(IDENTITY_FILE);
    let bad = |message: String| StartError::Identity {
        path: path.clone(),
        message,
    };
    if !path.exists() {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| bad(format!("no randomness: {e}")))?;
        write_private(&path, data_encoding::HEXLOWER.encode(&seed).as_bytes())
            .map_err(data_dir_error(dir))?;
    }
    let text = fs::read_to_string(&path).map_err(data_dir_error(dir))?;
    let seed: [u8; 32] = data_encoding::HEXLOWER
        .decode(text.trim().as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("expected 64 hex characters".into()))?;
    let mode = fs::metadata(&path)
        .map_err(data_dir_error(dir))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "identity key is readable by others; run chmod 600 on it");
    }
    Ok(Identity {
        signing_key: SigningKey::from_bytes(&seed),
    })
}

/// Last epoch and sequence this data directory served, kept outside the database. If the database
/// is later found behind it (restored from a backup), the instance mints a new epoch so receivers
/// resynchronise instead of trusting cursors that no longer match the data.
#[derive(Debug, Serialize, Deserialize)]
struct EpochMarker {
    epoch: String,
    last_seq: i64,
}

fn check_epoch(dir: &Path, store: &dyn Store) -> Result<(), StartError> {
    let path = dir.join(EPOCH_MARKER_FILE);
    let marker: Option<EpochMarker> = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let current = store.instance()?;
    if let Some(m) = marker
        && (m.epoch != current.epoch || current.last_seq < m.last_seq)
    {
        let epoch = store.rotate_epoch()?;
        tracing::warn!(
            old_epoch = %current.epoch, new_epoch = %epoch, marker_seq = m.last_seq, db_seq = current.last_seq,
            "the database is behind what this instance already served (restored?); minted a new data epoch"
        );
    }
    record_epoch(dir, store)
}

/// Stores the current epoch and sequence in the marker (at start, periodically, at shutdown).
pub fn record_epoch(dir: &Path, store: &dyn Store) -> Result<(), StartError> {
    let now = store.instance()?;
    let marker = EpochMarker {
        epoch: now.epoch,
        last_seq: now.last_seq,
    };
    let tmp = dir.join(format!("{EPOCH_MARKER_FILE}.tmp"));
    let bytes = serde_json::to_vec(&marker).unwrap_or_default();
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, dir.join(EPOCH_MARKER_FILE)))
        .map_err(data_dir_error(dir))
}

/// Creates a new admin token straight in a data directory's database, for its owner: the way
/// back when no admin token works (lost, or revoked outside Ferry's own guard). Whoever can
/// read and write the data directory owns the instance anyway, so this asks nothing more. The
/// token goes to the `admin-token` file (mode 0600) and the audit log records the recovery.
pub fn recover_admin_token(
    dir: &Path,
    actor: &str,
) -> Result<(ferry_proto::TokenInfo, PathBuf), StartError> {
    let database = dir.join(DATABASE_FILE);
    if !database.is_file() {
        return Err(StartError::DataDir {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no Ferry database here; pass the instance's --data-dir (or FERRY_DATA_DIR)",
            ),
        });
    }
    let store = SqliteStore::open(database)?;
    let token = crate::caller::new_token_secret();
    let info = store.create_token(
        "recovered-admin",
        Role::Admin,
        crate::caller::hash_token(&token),
        actor,
    )?;
    store.close()?;
    let path = dir.join(ADMIN_TOKEN_FILE);
    let _ = fs::remove_file(&path);
    write_private(&path, format!("{token}\n").as_bytes()).map_err(data_dir_error(dir))?;
    Ok((info, path))
}

impl Instance {
    /// Opens the data directory, creating everything on first start.
    pub fn open(config: Config) -> Result<Instance, StartError> {
        let dir = config.data_dir.clone();
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(data_dir_error(&dir))?;
            // Only a directory Ferry created is narrowed; an existing one keeps its owner's choice.
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(data_dir_error(&dir))?;
        }
        let identity = load_or_create_identity(&dir)?;
        let database = dir.join(DATABASE_FILE);
        if !database.exists() {
            // Created private before SQLite opens it: SQLite gives its WAL and shared-memory
            // files the database file's mode, and the directory may be open to others.
            write_private(&database, b"").map_err(data_dir_error(&dir))?;
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(database)?);
        check_epoch(&dir, store.as_ref())?;
        let chunks = ChunkStore::open(dir.join("chunks"))?;
        let admin_token_created = if store.list_tokens()?.is_empty() {
            let token = crate::caller::new_token_secret();
            store.create_token(
                "admin",
                Role::Admin,
                crate::caller::hash_token(&token),
                "ferry",
            )?;
            let path = dir.join(ADMIN_TOKEN_FILE);
            // A stale file from an earlier database would hold a token that no longer works.
            let _ = fs::remove_file(&path);
            write_private(&path, format!("{token}\n").as_bytes()).map_err(data_dir_error(&dir))?;
            Some(path)
        } else {
            None
        };
        let client_tls = crate::tls::client_config(config.tls_ca_bundle.as_deref())?;
        if let Some((cert, key)) = &config.tls {
            // Refused now rather than when the listener starts.
            crate::tls::ServerTls::load(cert, key)?;
        }
        Ok(Instance {
            config,
            store,
            chunks,
            identity: Arc::new(identity),
            client_tls,
            admin_token_created,
        })
    }

    pub fn public_url(&self, bound: std::net::SocketAddr) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        self.config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"))
    }
}
