//! A small workflow helper: named steps, a pause for a human's approval, resume, and an end
//! (complete or error), persisted in the agent's database and evented at each transition.

use serde_json::Value;
use sightline_event::{
    Name, Outcome, Sensitive, WorkflowApproved, WorkflowComplete, WorkflowError, WorkflowEvent,
    WorkflowPaused, WorkflowRejected, WorkflowResumed, WorkflowStart,
};

use crate::agent::Ctx;
use crate::clock::now_ms;
use crate::error::RpcError;
use crate::store::{StoreError, WorkflowRow};

fn store_err(e: StoreError) -> RpcError {
    RpcError::new("StoreError", e.to_string())
}

impl Ctx {
    /// Starts a workflow named `name`; returns its id.
    pub fn start_workflow(&mut self, name: &str) -> Result<String, RpcError> {
        let id = format!("wf_{:016x}", fastrand::u64(..));
        self.store
            .put_workflow(&WorkflowRow {
                id: id.clone(),
                name: name.to_owned(),
                status: "running".into(),
                steps: 0,
                started_ms: now_ms(),
            })
            .map_err(store_err)?;
        self.emitter.emit(|| WorkflowStart {
            workflow_id: id.as_str().into(),
            workflow_name: Some(name.into()),
        });
        Ok(id)
    }

    fn workflow(&self, id: &str, want: &str) -> Result<WorkflowRow, RpcError> {
        let row = self
            .store
            .workflow(id)
            .map_err(store_err)?
            .ok_or_else(|| RpcError::new("NotFound", format!("no workflow {id}")))?;
        if row.status != want {
            return Err(RpcError::new(
                "WrongState",
                format!("workflow {id} is {}, not {want}", row.status),
            ));
        }
        Ok(row)
    }

    /// Records a step done (`workflow:event` with the step as its type).
    pub fn workflow_step(
        &mut self,
        id: &str,
        step: &str,
        _output: &Value,
    ) -> Result<u32, RpcError> {
        let mut row = self.workflow(id, "running")?;
        row.steps += 1;
        self.store.put_workflow(&row).map_err(store_err)?;
        self.emitter.emit(|| WorkflowEvent {
            workflow_id: id.into(),
            workflow_name: Some(row.name.as_str().into()),
            event_type: Some(step.into()),
        });
        Ok(row.steps)
    }

    /// Pauses for a human (`workflow:paused`, reason `approval`).
    pub fn pause_workflow(&mut self, id: &str) -> Result<(), RpcError> {
        let mut row = self.workflow(id, "running")?;
        row.status = "paused".into();
        self.store.put_workflow(&row).map_err(store_err)?;
        self.emitter.emit(|| WorkflowPaused {
            workflow_id: id.into(),
            workflow_name: Some(row.name.as_str().into()),
            reason: Some(Name::new_static("approval")),
        });
        Ok(())
    }

    /// A human's answer to a paused workflow: approved resumes it (`workflow:approved`,
    /// `workflow:resumed`), rejected ends it (`workflow:rejected`).
    pub fn answer_workflow(
        &mut self,
        id: &str,
        approved: bool,
        reason: Option<&str>,
    ) -> Result<(), RpcError> {
        let mut row = self.workflow(id, "paused")?;
        let name: Name = row.name.as_str().into();
        let reason = reason.map(|r| Sensitive(r.to_owned()));
        if approved {
            row.status = "running".into();
            self.store.put_workflow(&row).map_err(store_err)?;
            self.emitter.emit(|| WorkflowApproved {
                workflow_id: id.into(),
                workflow_name: Some(name.clone()),
                reason,
            });
            self.emitter.emit(|| WorkflowResumed {
                workflow_id: id.into(),
                workflow_name: Some(name),
            });
        } else {
            self.store.delete_workflow(id).map_err(store_err)?;
            self.emitter.emit(|| WorkflowRejected {
                workflow_id: id.into(),
                workflow_name: Some(name),
                reason,
            });
        }
        Ok(())
    }

    /// Ends a workflow: `workflow:complete` with its steps, or `workflow:error` with the step
    /// that failed; either with the time since it started.
    pub fn end_workflow(
        &mut self,
        id: &str,
        failed: Option<(&str, &RpcError)>,
    ) -> Result<(), RpcError> {
        let row = self.workflow(id, "running")?;
        self.store.delete_workflow(id).map_err(store_err)?;
        let took = now_ms()
            .saturating_sub(row.started_ms)
            .saturating_mul(1_000_000);
        let name: Name = row.name.as_str().into();
        match failed {
            None => self.emitter.emit_with(|m| {
                m.outcome = Some(Outcome::Ok);
                m.duration_ns = Some(took);
                WorkflowComplete {
                    workflow_id: id.into(),
                    workflow_name: Some(name),
                    steps: row.steps,
                }
            }),
            Some((step, e)) => self.emitter.emit_with(|m| {
                m.outcome = Some(Outcome::Error);
                m.duration_ns = Some(took);
                WorkflowError {
                    workflow_id: id.into(),
                    workflow_name: Some(name),
                    step: Some(step.into()),
                    error: Sensitive(e.message.clone()),
                }
            }),
        }
        Ok(())
    }
}
