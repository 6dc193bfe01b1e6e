//! For `scripts/bench-me.sh`: Mailwright on a fresh database (SQLite, or
//! PostgreSQL when `MAILWRIGHT_TEST_POSTGRES_URL` is set), trusting a local
//! test identity provider, with one workspace, an API key and a JWT. Writes
//! `ADDRESS API_KEY JWT` to the file named by its argument, then serves (with
//! JSON info logs to stdout, as in production) until interrupted.

#[path = "../tests/common/idp.rs"]
mod idp;

use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let handshake = std::env::args()
        .nth(1)
        .expect("usage: bench_server HANDSHAKE_FILE");
    mailwright::app::install_crypto_provider();
    let provider = idp::TestIdp::start().await;
    let db = store::testing::TestDatabase::new().await;
    let store = db.connect().await;
    store.migrate().await?;

    let mut env = vec![
        ("MAILWRIGHT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "MAILWRIGHT_DATA_DIR".to_owned(),
            db.data_dir().display().to_string(),
        ),
        ("MAILWRIGHT_DATABASE_URL".to_owned(), db.url.expose()),
        ("MAILWRIGHT_LOG_FORMAT".to_owned(), "json".to_owned()),
        (
            "MAILWRIGHT_ENCRYPTION_KEYS".to_owned(),
            "bench:bWFpbHdyaWdodC10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=".to_owned(),
        ),
    ];
    env.extend(
        provider
            .settings()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    let (config, _) = mailwright::Config::load(env, None)?;
    mailwright::telemetry::init_logging(&config, mailwright::telemetry::LogTarget::Stdout);

    let workspace = store.create_workspace("bench").await?;
    let owner = store.create_user(Some("bench@example.com"), None).await?;
    store
        .add_member(workspace.id, owner.id, store::tenancy::Role::Owner)
        .await?;
    let (_, key) =
        mailwright::auth::accounts::issue_api_key(&store, workspace.id, owner.id, "bench").await?;
    let jwt = provider.rs256(&idp::TestIdp::claims(
        "bench-user",
        json!({"org_id": "bench-org", "email": "jwt@example.com"}),
    ));

    let application = mailwright::Application::build(config, store).await?;
    let address = application.local_addr();
    std::fs::write(
        &handshake,
        format!(
            "{address} {} {jwt}\n",
            secrecy::ExposeSecret::expose_secret(&key)
        ),
    )?;
    application
        .run_until(mailwright::app::shutdown_signal())
        .await?;
    drop(db);
    Ok(())
}
