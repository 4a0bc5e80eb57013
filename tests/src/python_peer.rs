//! `tests/interop/peer.py`, a Python service using the official CloudEvents SDK and each
//! broker's own Python client, run from the venv that `scripts/services.sh` makes
//! (`ensure_python_interop`) and names in `EVENT_BUS_INTEROP_PYTHON`.

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

/// The variable naming the venv's Python.
pub const PYTHON_VARIABLE: &str = "EVENT_BUS_INTEROP_PYTHON";

/// Why the Python peer could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The venv's Python is not named; the message says how to make it.
    #[error(
        "{PYTHON_VARIABLE} is not set: the interop tests need the Python venv with the CloudEvents \
         SDK and the brokers' clients; scripts/test.sh makes it and sets the variable (alone: \
         `source scripts/services.sh && ensure_python_interop`, then run the test)"
    )]
    NoPython,
    /// The named Python does not exist.
    #[error("{PYTHON_VARIABLE}={0} does not exist; make the venv again with ensure_python_interop")]
    MissingPython(String),
    /// Starting or talking to the process failed.
    #[error("running peer.py failed: {0}")]
    Io(#[from] io::Error),
    /// The script failed; its standard error says why.
    #[error("peer.py {action} exited with {status}: {stderr}")]
    Failed {
        /// `produce` or `consume`.
        action: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on standard error.
        stderr: String,
    },
    /// A line of the consumer's output was not the JSON it promises.
    #[error("peer.py printed `{line}`, not an event: {source}")]
    NotJson {
        /// The line.
        line: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// The Python peer, with the connection options of one backend.
pub struct PythonPeer {
    python: PathBuf,
    script: PathBuf,
    options: Vec<String>,
}

impl PythonPeer {
    /// The peer for `backend`, with its connection options (`--url …`, `--bootstrap …`).
    pub fn new(backend: &str, options: &[&str]) -> Result<Self, PeerError> {
        let python = std::env::var(PYTHON_VARIABLE).map_err(|_| PeerError::NoPython)?;
        if !PathBuf::from(&python).exists() {
            return Err(PeerError::MissingPython(python));
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/peer.py");
        let mut all = vec!["--backend".to_owned(), backend.to_owned()];
        all.extend(options.iter().map(|option| (*option).to_owned()));
        Ok(Self {
            python: python.into(),
            script,
            options: all,
        })
    }

    fn command(&self, action: &str, topic: &str) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(&self.script)
            .arg(action)
            .args(&self.options)
            .args(["--topic", topic])
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// Publishes the peer's two events (`py-structured-1`, `py-binary-1`) to `topic`.
    pub fn produce(&self, topic: &str) -> Result<(), PeerError> {
        let output = self.command("produce", topic).output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(PeerError::Failed {
                action: "produce",
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }

    /// Starts consuming `count` events of `topic`; returns once the consumer is ready.
    pub fn consume(&self, topic: &str, count: usize) -> Result<Consumer, PeerError> {
        let mut child = self
            .command("consume", topic)
            .args(["--count", &count.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        lines.read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err(failed(child, "consume"));
        }
        Ok(Consumer { child, lines })
    }
}

/// A running consumer.
pub struct Consumer {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Consumer {
    /// Waits for the consumer to finish; the events it decoded, as it printed them.
    pub fn events(mut self) -> Result<Vec<serde_json::Value>, PeerError> {
        let mut events = Vec::new();
        for line in self.lines.by_ref().lines() {
            let line = line?;
            let event = serde_json::from_str(&line).map_err(|source| PeerError::NotJson {
                line: line.clone(),
                source,
            })?;
            events.push(event);
        }
        let status = self.child.wait()?;
        if status.success() {
            Ok(events)
        } else {
            Err(failed(self.child, "consume"))
        }
    }
}

fn failed(mut child: Child, action: &'static str) -> PeerError {
    let status = match child.wait() {
        Ok(status) => status,
        Err(error) => return PeerError::Io(error),
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    PeerError::Failed {
        action,
        status,
        stderr,
    }
}
