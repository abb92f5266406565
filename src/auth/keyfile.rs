//! Where the token-signing key comes from: a configured PEM file; on SQLite, a file generated
//! next to the database on first start; on PostgreSQL, one key stored in the database so
//! every process behind the load balancer signs and verifies with the same key.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{DatabaseUrl, Settings};
use crate::store::{self, Store};

use super::tokens::Keys;

fn read_or_create(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        return std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the signing key {}: {e}", path.display()));
    }
    let pem = Keys::generate_pem()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(pem.as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "generated a new token-signing key");
            Ok(pem)
        }
        // Another process created it between our check and our write.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot write the signing key {}: {e}",
            path.display()
        )),
    }
}

/// The key file kept beside an SQLite database.
pub fn beside_database(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".jwt-key.pem");
    db.with_file_name(name)
}

/// Loads (or creates) the signing key for these settings.
pub async fn load(settings: &Settings, store: &Store) -> anyhow::Result<Keys> {
    let pem = match (&settings.jwt_private_key_file, &settings.database_url) {
        (Some(path), _) => read_or_create(path)
            .map_err(|e| anyhow::anyhow!("AFTERCARE_JWT_PRIVATE_KEY_FILE: {e}"))?,
        (None, DatabaseUrl::Sqlite(db)) => read_or_create(&beside_database(db))?,
        (None, DatabaseUrl::Postgres(_)) => store
            .run(|conn| store::sessions::shared_signing_key(conn, Keys::generate_pem))
            .await
            .map_err(|e: store::StoreError| anyhow::anyhow!("cannot load the signing key: {e}"))?,
    };
    Keys::from_pem(&pem, &settings.jwt_issuer)
}
