//! The Batch v2 face of the engine: creating a request from a v2 body (its delivery
//! credentials stored apart), the task view with its progress, and v2's PUT. Everything
//! else (actions, ownership, lists) is the same engine call for both APIs.

use serde_json::Value;

use super::{Command, Engine, Page, Result};
use crate::api::v2::TaskProgress;
use crate::api::{self, RequestRecord};
use crate::store::RequestSort;

/// A request as the v2 API shows it: the stored record and its progress.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub record: RequestRecord,
    pub progress: TaskProgress,
}

impl TaskView {
    /// The v2 task object.
    pub fn json(&self) -> Value {
        api::v2::task_json(&self.record, &self.progress)
    }
}

impl Engine {
    /// Validates a v2 create body and stores the request as CREATED; its delivery
    /// credentials are stored beside it, never in the body. Nothing is stored on error.
    pub fn create_v2(&self, client: &str, body: &Value) -> Result<RequestRecord> {
        let create = api::v2::normalise_create(body)?;
        let spec = api::v2::validate(&create.body)?;
        let record = self.insert_new(client, create.body, &spec, create.credentials.as_ref())?;
        // As the hosted service does: the original request goes to the bucket on create. A
        // bucket that cannot take it fails the create, and the request is not kept.
        let uploaded = crate::output::Sinks::from_env(self.config().data_dir.clone())
            .map_err(|e| e.to_string())
            .and_then(|base| {
                let sinks = super::analysis::request_sinks(
                    &base,
                    create.credentials.as_ref(),
                    &spec.tile_path,
                );
                super::artifacts::upload_request_json(
                    &sinks,
                    &spec.tile_path,
                    &record.id,
                    &record.body,
                )
            });
        if let Err(e) = uploaded {
            self.inner.reader.delete_request(&record.id)?;
            return Err(api::ApiError::BadPayload(format!(
                "cannot write the request to output.delivery.s3.url: {e}"
            ))
            .into());
        }
        Ok(record)
    }

    /// The task view of a stored request: tile counts, PU charged, last change.
    pub fn task(&self, record: RequestRecord) -> Result<TaskView> {
        let store = &self.inner.reader;
        let counts = store.tile_counts(&record.id)?;
        let progress = TaskProgress {
            processed: counts.processed,
            failed: counts.failed,
            cost_pu: store.pu_totals(&record.id)?.charged,
            last_updated: store.request_updated(&record.id)?,
        };
        Ok(TaskView { record, progress })
    }

    pub fn get_task(&self, client: &str, id: &str) -> Result<TaskView> {
        self.task(self.get(client, id)?)
    }

    pub fn list_tasks(
        &self,
        client: &str,
        sort: RequestSort,
        offset: u64,
        count: u64,
    ) -> Result<Page<TaskView>> {
        let page = self.list(client, sort, offset, count)?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|r| self.task(r))
                .collect::<Result<_>>()?,
            next: page.next,
        })
    }

    /// v2 PUT: only `description` may change, not while processing.
    pub fn update_v2(&self, client: &str, id: &str, body: &Value) -> Result<TaskView> {
        let patch = api::v2::validate_update(body)?;
        self.command(client, id, Command::Update(patch))?;
        self.get_task(client, id)
    }
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
