//! Tests of `config`.
use super::*;
use secrecy::ExposeSecret;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn defaults_are_sqlite_in_data_on_localhost() {
    let (config, warnings) = Config::load(env(&[]), None).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(
        config.database_url.redacted(),
        "sqlite://./data/mailwright.db"
    );
    assert!(warnings.is_empty());
}

#[test]
fn the_data_dir_moves_the_default_database() {
    let (config, _) = Config::load(env(&[("MAILWRIGHT_DATA_DIR", "/var/lib/mw")]), None).unwrap();
    assert_eq!(
        config.database_url.redacted(),
        "sqlite:///var/lib/mw/mailwright.db"
    );
}

#[test]
fn each_bad_value_names_its_variable_in_one_line() {
    for (name, value) in [
        ("MAILWRIGHT_LISTEN", "localhost"),
        ("MAILWRIGHT_DATABASE_URL", "mysql://x"),
        ("MAILWRIGHT_PUBLIC_URL", "ftp://x"),
        ("MAILWRIGHT_PUBLIC_URL", "not a url"),
        ("MAILWRIGHT_LOG_FORMAT", "xml"),
        ("RUST_LOG", "info,[="),
    ] {
        let error = Config::load(env(&[(name, value)]), None).unwrap_err();
        let line = error.to_string();
        assert!(
            line.starts_with(&format!("configuration error: {name}: ")),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
    }
}

#[test]
fn a_database_password_never_appears_in_errors_or_debug_output() {
    let key = Keyring::generate_entry("k1");
    let (config, _) = Config::load(
        env(&[
            ("MAILWRIGHT_DATABASE_URL", "postgres://mw:s3cret@db:5432/mw"),
            ("MAILWRIGHT_ENCRYPTION_KEYS", key.expose_secret()),
        ]),
        None,
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn the_file_sets_keys_and_the_environment_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailwright.toml");
    std::fs::write(
        &path,
        "listen = \"0.0.0.0:9000\"\nMAILWRIGHT_PUBLIC_URL = \"https://mail.example.com\"\n",
    )
    .unwrap();
    let (config, _) = Config::load(env(&[]), Some(&path)).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.public_url_for("/api/x"),
        "https://mail.example.com/api/x"
    );

    let (config, _) =
        Config::load(env(&[("MAILWRIGHT_LISTEN", "127.0.0.1:7000")]), Some(&path)).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
}

#[test]
fn file_mistakes_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"nowhere\"\n").unwrap();
    let line = Config::load(env(&[]), Some(&path)).unwrap_err().to_string();
    assert!(
        line.contains("listen (in ") && line.contains("bad.toml"),
        "{line}"
    );

    std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let line = Config::load(env(&[]), Some(&path)).unwrap_err().to_string();
    assert!(line.contains("unknown key `lisen`"), "{line}");

    std::fs::write(&path, "listen = [1, 2]\n").unwrap();
    assert!(Config::load(env(&[]), Some(&path)).is_err());
    std::fs::write(&path, "listen = \n").unwrap();
    assert!(
        Config::load(env(&[]), Some(&path))
            .unwrap_err()
            .to_string()
            .contains("not valid TOML")
    );
    let missing = dir.path().join("missing.toml");
    assert!(
        Config::load(env(&[]), Some(&missing))
            .unwrap_err()
            .to_string()
            .contains("cannot read")
    );
}

#[test]
fn jwt_settings_need_the_jwks_url() {
    let (config, _) = Config::load(env(&[]), None).unwrap();
    assert_eq!(config.jwt, None);
    let (config, _) = Config::load(
        env(&[
            (
                "MAILWRIGHT_AUTH_JWKS_URL",
                "https://idp.example.com/.well-known/jwks.json",
            ),
            ("MAILWRIGHT_AUTH_ISSUER", "https://idp.example.com"),
        ]),
        None,
    )
    .unwrap();
    let jwt = config.jwt.unwrap();
    assert_eq!(
        (
            jwt.issuer.as_deref(),
            jwt.audience,
            jwt.workspace_claim.as_str()
        ),
        (Some("https://idp.example.com"), None, "org_id")
    );

    let line = Config::load(env(&[("MAILWRIGHT_AUTH_AUDIENCE", "api")]), None)
        .unwrap_err()
        .to_string();
    assert!(
        line.starts_with("configuration error: MAILWRIGHT_AUTH_AUDIENCE: "),
        "{line}"
    );
    let line = Config::load(env(&[("MAILWRIGHT_AUTH_JWKS_URL", "jwks.json")]), None)
        .unwrap_err()
        .to_string();
    assert!(
        line.starts_with("configuration error: MAILWRIGHT_AUTH_JWKS_URL: "),
        "{line}"
    );
}

#[test]
fn postgres_needs_encryption_keys_and_keys_are_checked() {
    let line = Config::load(
        env(&[("MAILWRIGHT_DATABASE_URL", "postgres://db/mw")]),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        line.starts_with(
            "configuration error: MAILWRIGHT_ENCRYPTION_KEYS: is required with PostgreSQL"
        ),
        "{line}"
    );
    let line = Config::load(env(&[("MAILWRIGHT_ENCRYPTION_KEYS", "k1:c2hvcnQ=")]), None)
        .unwrap_err()
        .to_string();
    assert!(
        line.contains("MAILWRIGHT_ENCRYPTION_KEYS") && line.contains("32"),
        "{line}"
    );
    let key = Keyring::generate_entry("k1");
    let (config, _) = Config::load(
        env(&[
            ("MAILWRIGHT_DATABASE_URL", "postgres://db/mw"),
            ("MAILWRIGHT_ENCRYPTION_KEYS", key.expose_secret()),
        ]),
        None,
    )
    .unwrap();
    assert!(
        !format!("{config:?}").contains(key.expose_secret().split(':').nth(1).unwrap()),
        "keys stay out of Debug output"
    );
}

#[test]
fn a_google_client_needs_both_halves_and_secrets_stay_hidden() {
    let line = Config::load(env(&[("MAILWRIGHT_GOOGLE_CLIENT_ID", "id")]), None)
        .unwrap_err()
        .to_string();
    assert!(
        line.starts_with("configuration error: MAILWRIGHT_GOOGLE_CLIENT_ID: "),
        "{line}"
    );
    let (config, _) = Config::load(
        env(&[
            ("MAILWRIGHT_GOOGLE_CLIENT_ID", "id.apps"),
            ("MAILWRIGHT_GOOGLE_CLIENT_SECRET", "GOCSPX-secret"),
        ]),
        None,
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("GOCSPX-secret"));
    assert_eq!(
        config.google_endpoints.token_url.as_str(),
        "https://oauth2.googleapis.com/token"
    );
    assert_eq!(
        config.oauth_redirect_uri(),
        "http://127.0.0.1:8080/api/auth/oauth/google/callback"
    );
}

#[test]
fn system_email_settings() {
    let (config, _) = Config::load(env(&[]), None).unwrap();
    assert!(matches!(config.mail, MailConfig::Log));
    assert_eq!(config.system_from.address, "no-reply@localhost");
    let line = Config::load(
        env(&[("MAILWRIGHT_SMTP_URL", "smtp://u:hunter2@h?tls=maybe")]),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        line.starts_with("configuration error: MAILWRIGHT_SMTP_URL: ") && !line.contains("hunter2"),
        "{line}"
    );
    let line = Config::load(
        env(&[
            ("MAILWRIGHT_SMTP_URL", "smtp://h:25"),
            ("MAILWRIGHT_SIDEMAIL_API_KEY", "k"),
        ]),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(line.contains("choose one"), "{line}");
    let line = Config::load(env(&[("MAILWRIGHT_SYSTEM_FROM", "nobody")]), None)
        .unwrap_err()
        .to_string();
    assert!(
        line.starts_with("configuration error: MAILWRIGHT_SYSTEM_FROM: "),
        "{line}"
    );
    let (config, _) = Config::load(
        env(&[(
            "MAILWRIGHT_SMTP_URL",
            "smtps://u:hunter2@mail.example.com:465",
        )]),
        None,
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn signin_limits_have_defaults_and_are_checked() {
    let (config, _) = Config::load(env(&[]), None).unwrap();
    assert_eq!(config.signin, SigninLimits::default());
    assert!(config.trusted_proxies.is_empty());
    let (config, _) = Config::load(
        env(&[
            ("MAILWRIGHT_SIGNIN_MAX_FAILURES", "3"),
            ("MAILWRIGHT_SIGNIN_LOCKOUT_MINUTES", "0.5"),
            ("MAILWRIGHT_SIGNIN_ATTEMPTS_PER_MINUTE", "100"),
            ("MAILWRIGHT_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(
        config.signin,
        SigninLimits {
            max_failures: 3,
            lockout_cap: Duration::from_secs(30),
            attempts_per_minute: 100,
        }
    );
    assert!(!config.trusted_proxies.is_empty());
    for (name, value) in [
        ("MAILWRIGHT_SIGNIN_MAX_FAILURES", "0"),
        ("MAILWRIGHT_SIGNIN_MAX_FAILURES", "2.5"),
        ("MAILWRIGHT_SIGNIN_LOCKOUT_MINUTES", "0"),
        ("MAILWRIGHT_SIGNIN_LOCKOUT_MINUTES", "forever"),
        ("MAILWRIGHT_SIGNIN_ATTEMPTS_PER_MINUTE", "-1"),
        ("MAILWRIGHT_TRUSTED_PROXIES", "proxy.internal"),
    ] {
        let line = Config::load(env(&[(name, value)]), None)
            .unwrap_err()
            .to_string();
        assert!(
            line.starts_with(&format!("configuration error: {name}: ")) && !line.contains('\n'),
            "{line}"
        );
    }
}

#[test]
fn unknown_mailwright_variables_are_warned_about() {
    let (_, warnings) = Config::load(
        env(&[
            ("MAILWRIGHT_LISTNE", "x"),
            ("MAILWRIGHT_TEST_POSTGRES_URL", "y"),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("MAILWRIGHT_LISTNE"));
}
