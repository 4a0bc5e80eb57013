//! Domain events of voice-model training.

use event_bus_core::DomainEvent;
use serde::{Deserialize, Serialize};

/// Training of a voice model was requested; starts the saga.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoiceModelTrainingStarted {
    /// The training job.
    pub job_id: String,
    /// Whose voice.
    pub user_id: String,
    /// The audio samples to train on.
    pub sample_ids: Vec<String>,
}

/// The model is trained and passed validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoiceModelTrained {
    /// The training job.
    pub job_id: String,
    /// Whose voice.
    pub user_id: String,
    /// The model.
    pub model_id: String,
    /// Its validated quality, 0 to 1.
    pub quality: f64,
}

/// Training failed; resources were released and artifacts deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoiceModelTrainingFailed {
    /// The training job.
    pub job_id: String,
    /// Whose voice.
    pub user_id: String,
    /// Why.
    pub reason: String,
}

macro_rules! voice_event {
    ($($event:ident => $name:literal),* $(,)?) => {$(
        impl DomainEvent for $event {
            const EVENT_TYPE: &'static str = $name;
            const AGGREGATE_TYPE: &'static str = "voice_model";

            fn aggregate_id(&self) -> String {
                self.job_id.clone()
            }
        }
    )*};
}

voice_event! {
    VoiceModelTrainingStarted => "voice.model_training_started",
    VoiceModelTrained => "voice.model_trained",
    VoiceModelTrainingFailed => "voice.model_training_failed",
}
