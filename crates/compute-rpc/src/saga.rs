//! The saga log's records as they travel: an agent keeps its build saga's
//! log through the conductor (agents never open the compute database).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SagaState {
    Running,
    Unwinding,
    Done,
    Failed,
}

impl SagaState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Unwinding => "unwinding",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for SagaState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "running" => Self::Running,
            "unwinding" => Self::Unwinding,
            "done" => Self::Done,
            "failed" => Self::Failed,
            other => return Err(format!("unknown saga state {other}")),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Done,
    Undone,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SagaRecord {
    pub id: String,
    pub kind: String,
    pub instance_id: String,
    pub state: SagaState,
    pub params: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step: i64,
    pub name: String,
    pub status: StepStatus,
    /// What the action returned (`None` once undone).
    #[serde(default)]
    pub output: Option<serde_json::Value>,
}
