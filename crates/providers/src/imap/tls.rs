//! The certificates a mail server's is checked against: the operating
//! system's trust store plus the bundle named by `SSL_CERT_FILE` (how a
//! private CA is trusted). One set serves IMAP and SMTP, so both servers of a
//! mailbox are judged alike.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Where distributions keep their CA bundle (Debian and Ubuntu, Fedora and
/// RHEL, openSUSE, Alpine and macOS).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Trusted roots and the TLS client settings built from them.
#[derive(Clone)]
pub struct MailTls {
    roots: Arc<Vec<CertificateDer<'static>>>,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for MailTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailTls")
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl MailTls {
    /// The system's roots and those of `extra_bundle` (a PEM file). An
    /// unreadable extra bundle is an error: a private CA silently missing
    /// would show up later as every connection failing.
    pub fn load(extra_bundle: Option<&Path>) -> Result<MailTls, String> {
        let mut roots: Vec<CertificateDer<'static>> = Vec::new();
        if let Some(system) = SYSTEM_BUNDLES.iter().find(|path| Path::new(path).exists()) {
            roots.extend(read_bundle(Path::new(system)).unwrap_or_default());
        }
        if let Some(extra) = extra_bundle {
            let found = read_bundle(extra)
                .map_err(|error| format!("{} could not be read ({error})", extra.display()))?;
            if found.is_empty() {
                return Err(format!("{} holds no PEM certificate", extra.display()));
            }
            roots.extend(found);
        }
        MailTls::with_roots(roots)
    }

    /// Exactly these roots (tests).
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Result<MailTls, String> {
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(roots.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS setup failed ({error})"))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(MailTls {
            roots: Arc::new(roots),
            config: Arc::new(config),
        })
    }

    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The roots, for clients that take them one by one (lettre).
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }
}

fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iterator = CertificateDer::pem_file_iter(path).map_err(|error| error.to_string())?;
    // A damaged entry in a system bundle should not hide the others.
    Ok(iterator.filter_map(Result::ok).collect())
}

/// What went wrong in a TLS handshake, for a person: a certificate for
/// another name, one no trusted authority signed, an expired one.
pub fn describe_handshake_failure(error: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError;
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(certificate)) => match certificate {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the server's certificate is not valid for {host} (certificate mismatch)")
            }
            CertificateError::UnknownIssuer => "the server's certificate is not signed by a trusted authority (for a private CA, name its bundle in SSL_CERT_FILE)".to_owned(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_owned()
            }
            _ => "the server's certificate was refused".to_owned(),
        },
        Some(_) => "the TLS handshake failed (does the port speak TLS? try the other security setting)".to_owned(),
        None => "the TLS handshake failed (does the port speak TLS? try the other security setting)".to_owned(),
    }
}
