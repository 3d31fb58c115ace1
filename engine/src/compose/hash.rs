//! `com.docker.compose.config-hash`: a digest of a service's resolved
//! configuration, so `up` recreates exactly the services whose
//! configuration changed. As in docker compose, what does not change a
//! container is left out: how the image is obtained (`build`,
//! `pull_policy`), how many replicas run (`scale`/`deploy.replicas`), start
//! ordering (`depends_on`) and `profiles`.

use sha2::{Digest, Sha256};

use super::model::Service;

/// Lowercase hex SHA-256 of the service's canonical JSON form.
pub fn config_hash(service: &Service) -> String {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.replicas = 1;
    s.depends_on.clear();
    s.profiles.clear();
    // Struct fields serialise in a fixed order and maps are sorted
    // (BTreeMap), so equal configurations give equal bytes.
    let json = serde_json::to_vec(&s).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
