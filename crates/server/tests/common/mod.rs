//! Start the real application on port 0 against a fresh database (SQLite, or
//! PostgreSQL when `MAILWRIGHT_TEST_POSTGRES_URL` is set).

#![allow(dead_code)] // each test binary uses a different part of this

pub mod idp;

use mailwright::{Application, Config};
use store::Store;
use store::testing::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub db: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(db: &TestDatabase, extra_env: &[(&str, String)]) -> Config {
    let mut env = vec![
        ("MAILWRIGHT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "MAILWRIGHT_DATA_DIR".to_owned(),
            db.data_dir().display().to_string(),
        ),
        ("MAILWRIGHT_DATABASE_URL".to_owned(), db.url.expose()),
        ("MAILWRIGHT_LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone())),
    );
    let (config, _) = Config::load(env, None).expect("the test configuration is valid");
    config
}

/// The application on a fresh, migrated database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// As [`spawn_app`], with extra settings (`MAILWRIGHT_AUTH_JWKS_URL`, ...).
pub async fn spawn_app_with(extra_env: &[(&str, String)]) -> TestApp {
    let db = TestDatabase::new().await;
    let store = db.connect().await;
    store.migrate().await.expect("migrations apply");
    start(db, store, extra_env).await
}

/// The application on a fresh database whose migrations were never applied.
pub async fn spawn_app_unmigrated() -> TestApp {
    let db = TestDatabase::new().await;
    let store = db.connect().await;
    start(db, store, &[]).await
}

async fn start(db: TestDatabase, store: Store, extra_env: &[(&str, String)]) -> TestApp {
    let application = Application::build(test_config(&db, extra_env), store.clone())
        .await
        .expect("the application builds");
    let address = format!("http://{}", application.local_addr());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        // Redirects are part of what is tested: never follow them.
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        store,
        db,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// A workspace with an owner and an API key acting as the owner.
pub struct Tenant {
    pub workspace: domain::WorkspaceId,
    pub user: domain::UserId,
    pub key_id: String,
    pub key: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn get_as(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn tenant(&self, name: &str) -> Tenant {
        let workspace = self.store.create_workspace(name).await.unwrap();
        let user = self
            .store
            .create_user(Some(&format!("owner@{name}.example")), None)
            .await
            .unwrap();
        self.store
            .add_member(workspace.id, user.id, store::tenancy::Role::Owner)
            .await
            .unwrap();
        let (key, secret) = mailwright::accounts::issue_api_key(
            &self.store,
            workspace.id,
            user.id,
            &format!("{name} key"),
        )
        .await
        .unwrap();
        Tenant {
            workspace: workspace.id,
            user: user.id,
            key_id: key.id.to_string(),
            key: secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
        }
    }

    /// Ask the server to stop and wait until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("the server task does not panic"),
            None => Ok(()),
        }
    }
}

/// Check the RFC 9457 shape every error answer has, and return the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    for member in ["type", "title", "detail"] {
        assert!(
            body[member].as_str().is_some_and(|text| !text.is_empty()),
            "{member} missing in {body}"
        );
    }
    body
}
