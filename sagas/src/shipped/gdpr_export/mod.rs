//! GDPR data export: collect the user's data from every participating service, aggregate it
//! into an archive, create a download link, then publish [`UserDataExportCompleted`]. On
//! failure the link is revoked and the archive deleted, and [`UserDataExportFailed`] is
//! published.

pub mod events;

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_core::DomainEvent;

pub use events::{UserDataExportCompleted, UserDataExportFailed, UserDataExportRequested};

use super::ExampleServices;
use crate::context::StepContext;
use crate::definition::{SagaDefinition, Step};
use crate::error::StepError;

/// Name of the saga.
pub const SAGA: &str = "gdpr-data-export";
/// Step that builds the archive.
pub const AGGREGATE: &str = "aggregate";
/// Step that creates the download link.
pub const DOWNLOAD_LINK: &str = "download_link";

/// The services an export calls. Every method must be idempotent per request.
#[async_trait]
pub trait DataExportServices: Send + Sync + 'static {
    /// The user's data held by `service`.
    async fn collect_user_data(
        &self,
        service: &str,
        user_id: &str,
    ) -> Result<serde_json::Value, StepError>;
    /// Stores the archive of the request; returns its id.
    async fn store_archive(
        &self,
        request_id: &str,
        archive: &serde_json::Value,
    ) -> Result<String, StepError>;
    /// Deletes the request's archive.
    async fn delete_archive(&self, request_id: &str) -> Result<(), StepError>;
    /// Creates a download link to the request's archive.
    async fn create_download_link(&self, request_id: &str) -> Result<String, StepError>;
    /// Revokes the request's download link.
    async fn revoke_download_link(&self, request_id: &str) -> Result<(), StepError>;
}

/// Name of the step that collects from `service`.
pub fn step_name(service: &str) -> String {
    format!("collect_from_{service}")
}

/// The export saga over `participants` (service names, collected in this order).
pub fn definition(services: Arc<dyn DataExportServices>, participants: &[&str]) -> SagaDefinition {
    let names: Vec<String> = participants.iter().map(|s| (*s).to_owned()).collect();
    let mut definition = SagaDefinition::new(SAGA, UserDataExportRequested::EVENT_TYPE);
    for service in &names {
        definition = definition.step(
            step_name(service),
            Collect {
                service: service.clone(),
                services: Arc::clone(&services),
            },
        );
    }
    definition
        .step(
            AGGREGATE,
            Aggregate {
                participants: names.clone(),
                services: Arc::clone(&services),
            },
        )
        .step(DOWNLOAD_LINK, DownloadLink(services))
        .on_completed(move |ctx| {
            let names = names.clone();
            async move {
                let request: UserDataExportRequested = ctx.trigger()?;
                let link: serde_json::Value = ctx.output(DOWNLOAD_LINK)?;
                ctx.publish(&UserDataExportCompleted {
                    request_id: request.request_id,
                    user_id: request.user_id,
                    download_url: link["url"].as_str().unwrap_or_default().to_owned(),
                    services: names,
                })
                .await
            }
        })
        .on_compensated(|ctx| async move {
            let request: UserDataExportRequested = ctx.trigger()?;
            ctx.publish(&UserDataExportFailed {
                request_id: request.request_id,
                user_id: request.user_id,
                reason: ctx.failure.clone().unwrap_or_default(),
            })
            .await
        })
}

struct Collect {
    service: String,
    services: Arc<dyn DataExportServices>,
}

#[async_trait]
impl Step for Collect {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: UserDataExportRequested = ctx.trigger()?;
        self.services
            .collect_user_data(&self.service, &request.user_id)
            .await
    }

    /// Collecting only reads; the collected copy lives in the saga data.
    async fn compensate(&self, _ctx: &StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

struct Aggregate {
    participants: Vec<String>,
    services: Arc<dyn DataExportServices>,
}

#[async_trait]
impl Step for Aggregate {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: UserDataExportRequested = ctx.trigger()?;
        let mut archive = serde_json::Map::new();
        for service in &self.participants {
            archive.insert(service.clone(), ctx.output(&step_name(service))?);
        }
        let archive = serde_json::Value::Object(archive);
        let archive_id = self
            .services
            .store_archive(&request.request_id, &archive)
            .await?;
        Ok(serde_json::json!({ "archive_id": archive_id }))
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let request: UserDataExportRequested = ctx.trigger()?;
        self.services.delete_archive(&request.request_id).await
    }
}

struct DownloadLink(Arc<dyn DataExportServices>);

#[async_trait]
impl Step for DownloadLink {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let request: UserDataExportRequested = ctx.trigger()?;
        let url = self.0.create_download_link(&request.request_id).await?;
        Ok(serde_json::json!({ "url": url }))
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let request: UserDataExportRequested = ctx.trigger()?;
        self.0.revoke_download_link(&request.request_id).await
    }
}

/// Operations `{service}.collect`, `archive.store`, `archive.delete`, `link.create`,
/// `link.revoke`; facts `archive:{request}` and `link:{request}`.
#[async_trait]
impl DataExportServices for ExampleServices {
    async fn collect_user_data(
        &self,
        service: &str,
        user_id: &str,
    ) -> Result<serde_json::Value, StepError> {
        self.perform(
            &format!("{service}.collect"),
            &format!("collected:{service}:{user_id}"),
            false,
        )
        .await?;
        Ok(serde_json::json!({ "service": service, "user_id": user_id }))
    }

    async fn store_archive(
        &self,
        request_id: &str,
        _archive: &serde_json::Value,
    ) -> Result<String, StepError> {
        self.perform("archive.store", &format!("archive:{request_id}"), true)
            .await?;
        Ok(format!("archive-{request_id}"))
    }

    async fn delete_archive(&self, request_id: &str) -> Result<(), StepError> {
        self.perform("archive.delete", &format!("archive:{request_id}"), false)
            .await
    }

    async fn create_download_link(&self, request_id: &str) -> Result<String, StepError> {
        self.perform("link.create", &format!("link:{request_id}"), true)
            .await?;
        Ok(format!("https://exports.example.com/{request_id}.zip"))
    }

    async fn revoke_download_link(&self, request_id: &str) -> Result<(), StepError> {
        self.perform("link.revoke", &format!("link:{request_id}"), false)
            .await
    }
}
