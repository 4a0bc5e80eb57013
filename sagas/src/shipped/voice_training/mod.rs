//! Voice-model training: [`VoiceModelTrainingStarted`] starts it; process the audio, train
//! the model, validate its quality, then publish [`VoiceModelTrained`]. On failure (a step
//! fails, quality is too low, or the deadline passes) training resources are released,
//! artifacts deleted, the user notified, and [`VoiceModelTrainingFailed`] published.

pub mod events;

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_core::DomainEvent;

pub use events::{VoiceModelTrained, VoiceModelTrainingFailed, VoiceModelTrainingStarted};

use super::ExampleServices;
use crate::context::StepContext;
use crate::definition::{SagaDefinition, Step};
use crate::error::StepError;

/// Name of the saga.
pub const SAGA: &str = "voice-model-training";
/// Step names, in order.
pub const STEPS: [&str; 3] = ["process_audio", "train_model", "validate_quality"];

/// The services training calls. Every method must be idempotent per job.
#[async_trait]
pub trait VoiceTrainingServices: Send + Sync + 'static {
    /// Cleans and segments the samples; returns the processed set's id.
    async fn process_audio(&self, job_id: &str, sample_ids: &[String])
    -> Result<String, StepError>;
    /// Deletes the job's processed audio.
    async fn delete_processed_audio(&self, job_id: &str) -> Result<(), StepError>;
    /// Allocates training resources, trains, and releases them; returns the model id.
    async fn train_model(&self, job_id: &str, processed_id: &str) -> Result<String, StepError>;
    /// Releases the job's training resources, if it still holds any.
    async fn release_training_resources(&self, job_id: &str) -> Result<(), StepError>;
    /// Deletes the job's model artifacts.
    async fn delete_model_artifacts(&self, job_id: &str) -> Result<(), StepError>;
    /// Scores the model, 0 to 1.
    async fn validate_model(&self, model_id: &str) -> Result<f64, StepError>;
    /// Tells the user what happened to their training.
    async fn notify_user(&self, user_id: &str, message: &str) -> Result<(), StepError>;
}

/// The model scored below the required quality.
#[derive(Debug, thiserror::Error)]
#[error("model quality {quality:.2} is below the required {required:.2}")]
pub struct QualityTooLow {
    /// The score.
    pub quality: f64,
    /// The threshold.
    pub required: f64,
}

/// The training saga; models scoring below `min_quality` fail validation.
pub fn definition(services: Arc<dyn VoiceTrainingServices>, min_quality: f64) -> SagaDefinition {
    let notify = Arc::clone(&services);
    SagaDefinition::new(SAGA, VoiceModelTrainingStarted::EVENT_TYPE)
        .step(STEPS[0], ProcessAudio(Arc::clone(&services)))
        .step(STEPS[1], TrainModel(Arc::clone(&services)))
        .step(
            STEPS[2],
            ValidateQuality {
                services,
                min_quality,
            },
        )
        .on_completed(|ctx| async move {
            let job: VoiceModelTrainingStarted = ctx.trigger()?;
            let trained: serde_json::Value = ctx.output(STEPS[1])?;
            let validated: serde_json::Value = ctx.output(STEPS[2])?;
            ctx.publish(&VoiceModelTrained {
                job_id: job.job_id,
                user_id: job.user_id,
                model_id: trained["model_id"].as_str().unwrap_or_default().to_owned(),
                quality: validated["quality"].as_f64().unwrap_or_default(),
            })
            .await
        })
        .on_compensated(move |ctx| {
            let notify = Arc::clone(&notify);
            async move {
                let job: VoiceModelTrainingStarted = ctx.trigger()?;
                let reason = ctx.failure.clone().unwrap_or_default();
                notify
                    .notify_user(&job.user_id, &format!("voice training failed: {reason}"))
                    .await?;
                ctx.publish(&VoiceModelTrainingFailed {
                    job_id: job.job_id,
                    user_id: job.user_id,
                    reason,
                })
                .await
            }
        })
}

struct ProcessAudio(Arc<dyn VoiceTrainingServices>);

#[async_trait]
impl Step for ProcessAudio {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let job: VoiceModelTrainingStarted = ctx.trigger()?;
        let processed_id = self.0.process_audio(&job.job_id, &job.sample_ids).await?;
        Ok(serde_json::json!({ "processed_id": processed_id }))
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let job: VoiceModelTrainingStarted = ctx.trigger()?;
        self.0.delete_processed_audio(&job.job_id).await
    }
}

struct TrainModel(Arc<dyn VoiceTrainingServices>);

#[async_trait]
impl Step for TrainModel {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let job: VoiceModelTrainingStarted = ctx.trigger()?;
        let processed: serde_json::Value = ctx.output(STEPS[0])?;
        let processed_id = processed["processed_id"].as_str().unwrap_or_default();
        let model_id = self.0.train_model(&job.job_id, processed_id).await?;
        Ok(serde_json::json!({ "model_id": model_id }))
    }

    async fn compensate(&self, ctx: &StepContext) -> Result<(), StepError> {
        let job: VoiceModelTrainingStarted = ctx.trigger()?;
        self.0.release_training_resources(&job.job_id).await?;
        self.0.delete_model_artifacts(&job.job_id).await
    }
}

struct ValidateQuality {
    services: Arc<dyn VoiceTrainingServices>,
    min_quality: f64,
}

#[async_trait]
impl Step for ValidateQuality {
    async fn execute(&self, ctx: &StepContext) -> Result<serde_json::Value, StepError> {
        let trained: serde_json::Value = ctx.output(STEPS[1])?;
        let model_id = trained["model_id"].as_str().unwrap_or_default();
        let quality = self.services.validate_model(model_id).await?;
        if quality < self.min_quality {
            return Err(StepError::permanent(QualityTooLow {
                quality,
                required: self.min_quality,
            }));
        }
        Ok(serde_json::json!({ "quality": quality }))
    }

    /// Validation changes nothing.
    async fn compensate(&self, _ctx: &StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

/// The quality every model trained by [`ExampleServices`] scores.
pub const EXAMPLE_QUALITY: f64 = 0.9;

/// Operations `audio.process`, `audio.delete`, `gpu.allocate`, `model.train`,
/// `gpu.release`, `model.delete`, `model.validate`, `user.notify`; facts
/// `processed_audio:{job}`, `gpu:{job}`, `model:{job}`, `notified:{user}`.
#[async_trait]
impl VoiceTrainingServices for ExampleServices {
    async fn process_audio(
        &self,
        job_id: &str,
        _sample_ids: &[String],
    ) -> Result<String, StepError> {
        self.perform("audio.process", &format!("processed_audio:{job_id}"), true)
            .await?;
        Ok(format!("processed-{job_id}"))
    }

    async fn delete_processed_audio(&self, job_id: &str) -> Result<(), StepError> {
        self.perform("audio.delete", &format!("processed_audio:{job_id}"), false)
            .await
    }

    async fn train_model(&self, job_id: &str, _processed_id: &str) -> Result<String, StepError> {
        self.perform("gpu.allocate", &format!("gpu:{job_id}"), true)
            .await?;
        // A failed training leaves nothing held: it is not compensated, being not completed.
        let trained = self
            .perform("model.train", &format!("model:{job_id}"), true)
            .await;
        self.perform("gpu.release", &format!("gpu:{job_id}"), false)
            .await?;
        trained.map(|()| format!("model-{job_id}"))
    }

    async fn release_training_resources(&self, job_id: &str) -> Result<(), StepError> {
        self.perform("gpu.release", &format!("gpu:{job_id}"), false)
            .await
    }

    async fn delete_model_artifacts(&self, job_id: &str) -> Result<(), StepError> {
        self.perform("model.delete", &format!("model:{job_id}"), false)
            .await
    }

    async fn validate_model(&self, model_id: &str) -> Result<f64, StepError> {
        self.perform("model.validate", &format!("validated:{model_id}"), false)
            .await?;
        Ok(EXAMPLE_QUALITY)
    }

    async fn notify_user(&self, user_id: &str, _message: &str) -> Result<(), StepError> {
        self.perform("user.notify", &format!("notified:{user_id}"), true)
            .await
    }
}
