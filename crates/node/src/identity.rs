//! The node's libp2p identity, kept in its data directory so its PeerId survives restarts.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use libp2p::identity::Keypair;

use crate::error::NodeError;

/// File name of the identity key inside the data directory (protobuf-encoded Ed25519 keypair).
pub const IDENTITY_FILE: &str = "identity.key";
/// Largest identity file read: an Ed25519 keypair in protobuf is under 100 bytes.
const MAX_IDENTITY_BYTES: u64 = 4096;

/// Loads the keypair from `data_dir/identity.key`, or makes one and saves it (mode 0600,
/// written to a temporary file and renamed, so a crash never leaves half a key).
pub fn load_or_create(data_dir: &Path) -> Result<Keypair, NodeError> {
    let path = data_dir.join(IDENTITY_FILE);
    let io = |error| NodeError::Io {
        path: path.clone(),
        error,
    };
    match fs::metadata(&path) {
        Ok(meta) if meta.len() > MAX_IDENTITY_BYTES => {
            return Err(NodeError::BadIdentity {
                path: path.clone(),
                reason: format!("{} bytes, more than {MAX_IDENTITY_BYTES}", meta.len()),
            });
        }
        Ok(_) => {
            let bytes = fs::read(&path).map_err(io)?;
            return Keypair::from_protobuf_encoding(&bytes).map_err(|e| NodeError::BadIdentity {
                path: path.clone(),
                reason: e.to_string(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    fs::create_dir_all(data_dir).map_err(|error| NodeError::Io {
        path: data_dir.to_owned(),
        error,
    })?;
    let keypair = Keypair::generate_ed25519();
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(|e| NodeError::Transport(e.to_string()))?;
    let tmp = data_dir.join(format!(".{IDENTITY_FILE}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
        let mode = fs::metadata(dir.path().join(IDENTITY_FILE)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn a_damaged_key_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IDENTITY_FILE), b"not a key").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a valid shoal identity key"), "{err}");
        fs::write(dir.path().join(IDENTITY_FILE), vec![0u8; 5000]).unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("5000 bytes"), "{err}");
    }
}
