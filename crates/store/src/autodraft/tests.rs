//! Tests of `autodraft`.
use super::*;
use crate::Pool;
use crate::testing::{TestDatabase, take_job_announcement};

/// A connected Gmail integration with auto-draft on.
async fn enabled_mailbox(store: &Store) -> (WorkspaceId, IntegrationId) {
    let workspace = store.create_workspace("w").await.unwrap().id;
    let user = store
        .create_user(Some("ann@example.com"), None)
        .await
        .unwrap();
    let integration = IntegrationId::new();
    let at = now();
    let inserted: Result<(), StoreError> = async {
        in_workspace!(store, workspace, conn => {
            sqlx::query(
                "INSERT INTO integrations (id, workspace_id, user_id, provider, integration_type, \
                     provider_account_id, email, display_name, status, granted_scopes, connected_at, updated_at) \
                 VALUES ($1, $2, $3, 'google', 'gmail', 'account', 'ann@example.com', 'Ann', 'connected', '', $4, $4)",
            )
            .bind(integration.as_uuid())
            .bind(workspace.as_uuid())
            .bind(user.id.as_uuid())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
    .await;
    inserted.unwrap();
    store
        .set_autodraft(
            workspace,
            integration,
            true,
            Some(&MailboxCursor::at(1)),
            at,
        )
        .await
        .unwrap();
    (workspace, integration)
}

#[tokio::test]
async fn each_queued_sync_and_each_new_message_wakes_a_worker() {
    let (_db, store) = TestDatabase::migrated().await;
    let (workspace, integration) = enabled_mailbox(&store).await;
    assert!(!take_job_announcement(&store).await);
    let sync = || NewJob::new("test.sync", serde_json::json!({})).in_workspace(workspace);

    assert!(
        store
            .request_autodraft_sync(workspace, integration, &sync())
            .await
            .unwrap()
    );
    assert!(take_job_announcement(&store).await, "a pushed sync");

    let due = store
        .autodraft_mailbox(workspace, integration)
        .await
        .unwrap()
        .unwrap();
    let due = due.next_poll_at.expect("a poll is planned");
    let later = due + chrono::Duration::seconds(60);
    assert!(
        store
            .claim_autodraft_poll(workspace, integration, due, later, &sync())
            .await
            .unwrap()
    );
    assert!(take_job_announcement(&store).await, "a polled sync");
    assert!(
        !store
            .claim_autodraft_poll(workspace, integration, due, later, &sync())
            .await
            .unwrap()
    );
    assert!(
        !take_job_announcement(&store).await,
        "a poll taken by another poller"
    );

    let found = |id: &str| FoundMessage {
        gmail_message_id: id.into(),
        thread_id: id.into(),
    };
    let draft = |id: Uuid| NewJob::new("test.draft", serde_json::json!({"message": id}));
    let new_mail = |message: &FoundMessage| {
        NewJob::new("test.new_mail", serde_json::json!({}))
            .dedupe_key(format!("new_mail:{}", message.gmail_message_id))
    };
    let recorded = store
        .record_autodraft_sync(
            workspace,
            integration,
            (1, &MailboxCursor::at(2), false),
            &[found("a"), found("b")],
            draft,
            new_mail,
        )
        .await
        .unwrap();
    assert_eq!(recorded, Some(2));
    // Two jobs, two wake-ups: the first stored (no worker waits here),
    // the second had no second worker to wake.
    assert!(take_job_announcement(&store).await, "the drafts");
    let recorded = store
        .record_autodraft_sync(
            workspace,
            integration,
            (2, &MailboxCursor::at(3), false),
            &[found("a")],
            draft,
            new_mail,
        )
        .await
        .unwrap();
    assert_eq!(recorded, Some(0), "already known");
    assert!(
        !take_job_announcement(&store).await,
        "no new message, no wake-up"
    );
    assert_eq!(
        jobs_of_kind(&store, "test.new_mail").await,
        0,
        "no workflow waits"
    );
}

async fn jobs_of_kind(store: &Store, kind: &str) -> i64 {
    let count: Result<i64, StoreError> = async {
        Ok(across_workspaces!(store, conn => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE kind = $1")
                .bind(kind)
                .fetch_one(&mut *conn)
                .await?
        }))
    }
    .await;
    count.unwrap()
}

/// A mailbox with auto-draft off is still synced while an enabled
/// new-mail workflow watches it: its messages queue the workflows' job and
/// no draft rows; switching auto-draft off keeps its poll; once the
/// workflow is disabled, nothing syncs it.
#[tokio::test]
async fn a_mailbox_a_workflow_waits_on_is_synced_with_auto_draft_off() {
    let (_db, store) = TestDatabase::migrated().await;
    let (workspace, integration) = enabled_mailbox(&store).await;
    let mut workflow = crate::workflows::Workflow {
        id: Uuid::now_v7(),
        workspace,
        name: "On mail".into(),
        enabled: true,
        trigger: serde_json::json!({"type": "new_mail", "integration_id": integration.to_string()}),
        steps: serde_json::json!([]),
        webhook_secret: None,
        next_run_at: None,
        notify_on_failure: false,
        created_at: now(),
        updated_at: now(),
    };
    store.create_workflow(&workflow).await.unwrap();
    let off = store
        .set_autodraft(workspace, integration, false, None, now())
        .await
        .unwrap();
    assert!(!off.enabled && off.for_workflows && off.synced());
    assert!(off.next_poll_at.is_some(), "still polled for the workflow");
    assert_eq!(
        store
            .new_mail_workflows(workspace, integration)
            .await
            .unwrap()
            .len(),
        1
    );

    let found = |id: &str| FoundMessage {
        gmail_message_id: id.into(),
        thread_id: id.into(),
    };
    let draft = |id: Uuid| NewJob::new("test.draft", serde_json::json!({"message": id}));
    let new_mail = |message: &FoundMessage| {
        NewJob::new("test.new_mail", serde_json::json!({}))
            .dedupe_key(format!("new_mail:{}", message.gmail_message_id))
    };
    let recorded = store
        .record_autodraft_sync(
            workspace,
            integration,
            (1, &MailboxCursor::at(2), false),
            &[found("a"), found("b")],
            draft,
            new_mail,
        )
        .await
        .unwrap();
    assert_eq!(recorded, Some(0), "no draft rows with auto-draft off");
    assert_eq!(jobs_of_kind(&store, "test.new_mail").await, 2);
    assert_eq!(jobs_of_kind(&store, "test.draft").await, 0);
    assert!(take_job_announcement(&store).await);

    workflow.enabled = false;
    store.update_workflow(&workflow).await.unwrap();
    let mailbox = store
        .autodraft_mailbox(workspace, integration)
        .await
        .unwrap()
        .unwrap();
    assert!(!mailbox.synced());
    assert!(
        store
            .due_autodraft_polls(now() + chrono::Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing polls it"
    );
    let recorded = store
        .record_autodraft_sync(
            workspace,
            integration,
            (2, &MailboxCursor::at(3), false),
            &[found("c")],
            draft,
            new_mail,
        )
        .await
        .unwrap();
    assert_eq!(
        recorded, None,
        "a sync that raced the switch-off records nothing"
    );
}

/// A push's lookup starts from the address index instead of reading
/// every enabled mailbox (one push per incoming message, so it must not
/// grow with the number of mailboxes). SQLite plans the same whatever
/// the tables hold.
#[tokio::test]
async fn a_push_finds_its_mailboxes_through_the_address_index() {
    let (_db, store) = TestDatabase::migrated().await;
    let plan: String = match &store.pool {
        Pool::Sqlite(pool) => {
            let sql = format!("EXPLAIN QUERY PLAN {MAILBOXES_FOR_ADDRESS_SQL}");
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind("ann@example.com")
                .fetch_all(pool)
                .await
                .unwrap();
            rows.into_iter()
                .map(|row| row.3)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Pool::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            // PostgreSQL plans by the tables' statistics: 500 enabled
            // mailboxes, analyzed, and the plan a prepared statement
            // settles on after a few runs.
            let fixture = [
                "SET LOCAL mailwright.all_workspaces = 'on'",
                "INSERT INTO workspaces (id, name, created_at) \
                 VALUES ('00000000-0000-0000-0000-000000000001', 'w', now())",
                "INSERT INTO users (id, created_at) VALUES ('00000000-0000-0000-0000-000000000002', now())",
                "INSERT INTO integrations (id, workspace_id, user_id, provider, integration_type, \
                     provider_account_id, email, display_name, status, granted_scopes, connected_at, updated_at) \
                 SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001', \
                        '00000000-0000-0000-0000-000000000002', 'google', 'gmail', 'account' || n, \
                        'user' || n || '@example.com', 'User', 'connected', '', now(), now() \
                 FROM generate_series(1, 500) AS n",
                "INSERT INTO autodraft_mailboxes (integration_id, workspace_id, enabled, updated_at) \
                 SELECT id, workspace_id, TRUE, now() FROM integrations",
                "ANALYZE integrations, autodraft_mailboxes",
                "SET LOCAL plan_cache_mode = force_generic_plan",
            ];
            for statement in fixture {
                sqlx::query(statement).execute(&mut *tx).await.unwrap();
            }
            let sql = format!("EXPLAIN (COSTS OFF) {MAILBOXES_FOR_ADDRESS_SQL}");
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind("ann@example.com")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
            rows.join("\n")
        }
    };
    assert!(plan.contains("integrations_by_address"), "{plan}");
    assert!(!plan.contains("SCAN m"), "{plan}"); // SQLite's full scan
}

#[tokio::test]
async fn outcomes_are_counted_per_utc_day_and_status_in_this_workspace_only() {
    let (_db, store) = TestDatabase::migrated().await;
    let (workspace, integration) = enabled_mailbox(&store).await;
    let today = now();
    let yesterday = today - chrono::Duration::days(1);
    let long_ago = today - chrono::Duration::days(30);
    let rows = [
        ("drafted", yesterday),
        ("drafted", yesterday),
        ("skipped", yesterday),
        ("failed", today),
        ("drafted", today),
        ("drafted", long_ago),
    ];
    for (index, (status, finished_at)) in rows.into_iter().enumerate() {
        let inserted: Result<(), StoreError> = async {
            in_workspace!(store, workspace, conn => {
                sqlx::query(
                    "INSERT INTO autodraft_messages (id, workspace_id, integration_id, gmail_message_id, thread_id, \
                         status, discovered_at, finished_at) VALUES ($1, $2, $3, $4, 't', $5, $6, $6)",
                )
                .bind(Uuid::now_v7())
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .bind(format!("m{index}"))
                .bind(status)
                .bind(finished_at)
                .execute(&mut *conn)
                .await?;
            });
            Ok(())
        }
        .await;
        inserted.unwrap();
    }
    let days = store
        .autodraft_days(workspace, integration, today - chrono::Duration::days(7))
        .await
        .unwrap();
    let counted: Vec<(chrono::NaiveDate, &str, i64)> = days
        .iter()
        .map(|day| (day.day, day.status.as_str(), day.count))
        .collect();
    let mut expected = vec![
        (yesterday.date_naive(), "drafted", 2),
        (yesterday.date_naive(), "skipped", 1),
        (today.date_naive(), "drafted", 1),
        (today.date_naive(), "failed", 1),
    ];
    let mut counted = counted;
    counted.sort();
    expected.sort();
    assert_eq!(counted, expected);

    let stranger = store.create_workspace("stranger").await.unwrap().id;
    assert!(
        store
            .autodraft_days(stranger, integration, long_ago)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_opaque_cursor_moves_with_its_position_and_only_from_where_it_was() {
    let (_db, store) = TestDatabase::migrated().await;
    let (workspace, integration) = enabled_mailbox(&store).await;
    let link = |n: u32| {
        format!("https://graph.example/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken={n}")
    };
    let noop = |_: Uuid| NewJob::new("test.draft", serde_json::json!({}));
    let no_mail = |_: &FoundMessage| NewJob::new("test.new_mail", serde_json::json!({}));
    let read = || async {
        store
            .autodraft_mailbox(workspace, integration)
            .await
            .unwrap()
            .unwrap()
            .cursor()
            .unwrap()
    };
    assert_eq!(read().await, MailboxCursor::at(1));

    let first = MailboxCursor::at(1).next_link(link(1));
    let moved = store
        .record_autodraft_sync(
            workspace,
            integration,
            (1, &first, false),
            &[],
            noop,
            no_mail,
        )
        .await
        .unwrap();
    assert_eq!(moved, Some(0));
    assert_eq!(read().await, first);

    // A second sync that started from the old position writes nothing.
    let stale = MailboxCursor::at(1).next_link(link(99));
    let moved = store
        .record_autodraft_sync(
            workspace,
            integration,
            (1, &stale, false),
            &[],
            noop,
            no_mail,
        )
        .await
        .unwrap();
    assert_eq!(moved, None);
    assert_eq!(read().await, first);

    let second = first.next_link(link(2));
    store
        .record_autodraft_sync(
            workspace,
            integration,
            (2, &second, false),
            &[],
            noop,
            no_mail,
        )
        .await
        .unwrap();
    assert_eq!(read().await, second);

    // Switched on again from a new cursor: the link is replaced with it.
    let fresh = MailboxCursor::at(7).next_link(link(7));
    store
        .set_autodraft(workspace, integration, true, Some(&fresh), now())
        .await
        .unwrap();
    assert_eq!(read().await, fresh);
}
