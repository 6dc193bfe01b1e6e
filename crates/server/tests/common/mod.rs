//! Start the real application on port 0 against a fresh database (SQLite, or
//! PostgreSQL when `MAILWRIGHT_TEST_POSTGRES_URL` is set).

#![allow(dead_code)] // each test binary uses a different part of this

pub mod autodraft;
pub mod google;
pub mod idp;
pub mod kills;
pub mod logs;
pub mod mailservers;
pub mod process;
pub mod smtp;
pub mod ui;
pub mod workflows;

use mailwright::{Application, Config};
use store::Store;
use store::testing::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub address: String,
    pub vault: std::sync::Arc<engine::vault::Vault>,
    /// Background workers are off in tests: drain the queue with this.
    pub worker: engine::worker::Worker,
    /// The scheduler does not run on its own in tests: `tick` it.
    pub scheduler: std::sync::Arc<engine::workflows::Scheduler>,
    /// The auto-draft poller does not run on its own in tests: `poll_tick` it.
    pub autodraft: std::sync::Arc<engine::autodraft::AutoDraft>,
    pub client: reqwest::Client,
    pub store: Store,
    pub db: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A fixed encryption key for tests (PostgreSQL requires one to be configured).
pub const TEST_ENCRYPTION_KEYS: &str = "test:bWFpbHdyaWdodC10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=";

pub fn test_config(db: &TestDatabase, extra_env: &[(&str, String)]) -> Config {
    let mut env = vec![
        (
            "MAILWRIGHT_ENCRYPTION_KEYS".to_owned(),
            TEST_ENCRYPTION_KEYS.to_owned(),
        ),
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

async fn start(db: TestDatabase, store: Store, extra_env: &[(&str, String)]) -> TestApp {
    let application = Application::build(test_config(&db, extra_env), store.clone())
        .await
        .expect("the application builds");
    let address = format!("http://{}", application.local_addr());
    let vault = application.vault();
    let worker = application.worker();
    let scheduler = application.scheduler();
    let autodraft = application.autodraft();
    let application = application.with_background_workers(0);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        vault,
        worker,
        scheduler,
        autodraft,
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
    /// A Gmail integration of the workspace (its tokens are placeholders).
    pub integration_id: String,
    /// A workflow of the workspace, and one run of it.
    pub workflow_id: String,
    pub run_id: String,
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

    /// A workspace with an owner and an API key, and nothing connected.
    pub async fn bare_tenant(&self, name: &str) -> Tenant {
        self.tenant_inner(name).await
    }

    /// A workspace with an owner, an API key and a (placeholder) Gmail integration.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let tenant = self.tenant_inner(name).await;
        let placeholder = store::integrations::Sealed {
            key_id: "test".to_owned(),
            bytes: vec![0; 48],
        };
        let integration_id = domain::IntegrationId::new();
        let grant = store::integrations::Grant {
            user: tenant.user,
            integration_type: domain::scopes::IntegrationType::Gmail,
            provider_account_id: format!("google-sub-{name}"),
            email: format!("{name}@gmail.example"),
            display_name: Some(format!("{name} mailbox")),
            granted_scopes: domain::scopes::ScopeSet::parse(
                &domain::scopes::IntegrationType::Gmail
                    .requested_scopes()
                    .join(" "),
            ),
            access_token: placeholder.clone(),
            refresh_token: Some(placeholder),
            expires_at: store::now() + chrono::Duration::hours(1),
            token_source: domain::scopes::TokenSource::Mailwright,
        };
        self.store
            .save_connection(tenant.workspace, integration_id, &grant)
            .await
            .unwrap();
        let workflow = store::workflows::Workflow {
            id: uuid::Uuid::now_v7(),
            workspace: tenant.workspace,
            name: format!("{name} workflow"),
            enabled: true,
            trigger: serde_json::json!({"type": "manual"}),
            steps: serde_json::json!([{"action": "email.send_system", "to": ["ops@example.com"], "subject": "s", "body": "b"}]),
            webhook_secret: None,
            notify_on_failure: false,
            next_run_at: None,
            created_at: store::now(),
            updated_at: store::now(),
        };
        self.store.create_workflow(&workflow).await.unwrap();
        let run = store::workflows::Run {
            id: uuid::Uuid::now_v7(),
            workspace: tenant.workspace,
            workflow_id: workflow.id,
            status: domain::runs::RunStatus::Succeeded,
            trigger: "manual".into(),
            input: serde_json::json!({"secret_of": name}),
            steps: domain::runs::RunSteps::default(),
            error: None,
            next_attempt_at: None,
            created_at: store::now(),
            finished_at: Some(store::now()),
            rerun_of: None,
        };
        self.store.create_run(&run, None, None).await.unwrap();
        Tenant {
            integration_id: integration_id.to_string(),
            workflow_id: workflow.id.to_string(),
            run_id: run.id.to_string(),
            ..tenant
        }
    }

    async fn tenant_inner(&self, name: &str) -> Tenant {
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
        let (key, secret) = mailwright::auth::accounts::issue_api_key(
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
            integration_id: String::new(),
            workflow_id: String::new(),
            run_id: String::new(),
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
