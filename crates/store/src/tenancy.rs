//! Workspaces, users and who belongs where.
//!
//! A workspace is the unit of tenancy; its own row is the one table not
//! scoped by a workspace id. Everything else that belongs to a workspace is
//! reached through a function taking `WorkspaceId` first.

use chrono::{DateTime, Utc};
use domain::{UserId, WorkspaceId};
use uuid::Uuid;

use crate::{Store, StoreError, in_workspace, now, on_pool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a member may do in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    fn parse(text: &str) -> Result<Role, StoreError> {
        match text {
            "owner" => Ok(Role::Owner),
            "member" => Ok(Role::Member),
            other => Err(StoreError::Other(
                format!("unknown role `{other}` in memberships").into(),
            )),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WorkspaceRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<WorkspaceRow> for Workspace {
    fn from(row: WorkspaceRow) -> Self {
        Workspace {
            id: WorkspaceId::from_uuid(row.id),
            name: row.name,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: Option<String>,
    display_name: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: UserId::from_uuid(row.id),
            email: row.email,
            display_name: row.display_name,
            created_at: row.created_at,
        }
    }
}

impl Store {
    pub async fn create_workspace(&self, name: &str) -> Result<Workspace, StoreError> {
        let workspace = Workspace {
            id: WorkspaceId::new(),
            name: name.to_owned(),
            created_at: now(),
        };
        on_pool!(self, pool => {
            sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(workspace.id.as_uuid())
                .bind(&workspace.name)
                .bind(workspace.created_at)
                .execute(pool)
                .await?;
        });
        Ok(workspace)
    }

    pub async fn workspace(&self, id: WorkspaceId) -> Result<Workspace, StoreError> {
        let row: WorkspaceRow = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, name, created_at FROM workspaces WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)?;
        Ok(row.into())
    }

    pub async fn create_user(
        &self,
        email: Option<&str>,
        display_name: Option<&str>,
    ) -> Result<User, StoreError> {
        let user = User {
            id: UserId::new(),
            email: email.map(str::to_owned),
            display_name: display_name.map(str::to_owned),
            created_at: now(),
        };
        on_pool!(self, pool => {
            sqlx::query("INSERT INTO users (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(user.id.as_uuid())
                .bind(&user.email)
                .bind(&user.display_name)
                .bind(user.created_at)
                .execute(pool)
                .await?;
        });
        Ok(user)
    }

    /// Make `user` a member of `workspace` (idempotent: an existing
    /// membership keeps its role).
    pub async fn add_member(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (workspace_id, user_id) DO NOTHING",
            )
            .bind(workspace.as_uuid())
            .bind(user.as_uuid())
            .bind(role.as_str())
            .bind(now())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The user's role in the workspace; `NotFound` when not a member.
    pub async fn membership(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Role, StoreError> {
        let role: Option<String> = in_workspace!(self, workspace, conn => {
            sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(workspace.as_uuid())
                .bind(user.as_uuid())
                .fetch_optional(&mut *conn)
                .await?
        });
        Role::parse(&role.ok_or(StoreError::NotFound)?)
    }

    /// A member of the workspace, by id. A user who exists but belongs only to
    /// other workspaces is `NotFound`, exactly like a user who does not exist.
    pub async fn member(&self, workspace: WorkspaceId, user: UserId) -> Result<User, StoreError> {
        let row: UserRow = in_workspace!(self, workspace, conn => {
            sqlx::query_as(
                "SELECT u.id, u.email, u.display_name, u.created_at FROM users u \
                 JOIN memberships m ON m.user_id = u.id \
                 WHERE m.workspace_id = $1 AND u.id = $2",
            )
            .bind(workspace.as_uuid())
            .bind(user.as_uuid())
            .fetch_optional(&mut *conn)
            .await?
        })
        .ok_or(StoreError::NotFound)?;
        Ok(row.into())
    }
}

impl Store {
    /// The workspace's earliest owner, if it has one.
    pub async fn first_owner(&self, workspace: WorkspaceId) -> Result<Option<UserId>, StoreError> {
        let id: Option<Uuid> = in_workspace!(self, workspace, conn => {
            sqlx::query_scalar(
                "SELECT user_id FROM memberships WHERE workspace_id = $1 AND role = 'owner' ORDER BY created_at LIMIT 1",
            )
            .bind(workspace.as_uuid())
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(id.map(UserId::from_uuid))
    }
}
